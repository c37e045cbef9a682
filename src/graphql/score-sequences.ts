import { ArgsType, Field, Float, ID, Int, ObjectType, registerEnumType } from "type-graphql";
import type * as engine from "../engine/types.js";
import type { SequenceScoresArgs as ServiceSequenceScoresArgs } from "../engine/query-validation.js";
import { SCORED_SEQUENCES, SEQUENCE_TOKENS } from "../indexer/query-limits.js";
import { free } from "./costs.js";
import { LayerScore, TokenScore } from "./influence.js";
import { QueryInfo, QueryInputArgs } from "./query.js";

/** GraphQL enum values for the engine's kinds ("sentences-swapped" is SENTENCES_SWAPPED). */
export enum SequenceKind {
  GIVEN = "given",
  SENTENCES_SWAPPED = "sentences-swapped",
  HALVES_SWAPPED = "halves-swapped",
  PARTS_SWAPPED = "parts-swapped",
  BEFORE_REMOVED = "before-removed",
  AFTER_REMOVED = "after-removed",
}

registerEnumType(SequenceKind, {
  name: "SequenceKind",
  description: "Where a scored sequence comes from: given in the request, or a word-order variant of the compared sequence (rules in the README).",
  valuesConfig: {
    GIVEN: { description: "One of the request's sequences or sequenceTokens." },
    SENTENCES_SWAPPED: { description: "The sentences (ending in . ! or ?) in reverse order." },
    HALVES_SWAPPED: { description: "The two halves swapped, split at the word start nearest the middle." },
    PARTS_SWAPPED: { description: "The part from the completion-related words on, moved before the part before them." },
    BEFORE_REMOVED: { description: "The part before the completion-related words removed." },
    AFTER_REMOVED: { description: "The part after the completion-related words removed." },
  },
});

@ArgsType()
export class SequenceScoresArgs extends QueryInputArgs implements ServiceSequenceScoresArgs {
  @Field(() => [String], {
    nullable: true,
    description: `Texts to score as if they were training sequences, at most ${SCORED_SEQUENCES.max}, each ${SEQUENCE_TOKENS.min} tokens to the model's context.`,
  })
  sequences?: string[] | null;

  @Field(() => [[Int]], { nullable: true, description: "The sequences as token ids (instead of sequences)." })
  sequenceTokens?: number[][] | null;

  @Field(() => ID, { nullable: true, description: "Id of an indexed sequence to score beside them; each scored sequence then has its change against it." })
  compareWith?: string | null;

  @Field(() => Boolean, {
    nullable: true,
    defaultValue: false,
    description: "Also score compareWith's word-order variants (sentences or halves swapped, parts before or after the completion-related words removed).",
  })
  variants?: boolean | null;
}

@ObjectType({ description: "A token sequence scored as if it were a training sequence." })
export class ScoredSequence implements engine.ScoredSequence {
  @Field(() => SequenceKind)
  kind!: engine.SequenceKind;

  @Field(() => [Int])
  tokens!: number[];

  @Field(() => String, { description: "The tokens decoded." })
  text!: string;

  @Field(() => Float, { description: "Exact EK-FAC influence, as if the model had been trained on this sequence." })
  score!: number;

  @Field(() => Float, { nullable: true, description: "score minus the compared sequence's score (null without compareWith)." })
  change?: number;

  @Field(() => [LayerScore])
  layerScores!: LayerScore[];

  @Field(() => [TokenScore], { description: "The score split by token; the token scores sum to the score." })
  tokenScores!: TokenScore[];
}

@ObjectType({ description: "The compared indexed sequence's exact score." })
export class ComparedSequence implements engine.ExactScore {
  @Field(() => Int, { description: "Position of the sequence in the corpus." })
  ordinal!: number;

  @Field(() => Float)
  score!: number;

  @Field(() => [LayerScore])
  layerScores!: LayerScore[];

  @Field(() => [TokenScore])
  tokenScores?: TokenScore[];

  /** The index that answered, whose database holds the sequence (not a field). */
  index!: string;
}

@ObjectType()
export class SequenceScoresTimings {
  @Field(() => Float)
  totalMs!: number;
}

@ObjectType()
export class SequenceScores implements engine.SequenceScoresResult {
  @Field(() => QueryInfo, { complexity: free })
  query!: QueryInfo;

  @Field(() => ComparedSequence, { nullable: true, description: "Present when compareWith was given." })
  original?: ComparedSequence;

  @Field(() => [ScoredSequence], { description: "The given sequences in order, then the variants." })
  sequences!: ScoredSequence[];

  @Field(() => SequenceScoresTimings, { complexity: free })
  timings!: SequenceScoresTimings;
}
