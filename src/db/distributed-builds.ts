/**
 * Builds planned as jobs (`influence build --distributed`): the plan, the stage reached, and each
 * job's outcome. Job delivery and retries are the queue's (pg-boss); these rows are what a worker
 * checks before doing a job (done already?) and what `influence build status` reports.
 */
import { InputError } from "../util/errors.js";
import { isUniqueViolation } from "./sql.js";
import type { Queryable } from "./types.js";
import { requireText } from "./validate.js";

export interface DistributedBuild {
  buildId: number;
  outDir: string;
  plan: Record<string, unknown>;
  stage: number;
  status: "running" | "completed" | "failed";
  error: string | null;
}

export type BuildJobStatus = "queued" | "running" | "done" | "failed";

export interface BuildJobRow {
  buildId: number;
  name: string;
  stage: number;
  phase: string;
  spec: Record<string, unknown>;
  status: BuildJobStatus;
  attempts: number;
  worker: string | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  sequences: number;
  tokens: number;
  error: string | null;
}

export interface NewBuildJob {
  name: string;
  phase: string;
  spec: object;
}

const BUILD_COLUMNS = `d.build_id AS "buildId", d.out_dir AS "outDir", d.plan, d.stage, b.status, b.error`;
const JOB_COLUMNS = `build_id AS "buildId", name, stage, phase, spec, status, attempts, worker, started_at AS "startedAt",
  finished_at AS "finishedAt", sequences, tokens::float8 AS tokens, error`;

/** Refuses an output folder that already has a distributed build (whatever its status). */
export async function refuseUsedOutDir(db: Queryable, outDir: string, cause?: unknown): Promise<void> {
  const { rows } = await db.query<DistributedBuild>(
    `SELECT ${BUILD_COLUMNS} FROM distributed_builds d JOIN index_builds b ON b.id = d.build_id WHERE d.out_dir = $1`,
    [outDir],
  );
  if (rows.length === 0) return;
  throw new InputError(
    `${outDir} is already the output folder of build ${rows[0].buildId} (${rows[0].status}): two builds in one folder would overwrite each ` +
      "other's files; plan this one into another folder",
    { cause },
  );
}

/** Records the plan of a build; refused when the output folder already has one. */
export async function planDistributedBuild(db: Queryable, buildId: number, outDir: string, plan: object): Promise<void> {
  requireText("output folder", outDir, 4096);
  try {
    await db.query("INSERT INTO distributed_builds (build_id, out_dir, plan) VALUES ($1, $2, $3::json)", [buildId, outDir, JSON.stringify(plan)]);
  } catch (err) {
    if (!isUniqueViolation(err, "distributed_builds_out_dir_key")) throw err;
    // Planned by another process since refuseUsedOutDir looked (the transaction can no longer read which).
    throw new InputError(`${outDir} was just planned as the output folder of another build: plan this one into another folder`, { cause: err });
  }
}

export async function getDistributedBuild(db: Queryable, buildId: number): Promise<DistributedBuild | null> {
  const { rows } = await db.query<DistributedBuild>(
    `SELECT ${BUILD_COLUMNS} FROM distributed_builds d JOIN index_builds b ON b.id = d.build_id WHERE d.build_id = $1`,
    [buildId],
  );
  return rows[0] ?? null;
}

/** Distributed builds, newest first; only running ones when asked. */
export async function listDistributedBuilds(db: Queryable, { running = false } = {}): Promise<DistributedBuild[]> {
  const { rows } = await db.query<DistributedBuild>(
    `SELECT ${BUILD_COLUMNS} FROM distributed_builds d JOIN index_builds b ON b.id = d.build_id
     ${running ? "WHERE b.status = 'running'" : ""} ORDER BY d.build_id DESC`,
  );
  return rows;
}

/** Adds a stage's jobs; a job already added (by a rolled-back or concurrent attempt) is kept as it is. */
export async function addBuildJobs(db: Queryable, buildId: number, stage: number, jobs: readonly NewBuildJob[]): Promise<void> {
  if (jobs.length === 0) return;
  await db.query(
    `INSERT INTO build_jobs (build_id, stage, name, phase, spec)
     SELECT $1::integer, $2::integer, * FROM unnest($3::text[], $4::text[], $5::jsonb[])
     ON CONFLICT (build_id, name) DO NOTHING`,
    [buildId, stage, jobs.map((j) => j.name), jobs.map((j) => j.phase), jobs.map((j) => JSON.stringify(j.spec))],
  );
}

/** Marks a job running on `worker` (another attempt); returns the row as it was, or null if there is no such job. */
export async function startBuildJob(db: Queryable, buildId: number, name: string, worker: string): Promise<BuildJobRow | null> {
  const { rows } = await db.query<BuildJobRow>(
    `UPDATE build_jobs SET status = 'running', attempts = attempts + 1, worker = $3, started_at = now(), error = NULL
     WHERE build_id = $1 AND name = $2 AND status <> 'done' RETURNING ${JOB_COLUMNS}`,
    [buildId, name, worker],
  );
  if (rows[0]) return rows[0];
  const done = await db.query<BuildJobRow>(`SELECT ${JOB_COLUMNS} FROM build_jobs WHERE build_id = $1 AND name = $2`, [buildId, name]);
  return done.rows[0] ?? null;
}

/** Marks a job done with what it covered; false when it was done already (a duplicate delivery). */
export async function finishBuildJob(db: Queryable, buildId: number, name: string, covered: { sequences: number; tokens: number }): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE build_jobs SET status = 'done', finished_at = now(), sequences = $3, tokens = $4, error = NULL
     WHERE build_id = $1 AND name = $2 AND status <> 'done'`,
    [buildId, name, covered.sequences, covered.tokens],
  );
  return rowCount === 1;
}

/** Records a failed attempt; `final` when the queue will not retry it. */
export async function failBuildJob(db: Queryable, buildId: number, name: string, error: string, final: boolean): Promise<void> {
  await db.query(`UPDATE build_jobs SET status = $4, error = $3 WHERE build_id = $1 AND name = $2 AND status <> 'done'`, [
    buildId,
    name,
    requireText("error", error, 100_000),
    final ? "failed" : "queued",
  ]);
}

/** Locks the build's row until the transaction ends (serialising stage changes) and returns its stage. */
export async function lockBuildStage(tx: Queryable, buildId: number): Promise<number> {
  const { rows } = await tx.query<{ stage: number }>("SELECT stage FROM distributed_builds WHERE build_id = $1 FOR UPDATE", [buildId]);
  if (!rows[0]) throw new InputError(`no distributed build ${buildId}`);
  return rows[0].stage;
}

export async function setBuildStage(tx: Queryable, buildId: number, stage: number): Promise<void> {
  await tx.query("UPDATE distributed_builds SET stage = $2 WHERE build_id = $1", [buildId, stage]);
}

/** Jobs of a stage not done yet. */
export async function unfinishedJobs(db: Queryable, buildId: number, stage: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM build_jobs WHERE build_id = $1 AND stage = $2 AND status <> 'done'", [
    buildId,
    stage,
  ]);
  return rows[0].n;
}

/** Every job of the build, in stage then name order. */
export async function listBuildJobs(db: Queryable, buildId: number): Promise<BuildJobRow[]> {
  const { rows } = await db.query<BuildJobRow>(`SELECT ${JOB_COLUMNS} FROM build_jobs WHERE build_id = $1 ORDER BY stage, name`, [buildId]);
  return rows;
}
