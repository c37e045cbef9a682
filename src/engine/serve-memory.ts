/**
 * The memory of serving indexes. The server reads each index's large read-only arrays once, into
 * memory that all the index's engine workers share (index-arrays.ts): the EK-FAC factors and their
 * inverse scales, the projections, the first tier's vectors and the sketch. Every engine worker
 * holds the rest itself: its own model (threads cannot share weights), the HNSW graphs and the
 * token store, and it runs one sequence at a time, at most the model's context. The shared arrays
 * are read before the workers start, the factors a tensor at a time (ekfac/artifacts.ts loadFactors:
 * the largest stored tensor beside what is already converted); the workers of all indexes start at
 * once, so their checkpoints are read at the same time, beside the shared arrays.
 */
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { PGLITE_RESIDENT_BYTES } from "../db/pglite-database.js";
import { loadedFactorsBytes } from "../ekfac/artifacts.js";
import { indexFiles, indexPath, readIndexManifest } from "../indexer/index-manifest.js";
import { layoutOf } from "../model/architectures.js";
import { batchBytesPerToken } from "../model/batch-budget.js";
import { largestTensorBytes } from "../model/checkpoint.js";
import { readConfig } from "../model/config.js";
import { type MemoryEstimate, type MemoryPart, PROCESS_BASELINE_BYTES, WORKER_THREAD_BYTES, modelMemory, peakOf } from "../model/memory-estimate.js";
import { inputWidth } from "../model/model.js";
import { INDEX_ARRAY_FILES } from "./index-arrays.js";

/** Bytes of the files in `dir` (not its subfolders) that `keep` accepts. */
async function filesBytes(dir: string, keep: (name: string) => boolean): Promise<number> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const sizes = await Promise.all(entries.filter((e) => e.isFile() && keep(e.name)).map(async (e) => (await stat(path.join(dir, e.name))).size));
  return sizes.reduce((a, b) => a + b, 0);
}

/** The index files the shared arrays are read from, by name. */
const SHARED_FILES: ReadonlySet<string> = new Set(INDEX_ARRAY_FILES.map((file) => indexFiles[file]));

/**
 * What the engine reads of an index folder: shared, the factors (their stored tensors, and the
 * largest of them; not the covariances, which only the fit needs), the projections and the vector files; per worker, every
 * other file but the manifest and the build's state (the HNSW graphs, the token store).
 */
async function indexBytes(dir: string): Promise<{ shared: { factors: { total: number; largest: number }; tiers: number }; perWorker: number }> {
  const factors = await loadedFactorsBytes(indexPath(dir, "factors"));
  const tiers = await filesBytes(dir, (name) => SHARED_FILES.has(name));
  const perWorker = await filesBytes(dir, (name) => !SHARED_FILES.has(name) && name !== indexFiles.manifest && name !== indexFiles.buildState);
  return { shared: { factors, tiers }, perWorker };
}

/**
 * The peak of serving these index folders with `workers` engine workers each; `databaseUrl` is
 * serve's --database (else an index built without one opens its embedded database here).
 */
export async function serveEstimate(indexDirs: readonly string[], workers: number, databaseUrl?: string): Promise<MemoryEstimate> {
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
    const { shared, perWorker } = await indexBytes(dir);
    // The inverse scales 1 / (Lambda + damping): a float32 [out, in+1] per module, beside Lambda.
    const inverses = layoutOf(cfg)
      .modules(cfg)
      .reduce((sum, m) => sum + 4 * m.outFeatures * inputWidth(m), 0);
    const once = [
      { what: "EK-FAC factors and inverse scales (shared by the workers)", bytes: shared.factors.total + inverses },
      { what: "projections, vectors and sketches (shared by the workers)", bytes: shared.tiers },
    ];
    reading.push(...once, { what: "factor tensor being read", bytes: shared.factors.largest });
    loading.push(...once);
    running.push(...once);
    const index = { what: "HNSW graphs and token stores (per worker)", bytes: perWorker };
    const thread = { what: "worker thread", bytes: WORKER_THREAD_BYTES };
    for (let w = 0; w < workers; w++) {
      loading.push(thread, ...model.loading);
      running.push(thread, ...model.running, index);
    }
  }
  return peakOf([
    { phase: "reading the shared arrays", parts: reading },
    { phase: "starting the engine workers", parts: loading },
    { phase: "serving", parts: running },
  ]);
}
