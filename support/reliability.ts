/**
 * Helpers of the reliability tests: a small text corpus and a quick index build of the gpt2-tiny
 * fixture model over it, and `influence` child processes (serve, build) as users run them.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { open, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { BuildJob } from "../src/jobs/build.js";
import { FIXTURE_SHARD_SIZE, fixtureBuildJob } from "./fixture-index.js";
import { REPO_ROOT, fixturePath } from "./fixtures.js";
import { SEQUENCE_TEXTS } from "./server.js";

const FILLERS = [
  "the cat sat on the mat",
  "a fox ran into the woods at night",
  "prices rose by ten percent this year",
  "she wrote the letter by hand",
  "rain fell over the quiet town",
  "he fixed the old radio again",
];

/**
 * 24 short documents (one sequence each, 6 shards of 4) whose texts hold SQL and LIKE
 * metacharacters (%, _, \, quotes), so that searches over a real index have known answers.
 */
export const RELIABILITY_DOCUMENTS = Array.from({ length: 24 }, (_, i) => ({
  id: `doc-${i}`,
  text: `${SEQUENCE_TEXTS[i % SEQUENCE_TEXTS.length]}, and ${FILLERS[i % FILLERS.length]}.`,
}));

/** Ids of the documents whose text contains `search`, case-insensitively (as `sequences(search:)` matches). */
export function documentsContaining(search: string): string[] {
  return RELIABILITY_DOCUMENTS.filter((d) => d.text.toLowerCase().includes(search.toLowerCase())).map((d) => d.id);
}

/** Writes the corpus as JSONL to `file`. */
export async function writeReliabilityCorpus(file: string): Promise<string> {
  await writeFile(file, `${RELIABILITY_DOCUMENTS.map((d) => JSON.stringify(d)).join("\n")}\n`);
  return file;
}

/**
 * A build of gpt2-tiny over the corpus that takes seconds rather than a minute: EK-FAC and PCA fitted
 * on 8 sequences, 16x16 projections. These tests are about failures, not ranking quality.
 */
export function reliabilityBuildJob(corpusFile: string, outDir: string, extra: Partial<BuildJob> = {}): BuildJob {
  const base = fixtureBuildJob(fixturePath("gpt2-tiny"), outDir);
  return {
    ...base,
    corpusFile,
    parameters: { ...base.parameters, fitSequences: 8, pcaSequences: 8, projection: { ...base.parameters.projection, kOut: 16, kIn: 16 } },
    ...extra,
  };
}

/** `influence build` arguments asking for exactly reliabilityBuildJob's parameters. */
export function reliabilityBuildArgs(corpusFile: string, outDir: string, extra: string[] = []): string[] {
  const model = ["--model", fixturePath("gpt2-tiny"), "--corpus", corpusFile, "--out", outDir, "--fisher", "empirical"];
  const sizes = ["--shard-size", String(FIXTURE_SHARD_SIZE), "--dims", "16x16", "--fit-sequences", "8", "--pca-sequences", "8"];
  return ["build", ...model, ...sizes, "--workers", "2", "--no-progress", ...extra];
}

export interface InfluenceProcess {
  child: ChildProcess;
  /** Everything written on stderr so far. */
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL if it has not exited within 10 s. */
  stop(): Promise<void>;
}

/** Starts `node bin/influence.js ...args` with INFLUENCE_QUIET. */
export function spawnInfluence(args: string[], options: { env?: Record<string, string> } = {}): InfluenceProcess {
  // Run from outside the repository, as users do: the command must not depend on the working directory.
  const child = spawn(process.execPath, [path.join(REPO_ROOT, "bin/influence.js"), ...args], {
    cwd: os.tmpdir(),
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, INFLUENCE_QUIET: "1", ...options.env },
  });
  let log = "";
  child.stderr?.on("data", (chunk: Buffer) => void (log += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.kill("SIGTERM");
    await exited;
    clearTimeout(timer);
  };
  return { child, stderr: () => log, exited, stop };
}

/** Runs `influence ...args` to its end; stopped (and reported with the signal) after `timeoutMs`. */
export async function runInfluence(
  args: string[],
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const run = spawnInfluence(args, options);
  const timer = setTimeout(() => void run.stop(), options.timeoutMs ?? 120_000);
  const { code, signal } = await run.exited;
  clearTimeout(timer);
  return { code, signal, stderr: run.stderr() };
}

export interface ServeProcess extends InfluenceProcess {
  pid: number;
  /** http://host:port */
  url: string;
  graphqlUrl: string;
}

/** Engine workers of the servers serveIndex starts. */
export const SERVE_WORKERS = 2;

/** `influence serve --index DIR --port 0 --workers SERVE_WORKERS ...args`, resolved once it listens. */
export async function serveIndex(indexDir: string, options: { args?: string[]; env?: Record<string, string> } = {}): Promise<ServeProcess> {
  const run = spawnInfluence(["serve", "--index", indexDir, "--port", "0", "--workers", String(SERVE_WORKERS), ...(options.args ?? [])], { env: options.env });
  const graphqlUrl = await new Promise<string>((resolve, reject) => {
    const listening = () => {
      const m = /GraphQL\s+(http:\/\/\S+)/.exec(run.stderr());
      if (m) resolve(m[1]);
    };
    run.child.stderr?.on("data", listening);
    void run.exited.then(({ code, signal }) => reject(new Error(`influence serve exited (${code ?? signal}) before listening:\n${run.stderr()}`)));
  });
  return { ...run, pid: run.child.pid as number, url: graphqlUrl.replace(/\/graphql$/, ""), graphqlUrl };
}

/** Resident set size of a process in bytes: its peak (VmHWM) and current (VmRSS) values from /proc. */
export async function residentBytes(pid: number): Promise<{ peak: number; current: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kB = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN) * 1024;
  return { peak: kB("VmHWM"), current: kB("VmRSS") };
}

/** GET /healthz as JSON. */
export async function health(
  url: string,
): Promise<{ status: number; body: { status: string; database: { ok: boolean }; engine?: { busy: number; queued: number } } }> {
  const res = await fetch(`${url}/healthz`);
  return { status: res.status, body: await res.json() };
}

/**
 * GraphQL requests of root field `operation` the server has answered since it started, whatever
 * their outcome (refusals included): its influence_graphql_requests_total counter. A request whose
 * client left before the answer counts too, once the server has computed it.
 */
export async function requestsAnswered(url: string, operation: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const counter = new RegExp(`^influence_graphql_requests_total\\{operation="${operation}",outcome="[^"]*"\\} (\\d+)$`, "gm");
  return [...text.matchAll(counter)].reduce((sum, m) => sum + Number(m[1]), 0);
}

/** Waits until the engine has no running or queued request (abandoned ones finish after their clients left). */
export async function waitUntilIdle(url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { engine } = (await health(url)).body;
    if (engine && engine.busy === 0 && engine.queued === 0) return;
    if (Date.now() > deadline) throw new Error(`the server at ${url} is still busy after ${timeoutMs} ms: ${JSON.stringify(engine)}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Local addresses (kernel hex notation, e.g. 0100007F:1F90) of TCP sockets listening on `port`, from /proc/net/tcp and tcp6. */
export async function listeningAddresses(port: number): Promise<string[]> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const tables = await Promise.all(["/proc/net/tcp", "/proc/net/tcp6"].map((f) => readFile(f, "utf8").catch(() => "")));
  return tables
    .flatMap((t) => t.split("\n").slice(1))
    .map((line) => line.trim().split(/\s+/))
    .filter(([, local, , state]) => state === "0A" && local?.endsWith(`:${hexPort}`))
    .map(([, local]) => local);
}

/** Inverts one byte of `file`, `fromEnd` bytes before its end: damage a checksum must catch. */
export async function flipByte(file: string, fromEnd: number): Promise<void> {
  const handle = await open(file, "r+");
  try {
    const { size } = await handle.stat();
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, size - fromEnd);
    byte[0] ^= 0xff;
    await handle.write(byte, 0, 1, size - fromEnd);
  } finally {
    await handle.close();
  }
}

/** Resolves once `check` is true, polling every 10 ms; fails after `timeoutMs`. */
export async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
