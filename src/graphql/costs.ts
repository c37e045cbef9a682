/**
 * The query cost model, checked before execution (graphql-query-complexity): every field costs 1
 * plus what it selects, unless given a `complexity` here. Engine calls dominate; lists multiply
 * their items' cost by their requested length.
 */
import type { ComplexityEstimator } from "graphql-query-complexity";

/** One influence search: a query gradient, an index search and exact re-scoring. */
export const INFLUENCE_COST = 2000;
/** Scores up to SCORED_SEQUENCES.max sequences and the variants of one, a training-gradient pass each. */
export const SCORE_SEQUENCES_COST = 500;
/** Scores every indexed sequence. */
export const DISTRIBUTION_COST = 4000;
/** Per hit: a training-gradient pass over the hit's sequence. */
export const TOKEN_SCORES_COST = 5;

/** A field whose result is computed anyway (query echo, timings): selecting it adds nothing. */
export const free: ComplexityEstimator = () => 0;

/** A list of `sizeArg` items (its default when absent), each costing what it selects. */
export function listOf(sizeArg: string, defaultSize: number, base = 1): ComplexityEstimator {
  return ({ args, childComplexity }) => base + (typeof args[sizeArg] === "number" ? args[sizeArg] : defaultSize) * childComplexity;
}
