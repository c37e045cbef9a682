import type { RequestHandler } from "express";
import type { Database } from "../db/index.js";
import type { PoolMetricsSource } from "./metrics.js";

/** Longest wait for the database's answer: a health check must answer quickly even when the database hangs. */
const DATABASE_CHECK_MS = 1000;

/**
 * `/healthz`: 200 while the process serves HTTP, with whether the database answers and the engine
 * pool's load. Engine work runs in worker threads, so this stays fast during heavy queries.
 */
export function healthCheck(db: Database, pool?: PoolMetricsSource): RequestHandler {
  return async (_req, res) => {
    const database = await checkDatabase(db);
    res.json({ status: database.ok ? "ok" : "degraded", database, ...(pool && { engine: pool.metrics() }) });
  };
}

async function checkDatabase(db: Database): Promise<{ ok: boolean; latencyMs: number; error?: string }> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${DATABASE_CHECK_MS} ms`)), DATABASE_CHECK_MS);
  });
  try {
    await Promise.race([db.query("SELECT 1"), timeout]);
    return { ok: true, latencyMs: performance.now() - started };
  } catch (err) {
    return { ok: false, latencyMs: performance.now() - started, error: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
  }
}
