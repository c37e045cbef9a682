/**
 * The memory of serving indexes. Each index's large read-only arrays (index-arrays.ts: the EK-FAC
 * factors and their inverse scales, the projections, the first tier's vectors and the sketch) are
 * held either by every engine worker, its factors in ordinary memory, or once, read by the server
 * into memory all the index's workers share; but for the projections, small and fed to ONNX Runtime
 * (which reads no shared memory) on every query, which every worker holds itself. Shared memory
 * costs time on exact scoring: a re-ranked query copies the factors its gradients use (the vector
 * files' rows are scored in place either way). So the workers hold their own copies whenever that
 * fits the budget (planServeMemory). Either way, every engine worker holds the rest itself: its
 * own model (threads cannot share weights), the HNSW graphs (where HNSW searches the first tier),
 * the token store and its scoring
 * helper thread (indexer/scoring-helper.ts), and it runs one sequence at a time, at most the
 * model's context. The arrays are read a tensor of the factors at a time (ekfac/artifacts.ts
 * loadFactors: the largest stored tensor beside what is already converted): shared, by the server
 * before the workers start; otherwise by every worker as it starts. The workers of all indexes
 * start at once, so their checkpoints are read at the same time.
 */
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { PGLITE_RESIDENT_BYTES } from "../db/pglite-database.js";
import { loadedFactorsBytes } from "../ekfac/artifacts.js";
import { indexFiles, indexPath, readIndexManifest } from "../indexer/index-manifest.js";
import { scanCopyBytes, scansFirstTier } from "../indexer/scan-search.js";
import { scoringHelperBytes } from "../indexer/scoring-helper.js";
import { layoutOf } from "../model/architectures.js";
import { batchBytesPerToken } from "../model/batch-budget.js";
import { largestTensorBytes } from "../model/checkpoint.js";
import { readConfig } from "../model/config.js";
import {
  type MemoryBudget,
  type MemoryEstimate,
  type MemoryPart,
  PROCESS_BASELINE_BYTES,
  WORKER_THREAD_BYTES,
  modelMemory,
  peakOf,
} from "../model/memory-estimate.js";
import { inputWidth } from "../model/model.js";
import { INDEX_ARRAY_FILES } from "./index-arrays.js";

/** Bytes of the files in `dir` (not its subfolders) that `keep` accepts. */
async function filesBytes(dir: string, keep: (name: string) => boolean): Promise<number> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const sizes = await Promise.all(entries.filter((e) => e.isFile() && keep(e.name)).map(async (e) => (await stat(path.join(dir, e.name))).size));
  return sizes.reduce((a, b) => a + b, 0);
}

/** The index files the arrays are read from, by name. */
const ARRAY_FILES: ReadonlySet<string> = new Set(INDEX_ARRAY_FILES.map((file) => indexFiles[file]));
/** Of those, the projections: held in ordinary memory by whoever reads the arrays, and by every worker (index-arrays.ts). */
const PROJECTION_FILES: ReadonlySet<string> = new Set([indexFiles.projection, indexFiles.sketchProjection]);

/**
 * What the engine reads of an index folder: its arrays, the factors (their stored tensors, and the
 * largest of them; not the covariances, which only the fit needs), the projections and the vector
 * files; and what each worker reads itself, every other file but the manifest and the build's
 * state (the token store, and the HNSW graphs unless the first tier is `scanned`).
 */
async function indexBytes(
  dir: string,
  scanned: boolean,
): Promise<{ arrays: { factors: { total: number; largest: number }; tiers: number; projections: number }; perWorker: number }> {
  const factors = await loadedFactorsBytes(indexPath(dir, "factors"));
  const projections = await filesBytes(dir, (name) => PROJECTION_FILES.has(name));
  const tiers = await filesBytes(dir, (name) => ARRAY_FILES.has(name) && !PROJECTION_FILES.has(name));
  const perWorker = await filesBytes(
    dir,
    (name) => !ARRAY_FILES.has(name) && name !== indexFiles.manifest && name !== indexFiles.buildState && !(scanned && name.startsWith(indexFiles.hnsw)),
  );
  return { arrays: { factors, tiers, projections }, perWorker };
}

/** Who holds an index's arrays: every engine worker its own copy, or one copy the workers share. */
export type ArraySharing = "per-worker" | "shared";

/**
 * The peak of serving these index folders with `workers` engine workers each, holding the arrays as
 * `sharing` says; `databaseUrl` is serve's --database (else an index built without one opens its
 * embedded database here).
 */
export async function serveEstimate(indexDirs: readonly string[], workers: number, sharing: ArraySharing, databaseUrl?: string): Promise<MemoryEstimate> {
  const loading: MemoryPart[] = [{ what: "the process (Node, ONNX Runtime)", bytes: PROCESS_BASELINE_BYTES }];
  const reading: MemoryPart[] = [...loading];
  const running: MemoryPart[] = [...loading];
  for (const dir of indexDirs) {
    const manifest = await readIndexManifest(dir);
    if (!databaseUrl && manifest.database.kind === "pglite") {
      const database = { what: "embedded databases (PGlite)", bytes: PGLITE_RESIDENT_BYTES.opened };
      loading.push(database);
      reading.push(database);
      running.push(database);
    }
    const cfg = await readConfig(manifest.model.path);
    const model = modelMemory(cfg, await largestTensorBytes(manifest.model.path), cfg.contextLength * batchBytesPerToken(cfg));
    const scanned = scansFirstTier(manifest.vectors);
    const { arrays, perWorker } = await indexBytes(dir, scanned);
    // The inverse scales 1 / (Lambda + damping): a float32 [out, in+1] per module, beside Lambda.
    const inverses = layoutOf(cfg)
      .modules(cfg)
      .reduce((sum, m) => sum + 4 * m.outFeatures * inputWidth(m), 0);
    const whose = sharing === "shared" ? "shared by the workers" : "per worker";
    const held = [
      { what: `EK-FAC factors and inverse scales (${whose})`, bytes: arrays.factors.total + inverses },
      // The first tier's int8 copy, when it is scanned (indexer/scan-search.ts), beside its file's rows.
      { what: `vectors and sketches (${whose})`, bytes: arrays.tiers + scanCopyBytes(manifest.vectors) },
    ];
    const beingRead = { what: "factor tensor being read", bytes: arrays.factors.largest };
    // Never shared: the server's copy (when it reads the shared arrays) and every worker's.
    const projections = { what: "projections (per reader)", bytes: arrays.projections };
    const index = { what: `${scanned ? "" : "HNSW graphs and "}token stores (per worker)`, bytes: perWorker };
    const thread = { what: "worker thread", bytes: WORKER_THREAD_BYTES };
    const helper = {
      what: "scoring helper thread (per worker)",
      bytes: scoringHelperBytes(manifest.vectors.count, Math.max(manifest.vectors.dim, manifest.sketch?.dim ?? 0)),
    };
    if (sharing === "shared") {
      reading.push(...held, projections, beingRead);
      loading.push(...held, projections);
      running.push(...held, projections);
    }
    for (let w = 0; w < workers; w++) {
      loading.push(thread, ...model.loading, projections, ...(sharing === "per-worker" ? [...held, beingRead] : []));
      running.push(thread, helper, ...model.running, index, projections, ...(sharing === "per-worker" ? held : []));
    }
  }
  return peakOf([
    ...(sharing === "shared" ? [{ phase: "reading the shared arrays", parts: reading }] : []),
    { phase: "starting the engine workers", parts: loading },
    { phase: "serving", parts: running },
  ]);
}

export interface ServeMemoryPlan {
  sharing: ArraySharing;
  /** The peak with that sharing. */
  estimate: MemoryEstimate;
  /** The peak with a copy of the arrays per worker, whichever sharing was chosen. */
  perWorker: MemoryEstimate;
}

/**
 * How to hold the indexes' arrays under `budget`: every worker its own copy (the faster) when that
 * fits the budget or there is one worker, else one shared copy, whose estimate the caller checks
 * against the budget.
 */
export async function planServeMemory(indexDirs: readonly string[], workers: number, budget: MemoryBudget, databaseUrl?: string): Promise<ServeMemoryPlan> {
  const perWorker = await serveEstimate(indexDirs, workers, "per-worker", databaseUrl);
  if (workers === 1 || perWorker.bytes <= budget.bytes) return { sharing: "per-worker", estimate: perWorker, perWorker };
  return { sharing: "shared", estimate: await serveEstimate(indexDirs, workers, "shared", databaseUrl), perWorker };
}
