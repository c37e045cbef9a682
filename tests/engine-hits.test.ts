import { describe, expect, it } from "vitest";
import { candidateCount, candidatesRanked, ordinalsToScore, rankHits } from "../src/engine/hits.js";
import type { Candidate, ExactScore } from "../src/engine/types.js";

// Candidates best first by projected score; exact scores in another order, from a seeded generator.
let state = 7;
const next = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
const candidates: Candidate[] = Array.from({ length: 40 }, (_, i) => ({
  ordinal: 1000 + i * 3,
  approxScore: 40 - i,
  tier: "projected",
  approxLayerScores: [{ layer: 0, score: 40 - i }],
}));
// The same, as an index with a sketch gives them: layer scores only for the top k.
const sketched: Candidate[] = candidates.map((c, i) => ({
  ordinal: c.ordinal,
  approxScore: c.approxScore,
  tier: "sketch",
  ...(i < 5 ? { approxLayerScores: c.approxLayerScores } : {}),
}));
const exactScores: ExactScore[] = candidates.map((c) => {
  const score = next() - 0.5;
  return { ordinal: c.ordinal, score, layerScores: [{ layer: 0, score }], tokenScores: [{ position: 0, tokenId: 1, text: "a", score }] };
});
const exact = new Map(exactScores.map((e) => [e.ordinal, e]));

describe("ranking the two stages of a query", () => {
  it("searches for max(4 topK, 100) candidates unless told, max(100 topK, 1000) with a sketch to re-score them", () => {
    expect(candidateCount({ topK: 10 }, false)).toBe(100);
    expect(candidateCount({ topK: 30 }, false)).toBe(120);
    expect(candidateCount({ topK: 10, candidates: 12 }, false)).toBe(12);
    expect(candidateCount({ topK: 5 }, true)).toBe(1000);
    expect(candidateCount({ topK: 20 }, true)).toBe(2000);
    expect(candidateCount({ topK: 10, candidates: 12 }, true)).toBe(12);
  });

  it("re-ranks only the sketch's best max(3 topK, 30) exactly, and ranks by exact score among them", () => {
    expect(ordinalsToScore({ topK: 5, rerank: true, tokenScores: false }, sketched)).toEqual(sketched.slice(0, 30).map((c) => c.ordinal));
    expect(ordinalsToScore({ topK: 12, rerank: true, tokenScores: false }, sketched)).toEqual(sketched.slice(0, 36).map((c) => c.ordinal));
    const hits = rankHits({ topK: 5, rerank: true, tokenScores: false }, sketched, exactScores.slice(0, 30));
    const best = exactScores
      .slice(0, 30)
      .sort((a, b) => b.score - a.score)
      .slice(0, 5);
    expect(hits.map((h) => h.ordinal)).toEqual(best.map((e) => e.ordinal));
    expect(hits.every((h) => h.scoredBy === "exact")).toBe(true);
  });

  it("labels hits by the sketch's tier without re-ranking, with its layer scores", () => {
    const hits = rankHits({ topK: 5, rerank: false, tokenScores: false }, sketched, []);
    expect(hits.map((h) => [h.ordinal, h.score, h.scoredBy])).toEqual(sketched.slice(0, 5).map((c) => [c.ordinal, c.approxScore, "sketch"]));
    expect(hits.map((h) => h.layerScores)).toEqual(sketched.slice(0, 5).map((c) => c.approxLayerScores));
    expect(() => rankHits({ topK: 6, rerank: false, tokenScores: false }, sketched, [])).toThrow(/no layer scores for candidate 1015/);
  });

  it("scores every candidate to re-rank, the top k for token scores alone, none otherwise", () => {
    expect(ordinalsToScore({ topK: 5, rerank: true, tokenScores: false }, candidates)).toEqual(candidates.map((c) => c.ordinal));
    expect(ordinalsToScore({ topK: 5, rerank: false, tokenScores: true }, candidates)).toEqual(candidates.slice(0, 5).map((c) => c.ordinal));
    expect(ordinalsToScore({ topK: 5, rerank: false, tokenScores: false }, candidates)).toEqual([]);
  });

  it("re-ranks by exact score: the k best of all candidates, brute force", () => {
    const hits = rankHits({ topK: 7, rerank: true, tokenScores: false }, candidates, exactScores);
    const best = [...exact.values()].sort((a, b) => b.score - a.score).slice(0, 7);
    expect(hits.map((h) => h.ordinal)).toEqual(best.map((e) => e.ordinal));
    expect(hits.map((h) => h.rank)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    for (const h of hits) {
      expect(h.scoredBy).toBe("exact");
      expect(h.score).toBe(exact.get(h.ordinal)?.score);
      expect(h.approxScore).toBe(candidates.find((c) => c.ordinal === h.ordinal)?.approxScore);
      expect(h.layerScores).toEqual(exact.get(h.ordinal)?.layerScores);
    }
  });

  it("keeps the search's order without re-ranking, with projected layer scores and exact token scores", () => {
    const hits = rankHits({ topK: 4, rerank: false, tokenScores: true }, candidates, exactScores);
    expect(hits.map((h) => h.ordinal)).toEqual(candidates.slice(0, 4).map((c) => c.ordinal));
    for (const [i, h] of hits.entries()) {
      expect(h.scoredBy).toBe("projected");
      expect(h.score).toBe(candidates[i].approxScore);
      expect(h.layerScores).toEqual(candidates[i].approxLayerScores);
      expect(h.tokenScores).toEqual(exact.get(h.ordinal)?.tokenScores);
    }
    expect(rankHits({ topK: 4, rerank: false, tokenScores: false }, candidates, [])[0].tokenScores).toBeUndefined();
  });

  it("ranks the same hits from the candidates it reads as from all of them (what a worker sends)", () => {
    const requests = [
      { topK: 5, rerank: false, tokenScores: false },
      { topK: 5, rerank: false, tokenScores: true },
      { topK: 5, rerank: true, tokenScores: false },
      { topK: 12, rerank: true, tokenScores: true },
    ];
    for (const list of [candidates, sketched]) {
      for (const request of requests) {
        const read = candidatesRanked(request, list);
        expect(read.length).toBe(request.rerank ? ordinalsToScore(request, list).length : request.topK);
        expect(ordinalsToScore(request, read)).toEqual(ordinalsToScore(request, list));
        expect(rankHits(request, read, exactScores)).toEqual(rankHits(request, list, exactScores));
      }
    }
  });

  it("refuses to rank a candidate that has no exact score", () => {
    expect(() => rankHits({ topK: 3, rerank: true, tokenScores: false }, candidates, exactScores.slice(1))).toThrow(/no exact score for sequence 1000/);
  });
});
