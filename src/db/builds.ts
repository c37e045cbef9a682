import { InputError } from "../util/errors.js";
import { isUniqueViolation } from "./sql.js";
import type { Database, Queryable } from "./types.js";
import { INT4_MAX, requireInt, requireNumberRecord, requireText } from "./validate.js";

export type BuildStatus = "running" | "completed" | "failed";

/** One `influence build` run. */
export interface IndexBuild {
  id: number;
  corpusId: number;
  status: BuildStatus;
  parameters: Record<string, unknown>;
  startedAt: Date;
  finishedAt: Date | null;
  /** Seconds per phase. */
  phaseTimings: Record<string, number>;
  counts: Record<string, number>;
  error: string | null;
}

export interface BuildShard {
  buildId: number;
  shard: number;
  firstOrdinal: number;
  lastOrdinal: number;
  status: "pending" | "done";
  vectorFile: string | null;
  finishedAt: Date | null;
}

const BUILD_COLUMNS = `id, corpus_id AS "corpusId", status, parameters, started_at AS "startedAt", finished_at AS "finishedAt",
  phase_timings AS "phaseTimings", counts, error`;
const SHARD_COLUMNS = `build_id AS "buildId", shard, first_ordinal AS "firstOrdinal", last_ordinal AS "lastOrdinal", status,
  vector_file AS "vectorFile", finished_at AS "finishedAt"`;

/** Records a new running build. Refused while another build of the corpus is marked running. */
export async function startBuild(db: Queryable, corpusId: number, parameters: Record<string, unknown>): Promise<IndexBuild> {
  try {
    const { rows } = await db.query<IndexBuild>(`INSERT INTO index_builds (corpus_id, parameters) VALUES ($1, $2::jsonb) RETURNING ${BUILD_COLUMNS}`, [
      corpusId,
      JSON.stringify(parameters),
    ]);
    return rows[0];
  } catch (err) {
    if (!isUniqueViolation(err, "index_builds_one_running")) throw err;
    const running = await latestBuild(db, corpusId);
    throw new InputError(
      `build ${running?.id} of this corpus, started ${running?.startedAt.toISOString()}, is still marked running: ` +
        `resume it, or if its process died, mark it failed first`,
      { cause: err },
    );
  }
}

/** Adds (or replaces) the duration of one phase of a running build. */
export async function recordBuildPhase(db: Queryable, buildId: number, phase: string, seconds: number): Promise<void> {
  requireText("phase", phase, 100);
  requireNumberRecord("phase timings", { [phase]: seconds });
  const { rowCount } = await db.query(
    `UPDATE index_builds SET phase_timings = phase_timings || jsonb_build_object($2::text, $3::float8)
     WHERE id = $1 AND status = 'running'`,
    [buildId, phase, seconds],
  );
  if (rowCount === 0) throw await notRunning(db, buildId);
}

/** Ends a running build as completed (with its counts) or failed (with the error). */
export async function finishBuild(
  db: Queryable,
  buildId: number,
  outcome: { status: "completed"; counts: Record<string, number> } | { status: "failed"; error: string; counts?: Record<string, number> },
): Promise<IndexBuild> {
  const counts = requireNumberRecord("counts", outcome.counts ?? {});
  const error = outcome.status === "failed" ? requireText("error", outcome.error, 100_000) : null;
  const { rows } = await db.query<IndexBuild>(
    `UPDATE index_builds SET status = $2, finished_at = now(), counts = counts || $3::jsonb, error = $4
     WHERE id = $1 AND status = 'running' RETURNING ${BUILD_COLUMNS}`,
    [buildId, outcome.status, JSON.stringify(counts), error],
  );
  if (rows.length === 0) throw await notRunning(db, buildId);
  return rows[0];
}

/** Marks a failed build running again, to resume it from its finished shards. */
export async function reopenBuild(db: Queryable, buildId: number): Promise<IndexBuild> {
  try {
    const { rows } = await db.query<IndexBuild>(
      `UPDATE index_builds SET status = 'running', finished_at = NULL, error = NULL
       WHERE id = $1 AND status = 'failed' RETURNING ${BUILD_COLUMNS}`,
      [buildId],
    );
    if (rows.length === 1) return rows[0];
  } catch (err) {
    if (isUniqueViolation(err, "index_builds_one_running"))
      throw new InputError(`cannot reopen build ${buildId}: another build of its corpus is running`, { cause: err });
    throw err;
  }
  const build = await getBuild(db, buildId);
  throw new InputError(build ? `build ${buildId} is ${build.status}, not failed: only a failed build can be reopened` : `no build ${buildId}`);
}

export async function getBuild(db: Queryable, buildId: number): Promise<IndexBuild | null> {
  const { rows } = await db.query<IndexBuild>(`SELECT ${BUILD_COLUMNS} FROM index_builds WHERE id = $1`, [buildId]);
  return rows[0] ?? null;
}

/** The corpus's most recently started build, or null if it has none. */
export async function latestBuild(db: Queryable, corpusId: number): Promise<IndexBuild | null> {
  const { rows } = await db.query<IndexBuild>(`SELECT ${BUILD_COLUMNS} FROM index_builds WHERE corpus_id = $1 ORDER BY started_at DESC, id DESC LIMIT 1`, [
    corpusId,
  ]);
  return rows[0] ?? null;
}

async function notRunning(db: Queryable, buildId: number): Promise<InputError> {
  const build = await getBuild(db, buildId);
  return new InputError(build ? `build ${buildId} is already ${build.status}` : `no build ${buildId}`);
}

/**
 * Records the shards a build will write. Idempotent: a resumed build plans the same shards again; a
 * shard already planned with a different ordinal range is an error (the plan must not change).
 */
export async function planShards(
  db: Database,
  buildId: number,
  shards: readonly { shard: number; firstOrdinal: number; lastOrdinal: number }[],
): Promise<void> {
  if (shards.length === 0) return;
  for (const s of shards) {
    requireInt("shard", s.shard, 0, INT4_MAX);
    requireInt("first ordinal", s.firstOrdinal, 0, INT4_MAX);
    requireInt("last ordinal", s.lastOrdinal, s.firstOrdinal, INT4_MAX);
  }
  const columns = [buildId, shards.map((s) => s.shard), shards.map((s) => s.firstOrdinal), shards.map((s) => s.lastOrdinal)];
  await db.transaction(async (tx) => {
    await tx.query(
      `INSERT INTO build_shards (build_id, shard, first_ordinal, last_ordinal)
       SELECT $1::integer, * FROM unnest($2::integer[], $3::integer[], $4::integer[])
       ON CONFLICT (build_id, shard) DO NOTHING`,
      columns,
    );
    const { rows } = await tx.query<{ shard: number }>(
      `SELECT b.shard FROM build_shards b JOIN unnest($2::integer[], $3::integer[], $4::integer[]) AS p(shard, first_ordinal, last_ordinal)
         ON p.shard = b.shard
       WHERE b.build_id = $1 AND (b.first_ordinal, b.last_ordinal) <> (p.first_ordinal, p.last_ordinal)
       ORDER BY b.shard LIMIT 1`,
      columns,
    );
    if (rows.length > 0) throw new InputError(`build ${buildId} already has shard ${rows[0].shard} with a different ordinal range`);
  });
}

/**
 * Marks a shard's vectors written to `vectorFile`. Idempotent: marking it done again with the same
 * file returns the shard unchanged (first finish time kept); with another file it is an error.
 */
export async function markShardDone(db: Queryable, buildId: number, shard: number, vectorFile: string): Promise<BuildShard> {
  requireText("vector file", vectorFile, 1000);
  const { rows } = await db.query<BuildShard>(
    `UPDATE build_shards SET status = 'done', vector_file = $3, finished_at = now()
     WHERE build_id = $1 AND shard = $2 AND status = 'pending' RETURNING ${SHARD_COLUMNS}`,
    [buildId, shard, vectorFile],
  );
  if (rows.length === 1) return rows[0];
  const existing = await db.query<BuildShard>(`SELECT ${SHARD_COLUMNS} FROM build_shards WHERE build_id = $1 AND shard = $2`, [buildId, shard]);
  const done = existing.rows[0];
  if (!done) throw new InputError(`build ${buildId} has no shard ${shard}: plan it first`);
  if (done.vectorFile !== vectorFile) throw new InputError(`shard ${shard} of build ${buildId} is already done with ${done.vectorFile}, not ${vectorFile}`);
  return done;
}

/** The build's shards in shard order. */
export async function listShards(db: Queryable, buildId: number): Promise<BuildShard[]> {
  const { rows } = await db.query<BuildShard>(`SELECT ${SHARD_COLUMNS} FROM build_shards WHERE build_id = $1 ORDER BY shard`, [buildId]);
  return rows;
}
