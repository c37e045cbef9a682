/**
 * `influence serve` as a function: index folders behind the GraphQL server, each with its engine in
 * its own pool of worker threads and its own database, opened in the main thread. Each worker reads
 * an index's large read-only arrays (factors, projections, vectors, sketch) itself, or, when they
 * are to be shared (engine/serve-memory.ts), the main thread reads them once into shared memory for
 * all its workers; each worker opens the rest itself (its model, the HNSW graphs where HNSW searches the first tier,
 * the token store).
 */
import os from "node:os";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type Database, migrate, openDatabase } from "../db/index.js";
import type { EngineWorkerData } from "../engine/engine-worker.js";
import { openSharedIndexArrays } from "../engine/index-arrays.js";
import type { ArraySharing } from "../engine/serve-memory.js";
import { indexPath, readIndexManifest } from "../indexer/index-manifest.js";
import { modelTokenizer } from "../model/open-model.js";
import { spawnTsWorker } from "../workers/spawn-worker.js";
import { type IndexBackend, type RunningServer, type ServerOptions, startServer } from "./app.js";
import { PooledEngine } from "../engine/pooled-engine.js";
import { WorkerPool } from "../workers/worker-pool.js";
import type { Device } from "../runtime/device.js";
import { type RuntimeOptions, workerRuntime } from "../runtime/session.js";
import { checkIndexName, checkIndexNames } from "../server/index-names.js";
import { InputError } from "../util/errors.js";
import { type BusyEngines, busyEngines } from "../engine/busy-engines.js";

/** An index folder to serve, and its name (the folder's own name when not given). */
export interface IndexFolder {
  dir: string;
  name?: string;
}

export interface IndexServerOptions extends Omit<ServerOptions, "indexes"> {
  /** The first is the default index of queries that name none. */
  indexes: IndexFolder[];
  /** PostgreSQL URL of every index; default: each index's embedded database, or the server it was built with. */
  databaseUrl?: string;
  /** Engine worker threads of each index. */
  workers: number;
  /** Execution provider of the engine workers' model passes; INFLUENCE_DEVICE by default. */
  device?: Device;
  /** Requests allowed to wait for a worker of an index before SERVER_BUSY. */
  maxQueue: number;
  /** Per-request limit, queueing included. */
  timeoutMs: number;
  /** Who holds each index's arrays (planServeMemory chooses); default a copy per worker. */
  arraySharing?: ArraySharing;
}

/** The built web UI (dashboard and playground), when `npm run build:web` has produced it. */
export function defaultWebRoot(): string | undefined {
  const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../dist/web");
  return existsSync(path.join(dir, "index.html")) ? dir : undefined;
}

/** The indexes' names and resolved folders, checked before anything is opened: valid, unique names, no folder twice. */
export function namedIndexFolders(indexes: readonly IndexFolder[]): Array<Required<IndexFolder>> {
  const named = indexes.map(({ dir, name }) => {
    const resolved = path.resolve(dir);
    if (name !== undefined) return { dir: resolved, name: checkIndexName(name, `--index ${name}=${dir}`) };
    const folderName = path.basename(resolved);
    checkIndexName(folderName, `--index ${dir} (named after its folder; name it with --index NAME=${dir})`);
    return { dir: resolved, name: folderName };
  });
  checkIndexNames(named.map((index) => index.name));
  const twice = named.find((index, i) => named.findIndex((other) => other.dir === index.dir) !== i);
  if (twice) throw new InputError(`--index: the folder ${twice.dir} is given twice (each index opens its own database there)`);
  return named;
}

export async function startIndexServer(options: IndexServerOptions): Promise<RunningServer & { close(): Promise<void> }> {
  const { indexes, databaseUrl, workers, device, maxQueue, timeoutMs, arraySharing = "per-worker", ...serverOptions } = options;
  const folders = namedIndexFolders(indexes);
  // The cores are shared among the workers of every index: a comparison keeps them all busy.
  const runtime = workerRuntime(device, workers * folders.length);
  const busy = busyEngines(os.availableParallelism());
  const opened: OpenedIndex[] = [];
  try {
    for (const folder of folders) opened.push(await openIndex(folder, { databaseUrl, workers, runtime, busy, maxQueue, timeoutMs, arraySharing }));
    const running = await startServer({ ...serverOptions, indexes: opened.map((index) => index.backend) });
    return {
      ...running,
      close: async () => {
        await running.close();
        await closeAll(opened);
      },
    };
  } catch (err) {
    await closeAll(opened);
    throw err;
  }
}

interface OpenedIndex {
  backend: IndexBackend;
  close(): Promise<void>;
}

async function openIndex(
  { dir, name }: Required<IndexFolder>,
  options: {
    databaseUrl?: string;
    workers: number;
    runtime: Required<RuntimeOptions>;
    busy: BusyEngines;
    maxQueue: number;
    timeoutMs: number;
    arraySharing: ArraySharing;
  },
): Promise<OpenedIndex> {
  const manifest = await readIndexManifest(dir);
  const url = options.databaseUrl ?? (manifest.database.kind === "postgres" ? manifest.database.url : undefined);
  const db: Database = await openDatabase(url ? { url } : { dataDir: indexPath(dir, "database") });
  let pool: WorkerPool | undefined;
  try {
    await migrate(db);
    const { model, tokenizer } = await modelTokenizer(manifest.model.path);
    // Given to every worker, a replacement of a crashed one too: the arrays' SharedArrayBuffers are shared, not copied.
    const arrays = options.arraySharing === "shared" ? await openSharedIndexArrays(dir, manifest, model.modules) : undefined;
    const data: EngineWorkerData = { indexDir: dir, runtime: options.runtime, busy: options.busy, ...(arrays ? { arrays } : {}) };
    const { workers: size, maxQueue, timeoutMs } = options;
    pool = new WorkerPool({ spawn: () => spawnTsWorker(new URL("../engine/engine-worker.ts", import.meta.url), data), size, maxQueue, timeoutMs });
    const engine = await PooledEngine.open(pool);
    const openPool = pool;
    return {
      backend: { name, engine, db, tokenizer, enginePool: pool },
      close: async () => {
        // A request that timed out may still be running in its worker: terminated inside an ONNX Runtime run, it aborts the process.
        await openPool.close({ finishRunning: true });
        await db.close();
      },
    };
  } catch (err) {
    await pool?.close();
    await db.close();
    throw err;
  }
}

async function closeAll(indexes: readonly OpenedIndex[]): Promise<void> {
  for (const index of indexes) await index.close();
}
