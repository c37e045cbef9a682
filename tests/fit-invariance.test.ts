/**
 * One fit, run two ways (ekfac/fit.ts with serialPasses or indexer/parallel-passes.ts's
 * pooledPasses) and with two batch sizes, gives the same factors: the invariances Kronfluence
 * tests for its factors (test_factors.py: batch size, and serial against distributed fitting).
 */
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FitCheckpoint, type FitResult, type PassRunner, type TokenSequence, fitEkfac, serialPasses } from "../src/ekfac/fit.js";
import { FitCheckpointFolder, type FitSettings } from "../src/jobs/fit-checkpoint.js";
import { indexPath } from "../src/indexer/index-manifest.js";
import type { IndexWorkerData } from "../src/indexer/index-worker.js";
import { pooledPasses } from "../src/indexer/parallel-passes.js";
import { readTokenStore, writeTokenStore } from "../src/indexer/token-store.js";
import { loadModel } from "../src/model/load.js";
import type { CausalLM } from "../src/model/model.js";
import { tempDir } from "../src/util/temp-dir.js";
import { spawnTsWorker } from "../src/workers/spawn-worker.js";
import { WorkerPool } from "../src/workers/worker-pool.js";
import { workerRuntime } from "../src/runtime/session.js";
import { fixturePath, fixtureTrain } from "../support/fixtures.js";
import { maxRelError } from "./helpers/compare.js";

const MODEL = fixturePath("gpt2-tiny");
const SETTINGS = { fisher: "empirical", seed: 0 } as const;
const DAMPING = { damping: { rule: "heuristic", factor: 0.1 } } as const;

/** Fixture sequences cut to lengths 6 to 24, so that batches are padded and length-sorted. */
const train = fixtureTrain("gpt2-tiny");
const varied: TokenSequence[] = train.map((s, ordinal) => ({ ordinal, tokens: s.tokens.slice(0, 6 + ((ordinal * 7) % 19)) }));
/** The fixture's own sequences, all 24 tokens: a batch of 24 tokens holds exactly 1, of 192 exactly 8. */
const uniform: TokenSequence[] = train.map((s, ordinal) => ({ ordinal, tokens: s.tokens }));

let model: CausalLM;
let tmp: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  model = await loadModel(MODEL);
  tmp = await tempDir("fit-invariance-");
});
afterAll(() => tmp.remove());

function serialFit(sequences: TokenSequence[], batchTokens?: number): Promise<FitResult> {
  const stream = async function* () {
    yield* sequences;
  };
  return fitEkfac(model.modules, serialPasses(model, stream, sequences.length, { ...SETTINGS, batchTokens }), DAMPING);
}

/** A fit whose passes run on `workers` index workers over a token store of the sequences, in shards of `shardSize`. */
async function pooledFit(
  sequences: TokenSequence[],
  workers: number,
  chunkSize: number,
  { shardSize, checkpoint }: { shardSize?: number; checkpoint?: FitCheckpoint } = {},
): Promise<FitResult> {
  const indexDir = path.join(tmp.dir, `pooled-${sequences.length}-${workers}-${chunkSize}-${Math.random().toString(36).slice(2)}`);
  await mkdir(indexDir, { recursive: true });
  await writeTokenStore(indexPath(indexDir, "tokens"), sequences);
  const store = await readTokenStore(indexPath(indexDir, "tokens"));
  const data: IndexWorkerData = { modelDir: MODEL, indexDir, batchTokens: 2048, runtime: workerRuntime("cpu", workers) };
  const pool = new WorkerPool({
    spawn: () => spawnTsWorker(new URL("../src/indexer/index-worker.ts", import.meta.url), data),
    size: workers,
    maxQueue: Infinity,
  });
  try {
    const passes: PassRunner = pooledPasses(pool, store, store.count, SETTINGS, { chunkSize, shardSize });
    return await fitEkfac(model.modules, passes, { ...DAMPING, checkpoint });
  } finally {
    await pool.close();
  }
}

/** Every factor of two fits, side by side: covariances, eigenvalues, Lambda, damping. */
function factorArrays(fit: FitResult): Array<[string, ArrayLike<number>]> {
  return fit.factors.flatMap((f, m) => [
    [`A of ${f.module.name}`, fit.covariance[m].A],
    [`S of ${f.module.name}`, fit.covariance[m].S],
    [`eigA of ${f.module.name}`, f.eigA],
    [`eigS of ${f.module.name}`, f.eigS],
    [`qA of ${f.module.name}`, f.qA],
    [`qS of ${f.module.name}`, f.qS],
    [`Lambda of ${f.module.name}`, f.lambda],
    [`damping of ${f.module.name}`, [f.damping]],
  ]);
}

function expectIdentical(x: FitResult, y: FitResult): void {
  const [a, b] = [factorArrays(x), factorArrays(y)];
  for (let i = 0; i < a.length; i++) expect(Array.from(b[i][1]), a[i][0]).toEqual(Array.from(a[i][1]));
  expect({ sequences: y.sequences, tokens: y.tokens }).toEqual({ sequences: x.sequences, tokens: x.tokens });
}

/**
 * The tolerance of fits whose float32 batch sums are formed over different rows. A float32 dot
 * product of n terms is within n u (u = 2^-24 = 6e-8) of exact, relative to the sum of the terms'
 * magnitudes; the largest batches here have 192 rows (8 x 24 tokens), so 192 u = 1.1e-5. Eigenvalues
 * move no more than their matrix (Weyl), Lambda and the damping are sums of like products. Measured:
 * at most 1.2e-6. Eigenvectors are left out: within a near-degenerate eigenspace any rotation is
 * as right, and Lambda, computed in those vectors, is what the scores use.
 */
const FLOAT32_BATCH_TOLERANCE = 192 * 2 ** -24;

function expectClose(x: FitResult, y: FitResult): void {
  const [a, b] = [factorArrays(x), factorArrays(y)];
  for (let i = 0; i < a.length; i++) {
    if (/^q[AS] /.test(a[i][0])) continue;
    expect(maxRelError(b[i][1], a[i][1]), a[i][0]).toBeLessThan(FLOAT32_BATCH_TOLERANCE);
  }
  expect({ sequences: y.sequences, tokens: y.tokens }).toEqual({ sequences: x.sequences, tokens: x.tokens });
}

describe("one EK-FAC fit, run serially or on worker threads", () => {
  it("gives bit-identical factors when the pool's one chunk holds every sequence", async () => {
    // Both runners then length-sort the same 48 sequences into the same batches (serialPasses
    // within its 1,024-sequence window, the worker within its chunk), add the same float32 batch
    // sums into float64 in the same order, and the main thread adds the one chunk's sums to zeros.
    const [serial, pooled] = [await serialFit(varied), await pooledFit(varied, 2, 64)];
    expectIdentical(serial, pooled);
  });

  it("gives bit-identical factors with 1 and 2 workers for the same chunk size", async () => {
    // Chunks of 8 sequences: six partial sums, added in chunk order whatever order they arrive in.
    const [one, two] = [await pooledFit(varied, 1, 8), await pooledFit(varied, 2, 8)];
    expectIdentical(one, two);
  });

  it("gives equal factors, within float32 rounding, with chunks smaller than the corpus", async () => {
    // Chunks of 8 batch the sequences differently from the serial pass (sorted within each chunk).
    expectClose(await serialFit(varied), await pooledFit(varied, 2, 8));
  });
});

describe("one EK-FAC fit, with batches of 1 and of 8 sequences", () => {
  it("gives equal factors within float32 rounding", async () => {
    const [one, eight] = [await serialFit(uniform, 24), await serialFit(uniform, 192)];
    expectClose(one, eight);
  });
});

describe("one EK-FAC fit on worker threads, stopped and continued from its checkpoint (a build's factors phase)", () => {
  it("gives bit-identical factors when the run stops after a few shards of each pass and then resumes", async () => {
    const shardSize = 8;
    const settings: FitSettings = {
      modelFingerprint: "fixture",
      corpusFingerprint: "varied",
      maxSequences: null,
      sequences: varied.length,
      ...SETTINGS,
      damping: DAMPING.damping,
      shardSize,
      batchTokens: 2048,
      groups: ["0-1"],
    };
    const dir = path.join(tmp.dir, "resumed");
    // The first run dies when it saves the covariance pass's third shard: a crash between shards.
    const dying = await FitCheckpointFolder.open(dir, settings, "continue");
    let saves = 0;
    const crash = new Error("killed");
    const failing: FitCheckpoint = {
      passProgress: (kind) => dying.passProgress(kind),
      savePassProgress: async (kind, progress) => {
        if (++saves === 3) throw crash;
        await dying.savePassProgress(kind, progress);
      },
      eigenbasis: (m) => dying.eigenbasis(m),
      saveEigenbasis: (m, basis) => dying.saveEigenbasis(m, basis),
    };
    await expect(pooledFit(varied, 2, 4, { shardSize, checkpoint: failing })).rejects.toBe(crash);
    const kept = await dying.passProgress("covariance");
    expect(kept?.shards).toBe(2);
    expect(await dying.eigenbasis(0)).toBeUndefined();

    // The second run saves only the covariance shards after the two kept, then the rest.
    const continuing = await FitCheckpointFolder.open(dir, settings, "resume");
    const saved: number[] = [];
    const counting: FitCheckpoint = {
      passProgress: (kind) => continuing.passProgress(kind),
      savePassProgress: (kind, progress) => {
        if (kind === "covariance") saved.push(progress.shards);
        return continuing.savePassProgress(kind, progress);
      },
      eigenbasis: (m) => continuing.eigenbasis(m),
      saveEigenbasis: (m, basis) => continuing.saveEigenbasis(m, basis),
    };
    const resumed = await pooledFit(varied, 2, 4, { shardSize, checkpoint: counting });
    expect(saved).toEqual([3, 4, 5, 6]);
    expect((await dying.passProgress("lambda"))?.shards).toBe(varied.length / shardSize);
    expectIdentical(await pooledFit(varied, 2, 4, { shardSize }), resumed);
  });
});
