/**
 * The build's gradient passes spread over its worker pool: each worker accumulates float64 sums
 * over chunks of the corpus (index-worker.ts) and the main thread adds them up. Chunks have a
 * fixed size and are added in chunk order, so the sums are bit-identical whatever the number of
 * workers and their timing. The fit itself (decompositions, damping) is ekfac/fit.ts's.
 */
import type { ModuleFactors } from "../ekfac/factors.js";
import type { FisherSettings, PassRunner } from "../ekfac/fit.js";
import type { PartialSums } from "../ekfac/partial-sums.js";
import { WhitenedMomentAccumulator, type WhitenedMoments } from "../projection/pca.js";
import type { WorkerPool } from "../workers/worker-pool.js";
import type { ProgressListener } from "../util/progress.js";
import type { FisherChunk, OrdinalRange } from "./index-worker.js";
import type { TokenStore } from "./token-store.js";

/** Sequences per chunk of a fitting pass (the unit of bit-identical merging), and per chunk of the PCA sample. */
export const FIT_CHUNK = 64;
const SAMPLE_CHUNK = 16;

/** Contiguous chunks of 0..count-1. */
function chunks(count: number, size: number): OrdinalRange[] {
  return Array.from({ length: Math.ceil(count / size) }, (_, i) => ({ firstOrdinal: i * size, lastOrdinal: Math.min(count, (i + 1) * size) - 1 }));
}

/** Runs `method` on every chunk in the pool, merging the results in chunk order as they arrive; returns the tokens covered. */
async function pass(
  pool: WorkerPool,
  method: string,
  parts: ReadonlyArray<{ payload: object; ordinals: number[] }>,
  merge: (partial: PartialSums) => void,
  progress: { phase: string; total: number; store: TokenStore; listener?: ProgressListener },
): Promise<number> {
  let done = 0;
  let tokens = 0;
  progress.listener?.({ phase: progress.phase, done, total: progress.total, tokens });
  // Results that arrive ahead of an earlier chunk wait here: float64 addition is not associative.
  const arrived = new Map<number, PartialSums>();
  let next = 0;
  await Promise.all(
    parts.map(async ({ payload, ordinals }, i) => {
      arrived.set(i, await pool.run<PartialSums>(method, payload));
      for (let ready = arrived.get(next); ready; ready = arrived.get(next)) {
        merge(ready);
        arrived.delete(next++);
      }
      done += ordinals.length;
      tokens += ordinals.reduce((s, o) => s + progress.store.tokens(o).length, 0);
      progress.listener?.({ phase: progress.phase, done, total: progress.total, tokens });
    }),
  );
  return tokens;
}

const ordinalsOf = ({ firstOrdinal, lastOrdinal }: OrdinalRange) => Array.from({ length: lastOrdinal - firstOrdinal + 1 }, (_, i) => firstOrdinal + i);

/**
 * Each fitting pass over the first `count` sequences of the token store, on the pool's workers,
 * in chunks of `chunkSize` sequences merged in chunk order.
 */
export function pooledPasses(
  pool: WorkerPool,
  store: TokenStore,
  count: number,
  settings: FisherSettings,
  { chunkSize = FIT_CHUNK, onProgress }: { chunkSize?: number; onProgress?: ProgressListener } = {},
): PassRunner {
  const ranges = chunks(count, chunkSize);
  return async (fisherPass, into) => {
    const parts = ranges.map((r) => ({ payload: { ...r, ...settings, pass: fisherPass } satisfies FisherChunk, ordinals: ordinalsOf(r) }));
    const tokens = await pass(pool, "fisher", parts, (p) => into.merge(p), { phase: fisherPass.kind, total: count, store, listener: onProgress });
    return { sequences: count, tokens };
  };
}

/** Whitened-gradient moments of the sample (the PCA basis), with the pool's workers. */
export async function momentsInParallel(
  pool: WorkerPool,
  factors: ModuleFactors[],
  store: TokenStore,
  sample: number[],
  listener?: ProgressListener,
): Promise<WhitenedMoments[]> {
  const parts = Array.from({ length: Math.ceil(sample.length / SAMPLE_CHUNK) }, (_, i) => {
    const ordinals = sample.slice(i * SAMPLE_CHUNK, (i + 1) * SAMPLE_CHUNK);
    return { payload: { ordinals, factors }, ordinals };
  });
  const moments = new WhitenedMomentAccumulator(factors);
  await pass(pool, "moments", parts, (p) => moments.merge(p), { phase: "projection", total: sample.length, store, listener });
  return moments.finish();
}
