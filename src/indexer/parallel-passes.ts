/**
 * The build's gradient passes spread over worker threads: each worker accumulates float64 sums
 * over chunks of the corpus (index-worker.ts) and the sums are added up here. A pass is cut into
 * shards (the build's shard size) and each shard into chunks of a fixed size; chunk sums are added
 * in chunk order into the shard's sum, and shard sums in shard order into the pass's total. That
 * one summation order makes the sums bit-identical whatever the number of workers, their timing,
 * and whether a shard was summed here or by a worker process on another machine (the distributed
 * build runs shardSums once per shard job). The fit itself (decompositions, damping) is
 * ekfac/fit.ts's.
 */
import type { ModuleFactors } from "../ekfac/factors.js";
import type { FisherPass, FisherSettings, PassRunner } from "../ekfac/fit.js";
import type { LayerGroup } from "../ekfac/layer-groups.js";
import { type PartialSums, addSums, emptySums } from "../ekfac/partial-sums.js";
import { WhitenedMomentAccumulator, type WhitenedMoments } from "../projection/pca.js";
import type { WorkerPool } from "../workers/worker-pool.js";
import type { ProgressListener } from "../util/progress.js";
import type { FisherChunk, OrdinalRange } from "./index-worker.js";
import type { TokenStore } from "./token-store.js";

/** Sequences per chunk of a fitting pass (the unit of bit-identical merging), and per chunk of the PCA sample. */
export const FIT_CHUNK = 64;
const SAMPLE_CHUNK = 16;

/** One request to an index worker and the sequences it covers. */
export interface PassChunk {
  method: "fisher" | "moments";
  payload: object;
  ordinals: number[];
}

/** Contiguous ranges of `size` sequences covering [first, first + count). */
export function ordinalRanges(count: number, size: number, first = 0): OrdinalRange[] {
  return Array.from({ length: Math.ceil(count / size) }, (_, i) => ({
    firstOrdinal: first + i * size,
    lastOrdinal: first + Math.min(count, (i + 1) * size) - 1,
  }));
}

const ordinalsOf = ({ firstOrdinal, lastOrdinal }: OrdinalRange) => Array.from({ length: lastOrdinal - firstOrdinal + 1 }, (_, i) => firstOrdinal + i);

/** The chunks of one shard of a fitting pass (of a group's modules only, with a `group`). */
export function fisherChunks(shard: OrdinalRange, settings: FisherSettings & { group?: LayerGroup }, pass: FisherPass, chunkSize = FIT_CHUNK): PassChunk[] {
  return ordinalRanges(shard.lastOrdinal - shard.firstOrdinal + 1, chunkSize, shard.firstOrdinal).map((r) => ({
    method: "fisher",
    payload: { ...r, ...settings, pass } satisfies FisherChunk,
    ordinals: ordinalsOf(r),
  }));
}

/**
 * The PCA sample in shards of `shardSize` consecutive entries: the sample is spread over the
 * corpus, and grouping it by corpus shard would make a job (and a file of moment sums) of a
 * sequence or two for a large corpus.
 */
export function sampleShards(sample: readonly number[], shardSize: number): number[][] {
  return Array.from({ length: Math.ceil(sample.length / shardSize) }, (_, i) => sample.slice(i * shardSize, (i + 1) * shardSize));
}

/** The chunks of one shard of the PCA sample. */
export function momentChunks(ordinals: readonly number[], factors: ModuleFactors[]): PassChunk[] {
  return Array.from({ length: Math.ceil(ordinals.length / SAMPLE_CHUNK) }, (_, i) => {
    const chunk = ordinals.slice(i * SAMPLE_CHUNK, (i + 1) * SAMPLE_CHUNK);
    return { method: "moments", payload: { ordinals: chunk, factors }, ordinals: chunk };
  });
}

/**
 * Receives results numbered 0, 1, 2, ... in any order and hands them to `merge` in number order:
 * float64 addition is not associative. A result that arrives early waits here. A merge that
 * returns a promise (one that saves what it merged) is awaited before the next starts;
 * `merged()` resolves when every result handed over so far is merged, or rejects with the first
 * failed merge (the results after it are not merged).
 */
export class InOrder<T> {
  readonly #arrived = new Map<number, T>();
  #next = 0;
  #chain: Promise<void> = Promise.resolve();
  #failure: { error: unknown } | undefined;

  constructor(private readonly merge: (item: T) => void | Promise<void>) {}

  add(index: number, item: T): void {
    this.#arrived.set(index, item);
    for (let ready = this.#arrived.get(this.#next); ready !== undefined; ready = this.#arrived.get(this.#next)) {
      const next = ready;
      this.#chain = this.#chain.then(async () => {
        if (this.#failure) return;
        try {
          await this.merge(next);
        } catch (error) {
          this.#failure = { error };
        }
      });
      this.#arrived.delete(this.#next++);
    }
  }

  async merged(): Promise<void> {
    await this.#chain;
    if (this.#failure) throw this.#failure.error;
  }
}

/** One shard's sum: its chunks run on the pool, their sums added in chunk order to zeros. */
export async function shardSums(pool: WorkerPool, chunks: readonly PassChunk[], onChunk?: (chunk: PassChunk) => void): Promise<PartialSums> {
  if (chunks.length === 0) throw new RangeError("a shard of a pass needs at least one chunk");
  let total: PartialSums | undefined;
  const order = new InOrder<PartialSums>((partial) => {
    total ??= emptySums(partial.sums.map((s) => s.length));
    addSums(total, partial);
  });
  await Promise.all(
    chunks.map(async (chunk, i) => {
      order.add(i, await pool.run<PartialSums>(chunk.method, chunk.payload));
      onChunk?.(chunk);
    }),
  );
  await order.merged();
  return total as PartialSums;
}

/**
 * Runs every shard's chunks on the pool, merging shard sums in shard order (a merge may save what
 * it merged: the next waits for it); `progress.done` counts the sequences of shards not run here.
 */
async function pass(
  pool: WorkerPool,
  shards: ReadonlyArray<readonly PassChunk[]>,
  merge: (partial: PartialSums) => void | Promise<void>,
  progress: { phase: string; done?: number; total: number; store: TokenStore; listener?: ProgressListener },
): Promise<void> {
  let done = progress.done ?? 0;
  let tokens = 0;
  progress.listener?.({ phase: progress.phase, done, total: progress.total, tokens });
  const onChunk = ({ ordinals }: PassChunk) => {
    done += ordinals.length;
    tokens += ordinals.reduce((s, o) => s + progress.store.tokens(o).length, 0);
    progress.listener?.({ phase: progress.phase, done, total: progress.total, tokens });
  };
  const order = new InOrder(merge);
  await Promise.all(shards.map(async (chunks, s) => order.add(s, await shardSums(pool, chunks, onChunk))));
  await order.merged();
}

/**
 * Each fitting pass over the first `count` sequences of the token store, on the pool's workers:
 * shards of `shardSize` sequences (one shard of everything by default), chunks of `chunkSize`.
 * With a `group`, the workers sum that group's modules only (a grouped fit).
 */
export function pooledPasses(
  pool: WorkerPool,
  store: TokenStore,
  count: number,
  settings: FisherSettings,
  {
    chunkSize = FIT_CHUNK,
    shardSize = count,
    group,
    onProgress,
  }: { chunkSize?: number; shardSize?: number; group?: LayerGroup; onProgress?: ProgressListener } = {},
): PassRunner {
  const shards = ordinalRanges(count, shardSize);
  return {
    shards: shards.length,
    run: async (fisherPass, first, onShard) => {
      const chunks = shards.slice(first).map((shard) => fisherChunks(shard, { ...settings, group }, fisherPass, chunkSize));
      const done = shards[first]?.firstOrdinal ?? count;
      await pass(pool, chunks, onShard, { phase: fisherPass.kind, done, total: count, store, listener: onProgress });
    },
  };
}

/** Whitened-gradient moments of the sample (the PCA basis), with the pool's workers, in shards of `shardSize` sample entries. */
export async function momentsInParallel(
  pool: WorkerPool,
  factors: ModuleFactors[],
  store: TokenStore,
  sample: number[],
  shardSize: number,
  listener?: ProgressListener,
): Promise<WhitenedMoments[]> {
  const moments = new WhitenedMomentAccumulator(factors);
  const shards = sampleShards(sample, shardSize).map((ordinals) => momentChunks(ordinals, factors));
  await pass(pool, shards, (p) => moments.merge(p), { phase: "projection", total: sample.length, store, listener });
  return moments.finish();
}
