import { ArgsType, Field, Float, Int, ObjectType } from "type-graphql";
import type * as engine from "../engine/types.js";
import type { DistributionArgs as ServiceDistributionArgs } from "../engine/query-validation.js";
import { BINS, rangeText } from "../indexer/query-limits.js";
import { free } from "./costs.js";
import { QueryInfo, QueryInputArgs } from "./query.js";

@ArgsType()
export class DistributionArgs extends QueryInputArgs implements ServiceDistributionArgs {
  @Field(() => Int, { nullable: true, defaultValue: BINS.default, description: `Histogram bins over the score range, ${rangeText(BINS)}.` })
  bins?: number | null;
}

@ObjectType()
export class HistogramBin implements engine.HistogramBin {
  @Field(() => Float)
  lower!: number;

  @Field(() => Float)
  upper!: number;

  @Field(() => Int)
  count!: number;
}

@ObjectType({ description: "Power law fitted to the tail of the positive scores: CDF(x) = 1 - (x / xMin)^-alpha for x >= xMin." })
export class PowerLawFit implements engine.PowerLawFit {
  @Field(() => Float)
  alpha!: number;

  @Field(() => Float)
  xMin!: number;

  @Field(() => Float, { description: "Kolmogorov-Smirnov distance between the fitted and the empirical tail." })
  ksDistance!: number;

  @Field(() => Int, { description: "Scores at or above xMin." })
  tailCount!: number;
}

@ObjectType({
  description:
    "How influence on the completion is spread over the whole corpus (the index's scores of every sequence: its sketch's, unbiased, where it has one).",
})
export class InfluenceDistribution implements engine.DistributionResult {
  @Field(() => QueryInfo, { complexity: free })
  query!: QueryInfo;

  @Field(() => Int, { description: "Sequences scored: every indexed sequence." })
  count!: number;

  @Field(() => [HistogramBin])
  histogram!: HistogramBin[];

  @Field(() => [Float], { description: "Positive scores, largest first, at most 2000 (for log-log plots)." })
  topScores!: number[];

  @Field(() => PowerLawFit, { nullable: true, description: "null when fewer than 10 scores are positive." })
  powerLaw!: PowerLawFit | null;

  @Field(() => Float, { description: "Share of the total positive influence carried by the top 1% of sequences." })
  topPercentShare!: number;
}
