import { Args, Ctx, FieldResolver, Query, Resolver, Root, UseMiddleware } from "type-graphql";
import type { RequestContext } from "../server/context.js";
import { SCORE_SEQUENCES_COST } from "./costs.js";
import { mapErrors } from "./map-errors.js";
import { ComparedSequence, SequenceScores, SequenceScoresArgs } from "./score-sequences.js";
import { TrainingSequence } from "./sequence.js";

@Resolver(() => ComparedSequence)
@UseMiddleware(mapErrors)
export class ScoreSequencesResolver {
  @Query(() => SequenceScores, {
    complexity: ({ childComplexity }) => SCORE_SEQUENCES_COST + childComplexity,
    description: "Exact EK-FAC scores of texts or token sequences as if they were training sequences, beside an indexed sequence and its word-order variants.",
  })
  scoreSequences(@Args(() => SequenceScoresArgs) args: SequenceScoresArgs, @Ctx() ctx: RequestContext): Promise<SequenceScores> {
    return ctx.index(args.index).influence.scoreSequences(args);
  }

  @FieldResolver(() => TrainingSequence)
  sequence(@Root() compared: ComparedSequence, @Ctx() ctx: RequestContext): Promise<TrainingSequence> {
    const index = ctx.index(compared.index);
    return index.sequences.atOrdinal(index.sequenceLoader, compared.ordinal);
  }
}
