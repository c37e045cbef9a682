/** Where a distributed build stands: `influence build status` and the GraphQL `builds` field. */
import { type Database, type BuildJobRow, getDistributedBuild, listBuildJobs, listDistributedBuilds } from "../../db/index.js";
import { InputError } from "../../util/errors.js";

export interface WorkerThroughput {
  worker: string;
  jobsDone: number;
  sequences: number;
  tokens: number;
  /** Seconds the worker spent in its finished jobs. */
  seconds: number;
  /** Tokens per second of job time (0 for jobs that process no tokens). */
  tokensPerSecond: number;
}

export interface BuildProgress {
  buildId: number;
  status: "running" | "completed" | "failed";
  /** The phase of the queued stage (or the last one, once the build has ended). */
  phase: string;
  stage: number;
  outDir: string;
  jobs: { total: number; done: number; running: number; queued: number; failed: number };
  workers: WorkerThroughput[];
  /**
   * Estimated seconds until the queued stage is done: its unfinished jobs times the mean time of its
   * finished ones, over the workers seen in it. Null until one of its jobs has finished.
   */
  stageSecondsLeft: number | null;
  error: string | null;
}

const seconds = (j: BuildJobRow) => (j.startedAt && j.finishedAt ? (j.finishedAt.getTime() - j.startedAt.getTime()) / 1000 : 0);

function throughput(jobs: readonly BuildJobRow[]): WorkerThroughput[] {
  const byWorker = new Map<string, WorkerThroughput>();
  for (const j of jobs) {
    if (j.status !== "done" || !j.worker) continue;
    const w = byWorker.get(j.worker) ?? { worker: j.worker, jobsDone: 0, sequences: 0, tokens: 0, seconds: 0, tokensPerSecond: 0 };
    w.jobsDone++;
    w.sequences += j.sequences;
    w.tokens += j.tokens;
    w.seconds += seconds(j);
    byWorker.set(j.worker, w);
  }
  const workers = [...byWorker.values()].sort((a, b) => a.worker.localeCompare(b.worker));
  for (const w of workers) w.tokensPerSecond = w.seconds > 0 ? w.tokens / w.seconds : 0;
  return workers;
}

function stageSecondsLeft(stageJobs: readonly BuildJobRow[]): number | null {
  const done = stageJobs.filter((j) => j.status === "done");
  if (done.length === 0) return null;
  const mean = done.reduce((s, j) => s + seconds(j), 0) / done.length;
  const workers = new Set(stageJobs.filter((j) => j.worker).map((j) => j.worker)).size;
  return ((stageJobs.length - done.length) * mean) / Math.max(1, workers);
}

export async function buildProgress(db: Database, buildId: number): Promise<BuildProgress> {
  const build = await getDistributedBuild(db, buildId);
  if (!build) throw new InputError(`no distributed build ${buildId} in ${db.location}`);
  const jobs = await listBuildJobs(db, buildId);
  const stageJobs = jobs.filter((j) => j.stage === build.stage);
  const count = (status: BuildJobRow["status"]) => jobs.filter((j) => j.status === status).length;
  return {
    buildId,
    status: build.status,
    phase: stageJobs[0]?.phase ?? "planned",
    stage: build.stage,
    outDir: build.outDir,
    jobs: { total: jobs.length, done: count("done"), running: count("running"), queued: count("queued"), failed: count("failed") },
    workers: throughput(jobs),
    stageSecondsLeft: build.status === "running" ? stageSecondsLeft(stageJobs) : 0,
    error: build.error,
  };
}

/** One build's progress, or every distributed build's (newest first). */
export async function buildsProgress(db: Database, buildId?: number): Promise<BuildProgress[]> {
  if (buildId !== undefined) return [await buildProgress(db, buildId)];
  return Promise.all((await listDistributedBuilds(db)).map((b) => buildProgress(db, b.buildId)));
}
