/**
 * "What if this training sequence were different?": sequences scored as if they were training
 * sequences, beside an indexed sequence and its word-order variants. Composed of the engine's
 * stages, so that the in-process engine and the server's worker pool (which spreads the scoring
 * over its workers) answer alike.
 */
import type { InfluenceEngine, SequenceScoresRequest, SequenceScoresResult } from "./types.js";

export async function scoreWithVariants(
  stages: Pick<InfluenceEngine, "comparedSequence" | "sequenceScores">,
  request: SequenceScoresRequest,
): Promise<SequenceScoresResult> {
  const t0 = performance.now();
  const { sequences, compareWith, variants: withVariants, ...query } = request;
  // The variants need the original's token scores, so it is scored first.
  const compared = compareWith === undefined ? undefined : await stages.comparedSequence(query, compareWith, withVariants);
  const original = compared?.original;
  const variants = compared?.variants ?? [];
  const scored = await stages.sequenceScores(query, [...sequences, ...variants.map((v) => v.tokens)]);
  const kinds = [...sequences.map(() => "given" as const), ...variants.map((v) => v.kind)];
  return {
    query: scored.query,
    ...(original ? { original } : {}),
    sequences: scored.scores.map((s, i) => ({ ...s, kind: kinds[i], ...(original ? { change: s.score - original.score } : {}) })),
    timings: { totalMs: performance.now() - t0 },
  };
}
