/**
 * The memory of serving indexes: every engine worker opens its own model (threads cannot share
 * weights) and its own copy of the index (factors, projection, vectors, graphs, token store), and
 * runs one sequence at a time, at most the model's context; the workers of all indexes start at
 * once, so their checkpoints, and then their factors, are read at the same time. Both are read a
 * tensor at a time: loading holds the largest stored tensor beside what is already converted.
 */
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { PGLITE_RESIDENT_BYTES } from "../db/pglite-database.js";
import { loadedFactorsBytes } from "../ekfac/artifacts.js";
import { indexFiles, indexPath, readIndexManifest } from "../indexer/index-manifest.js";
import { batchBytesPerToken } from "../model/batch-budget.js";
import { largestTensorBytes } from "../model/checkpoint.js";
import { readConfig } from "../model/config.js";
import { type MemoryEstimate, type MemoryPart, PROCESS_BASELINE_BYTES, WORKER_THREAD_BYTES, modelMemory, peakOf } from "../model/memory-estimate.js";

/** What an engine reads of an index folder beside its factors: every file but the manifest and the build's state (not its subfolders). */
async function indexFilesBytes(dir: string): Promise<number> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const read = entries.filter((e) => e.isFile() && e.name !== indexFiles.manifest && e.name !== indexFiles.buildState);
  const sizes = await Promise.all(read.map(async (e) => (await stat(path.join(dir, e.name))).size));
  return sizes.reduce((a, b) => a + b, 0);
}

/**
 * The peak of serving these index folders with `workers` engine workers each; `databaseUrl` is
 * serve's --database (else an index built without one opens its embedded database here). A worker
 * loads its model, then its index: the factors first, a tensor at a time (ekfac/artifacts.ts
 * loadFactors), then the other files; it allocates its batch with its first query.
 */
export async function serveEstimate(indexDirs: readonly string[], workers: number, databaseUrl?: string): Promise<MemoryEstimate> {
  const loading: MemoryPart[] = [{ what: "the process (Node, ONNX Runtime)", bytes: PROCESS_BASELINE_BYTES }];
  const opening: MemoryPart[] = [...loading];
  const running: MemoryPart[] = [...loading];
  for (const dir of indexDirs) {
    const manifest = await readIndexManifest(dir);
    if (!databaseUrl && manifest.database.kind === "pglite") {
      const database = { what: "embedded databases (PGlite)", bytes: PGLITE_RESIDENT_BYTES.opened };
      loading.push(database);
      opening.push(database);
      running.push(database);
    }
    const cfg = await readConfig(manifest.model.path);
    const model = modelMemory(cfg, await largestTensorBytes(manifest.model.path), cfg.contextLength * batchBytesPerToken(cfg));
    const stored = await loadedFactorsBytes(indexPath(dir, "factors"));
    const factors = { what: "EK-FAC factors (eigenbases, eigenvalues, Lambda)", bytes: stored.total };
    const index = { what: "index files (projections, vectors, sketches, graphs, tokens)", bytes: await indexFilesBytes(dir) };
    const thread = { what: "worker thread", bytes: WORKER_THREAD_BYTES };
    for (let w = 0; w < workers; w++) {
      loading.push(thread, ...model.loading);
      opening.push(thread, ...model.opened, factors, { what: "factor tensor being read", bytes: stored.largest });
      running.push(thread, ...model.running, factors, index);
    }
  }
  return peakOf([
    { phase: "starting the engine workers", parts: loading },
    { phase: "loading the factors", parts: opening },
    { phase: "serving", parts: running },
  ]);
}
