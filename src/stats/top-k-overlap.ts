import { spearman } from "./correlation.js";

/** How much two ranked lists of ids agree. */
export interface TopKOverlap {
  /** Ids in both lists, in the first list's order. */
  common: string[];
  /** How many ids are common. */
  count: number;
  /** Jaccard index: common ids over ids in either list (0 when both are empty). */
  jaccard: number;
  /** Spearman correlation of the common ids' ranks in the two lists; null when fewer than 2 are common. */
  rankCorrelation: number | null;
}

/** Two top-k lists (best first, no id twice in a list) compared on their ids. */
export function topKOverlap(first: readonly string[], second: readonly string[]): TopKOverlap {
  const rankInSecond = new Map(second.map((id, rank) => [id, rank]));
  const common = first.filter((id) => rankInSecond.has(id));
  const union = first.length + second.length - common.length;
  return {
    common,
    count: common.length,
    jaccard: union === 0 ? 0 : common.length / union,
    // Ranks among the common ids: their order in the first list against their order in the second.
    rankCorrelation:
      common.length < 2
        ? null
        : spearman(
            common.map((_, i) => i),
            common.map((id) => rankInSecond.get(id) as number),
          ),
  };
}
