/**
 * The linear datamodeling score (LDS; Park et al. 2023, TRAK): how well summed influence scores
 * predict the loss a model retrained on a subset of its data gets on a query.
 */
import { hashSeed, uniformGenerator } from "../util/random.js";
import { spearman } from "./correlation.js";

/**
 * Per query, Spearman's correlation across subsets between the subset's summed scores and minus
 * the measured query loss. Scores are signed so that a positive one lowers the query's loss: a
 * perfect predictor ranks the subsets by summed score as their losses rank in reverse (LDS 1).
 * `summedScores` and `losses` are [query][subset]. NaN for a query whose scores or losses are
 * equal across all subsets (no ranking to compare).
 */
export function ldsPerQuery(summedScores: readonly (readonly number[])[], losses: readonly (readonly number[])[]): number[] {
  if (summedScores.length !== losses.length) throw new Error(`ldsPerQuery: ${summedScores.length} queries of scores, ${losses.length} of losses`);
  return summedScores.map((scores, q) =>
    spearman(
      scores,
      losses[q].map((loss) => -loss),
    ),
  );
}

export interface MeanInterval {
  mean: number;
  /** Percentile bootstrap interval of the mean. */
  low: number;
  high: number;
}

/**
 * The mean of `values` with a percentile bootstrap interval at `level`: `resamples` resamplings
 * with replacement (seeded, so the interval is reproducible). Non-finite values are left out.
 */
export function bootstrapMean(values: readonly number[], { level = 0.95, resamples = 10_000, seed = 0 } = {}): MeanInterval {
  const xs = values.filter(Number.isFinite);
  if (xs.length === 0) return { mean: Number.NaN, low: Number.NaN, high: Number.NaN };
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const uniform = uniformGenerator(hashSeed(seed, xs.length));
  const means = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let sum = 0;
    for (let i = 0; i < xs.length; i++) sum += xs[Math.floor(uniform() * xs.length)];
    means[r] = sum / xs.length;
  }
  means.sort();
  const at = (p: number) => means[Math.min(resamples - 1, Math.max(0, Math.round(p * (resamples - 1))))];
  return { mean, low: at((1 - level) / 2), high: at((1 + level) / 2) };
}
