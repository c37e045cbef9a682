/**
 * `influence build`: one offline pass that turns a model and a corpus into an index folder.
 *
 *   ingest      sequences into the database and the token store
 *   factors     EK-FAC fit (or reuse of a matching fit in the folder)
 *   projection  the per-module projections (PCA pass over a sample, or random)
 *   vectors     every sequence's vector, shard by shard, on worker threads
 *   hnsw        merged vector file and the inner-product HNSW index
 *   manifest    written last: only now does the folder hold an index
 *
 * Every phase is resumable: finished shards are recorded in the database after their file is
 * written atomically, so after a crash `--resume` recomputes only unrecorded shards, and shards
 * are computed identically however many workers run them.
 *
 * This is the scheduler of one machine (worker threads); the phases' computations are in
 * build-steps.ts and the index workers, shared with the scheduler of `--distributed` builds
 * (distributed/), which runs them as jobs of a queue on any number of machines.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import {
  type Database,
  finishBuild,
  getBuild,
  listShards,
  markShardDone,
  migrate,
  openDatabase,
  planShards,
  recordBuildPhase,
  reopenBuild,
  startBuild,
  upsertCorpus,
} from "../db/index.js";
import { loadFactors, readFactorsManifest } from "../ekfac/artifacts.js";
import { DEFAULT_SHARD_SIZE } from "../ekfac/fit.js";
import { type LayerGroup, groupRange, layerGroups } from "../ekfac/layer-groups.js";
import { DEFAULT_DAMPING_FACTOR } from "../ekfac/lambda.js";
import { corpusSource } from "../corpus/corpus-source.js";
import { type ModelDescription, describeModel } from "../model/open-model.js";
import { DEFAULT_BATCH_TOKENS, batchTokenLimit } from "../model/batch-budget.js";
import { DEFAULT_SKETCH_FLOATS } from "../projection/sketch.js";
import { WorkerPool } from "../workers/worker-pool.js";
import type { Device } from "../runtime/device.js";
import { workerRuntime } from "../runtime/session.js";
import { writeJsonAtomic } from "../util/atomic-write.js";
import { lockDirectory } from "../util/directory-lock.js";
import { InputError, errorMessage } from "../util/errors.js";
import type { ProgressListener } from "../util/progress.js";
import { spawnTsWorker } from "../workers/spawn-worker.js";
import { type BuildParameters, type IndexManifest, indexPath, parameterDifference } from "../indexer/index-manifest.js";
import type { IndexWorkerData } from "../indexer/index-worker.js";
import { momentsInParallel, ordinalRanges, pooledPasses } from "../indexer/parallel-passes.js";
import { FitCheckpointFolder } from "./fit-checkpoint.js";
import { type FitSummary, fitAndSave } from "./fit-groups.js";
import { type TokenStore, readTokenStore } from "../indexer/token-store.js";
import { readVectorFile } from "../indexer/vector-file.js";
import {
  type BuildRequest,
  buildFactorsManifest,
  buildGraph,
  completeIndex,
  defaultCorpusName,
  evenSample,
  fitCount,
  indexGraphs,
  ingest,
  mergeShardVectors,
  resolveParameters,
  saveProjections,
  shardFilesIntact,
  shardJob,
} from "./build-steps.js";

export interface BuildJob {
  modelDir: string;
  corpusFile: string;
  outDir: string;
  /** postgres:// URL; the embedded PGlite database in the folder when absent. */
  databaseUrl?: string;
  corpusName?: string;
  parameters: BuildRequest;
  workers: number;
  /** Execution provider of the workers' model passes; INFLUENCE_DEVICE by default. */
  device?: Device;
  resume: boolean;
  batchTokens?: number;
  /** Groups of consecutive layers the fit runs in, one after another (jobs/fit-groups.ts); all layers at once when absent. */
  groups?: LayerGroup[];
  onProgress?: ProgressListener;
  log?: (message: string) => void;
}

/** Written at the start of a build and updated as phases finish; removed when the index is complete. */
interface BuildState {
  parameters: BuildParameters;
  buildId: number;
  phasesDone: string[];
}

export const DEFAULT_WORKERS = Math.max(1, Math.min(os.availableParallelism(), 4));

/** What `influence build` does unless told otherwise. */
export const DEFAULT_BUILD_PARAMETERS: BuildJob["parameters"] = {
  fisher: "sampled",
  damping: { rule: "heuristic", factor: DEFAULT_DAMPING_FACTOR },
  seed: 0,
  maxSequences: null,
  fitSequences: null,
  projection: { kOut: 64, kIn: 64, rank: 4, seed: 0, basis: "pca" },
  sketch: { floats: DEFAULT_SKETCH_FLOATS, seed: 0, precision: "auto" },
  pcaSequences: 1024,
  shardSize: DEFAULT_SHARD_SIZE,
  hnsw: { M: 16, efConstruction: 200 },
};

const INDEX_FOLDER = { what: "index folder", advice: "Another `influence build` is writing it: wait for it to finish, or build into another folder." };

export async function runBuild(job: BuildJob): Promise<IndexManifest> {
  const outDir = path.resolve(job.outDir);
  await mkdir(outDir, { recursive: true });
  const lock = await lockDirectory(outDir, INDEX_FOLDER);
  let db: Database | undefined;
  let buildId: number | undefined;
  try {
    if (existsSync(indexPath(outDir, "manifest"))) {
      throw new InputError(`${outDir} already holds a complete index; build into a new folder (nothing was changed)`);
    }
    const opened = await describeModel(job.modelDir);
    const source = await corpusSource(job.corpusFile, opened, job.parameters.maxSequences ?? undefined);
    const parameters = resolveParameters(job.parameters, opened.model.modules, { modelFingerprint: opened.fingerprint, corpusFingerprint: source.fingerprint });
    const state = await startOrResume(outDir, parameters, job.resume);
    db = await openDatabase(job.databaseUrl ? { url: job.databaseUrl } : { dataDir: indexPath(outDir, "database") });
    await migrate(db);
    const corpus = await upsertCorpus(db, { name: job.corpusName ?? defaultCorpusName(source), sourcePath: source.path, fingerprint: source.fingerprint });
    buildId = await ensureBuildRow(db, corpus.id, state, parameters);
    await saveState(outDir, { ...state, buildId });

    const phase = async (name: string, work: () => Promise<void>) => {
      if (state.phasesDone.includes(name)) return job.log?.(`${name}: done in an earlier run`);
      const t0 = performance.now();
      await work();
      await recordBuildPhase(db as Database, buildId as number, name, (performance.now() - t0) / 1000);
      state.phasesDone.push(name);
      await saveState(outDir, { ...state, buildId: buildId as number });
    };

    let counts = { sequences: 0, tokens: 0 };
    await phase("ingest", async () => {
      counts = await ingest(db as Database, corpus.id, source, indexPath(outDir, "tokens"), job.onProgress);
      if (counts.sequences === 0) throw new InputError(`${source.path}: no training sequences (every document has fewer than 2 tokens?)`);
    });
    const store = await readTokenStore(indexPath(outDir, "tokens"));
    counts = { sequences: store.count, tokens: store.totalTokens };
    // One pool of worker threads for the gradient phases, each worker loading the model and the
    // token store once; started by the first of those phases that runs (a resumed build skips some).
    const data: IndexWorkerData = {
      modelDir: opened.dir,
      indexDir: outDir,
      batchTokens: job.batchTokens ?? DEFAULT_BATCH_TOKENS,
      runtime: workerRuntime(job.device, job.workers),
    };
    const pools: WorkerPool[] = [];
    const workers = (): WorkerPool => {
      // A batch job: all its chunks queue at once, and a pass takes as long as it takes.
      if (pools.length === 0) {
        pools.push(
          new WorkerPool({ spawn: () => spawnTsWorker(new URL("../indexer/index-worker.ts", import.meta.url), data), size: job.workers, maxQueue: Infinity }),
        );
      }
      return pools[0];
    };
    try {
      await phase("factors", () => fitFactors(opened, job, parameters, outDir, store, workers()));
      await phase("projection", () => fitProjection(opened, store, parameters, outDir, workers(), job.onProgress));
      await phase("vectors", () => computeShards(db as Database, buildId as number, store.count, outDir, job, parameters, workers()));
    } finally {
      // After a failed chunk, the others' passes finish first: terminated inside a run, an ONNX
      // Runtime worker aborts the process.
      await Promise.all(pools.map((pool) => pool.close({ finishRunning: true })));
    }
    await phase("hnsw", () => mergeAndIndex(db as Database, buildId as number, outDir, parameters, job.onProgress));

    const manifest = await completeIndex(db, buildId, outDir, parameters, {
      model: opened,
      corpus: { name: corpus.name, path: source.path, fingerprint: source.fingerprint },
      counts,
      databaseUrl: job.databaseUrl,
    });
    await rm(indexPath(outDir, "buildState"), { force: true });
    return manifest;
  } catch (err) {
    if (db && buildId !== undefined) await finishBuild(db, buildId, { status: "failed", error: errorMessage(err) }).catch(() => undefined);
    throw err;
  } finally {
    await db?.close();
    await lock.release();
  }
}

async function startOrResume(outDir: string, parameters: BuildParameters, resume: boolean): Promise<BuildState> {
  const file = indexPath(outDir, "buildState");
  if (!existsSync(file)) {
    if (resume) throw new InputError(`${outDir}: no interrupted build to resume (start one without --resume)`);
    return { parameters, buildId: -1, phasesDone: [] };
  }
  if (!resume) throw new InputError(`${outDir} holds an interrupted build: continue it with --resume, or build into a new folder`);
  let state: BuildState;
  try {
    state = JSON.parse(await readFile(file, "utf8"));
  } catch (err) {
    throw new InputError(`${file}: malformed build state (${(err as Error).message})`);
  }
  const difference = parameterDifference(state.parameters, parameters);
  if (difference) throw new InputError(`${outDir}: --resume asks for different build parameters than the interrupted build (${difference})`);
  return state;
}

async function saveState(outDir: string, state: BuildState): Promise<void> {
  await writeJsonAtomic(indexPath(outDir, "buildState"), state);
}

async function ensureBuildRow(db: Database, corpusId: number, state: BuildState, parameters: BuildParameters): Promise<number> {
  if (state.buildId >= 0) {
    const build = await getBuild(db, state.buildId);
    if (build) return (build.status === "running" ? build : await reopenBuild(db, build.id)).id;
  }
  return (await startBuild(db, corpusId, { ...parameters })).id;
}

/** Reuses a fit in the folder made with the same model, corpus and settings; fits otherwise, on the workers. */
async function fitFactors(opened: ModelDescription, job: BuildJob, p: BuildParameters, outDir: string, store: TokenStore, pool: WorkerPool): Promise<void> {
  const dir = indexPath(outDir, "factors");
  const limit = fitCount(p, store.count);
  const maxSequences = limit < store.count ? limit : undefined;
  const source = await corpusSource(job.corpusFile, opened, maxSequences);
  const existing = existsSync(dir) ? await readFactorsManifest(dir).catch(() => undefined) : undefined;
  if (existing) {
    const same =
      existing.model.fingerprint === opened.fingerprint &&
      existing.fisher === p.fisher &&
      existing.seed === p.seed &&
      JSON.stringify(existing.damping) === JSON.stringify(p.damping);
    if (same && existing.corpus.fingerprint === source.fingerprint) return job.log?.(`factors: reusing the fit in ${dir}`);
  }
  const batchTokens = batchTokenLimit(opened.model.config, job.batchTokens ?? DEFAULT_BATCH_TOKENS);
  const settings = { fisher: p.fisher, seed: p.seed, damping: p.damping, shardSize: p.shardSize, batchTokens };
  const fit = { modelFingerprint: opened.fingerprint, corpusFingerprint: source.fingerprint, maxSequences: maxSequences ?? null, sequences: limit };
  const { modules } = opened.model;
  const groups = job.groups ?? layerGroups(modules, 1);
  // An unfinished fit here belongs to this build: its --resume already checked the parameters.
  const checkpoint = await FitCheckpointFolder.open(dir, { ...fit, ...settings, groups: groups.map(groupRange) }, "continue");
  const passes = (group?: LayerGroup, onProgress = job.onProgress) =>
    pooledPasses(pool, store, limit, { fisher: p.fisher, seed: p.seed }, { shardSize: p.shardSize, group, onProgress });
  const manifestOf = (summary: FitSummary) => buildFactorsManifest(opened, source, p, maxSequences, summary);
  await fitAndSave(dir, modules, groups, passes, checkpoint, manifestOf, { damping: p.damping, onProgress: job.onProgress });
  await checkpoint.clear();
}

async function fitProjection(
  opened: ModelDescription,
  store: TokenStore,
  p: BuildParameters,
  outDir: string,
  pool: WorkerPool,
  onProgress?: ProgressListener,
): Promise<void> {
  const { factors } = await loadFactors(indexPath(outDir, "factors"), { modelFingerprint: opened.fingerprint, modules: opened.model.modules });
  const moments =
    p.projection.basis === "pca" ? await momentsInParallel(pool, factors, store, evenSample(store.count, p.pcaSequences), p.shardSize, onProgress) : undefined;
  await saveProjections(outDir, p, factors, moments);
}

async function computeShards(db: Database, buildId: number, count: number, outDir: string, job: BuildJob, p: BuildParameters, pool: WorkerPool): Promise<void> {
  const plan = ordinalRanges(count, p.shardSize).map((range, shard) => ({ shard, ...range }));
  await planShards(db, buildId, plan);
  await mkdir(indexPath(outDir, "shards"), { recursive: true });
  const recorded = new Map((await listShards(db, buildId)).map((s) => [s.shard, s]));
  const pending = [];
  for (const s of plan) {
    const done = recorded.get(s.shard)?.status === "done" && (await shardFilesIntact(outDir, p, s.shard));
    if (!done) pending.push(s);
  }
  let finished = count - pending.reduce((n, s) => n + s.lastOrdinal - s.firstOrdinal + 1, 0);
  let tokens = 0;
  job.onProgress?.({ phase: "vectors", done: finished, total: count, tokens });
  await Promise.all(
    pending.map(async (s) => {
      const shardWork = shardJob(outDir, p, s.shard, s);
      const result = await pool.run<{ sequences: number; tokens: number }>("shard", shardWork);
      await markShardDone(db, buildId, s.shard, path.basename(shardWork.file));
      finished += result.sequences;
      tokens += result.tokens;
      job.onProgress?.({ phase: "vectors", done: finished, total: count, tokens });
    }),
  );
}

async function mergeAndIndex(db: Database, buildId: number, outDir: string, p: BuildParameters, onProgress?: ProgressListener): Promise<void> {
  await mergeShardVectors(
    outDir,
    p,
    (await listShards(db, buildId)).map((s) => s.shard),
  );
  const vectors = await readVectorFile(indexPath(outDir, "vectors"));
  // Per-layer graphs: a masked query on the full graph loses recall when it keeps few coordinates.
  for (const graph of await indexGraphs(outDir)) await buildGraph(outDir, p, graph, vectors, onProgress);
}
