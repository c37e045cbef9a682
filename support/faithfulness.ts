/**
 * How faithful a setting's approximate influence scores are to exact EK-FAC scores: per query,
 * and over queries (the measures of scripts/bench/faithfulness.ts). Exact scores are given for
 * every indexed sequence, indexed by ordinal; a setting gives scores to the sequences it scored
 * (its candidates, or all of them).
 */
import { spearman } from "../src/stats/correlation.js";
import { topKOverlap } from "../src/stats/top-k-overlap.js";
import { median } from "./percentile.js";

/** A setting's scores for one query: ordinal -> score, for every sequence it gave a score to. */
export type ScoredSequences = ReadonlyMap<number, number>;

export interface QueryFaithfulness {
  /** Sequences of the setting's top k that are in the exact top k. */
  overlap: number;
  /** Spearman of the setting's against the exact scores over every indexed sequence; null unless it scored them all. */
  spearman: number | null;
  /** Median over the exact top k of approximate / exact score; a sequence the setting did not score counts as 0. */
  ratio: number;
}

/** The k best ordinals by score, best first; equal scores by ascending ordinal. */
export function topOrdinals(scores: Iterable<readonly [number, number]>, k: number): number[] {
  return [...scores]
    .sort((x, y) => y[1] - x[1] || x[0] - y[0])
    .slice(0, k)
    .map(([ordinal]) => ordinal);
}

/** One query's faithfulness of `approx` to `exact` (scores of ordinals 0..n-1) at top k. */
export function queryFaithfulness(exact: ArrayLike<number>, approx: ScoredSequences, k: number): QueryFaithfulness {
  const n = exact.length;
  if (!(Number.isInteger(k) && k >= 1 && k <= n)) throw new Error(`top k must be an integer from 1 to the ${n} sequences, got ${k}`);
  for (const ordinal of approx.keys()) {
    if (!(Number.isInteger(ordinal) && ordinal >= 0 && ordinal < n)) throw new Error(`a score for ordinal ${ordinal}, outside the ${n} sequences 0..${n - 1}`);
  }
  const exactTop = topOrdinals(
    Array.from({ length: n }, (_, o) => [o, exact[o]] as const),
    k,
  );
  const approxTop = topOrdinals(approx, k);
  const ratios = exactTop.map((o) => {
    if (!(exact[o] > 0)) throw new Error(`the exact score of sequence ${o}, in the exact top ${k}, is ${exact[o]}: a ratio to it needs a positive score`);
    return (approx.get(o) ?? 0) / exact[o];
  });
  return {
    overlap: topKOverlap(approxTop.map(String), exactTop.map(String)).count,
    spearman:
      approx.size === n
        ? spearman(
            Array.from({ length: n }, (_, o) => approx.get(o) as number),
            exact,
          )
        : null,
    ratio: median(ratios),
  };
}

/** Faithfulness over queries. */
export interface Faithfulness {
  overlap: { mean: number; min: number };
  /** null when some query has no Spearman (the setting did not score every sequence). */
  spearman: { median: number; min: number } | null;
  ratio: { median: number; min: number; max: number };
}

export function aggregateFaithfulness(perQuery: readonly QueryFaithfulness[]): Faithfulness {
  if (perQuery.length === 0) throw new Error("faithfulness of no queries");
  const overlaps = perQuery.map((q) => q.overlap);
  const ratios = perQuery.map((q) => q.ratio);
  const spearmans = perQuery.map((q) => q.spearman);
  return {
    overlap: { mean: overlaps.reduce((a, b) => a + b, 0) / overlaps.length, min: Math.min(...overlaps) },
    spearman: spearmans.every((s) => s !== null) ? { median: median(spearmans as number[]), min: Math.min(...(spearmans as number[])) } : null,
    ratio: { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) },
  };
}
