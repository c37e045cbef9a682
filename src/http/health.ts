import type { RequestHandler } from "express";
import type { Database } from "../db/index.js";
import type { PoolMetricsSource } from "./metrics.js";
import type { MemoryRecord } from "../model/memory-estimate.js";
import { peakResidentBytes } from "../util/memory.js";

/** Longest wait for the database's answer: a health check must answer quickly even when the database hangs. */
const DATABASE_CHECK_MS = 1000;

/** What /healthz checks of one served index. */
export interface IndexHealthSource {
  name: string;
  db: Database;
  pool?: PoolMetricsSource;
}

/**
 * `/healthz`: 200 while the process serves HTTP, with whether each index's database answers and
 * its engine pool's load (`database` and `engine` at the top are the default index's), "degraded"
 * when any database does not answer, and the process's memory: resident now, the peak so far
 * (every engine worker included: they are threads of this process) and the estimate made at start. Engine work runs in worker threads, so this stays fast during
 * heavy queries.
 */
export function healthCheck(indexes: readonly IndexHealthSource[], memory?: Omit<MemoryRecord, "peakBytes">): RequestHandler {
  return async (_req, res) => {
    const states = await Promise.all(
      indexes.map(async ({ name, db, pool }) => ({ name, database: await checkDatabase(db), ...(pool && { engine: pool.metrics() }) })),
    );
    const { name: _, ...defaultIndex } = states[0];
    res.json({
      status: states.every((s) => s.database.ok) ? "ok" : "degraded",
      ...defaultIndex,
      indexes: states,
      memory: { residentBytes: process.memoryUsage.rss(), peakBytes: peakResidentBytes(), ...memory },
    });
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
