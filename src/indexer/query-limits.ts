/**
 * What one query may ask of an index, and what it gets when it does not say. The one place these
 * numbers live: the search and the engine use them, the argument checks of both edges (GraphQL and
 * CLI, engine/query-validation.ts) enforce them, and the CLI's help and the GraphQL schema's
 * descriptions quote them. (Here, not in engine/, because the HNSW search's ef is among them.)
 */

/** Hits a query returns. */
export const TOP_K = { min: 1, max: 1000, default: 10 } as const;

/** Candidates taken from the vector search, to be re-scored by the sketch or exactly: topK to max. */
export const CANDIDATES = { max: 10_000 } as const;

/**
 * Without `candidates`: with a sketch, enough that the exact top k are nearly all among them (the
 * sketch re-scores a candidate for one inner product); without one, enough that exact re-ranking
 * finds the exact top k (see README, "Faithful scores").
 */
export function defaultCandidates(topK: number, sketched: boolean): number {
  return sketched ? Math.max(100 * topK, 1000) : Math.max(4 * topK, 100);
}

/**
 * Candidates re-scored by the whole sketch after a first pass over all of them by its leading rows
 * (projection/sketch.ts, coarseSketch): the first pass's best. On the demo, the whole sketch over
 * the first pass's best 100 answers as well as over all 1,000 (docs/research/index-faithfulness.md,
 * section 8).
 */
export function sketchRefinedCount(topK: number): number {
  return Math.max(10 * topK, 100);
}

/** How the default reads in help texts and descriptions. */
export const DEFAULT_CANDIDATES_TEXT = "max(100 x topK, 1000) on an index with a sketch, else max(4 x topK, 100)";

/**
 * Candidates re-scored exactly when re-ranking an index with a sketch: the sketch's best, where
 * the exact top k are (an exact score costs a forward and backward pass; without a sketch, every
 * candidate is re-scored).
 */
export function exactRerankCount(topK: number): number {
  return Math.max(3 * topK, 30);
}

/**
 * Sequences one `scoreSequences` request may give to be scored as training sequences (each costs a
 * forward and backward pass); an indexed sequence's word-order variants come on top of these.
 */
export const SCORED_SEQUENCES = { max: 16 } as const;

/**
 * Tokens of a sequence scored as a training sequence: at least 2, since a sequence's first token
 * predicts its second and a single token predicts nothing (its score would be 0); at most the
 * model's context.
 */
export const SEQUENCE_TOKENS = { min: 2 } as const;

/** Histogram bins of a score distribution. */
export const BINS = { min: 1, max: 200, default: 40 } as const;

/** Positive scores a distribution returns, largest first, for log-log plots. */
export const DISTRIBUTION_TOP_SCORES = 2000;

/** ef of HNSW searches unless set otherwise (at least k is used). */
export const DEFAULT_EF = 200;

/** "1 to 1000": a range as help texts and descriptions write it. */
export function rangeText(bounds: { min: number; max: number }): string {
  return `${bounds.min} to ${bounds.max}`;
}
