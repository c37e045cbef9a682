/**
 * Distributed builds: the demo index built by 1 and by 2 `influence worker` processes (one job at a
 * time each) through the PostgreSQL queue; wall time, speed-up, and the queue's overhead per job
 * (the time a worker spends outside jobs: waiting for the next job, committing a finished one,
 * queueing a stage). Needs the test PostgreSQL server (INFLUENCE_TEST_DATABASE_URL).
 */
import { type ChildProcess, spawn } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { listBuildJobs, openDatabase } from "../../src/db/index.js";
import { planBuild, waitForBuild } from "../../src/jobs/distributed/planner.js";
import { DEFAULT_QUEUE_SETTINGS } from "../../src/jobs/distributed/planner.js";
import { tempDir } from "../../src/util/temp-dir.js";
import { createTestDatabase } from "../../support/db.js";
import { REPO_ROOT } from "../../support/fixtures.js";
import type { BenchSection } from "../bench.js";
import { DEMO_BUILD } from "../demo-index.js";

interface Run {
  workers: number;
  planSeconds: number;
  jobsSeconds: number;
  jobs: number;
  /** Seconds the workers spent inside jobs, summed. */
  jobSeconds: number;
  overheadPerJob: number;
  phaseSeconds: Record<string, number>;
}

function startWorker(url: string): { child: ChildProcess; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [path.join(REPO_ROOT, "bin/influence.js"), "worker", "--database", url], {
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, INFLUENCE_QUIET: "1" },
  });
  return { child, exited: new Promise((resolve) => child.on("exit", (code) => resolve(code))) };
}

async function buildWith(workers: number, dir: string): Promise<Run> {
  const target = await createTestDatabase();
  try {
    const t0 = performance.now();
    const buildId = await planBuild({ ...DEMO_BUILD, outDir: path.join(dir, `workers-${workers}`), databaseUrl: target.url, queue: DEFAULT_QUEUE_SETTINGS });
    const t1 = performance.now();
    const started = Array.from({ length: workers }, () => startWorker(target.url));
    const manifest = await waitForBuild(target.url, buildId);
    const t2 = performance.now();
    const codes = await Promise.all(started.map((w) => w.exited));
    if (codes.some((c) => c !== 0)) throw new Error(`a worker exited with ${codes.join(", ")}`);
    const db = await openDatabase({ url: target.url });
    const jobs = await listBuildJobs(db, buildId);
    await db.close();
    const jobSeconds = jobs.reduce((s, j) => s + ((j.finishedAt?.getTime() ?? 0) - (j.startedAt?.getTime() ?? 0)) / 1000, 0);
    const jobsSeconds = (t2 - t1) / 1000;
    return {
      workers,
      planSeconds: (t1 - t0) / 1000,
      jobsSeconds,
      jobs: jobs.length,
      jobSeconds,
      // Worker time not spent in jobs (workers × wall − job time), per job; with 2 workers it also counts waiting at stage ends.
      overheadPerJob: (workers * jobsSeconds - jobSeconds) / jobs.length,
      phaseSeconds: manifest.build.phaseSeconds,
    };
  } finally {
    await target.drop();
  }
}

const section: BenchSection = {
  title: "Distributed build: the demo index by 1 and 2 worker processes",
  async run() {
    const tmp = await tempDir("influence-bench-distributed-");
    const load = os.loadavg()[0];
    try {
      const runs = [await buildWith(1, tmp.dir), await buildWith(2, tmp.dir)];
      const p = DEMO_BUILD.parameters;
      const phases = (r: Run) => ["factors", "projection", "vectors", "hnsw"].map((k) => (r.phaseSeconds[k] ?? 0).toFixed(1)).join(" / ");
      const rows = runs.map(
        (r) =>
          `| ${r.workers} | ${r.planSeconds.toFixed(1)} | ${r.jobsSeconds.toFixed(1)} | ${(runs[0].jobsSeconds / r.jobsSeconds).toFixed(2)} | ${phases(r)} | ${r.jobs} | ${r.overheadPerJob.toFixed(2)} |`,
      );
      return [
        `The demo corpus (${p.maxSequences} sequences, EK-FAC on the first ${p.fitSequences}, shards of ${p.shardSize}, PCA sample of ${p.pcaSequences}), ` +
          "planned with `influence build --distributed` into a fresh database of the test PostgreSQL server and built by `influence worker` processes " +
          `on this machine, each running one job at a time on its share of the cores (default --poll-seconds 2). Load average (1 min) when the section started: ${load.toFixed(2)}.`,
        "",
        "Plan = ingest and queueing of the first stage (one process). Jobs = from the first stage queued to the manifest written. Overhead per job = worker time " +
          "outside jobs (workers × jobs wall time − the jobs' own durations) over the jobs: fetching, committing, waiting for the next stage to be queued, and, " +
          "with 2 workers, idling while the other finishes a stage's last job. On one machine the processes share its cores (each sizes its ONNX Runtime " +
          "threads for the whole machine): the speed-up comes from single-threaded jobs (eigendecompositions, HNSW graphs) running side by side, not from " +
          "more compute; on separate machines each worker brings its own cores.",
        "",
        "| worker processes | plan s | jobs s | speed-up | phases s (factors / projection / vectors / hnsw) | jobs | overhead per job s |",
        "| ---: | ---: | ---: | ---: | --- | ---: | ---: |",
        ...rows,
      ].join("\n");
    } finally {
      await tmp.remove();
    }
  },
};

export default section;
