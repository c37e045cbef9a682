import type { Sequence } from "../db/index.js";
import type { QueryArgs } from "../engine/query-validation.js";
import type { InfluenceHit, InfluenceResult, LayerScore } from "../engine/types.js";
import { tokenOverlap } from "../stats/token-overlap.js";
import { type TopKOverlap, topKOverlap } from "../stats/top-k-overlap.js";
import { InputError } from "../util/errors.js";
import type { IndexContext } from "./context.js";
import { ServerError, toServerError } from "./errors.js";
import type { OfIndex } from "./of-index.js";

export interface CompareArgs extends QueryArgs {
  /** Names of the served indexes to compare, at least two, each once. */
  indexes: string[];
  topK?: number | null;
}

/** A layer's part of the hits' influence. */
export interface LayerShare extends LayerScore {
  /** The layer's score over the sum of the layers' absolute scores: the shares' absolute values sum to 1. */
  share: number;
}

export type ComparedHit = OfIndex<InfluenceHit> & {
  /** The hit's sequence as this index's corpus holds it. */
  stored: Pick<Sequence, "externalId" | "text"> & { tokenIds: number[] };
  tokenOverlap: number;
};

/** One index's answer to the compared query. */
export interface IndexInfluence extends Omit<InfluenceResult, "hits"> {
  index: string;
  hits: ComparedHit[];
  /** Every layer of the answer, in order: its summed score over the hits and its share. */
  layerShares: LayerShare[];
  /** Mean of the hits' token overlap with the query. */
  meanTokenOverlap: number;
}

/** The top hits of two indexes compared on their sequence ids. */
export interface PairOverlap extends TopKOverlap {
  indexes: [string, string];
  /**
   * Whether every common id names the same sequence in both indexes (equal texts, or equal token ids
   * where either corpus has no text); null when no id is common. False for corpora that give one id
   * to different sequences: the overlap is of ids all the same.
   */
  idsMatch: boolean | null;
}

export interface InfluenceComparison {
  results: IndexInfluence[];
  /** One per pair of compared indexes, in the order they were asked for. */
  overlaps: PairOverlap[];
}

/**
 * The same query asked of several indexes (each on its own engine and database, all at once), their
 * hits side by side: the overlap of their top-k on sequence ids, each one's influence by layer, and
 * how many of each hit's tokens the query shares (the paper's measure of abstraction).
 */
export async function compareInfluence(
  args: CompareArgs,
  open: (name: string) => IndexContext,
  options: { tokenScores: boolean },
): Promise<InfluenceComparison> {
  const { indexes: names, ...query } = args;
  if (names.length < 2) throw new InputError(`indexes: compare at least 2 indexes, got ${names.length}`);
  const twice = names.find((name, i) => names.indexOf(name) !== i);
  if (twice !== undefined) throw new InputError(`indexes: ${JSON.stringify(twice)} is named twice`);
  const indexes = names.map(open);
  const results = await Promise.all(indexes.map((index) => answer(index, query, options.tokenScores)));
  const overlaps: PairOverlap[] = [];
  for (let a = 0; a < results.length; a++) {
    for (let b = a + 1; b < results.length; b++) overlaps.push(pairOverlap(results[a], results[b]));
  }
  return { results, overlaps };
}

function pairOverlap(first: IndexInfluence, second: IndexInfluence): PairOverlap {
  const ids = (r: IndexInfluence) => r.hits.map((hit) => hit.stored.externalId);
  const overlap = topKOverlap(ids(first), ids(second));
  const byId = (r: IndexInfluence) => new Map(r.hits.map((hit) => [hit.stored.externalId, hit.stored]));
  const [inFirst, inSecond] = [byId(first), byId(second)];
  const same = overlap.common.map((id) => sameSequence(inFirst.get(id)!, inSecond.get(id)!));
  return { indexes: [first.index, second.index], idsMatch: same.length === 0 ? null : same.every(Boolean), ...overlap };
}

/** Equal texts, or equal token ids where either has no text (tokenizers may differ, texts do not). */
function sameSequence(a: ComparedHit["stored"], b: ComparedHit["stored"]): boolean {
  return a.text !== null && b.text !== null ? a.text === b.text : a.tokenIds.join() === b.tokenIds.join();
}

/** One index's hits with their sequences' ids and token overlaps; its errors name it. */
async function answer(index: IndexContext, query: Omit<CompareArgs, "indexes">, tokenScores: boolean): Promise<IndexInfluence> {
  try {
    const result = await index.influence.influence(query, { tokenScores, sequences: index.sequenceLoader });
    const queryTokens = [...result.query.promptTokens, ...result.query.completionTokens];
    const hits = await Promise.all(
      result.hits.map(async (hit) => {
        const [{ externalId, text }, tokenIds] = await Promise.all([
          index.sequences.atOrdinal(index.sequenceLoader, hit.ordinal),
          index.sequences.tokenIds(index.tokenLoader, hit.ordinal),
        ]);
        return { ...hit, stored: { externalId, text, tokenIds }, tokenOverlap: tokenOverlap(tokenIds, queryTokens) };
      }),
    );
    const meanTokenOverlap = hits.reduce((sum, hit) => sum + hit.tokenOverlap, 0) / hits.length;
    return { ...result, index: index.name, hits, layerShares: layerShares(hits), meanTokenOverlap };
  } catch (err) {
    const error = toServerError(err);
    throw new ServerError(error.code, `index ${JSON.stringify(index.name)}: ${error.message}`, { cause: err });
  }
}

/** Each layer's score summed over the hits, and its share of the layers' absolute sums (0 when all are 0). */
export function layerShares(hits: readonly Pick<InfluenceHit, "layerScores">[]): LayerShare[] {
  const sums = new Map<number, number>();
  for (const hit of hits) for (const { layer, score } of hit.layerScores) sums.set(layer, (sums.get(layer) ?? 0) + score);
  const total = [...sums.values()].reduce((sum, score) => sum + Math.abs(score), 0);
  return [...sums].sort((a, b) => a[0] - b[0]).map(([layer, score]) => ({ layer, score, share: total === 0 ? 0 : score / total }));
}
