/**
 * `influence worker`: runs the jobs of a distributed build until the build ends. Any number of
 * workers on any number of machines may run at once; each needs the database, the shared folder
 * and a copy of the model (the plan's fingerprint is checked before any job is taken).
 */
import { setTimeout as sleep } from "node:timers/promises";
import type PgBoss from "pg-boss";
import {
  type Database,
  type DistributedBuild,
  failBuildJob,
  finishBuild,
  getBuild,
  listDistributedBuilds,
  migrate,
  openDatabase,
  startBuildJob,
} from "../../db/index.js";
import { indexPath } from "../../indexer/index-manifest.js";
import type { IndexWorkerData } from "../../indexer/index-worker.js";
import { readTokenStore } from "../../indexer/token-store.js";
import { describeModel } from "../../model/open-model.js";
import type { Device } from "../../runtime/device.js";
import { workerRuntime } from "../../runtime/session.js";
import { InputError, errorMessage } from "../../util/errors.js";
import { spawnTsWorker } from "../../workers/spawn-worker.js";
import { WorkerPool } from "../../workers/worker-pool.js";
import { SharedFolder } from "../artifacts.js";
import { type DistributedPlan, type JobSpec, PLAN_VERSION } from "./plan.js";
import { QUEUE, type QueuedJob, WORKER_ID, completeJob, failBuildOfLostJobs, openQueue } from "./queue.js";
import { type BuildContext, artifactsDir, runJob } from "./steps.js";

export interface WorkerOptions {
  databaseUrl: string;
  /** Jobs run at once, each index worker thread with its share of the cores. */
  concurrency: number;
  /** The model folder on this machine; the plan's path by default. */
  modelDir?: string;
  /** The build's shared folder as this machine mounts it; the plan's path by default. */
  sharedDir?: string;
  /** Serve this build only (default: the oldest running one). */
  buildId?: number;
  device?: Device;
  /** How often to look for a planned build, for the build's end, and for expired jobs. */
  pollSeconds?: number;
  /** How often this worker's queue instance retries expired jobs. */
  maintenanceSeconds?: number;
  log?: (message: string) => void;
}

/** The oldest running distributed build (or the one asked for), waiting until there is one. */
async function awaitPlannedBuild(db: Database, opts: WorkerOptions): Promise<DistributedBuild> {
  const pollSeconds = opts.pollSeconds ?? 2;
  for (let told = false; ; told = true) {
    const running = (await listDistributedBuilds(db, { running: true })).filter((b) => opts.buildId === undefined || b.buildId === opts.buildId);
    if (running.length > 0) return running[running.length - 1];
    if (!told) {
      const which = opts.buildId === undefined ? "no planned build" : `no running build ${opts.buildId}`;
      opts.log?.(`${which} in ${db.location}: waiting for \`influence build --distributed\` to plan one (checking every ${pollSeconds} s)`);
    }
    await sleep(pollSeconds * 1000);
  }
}

/** Checks this machine's model against the plan and starts the index workers; refuses a different model. */
async function openContext(db: Database, build: DistributedBuild, opts: WorkerOptions): Promise<BuildContext> {
  const plan = build.plan as unknown as DistributedPlan;
  if (plan.version !== PLAN_VERSION) throw new InputError(`build ${build.buildId} was planned by a version of influence whose plans this one cannot read`);
  const described = await describeModel(opts.modelDir ?? plan.model.dir);
  if (described.fingerprint !== plan.model.fingerprint) {
    throw new InputError(
      `the model files in ${described.dir} (fingerprint ${described.fingerprint.slice(0, 12)}) differ from those build ${build.buildId} was ` +
        `planned with (${plan.model.dir}, fingerprint ${plan.model.fingerprint.slice(0, 12)}): this worker refuses its jobs; give --model a copy of the planned model`,
    );
  }
  const outDir = opts.sharedDir ?? plan.outDir;
  const store = await readTokenStore(indexPath(outDir, "tokens")).catch((err) => {
    throw new InputError(
      `cannot read build ${build.buildId}'s token store in ${outDir} (is --shared-dir the build's folder as mounted here?): ${errorMessage(err)}`,
    );
  });
  const data: IndexWorkerData = {
    modelDir: described.dir,
    indexDir: outDir,
    batchTokens: plan.batchTokens,
    runtime: workerRuntime(opts.device, opts.concurrency),
  };
  const pool = new WorkerPool({
    spawn: () => spawnTsWorker(new URL("../../indexer/index-worker.ts", import.meta.url), data),
    size: opts.concurrency,
    maxQueue: Number.POSITIVE_INFINITY,
  });
  return { buildId: build.buildId, plan, outDir, modules: described.model.modules, artifacts: new SharedFolder(artifactsDir(outDir)), pool, store, db };
}

/** Runs the jobs of a planned build (waiting for one if there is none) until it completes or fails. */
export async function runWorker(opts: WorkerOptions): Promise<{ buildId: number; status: "completed" | "failed"; error: string | null }> {
  const log = opts.log ?? (() => undefined);
  const db = await openDatabase({ url: opts.databaseUrl });
  let boss: PgBoss | undefined;
  const contexts = new Map<number, Promise<BuildContext>>();
  try {
    await migrate(db);
    const build = await awaitPlannedBuild(db, opts);
    // A different model is refused here, before any job is taken from the queue.
    contexts.set(build.buildId, openContext(db, build, opts));
    await contexts.get(build.buildId);
    log(`worker ${WORKER_ID}: serving build ${build.buildId} (${opts.concurrency} at a time)`);
    const queue = await openQueue(opts.databaseUrl, { maintenanceSeconds: opts.maintenanceSeconds });
    boss = queue;

    const contextOf = async (buildId: number): Promise<BuildContext> => {
      if (!contexts.has(buildId)) {
        const other = (await listDistributedBuilds(db)).find((b) => b.buildId === buildId);
        if (!other) throw new Error(`no distributed build ${buildId}`);
        contexts.set(buildId, openContext(db, other, opts));
      }
      return contexts.get(buildId) as Promise<BuildContext>;
    };

    const handle = async ([job]: PgBoss.JobWithMetadata<QueuedJob>[]): Promise<void> => {
      const { buildId, name } = job.data;
      if ((await getBuild(db, buildId))?.status !== "running") return;
      const row = await startBuildJob(db, buildId, name, WORKER_ID);
      if (!row) throw new Error(`build ${buildId} has no job ${name}`);
      if (row.status === "done") return;
      const started = performance.now();
      log(`${name}: started (attempt ${row.attempts})`);
      try {
        const ctx = await contextOf(buildId);
        const covered = await runJob(ctx, row.spec as JobSpec);
        await completeJob(db, queue, { buildId, name, stage: row.stage }, ctx.plan, ctx.outDir, covered);
        log(`${name}: done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      } catch (err) {
        const final = job.retryCount >= job.retryLimit;
        const message = errorMessage(err);
        await failBuildJob(db, buildId, name, message, final);
        if (final)
          await finishBuild(db, buildId, { status: "failed", error: `job ${name} failed after ${job.retryCount + 1} attempts: ${message}` }).catch(
            () => undefined,
          );
        log(`${name}: failed (attempt ${job.retryCount + 1} of ${job.retryLimit + 1}): ${message}`);
        throw err;
      }
    };
    for (let i = 0; i < opts.concurrency; i++) {
      await queue.work<QueuedJob>(QUEUE, { batchSize: 1, includeMetadata: true, pollingIntervalSeconds: opts.pollSeconds ?? 2 }, handle);
    }

    for (;;) {
      await failBuildOfLostJobs(db, build.buildId);
      const now = await getBuild(db, build.buildId);
      if (now && now.status !== "running") {
        log(`build ${build.buildId} ${now.status}${now.error ? `: ${now.error}` : ""}`);
        return { buildId: build.buildId, status: now.status, error: now.error };
      }
      await sleep((opts.pollSeconds ?? 2) * 1000);
    }
  } finally {
    await boss?.stop({ graceful: true, wait: true, timeout: 60_000 });
    for (const ctx of contexts.values()) await ctx.then((c) => c.pool.close({ finishRunning: true })).catch(() => undefined);
    await db.close();
  }
}
