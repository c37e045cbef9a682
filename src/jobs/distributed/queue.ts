/**
 * The job queue: pg-boss, in its own schema of the build's database. Chosen over graphile-worker for
 * how it recovers the job of a worker that died: pg-boss gives every job an expiration (here
 * --job-timeout) after which any running instance's maintenance puts it back in the queue for
 * another worker, so a job lost with its machine is retried within job timeout + maintenance
 * interval. graphile-worker (Node) frees a dead worker's locked job only after a fixed 4 hours.
 *
 * pg-boss delivers and retries; whether a job is done, and which stage is queued, is in
 * build_jobs / distributed_builds, changed in one transaction with the queueing of the next stage.
 */
import os from "node:os";
import PgBoss from "pg-boss";
import {
  type Database,
  type Queryable,
  addBuildJobs,
  finishBuild,
  finishBuildJob,
  getBuild,
  lockBuildStage,
  setBuildStage,
  unfinishedJobs,
} from "../../db/index.js";
import { type DistributedPlan, type JobSpec, STAGES, jobName, phaseOf } from "./plan.js";

export const QUEUE = "influence-build";
const SCHEMA = "pgboss";

/** What a queued job carries: the rest is its build_jobs row. */
export interface QueuedJob {
  buildId: number;
  name: string;
}

/** This process, as build_jobs and `influence build status` name it. */
export const WORKER_ID = `${os.hostname()}:${process.pid}`;

export interface QueueOptions {
  /** How often this instance looks for expired jobs (a dead worker's) to retry. */
  maintenanceSeconds?: number;
  /** How often an idle worker asks for a job. */
  pollingSeconds?: number;
}

/** Connects to the queue, creating its schema and queue on first use. */
export async function openQueue(databaseUrl: string, { maintenanceSeconds = 10 }: QueueOptions = {}): Promise<PgBoss> {
  const boss = new PgBoss({ connectionString: databaseUrl, schema: SCHEMA, max: 4, schedule: false, maintenanceIntervalSeconds: maintenanceSeconds });
  // Connection errors are retried by pg-boss; they must not become uncaught exceptions.
  boss.on("error", (err) => console.error(`influence: job queue: ${err.message}`));
  await boss.start();
  if (!(await boss.getQueue(QUEUE))) {
    await boss.createQueue(QUEUE).catch(async (err) => {
      // Another process created it first.
      if (!(await boss.getQueue(QUEUE))) throw err;
    });
  }
  return boss;
}

/** pg-boss statements run inside our transaction. */
const inTransaction = (tx: Queryable): PgBoss.Db => ({ executeSql: (text, values) => tx.query(text, values) });

/**
 * Queues the first stage from `stage` on that has jobs (a stage may have none, e.g. the PCA sample
 * with a random basis), inside the caller's transaction.
 */
export async function queueStage(tx: Queryable, boss: PgBoss, buildId: number, plan: DistributedPlan, outDir: string, stage: number): Promise<void> {
  for (let s = stage; s < STAGES.length; s++) {
    const specs: JobSpec[] = await STAGES[s](plan, outDir);
    if (specs.length === 0) continue;
    await addBuildJobs(
      tx,
      buildId,
      s,
      specs.map((spec) => ({ name: jobName(spec), phase: phaseOf(spec), spec })),
    );
    await boss.insert(
      specs.map((spec) => ({
        name: QUEUE,
        data: { buildId, name: jobName(spec) } satisfies QueuedJob,
        retryLimit: plan.queue.retries,
        retryDelay: 1,
        expireInSeconds: plan.queue.jobTimeoutSeconds,
      })),
      { db: inTransaction(tx) },
    );
    await setBuildStage(tx, buildId, s);
    return;
  }
}

/**
 * Marks a job done and, if it was the last of the current stage, queues the next stage: one
 * transaction, so that a worker dying in between leaves either both or neither.
 */
export async function completeJob(
  db: Database,
  boss: PgBoss,
  job: { buildId: number; name: string; stage: number },
  plan: DistributedPlan,
  outDir: string,
  covered: { sequences: number; tokens: number },
): Promise<void> {
  await db.transaction(async (tx) => {
    const stage = await lockBuildStage(tx, job.buildId);
    if (!(await finishBuildJob(tx, job.buildId, job.name, covered))) return;
    if (job.stage === stage && (await unfinishedJobs(tx, job.buildId, stage)) === 0 && stage + 1 < STAGES.length) {
      await queueStage(tx, boss, job.buildId, plan, outDir, stage + 1);
    }
  });
}

/**
 * A job the queue gave up on without a worker reporting it (its last attempt's worker died, or
 * the attempt ran past the job timeout) fails its build, naming the job.
 */
export async function failBuildOfLostJobs(db: Database, buildId: number): Promise<void> {
  const build = await getBuild(db, buildId);
  if (build?.status !== "running") return;
  const { rows } = await db.query<{ name: string; retries: number; message: string | null }>(
    `SELECT j.data->>'name' AS name, j.retry_count AS retries, j.output->'value'->>'message' AS message
     FROM ${SCHEMA}.job j JOIN build_jobs b ON b.build_id = $2 AND b.name = j.data->>'name'
     WHERE j.name = $1 AND j.state = 'failed' AND (j.data->>'buildId')::int = $2 AND b.status <> 'done'
     LIMIT 1`,
    [QUEUE, buildId],
  );
  if (rows.length === 0) return;
  const { name, retries, message } = rows[0];
  await finishBuild(db, buildId, {
    status: "failed",
    error: `job ${name} failed after ${retries + 1} attempts: ${message ?? "no error recorded"}`,
  }).catch(() => undefined);
}
