/**
 * The memory of serving indexes: every engine worker opens its own model (threads cannot share
 * weights) and its own copy of the index (factors, projection, vectors, graphs, token store), and
 * runs one sequence at a time, at most the model's context; the workers of all indexes start at
 * once, so their checkpoints are read at the same time.
 */
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { PGLITE_RESIDENT_BYTES } from "../db/pglite-database.js";
import { indexFiles, indexPath, readIndexManifest } from "../indexer/index-manifest.js";
import { batchBytesPerToken } from "../model/batch-budget.js";
import { largestTensorBytes } from "../model/checkpoint.js";
import { readConfig } from "../model/config.js";
import { type MemoryEstimate, type MemoryPart, PROCESS_BASELINE_BYTES, WORKER_THREAD_BYTES, modelMemory, peakOf } from "../model/memory-estimate.js";

/** Bytes of the files in `dir` (not its subfolders) that `keep` accepts. */
async function filesBytes(dir: string, keep: (name: string) => boolean): Promise<number> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const sizes = await Promise.all(entries.filter((e) => e.isFile() && keep(e.name)).map(async (e) => (await stat(path.join(dir, e.name))).size));
  return sizes.reduce((a, b) => a + b, 0);
}

/** What an engine reads of an index folder: every file but the manifest and the covariances (only the fit needs A and S). */
async function indexBytes(dir: string): Promise<number> {
  const top = await filesBytes(dir, (name) => name !== indexFiles.manifest && name !== indexFiles.buildState);
  return top + (await filesBytes(indexPath(dir, "factors"), (name) => name.endsWith(".safetensors") && !name.startsWith("covariance")));
}

/**
 * The peak of serving these index folders with `workers` engine workers each; `databaseUrl` is
 * serve's --database (else an index built without one opens its embedded database here).
 */
export async function serveEstimate(indexDirs: readonly string[], workers: number, databaseUrl?: string): Promise<MemoryEstimate> {
  const loading: MemoryPart[] = [{ what: "the process (Node, ONNX Runtime)", bytes: PROCESS_BASELINE_BYTES }];
  const running: MemoryPart[] = [...loading];
  for (const dir of indexDirs) {
    const manifest = await readIndexManifest(dir);
    if (!databaseUrl && manifest.database.kind === "pglite") {
      const database = { what: "embedded databases (PGlite)", bytes: PGLITE_RESIDENT_BYTES.opened };
      loading.push(database);
      running.push(database);
    }
    const cfg = await readConfig(manifest.model.path);
    const model = modelMemory(cfg, await largestTensorBytes(manifest.model.path), cfg.contextLength * batchBytesPerToken(cfg));
    const index = { what: "index files (factors, projections, vectors, sketches, graphs, tokens)", bytes: await indexBytes(dir) };
    const thread = { what: "worker thread", bytes: WORKER_THREAD_BYTES };
    for (let w = 0; w < workers; w++) {
      loading.push(thread, ...model.loading);
      running.push(thread, ...model.running, index);
    }
  }
  return peakOf([
    { phase: "starting the engine workers", parts: loading },
    { phase: "serving", parts: running },
  ]);
}
