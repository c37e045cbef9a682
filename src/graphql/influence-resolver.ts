import type { GraphQLResolveInfo } from "graphql";
import { Args, Ctx, FieldResolver, Info, Query, Resolver, Root, UseMiddleware } from "type-graphql";
import { DISTRIBUTION_COST, INFLUENCE_COST, listOf } from "./costs.js";
import { DistributionArgs, InfluenceDistribution } from "./distribution.js";
import { InfluenceArgs, InfluenceHit, InfluenceResult } from "./influence.js";
import { TrainingSequence } from "./sequence.js";
import type { RequestContext } from "../server/context.js";
import { TOP_K } from "../indexer/query-limits.js";
import { selectsPath } from "../server/selection.js";
import { mapErrors } from "./map-errors.js";

@Resolver(() => InfluenceHit)
@UseMiddleware(mapErrors)
export class InfluenceResolver {
  @Query(() => InfluenceResult, {
    complexity: listOf("topK", TOP_K.default, INFLUENCE_COST),
    description: "The training sequences that most influenced the completion (EK-FAC influence, searched in the index).",
  })
  influence(@Args(() => InfluenceArgs) args: InfluenceArgs, @Ctx() ctx: RequestContext, @Info() info: GraphQLResolveInfo): Promise<InfluenceResult> {
    const index = ctx.index(args.index);
    // Token scores cost a gradient pass per hit: only when the client selected them.
    return index.influence.influence(args, { tokenScores: selectsPath(info, ["hits", "tokenScores"]), sequences: index.sequenceLoader });
  }

  @FieldResolver(() => TrainingSequence)
  sequence(@Root() hit: InfluenceHit, @Ctx() ctx: RequestContext): Promise<TrainingSequence> {
    const index = ctx.index(hit.index);
    return index.sequences.atOrdinal(index.sequenceLoader, hit.ordinal);
  }

  @Query(() => InfluenceDistribution, {
    complexity: ({ childComplexity }) => DISTRIBUTION_COST + childComplexity,
    description: "How influence on the completion is spread over every indexed sequence: histogram, top scores, power-law tail.",
  })
  influenceDistribution(@Args(() => DistributionArgs) args: DistributionArgs, @Ctx() ctx: RequestContext): Promise<InfluenceDistribution> {
    return ctx.index(args.index).influence.distribution(args);
  }
}
