/**
 * A query's candidates ranked by the index's sketch in two passes: every candidate by the sketch's
 * coarse part (the leading quarter of each block's rows, projection/sketch.ts), a quarter of the
 * bytes, then the best of them by the whole sketch: they read a third of the bytes of one pass and
 * answer as well (docs/research/index-faithfulness.md, section 8).
 */
import { type RowQuery, rangesQuery, scoreRows } from "../indexer/row-scores.js";
import type { CoarseSketch } from "../projection/sketch.js";

export interface SketchScore {
  ordinal: number;
  score: number;
}

/** `ordinals` with their `scores`, best first (ties: in the order given). */
export const byScore = (ordinals: readonly number[], scores: Float32Array): SketchScore[] =>
  ordinals.map((ordinal, i) => ({ ordinal, score: scores[i] })).sort((a, b) => b.score - a.score);

/**
 * The candidates `ordinals`, best first: the best `refined` of the first pass with the whole
 * sketch's scores, then the rest with the first pass's (both unbiased estimates of the exact
 * scores; the first pass's noisier). With at most `refined` candidates, or no coarse sketch (a
 * small sketch is its own), all by the whole sketch in one pass.
 */
export function rankBySketch(query: RowQuery, coarse: CoarseSketch | undefined, ordinals: readonly number[], refined: number): SketchScore[] {
  if (!coarse || ordinals.length <= refined) return byScore(ordinals, scoreRows(query, ordinals));
  const first = byScore(ordinals, scoreRows(rangesQuery(query, coarse.ranges, coarse.scales, true), ordinals));
  const best = first.slice(0, refined).map((c) => c.ordinal);
  return [...byScore(best, scoreRows(query, best)), ...first.slice(refined)];
}
