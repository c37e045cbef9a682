/** Summaries of a query's answer that the charts draw. */
import type { Hit, PowerLaw } from "./queries.ts";

/** Each layer's total influence over the hits (the sum of their per-layer scores), in layer order. */
export function layerTotals(hits: readonly Hit[]): Array<{ layer: number; score: number }> {
  const totals = new Map<number, number>();
  for (const hit of hits) for (const { layer, score } of hit.layerScores) totals.set(layer, (totals.get(layer) ?? 0) + score);
  return [...totals].sort((a, b) => a[0] - b[0]).map(([layer, score]) => ({ layer, score }));
}

/**
 * The fitted tail as (score, rank) points: of the `tailCount` scores at or above xMin, a power law
 * with survival function (x / xMin)^-alpha expects tailCount * (x / xMin)^-alpha at or above x.
 * A straight line on log-log axes, so its two ends suffice.
 */
export function fittedRanks(fit: PowerLaw, maxScore: number): Array<[number, number]> {
  const rankAt = (x: number) => fit.tailCount * (x / fit.xMin) ** -fit.alpha;
  const end = Math.max(maxScore, fit.xMin);
  return [
    [fit.xMin, rankAt(fit.xMin)],
    [end, rankAt(end)],
  ];
}
