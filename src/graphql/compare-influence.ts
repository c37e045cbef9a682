import { ArgsType, Field, Float, ID, Int, ObjectType } from "type-graphql";
import type * as comparison from "../server/comparison-service.js";
import { free } from "./costs.js";
import { InfluenceHit, TOP_K_ARGUMENT, Timings } from "./influence.js";
import { QueryFields, QueryInfo } from "./query.js";

@ArgsType()
export class CompareInfluenceArgs extends QueryFields implements comparison.CompareArgs {
  @Field(() => [String], { description: "Names of the served indexes to ask (see `indexes`), at least 2, each once." })
  indexes!: string[];

  @Field(() => Int, TOP_K_ARGUMENT)
  topK?: number | null;
}

@ObjectType({ description: "A layer's part of an index's hits' influence." })
export class LayerShare implements comparison.LayerShare {
  @Field(() => Int)
  layer!: number;

  @Field(() => Float, { description: "The layer's part of the score, summed over the hits." })
  score!: number;

  @Field(() => Float, {
    description:
      "score over the sum of every layer's absolute score: the shares' absolute values sum to 1; negative for a layer that lowered the completion's probability.",
  })
  share!: number;
}

@ObjectType({ description: "A hit of one of the compared indexes." })
export class ComparedHit extends InfluenceHit implements comparison.ComparedHit {
  /** The hit's sequence as the comparison read it (not a field: `sequence` resolves it from the request's loader). */
  stored!: comparison.ComparedHit["stored"];

  @Field(() => Float, {
    description: "Share of the sequence's distinct tokens that occur in the query (prompt or completion, as this index's model tokenized it): 1 all, 0 none.",
  })
  tokenOverlap!: number;
}

@ObjectType({ description: "One index's answer to the compared query." })
export class IndexInfluence implements comparison.IndexInfluence {
  @Field(() => String, { description: "The index's name." })
  index!: string;

  @Field(() => QueryInfo, { complexity: free, description: "The query as this index's model saw it." })
  query!: QueryInfo;

  @Field(() => [ComparedHit], { description: "Most influential first: what `influence` with this index answers." })
  hits!: ComparedHit[];

  @Field(() => [LayerShare], { description: "Every layer of the index, in order: its share of the hits' influence." })
  layerShares!: LayerShare[];

  @Field(() => Float, { description: "Mean of the hits' tokenOverlap: lower for more abstract hits." })
  meanTokenOverlap!: number;

  @Field(() => Timings, { complexity: free })
  timings!: Timings;
}

@ObjectType({
  description:
    "Two indexes' top hits compared on their sequence ids. Indexes of different corpora may be compared: the overlap is still of ids (see idsMatch).",
})
export class HitOverlap implements comparison.PairOverlap {
  @Field(() => [String], { description: "The two indexes' names." })
  indexes!: [string, string];

  @Field(() => Boolean, {
    nullable: true,
    description:
      "Whether every id in common names the same sequence in both indexes (equal texts, or equal token ids where a corpus has no text); null when none is common. False: the corpora give one id to different sequences.",
  })
  idsMatch!: boolean | null;

  @Field(() => Int, { description: "Sequences in both top lists." })
  count!: number;

  @Field(() => Float, { description: "count over the sequences in either list (Jaccard index)." })
  jaccard!: number;

  @Field(() => [ID], { name: "ids", description: "Ids of the sequences in both lists, in the first index's order." })
  common!: string[];

  @Field(() => Float, {
    nullable: true,
    description: "Spearman correlation of the common sequences' ranks in the two lists (1: same order, -1: reversed); null when fewer than 2 are common.",
  })
  rankCorrelation!: number | null;
}

@ObjectType({ description: "The same query asked of several indexes, their hits side by side." })
export class InfluenceComparison implements comparison.InfluenceComparison {
  @Field(() => [IndexInfluence], { description: "One per compared index, in the order asked." })
  results!: IndexInfluence[];

  @Field(() => [HitOverlap], { description: "One per pair of compared indexes (first with second, first with third, ..., second with third, ...)." })
  overlaps!: HitOverlap[];
}
