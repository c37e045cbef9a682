import type { Queryable } from "./types.js";
import { requireInt, requireNumberRecord } from "./validate.js";

/** One GraphQL influence query, as served. */
export interface QueryLogEntry {
  id: number;
  createdAt: Date;
  parameters: Record<string, unknown>;
  /** Milliseconds per step. */
  timings: Record<string, number>;
  /** External ids of the most influential sequences, best first. */
  topHitIds: string[];
  error: string | null;
}

export const MAX_RECENT_QUERIES = 1000;

export async function logQuery(
  db: Queryable,
  entry: { parameters: Record<string, unknown>; timings: Record<string, number>; topHitIds: readonly string[]; error?: string | null },
): Promise<number> {
  requireNumberRecord("timings", entry.timings);
  const { rows } = await db.query<{ id: number }>(
    `INSERT INTO query_log (parameters, timings, top_hit_ids, error) VALUES ($1::jsonb, $2::jsonb, $3::text[], $4) RETURNING id`,
    [JSON.stringify(entry.parameters), JSON.stringify(entry.timings), entry.topHitIds, entry.error ?? null],
    // Every query's: planned once per session.
    { name: "log-query" },
  );
  return rows[0].id;
}

/** The latest `limit` logged queries, newest first. */
export async function recentQueries(db: Queryable, limit: number): Promise<QueryLogEntry[]> {
  requireInt("limit", limit, 1, MAX_RECENT_QUERIES);
  const { rows } = await db.query<QueryLogEntry>(
    `SELECT id, created_at AS "createdAt", parameters, timings, top_hit_ids AS "topHitIds", error
     FROM query_log ORDER BY created_at DESC, id DESC LIMIT $1`,
    [limit],
  );
  return rows;
}
