/**
 * `influence serve` as a function: an index folder behind the GraphQL server, with the engine in
 * a pool of worker threads (each opens the index itself) and the database in the main thread.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type Database, migrate, openDatabase } from "../db/index.js";
import type { EngineWorkerData } from "../engine/engine-worker.js";
import { indexPath, readIndexManifest } from "../indexer/index-manifest.js";
import { readConfig } from "../model/config.js";
import { openTokenizer } from "../tokenizer/open-tokenizer.js";
import { spawnTsWorker } from "../workers/spawn-worker.js";
import { type RunningServer, type ServerOptions, startServer } from "./app.js";
import { PooledEngine } from "../engine/pooled-engine.js";
import { WorkerPool } from "../workers/worker-pool.js";
import type { Device } from "../runtime/device.js";
import { workerRuntime } from "../runtime/session.js";

export interface IndexServerOptions extends Omit<ServerOptions, "engine" | "db" | "tokenizer" | "enginePool"> {
  indexDir: string;
  /** PostgreSQL URL; default: the index's embedded database, or the server it was built with. */
  databaseUrl?: string;
  /** Engine worker threads. */
  workers: number;
  /** Execution provider of the engine workers' model passes; INFLUENCE_DEVICE by default. */
  device?: Device;
  /** Requests allowed to wait for a worker before SERVER_BUSY. */
  maxQueue: number;
  /** Per-request limit, queueing included. */
  timeoutMs: number;
}

/** The built web UI (dashboard and playground), when `npm run build:web` has produced it. */
export function defaultWebRoot(): string | undefined {
  const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../dist/web");
  return existsSync(path.join(dir, "index.html")) ? dir : undefined;
}

export async function startIndexServer(options: IndexServerOptions): Promise<RunningServer & { close(): Promise<void> }> {
  const { indexDir, databaseUrl, workers, device, maxQueue, timeoutMs, ...serverOptions } = options;
  const manifest = await readIndexManifest(indexDir);
  const url = databaseUrl ?? (manifest.database.kind === "postgres" ? manifest.database.url : undefined);
  const db: Database = await openDatabase(url ? { url } : { dataDir: indexPath(path.resolve(indexDir), "database") });
  let pool: WorkerPool | undefined;
  try {
    await migrate(db);
    const tokenizer = await openTokenizer(manifest.model.path, (await readConfig(manifest.model.path)).vocabSize);
    const data: EngineWorkerData = { indexDir: path.resolve(indexDir), runtime: workerRuntime(device, workers) };
    pool = new WorkerPool({ spawn: () => spawnTsWorker(new URL("../engine/engine-worker.ts", import.meta.url), data), size: workers, maxQueue, timeoutMs });
    const engine = await PooledEngine.open(pool);
    const running = await startServer({ ...serverOptions, engine, enginePool: pool, db, tokenizer });
    const openPool = pool;
    return {
      ...running,
      close: async () => {
        await running.close();
        await openPool.close();
        await db.close();
      },
    };
  } catch (err) {
    await pool?.close();
    await db.close();
    throw err;
  }
}
