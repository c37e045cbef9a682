/**
 * The build's fitting passes spread over its worker pool: each worker accumulates float64 sums
 * over chunks of the corpus (index-worker.ts) and the main thread adds them up, decomposes and
 * finishes, as ekfac/fit.ts does on one thread. Chunks have a fixed size and are added in chunk
 * order, so the factors are bit-identical whatever the number of workers and their timing.
 */
import { CovarianceAccumulator } from "../ekfac/covariance.js";
import type { DampingRule, FisherMode } from "../ekfac/artifacts.js";
import { eigenbasis } from "../ekfac/eigenbasis.js";
import type { ModuleFactors } from "../ekfac/factors.js";
import type { FitResult } from "../ekfac/fit.js";
import { LambdaAccumulator } from "../ekfac/lambda.js";
import type { PartialSums } from "../ekfac/partial-sums.js";
import type { TrackedModule } from "../model/model.js";
import { WhitenedMomentAccumulator, type WhitenedMoments } from "../projection/pca.js";
import type { WorkerPool } from "../server/worker-pool.js";
import type { ProgressListener } from "../util/progress.js";
import type { FisherPass, OrdinalRange } from "./index-worker.js";
import type { TokenStore } from "./token-store.js";

/** Sequences per chunk of a fitting pass, and per chunk of the PCA sample. */
const FIT_CHUNK = 64;
const SAMPLE_CHUNK = 16;

/** Contiguous chunks of 0..count-1. */
function chunks(count: number): OrdinalRange[] {
  return Array.from({ length: Math.ceil(count / FIT_CHUNK) }, (_, i) => ({
    firstOrdinal: i * FIT_CHUNK,
    lastOrdinal: Math.min(count, (i + 1) * FIT_CHUNK) - 1,
  }));
}

/** Runs `method` on every chunk in the pool, merging the results in chunk order as they arrive. */
async function pass(
  pool: WorkerPool,
  method: string,
  parts: ReadonlyArray<{ payload: object; ordinals: number[] }>,
  merge: (partial: PartialSums) => void,
  progress: { phase: string; total: number; store: TokenStore; listener?: ProgressListener },
): Promise<void> {
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
}

const ordinalsOf = ({ firstOrdinal, lastOrdinal }: OrdinalRange) => Array.from({ length: lastOrdinal - firstOrdinal + 1 }, (_, i) => firstOrdinal + i);

/** EK-FAC on the first `count` sequences of the token store, with the pool's workers. */
export async function fitInParallel(
  pool: WorkerPool,
  modules: readonly TrackedModule[],
  store: TokenStore,
  count: number,
  settings: { fisher: FisherMode; seed: number; damping: DampingRule },
  listener?: ProgressListener,
): Promise<FitResult> {
  const clock = () => performance.now() / 1000;
  const ranges = chunks(count);
  const fisherParts = (extra: object = {}) =>
    ranges.map((r) => ({ payload: { ...r, fisher: settings.fisher, seed: settings.seed, ...extra } satisfies FisherPass, ordinals: ordinalsOf(r) }));

  let start = clock();
  const covariances = new CovarianceAccumulator(modules);
  await pass(pool, "covariance", fisherParts(), (p) => covariances.merge(p), { phase: "covariance", total: count, store, listener });
  const covariance = covariances.finish();
  const covarianceSeconds = clock() - start;

  start = clock();
  const bases = covariance.map((cov, i) => {
    listener?.({ phase: "eigendecomposition", done: i, total: covariance.length, unit: "matrices" });
    return eigenbasis(cov);
  });
  listener?.({ phase: "eigendecomposition", done: covariance.length, total: covariance.length, unit: "matrices" });
  const eigendecompositionSeconds = clock() - start;

  start = clock();
  const lambdas = new LambdaAccumulator(modules, bases);
  await pass(pool, "lambda", fisherParts({ eigen: bases }), (p) => lambdas.merge(p), { phase: "lambda", total: count, store, listener });
  const damping = settings.damping.rule === "fixed" ? settings.damping.value : { factor: settings.damping.factor };
  const factors = lambdas.finish(damping);
  const lambdaSeconds = clock() - start;

  return { covariance, factors, sequences: count, tokens: covariances.totals.count, timings: { covarianceSeconds, eigendecompositionSeconds, lambdaSeconds } };
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
