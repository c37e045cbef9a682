/**
 * The two stages of an influence query meet here: the vector search's candidates (projected
 * scores) and the exact EK-FAC scores of some of them become the ranked hits. Pure functions, so
 * the in-process engine and the server's worker pool (which spreads exact scoring over its
 * workers) rank the same way.
 */
import { defaultCandidates, exactRerankCount } from "../indexer/query-limits.js";
import type { Candidate, ExactScore, InfluenceEngine, InfluenceHit, InfluenceRequest, InfluenceResult, LayerScore } from "./types.js";

/** Candidates to search for: the request's, or the default for its topK and the index's tiers. */
export function candidateCount(request: Pick<InfluenceRequest, "topK" | "candidates">, sketched: boolean): number {
  return request.candidates ?? defaultCandidates(request.topK, sketched);
}

/** The candidates re-ranking scores exactly: the sketch's best exactRerankCount, or all of the first tier's. */
function reranked(topK: number, candidates: readonly Candidate[]): readonly Candidate[] {
  return candidates[0]?.tier === "sketch" ? candidates.slice(0, exactRerankCount(topK)) : candidates;
}

/**
 * The candidates rankHits reads for this request, best first: those re-ranking scores, else the
 * top k. A worker sends only these to the server: the default query's 1,000 candidates cost half a
 * millisecond to clone across threads, its 10 hits a fortieth of that.
 */
export function candidatesRanked(request: Pick<InfluenceRequest, "topK" | "rerank">, candidates: readonly Candidate[]): readonly Candidate[] {
  return request.rerank ? reranked(request.topK, candidates) : candidates.slice(0, request.topK);
}

/**
 * Which candidates need exact scores: those re-ranking scores; without re-ranking, the top k when
 * token scores are asked for; none otherwise. `candidates` are best first by the index's score.
 */
export function ordinalsToScore(request: Pick<InfluenceRequest, "topK" | "rerank" | "tokenScores">, candidates: readonly Candidate[]): number[] {
  if (request.rerank) return reranked(request.topK, candidates).map((c) => c.ordinal);
  return request.tokenScores ? candidates.slice(0, request.topK).map((c) => c.ordinal) : [];
}

/** The top-k hits: by exact score when re-ranking, else by the index's score; `exact` has an entry for every ordinalsToScore. */
export function rankHits(
  request: Pick<InfluenceRequest, "topK" | "rerank" | "tokenScores">,
  candidates: readonly Candidate[],
  exact: readonly ExactScore[],
): InfluenceHit[] {
  const byOrdinal = new Map(exact.map((e) => [e.ordinal, e]));
  const exactOf = (ordinal: number): ExactScore => {
    const e = byOrdinal.get(ordinal);
    if (!e) throw new Error(`no exact score for sequence ${ordinal}`);
    return e;
  };
  const layerScoresOf = (c: Candidate): LayerScore[] => {
    if (!c.approxLayerScores) throw new Error(`no layer scores for candidate ${c.ordinal}`);
    return c.approxLayerScores;
  };
  const tokenScores = (e: ExactScore) => (e.tokenScores ? { tokenScores: e.tokenScores } : {});
  if (request.rerank) {
    return reranked(request.topK, candidates)
      .map((c) => ({ c, e: exactOf(c.ordinal) }))
      .sort((x, y) => y.e.score - x.e.score)
      .slice(0, request.topK)
      .map(({ c, e }, i) => ({
        rank: i + 1,
        ordinal: c.ordinal,
        score: e.score,
        scoredBy: "exact" as const,
        approxScore: c.approxScore,
        layerScores: e.layerScores,
        ...tokenScores(e),
      }));
  }
  return candidates.slice(0, request.topK).map((c, i) => ({
    rank: i + 1,
    ordinal: c.ordinal,
    score: c.approxScore,
    scoredBy: c.tier,
    approxScore: c.approxScore,
    layerScores: layerScoresOf(c),
    ...(request.tokenScores ? tokenScores(exactOf(c.ordinal)) : {}),
  }));
}

/** A query through an engine's two stages called apart (as the worker pool runs them), ranked and timed. */
export async function stagedInfluence(stages: Pick<InfluenceEngine, "candidates" | "exactScores">, request: InfluenceRequest): Promise<InfluenceResult> {
  const t0 = performance.now();
  const found = await stages.candidates(request);
  const t1 = performance.now();
  const hits = rankHits(request, found.candidates, await stages.exactScores(request, ordinalsToScore(request, found.candidates)));
  const t2 = performance.now();
  return { query: found.query, hits, timings: { gradientMs: found.gradientMs, searchMs: found.searchMs, rerankMs: t2 - t1, totalMs: t2 - t0 } };
}
