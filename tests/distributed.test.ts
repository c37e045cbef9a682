/**
 * Distributed builds: worker processes taking jobs from the PostgreSQL queue give the files of the
 * single-process build with the same seed and shard size, byte for byte, also when one of them is
 * killed in the middle of a job; and bad setups are refused or reported.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { cp, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listBuildJobs, openDatabase } from "../src/db/index.js";
import { runBuild } from "../src/jobs/build.js";
import { planBuild, waitForBuild } from "../src/jobs/distributed/planner.js";
import { indexPath } from "../src/indexer/index-manifest.js";
import { readVectorFile } from "../src/indexer/vector-file.js";
import { startIndexServer } from "../src/http/open-index-server.js";
import type { ServerLogger } from "../src/server/logger.js";
import { tempDir } from "../src/util/temp-dir.js";
import { createTestDatabase } from "../support/db.js";
import { FIXTURE_SHARD_SIZE, fixtureBuildJob } from "../support/fixture-index.js";
import { REPO_ROOT, fixturePath, fixtureTrain } from "../support/fixtures.js";

const MODEL = fixturePath("gpt2-tiny");
const train = fixtureTrain("gpt2-tiny");
/** The index files that must not depend on who computed them (manifests hold times and paths). */
const FILES = [
  "factors/covariance.safetensors",
  "factors/eigendecomposition.safetensors",
  "factors/lambda.safetensors",
  "projection.safetensors",
  "vectors.bin",
  "hnsw.bin",
  "hnsw.bin.layer-0",
  "hnsw.bin.layer-1",
];
/** Short enough that a killed worker's job comes back soon, long enough for any job on a busy machine. */
const QUEUE = { jobTimeoutSeconds: 30, retries: 2 };

async function checksums(dir: string): Promise<Record<string, string>> {
  const sums: Record<string, string> = {};
  for (const file of FILES)
    sums[file] = createHash("sha256")
      .update(await readFile(path.join(dir, file)))
      .digest("hex");
  return sums;
}

interface Cli {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
  /** Resolves when stderr matches. */
  saw(pattern: RegExp): Promise<void>;
}

function cli(args: string[]): Cli {
  const child = spawn(process.execPath, [path.join(REPO_ROOT, "bin/influence.js"), ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, INFLUENCE_QUIET: "1" },
  });
  let stdout = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  let stderr = "";
  const watchers: Array<{ pattern: RegExp; resolve: () => void }> = [];
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
    for (const w of watchers.filter((x) => x.pattern.test(stderr))) w.resolve();
  });
  const exited = new Promise<number | string>((resolve) => child.on("exit", (code, signal) => resolve(code ?? signal ?? -1)));
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    saw: (pattern) =>
      new Promise<void>((resolve, reject) => {
        if (pattern.test(stderr)) return resolve();
        watchers.push({ pattern, resolve });
        void exited.then((code) => reject(new Error(`exited (${code}) before printing ${pattern}:\n${stderr}`)));
      }),
  };
}

const silentLogger: ServerLogger = { warn: () => undefined, error: () => undefined };

const worker = (url: string, extra: string[] = []) => cli(["worker", "--database", url, "--poll-seconds", "1", "--maintenance-seconds", "1", ...extra]);

describe("a distributed build of gpt2-tiny", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let single: Record<string, string>;
  const databases: Array<{ url: string; drop(): Promise<void> }> = [];
  const children: Cli[] = [];
  const database = async () => {
    const db = await createTestDatabase();
    databases.push(db);
    return db.url;
  };
  const start = (c: Cli) => {
    children.push(c);
    return c;
  };

  beforeAll(async () => {
    tmp = await tempDir();
    const dir = path.join(tmp.dir, "single");
    await runBuild(fixtureBuildJob(MODEL, dir));
    single = await checksums(dir);
  });
  afterAll(async () => {
    for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill("SIGKILL");
    for (const db of databases) await db.drop();
    await tmp?.remove();
  });

  it("by 3 worker processes gives the single-process build's files; workers started first wait for a plan and say so", async () => {
    const url = await database();
    const workers = [1, 2, 3].map(() => start(worker(url)));
    await Promise.all(workers.map((w) => w.saw(/no planned build in .*: waiting for `influence build --distributed`/)));
    const out = path.join(tmp.dir, "three");
    // As fixtureBuildJob builds: the empirical Fisher, shards of FIXTURE_SHARD_SIZE, seed 0.
    const planner = start(
      cli(
        ["build", "--distributed", "--database", url, "--model", MODEL, "--corpus", fixturePath("gpt2-tiny", "train.jsonl"), "--out", out].concat([
          "--fisher",
          "empirical",
          "--shard-size",
          String(FIXTURE_SHARD_SIZE),
          "--job-timeout",
          String(QUEUE.jobTimeoutSeconds),
          "--no-progress",
        ]),
      ),
    );
    expect(await planner.exited, planner.stderr()).toBe(0);
    expect(await Promise.all(workers.map((w) => w.exited))).toEqual([0, 0, 0]);
    expect(await checksums(out)).toEqual(single);
    // What only the jobs needed is gone.
    expect([existsSync(path.join(out, "jobs")), existsSync(indexPath(out, "shards"))]).toEqual([false, false]);
    // Every worker took part.
    for (const w of workers) expect(w.stderr()).toMatch(/: done in /);
  }, 600_000);

  it("with one worker killed by SIGKILL in the middle of a job: the job is retried by another, no sequence lost or duplicated", async () => {
    const url = await database();
    const out = path.join(tmp.dir, "killed");
    const buildId = await planBuild({ ...fixtureBuildJob(MODEL, out), databaseUrl: url, queue: QUEUE });
    const [victim, ...others] = [1, 2, 3].map(() => start(worker(url)));
    const victimId = `${os.hostname()}:${victim.child.pid}`;
    const db = await openDatabase({ url });
    // Stopped (SIGSTOP) as it starts a job; killed if the database still has the job running on it,
    // let go (SIGCONT) to its next job if it had finished this one before it stopped.
    let killed: { name: string; attempt: number } | undefined;
    try {
      for (let n = 1; !killed; n++) {
        await victim.saw(new RegExp(`(: started \\(attempt \\d+\\)[^]*){${n}}`));
        victim.child.kill("SIGSTOP");
        const [, name, attempt] = [...victim.stderr().matchAll(/(\S+): started \(attempt (\d+)\)/g)][n - 1];
        const row = (await listBuildJobs(db, buildId)).find((j) => j.name === name);
        if (row?.status === "running" && row.worker === victimId) killed = { name, attempt: Number(attempt) };
        victim.child.kill(killed ? "SIGKILL" : "SIGCONT");
      }
    } finally {
      await db.close();
    }
    expect(await victim.exited).toBe("SIGKILL");

    await waitForBuild(url, buildId);
    expect(await Promise.all(others.map((w) => w.exited))).toEqual([0, 0]);
    expect(await checksums(out)).toEqual(single);
    const vectors = await readVectorFile(indexPath(out, "vectors"));
    expect({ first: vectors.firstOrdinal, count: vectors.rows.length / vectors.dim }).toEqual({ first: 0, count: train.length });

    const after = await openDatabase({ url });
    try {
      const job = (await listBuildJobs(after, buildId)).find((j) => j.name === killed?.name);
      expect(job).toMatchObject({ status: "done", attempts: (killed?.attempt ?? 0) + 1 });
      expect(job?.worker).not.toBe(victimId);
    } finally {
      await after.close();
    }
    expect(others.map((w) => w.stderr()).join("")).toContain(`${killed?.name}: started (attempt ${(killed?.attempt ?? 0) + 1})`);

    // The GraphQL `builds` field of a server on the index (whose database is the build's).
    const server = await startIndexServer({ indexes: [{ dir: out }], workers: 1, maxQueue: 4, timeoutMs: 60_000, port: 0, logger: silentLogger });
    try {
      const response = await fetch(server.graphqlUrl, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: `{ builds(id: ${buildId}) { buildId status phase jobs { total done failed } workers { worker tokens } error } }` }),
      });
      const [build] = (await response.json()).data.builds;
      expect(build).toMatchObject({ buildId: String(buildId), status: "completed", phase: "manifest", error: null });
      expect(build.jobs.done).toBe(build.jobs.total);
      expect(build.jobs.failed).toBe(0);
      // Tokens of the covariance, Lambda, PCA (every sequence: the sample is larger than the corpus) and vectors passes.
      const corpusTokens = train.reduce((s, t) => s + t.tokens.length, 0);
      expect(build.workers.reduce((s: number, w: { tokens: number }) => s + w.tokens, 0)).toBe(4 * corpusTokens);
    } finally {
      await server.close();
    }
  }, 600_000);

  it("stops at a job that fails on every attempt, with its error in the build's status", async () => {
    const url = await database();
    const out = path.join(tmp.dir, "failing");
    const buildId = await planBuild({ ...fixtureBuildJob(MODEL, out), databaseUrl: url, queue: { ...QUEUE, retries: 1 } });
    // Where the jobs write their artifacts, a file: every covariance job fails to write.
    await writeFile(path.join(out, "jobs"), "not a folder");
    const w = start(worker(url));
    await expect(waitForBuild(url, buildId)).rejects.toThrow(/build \d+ failed: job covariance-\d+ failed after 2 attempts: .*jobs/);
    expect(await w.exited).toBe(1);
    const status = start(cli(["build", "status", "--database", url, "--build", String(buildId)]));
    expect(await status.exited).toBe(0);
    expect(status.stdout()).toMatch(new RegExp(`^build ${buildId}: failed, phase factors .*\\n(.*\\n)*  error: job covariance-\\d+ failed after 2 attempts`));
    expect(status.stdout()).toMatch(/jobs: \d+ done, 0 running, \d+ queued, [1-9]\d* failed of 12 queued so far/);
  }, 600_000);

  describe("refuses", () => {
    let url: string;
    const out = () => path.join(tmp.dir, "planned-only");

    beforeAll(async () => {
      url = await database();
      await planBuild({ ...fixtureBuildJob(MODEL, out()), databaseUrl: url, queue: QUEUE });
    });

    it("a second build planned into the same output folder", async () => {
      await expect(planBuild({ ...fixtureBuildJob(MODEL, out()), databaseUrl: url, queue: QUEUE })).rejects.toThrow(
        /planned-only is already the output folder of build 1 \(running\).*plan this one into another folder/,
      );
    });

    it("to run jobs on model files that differ from the plan's, before taking any", async () => {
      const copy = path.join(tmp.dir, "other-model");
      await cp(MODEL, copy, { recursive: true });
      const config = path.join(copy, "config.json");
      await writeFile(config, `${(await readFile(config, "utf8")).trim()}\n\n`);
      const w = start(worker(url, ["--model", copy]));
      expect(await w.exited).toBe(2);
      expect(w.stderr()).toMatch(/the model files in .*other-model \(fingerprint \w+\) differ from those build 1 was planned with .*refuses its jobs/);
      expect(w.stderr()).not.toMatch(/started/);
    });
  });
});
