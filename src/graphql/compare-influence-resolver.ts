import type { GraphQLResolveInfo } from "graphql";
import { Args, Ctx, FieldResolver, Info, Query, Resolver, Root, UseMiddleware } from "type-graphql";
import { TOP_K } from "../indexer/query-limits.js";
import type { RequestContext } from "../server/context.js";
import { compareInfluence } from "../server/comparison-service.js";
import { selectsPath } from "../server/selection.js";
import { ComparedHit, CompareInfluenceArgs, InfluenceComparison } from "./compare-influence.js";
import { INFLUENCE_COST } from "./costs.js";
import { mapErrors } from "./map-errors.js";
import { TrainingSequence } from "./sequence.js";

@Resolver(() => ComparedHit)
@UseMiddleware(mapErrors)
export class CompareInfluenceResolver {
  @Query(() => InfluenceComparison, {
    // An influence search per index, each returning topK hits.
    complexity: ({ args, childComplexity }) =>
      (Array.isArray(args.indexes) ? args.indexes.length : 2) *
      (INFLUENCE_COST + (typeof args.topK === "number" ? args.topK : TOP_K.default) * childComplexity),
    description:
      "The same query asked of several served indexes (e.g. two models of one corpus): each one's hits, layer shares and token overlap, and the overlap of their top hits.",
  })
  compareInfluence(
    @Args(() => CompareInfluenceArgs) args: CompareInfluenceArgs,
    @Ctx() ctx: RequestContext,
    @Info() info: GraphQLResolveInfo,
  ): Promise<InfluenceComparison> {
    return compareInfluence(args, (name) => ctx.index(name), { tokenScores: selectsPath(info, ["results", "hits", "tokenScores"]) });
  }

  @FieldResolver(() => TrainingSequence)
  sequence(@Root() hit: ComparedHit, @Ctx() ctx: RequestContext): Promise<TrainingSequence> {
    const index = ctx.index(hit.index);
    return index.sequences.atOrdinal(index.sequenceLoader, hit.ordinal);
  }
}
