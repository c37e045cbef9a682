import { ArgsType, Field, Float, Int, ObjectType, registerEnumType } from "type-graphql";
import type * as engine from "../engine/types.js";
import type { InfluenceArgs as ServiceInfluenceArgs } from "../engine/query-validation.js";
import { CANDIDATES, DEFAULT_CANDIDATES_TEXT, TOP_K, rangeText } from "../indexer/query-limits.js";
import { free, TOKEN_SCORES_COST } from "./costs.js";
import { QueryInfo, QueryInputArgs } from "./query.js";

/** The `topK` argument of `influence` and `compareInfluence`. */
export const TOP_K_ARGUMENT = { nullable: true, defaultValue: TOP_K.default, description: `Hits to return, ${rangeText(TOP_K)}.` } as const;

@ArgsType()
export class InfluenceArgs extends QueryInputArgs implements ServiceInfluenceArgs {
  @Field(() => Int, TOP_K_ARGUMENT)
  topK?: number | null;

  @Field(() => String, {
    nullable: true,
    description: 'Only sequences containing this token: one token of text (mind the leading space, e.g. " the") or "#<token id>".',
  })
  containsToken?: string | null;

  @Field(() => Int, {
    nullable: true,
    description: `Candidates taken from the vector search, re-scored by the index's sketch (and, with rerank, exactly), topK to ${CANDIDATES.max} (default ${DEFAULT_CANDIDATES_TEXT}).`,
  })
  candidates?: number | null;

  @Field(() => Boolean, {
    nullable: true,
    defaultValue: false,
    description:
      "Re-score the best candidates exactly with EK-FAC (a forward and backward pass each: the sketch's best max(3 x topK, 30), or every candidate of an index without a sketch); otherwise scores come from the index alone.",
  })
  rerank?: boolean | null;
}

@ObjectType({ description: "Milliseconds spent per step." })
export class Timings {
  @Field(() => Float)
  gradientMs!: number;

  @Field(() => Float)
  searchMs!: number;

  @Field(() => Float)
  rerankMs!: number;

  @Field(() => Float)
  totalMs!: number;
}

@ObjectType()
export class LayerScore implements engine.LayerScore {
  @Field(() => Int)
  layer!: number;

  @Field(() => Float)
  score!: number;
}

@ObjectType({ description: "Influence carried by one token of a training sequence." })
export class TokenScore implements engine.TokenScore {
  @Field(() => Int, { description: "Position in the training sequence; it carries the update that predicts the next token." })
  position!: number;

  @Field(() => Int)
  tokenId!: number;

  @Field(() => String)
  text!: string;

  @Field(() => Float)
  score!: number;
}

/** GraphQL enum values for the engine's score tiers ("exact" is EXACT). */
export enum ScoreTier {
  EXACT = "exact",
  SKETCH = "sketch",
  PROJECTED = "projected",
}

registerEnumType(ScoreTier, {
  name: "ScoreTier",
  description: "What scored a hit.",
  valuesConfig: {
    EXACT: { description: "Exact EK-FAC influence, from the sequence's own gradient (re-ranking; about a forward and backward pass per candidate)." },
    SKETCH: {
      description:
        "The inner product of the index's sketches, its second tier: unbiased random projections of the whitened gradients, on the exact scores' scale (the default; approximate).",
    },
    PROJECTED: { description: "The inner product of the index's projected, whitened vectors (an index without a sketch; the search alone; fast, biased low)." },
  },
});

@ObjectType({ description: "A training sequence and how much it influenced the completion." })
export class InfluenceHit implements engine.InfluenceHit {
  @Field(() => Int, { description: "1 for the most influential." })
  rank!: number;

  @Field(() => Int, { description: "Position of the sequence in the corpus." })
  ordinal!: number;

  @Field(() => Float, { description: "Exact EK-FAC influence when re-ranked, else equal to approxScore: scoredBy says which." })
  score!: number;

  @Field(() => ScoreTier, { description: "Which tier computed score." })
  scoredBy!: engine.ScoreTier;

  @Field(() => Float, { description: "The index's own score: its sketch's inner product, or its projected vectors' in an index without a sketch." })
  approxScore!: number;

  @Field(() => [LayerScore], { description: "The score split by transformer block." })
  layerScores!: LayerScore[];

  @Field(() => [TokenScore], {
    complexity: ({ childComplexity }) => TOKEN_SCORES_COST + childComplexity,
    description: "The score split by token of the training sequence. Computed only when selected (a training-gradient pass per hit).",
  })
  tokenScores?: TokenScore[];

  /** The index that answered, whose database holds the hit's sequence (not a field). */
  index!: string;
}

@ObjectType()
export class InfluenceResult implements engine.InfluenceResult {
  @Field(() => QueryInfo, { complexity: free })
  query!: QueryInfo;

  @Field(() => [InfluenceHit], { description: "Most influential first." })
  hits!: InfluenceHit[];

  @Field(() => Timings, { complexity: free })
  timings!: Timings;
}
