/**
 * Starts worker threads whose entry point is a TypeScript file.
 *
 * The project runs its sources through tsx, but a worker does not inherit the parent's module
 * hooks (bin/influence.js registers tsx through its API, vitest through its own transform), and on
 * Node 20.20 a worker given `--import tsx` in execArgv fails on its .ts entry anyway
 * (ERR_UNKNOWN_FILE_EXTENSION: tsx's loader entry only registers on the main thread there). So the
 * worker starts from a small JavaScript bootstrap that registers tsx's hooks through its API and
 * only then imports the entry file.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import v8 from "node:v8";
import { Worker, type WorkerOptions } from "node:worker_threads";

/**
 * File URL of the ESM build of `tsx/esm/api`. Found through tsx's exports map because
 * require.resolve picks the CommonJS build, whose register() fails from a worker, and tsx's loader
 * entry ("tsx") skips registering outside the main thread on Node 20. Resolved here: inside the
 * worker a bare "tsx" would be resolved from the current directory, which need not be the project.
 */
function tsxEsmApiUrl(): string {
  const packageJson = require.resolve("tsx/package.json");
  const exports = JSON.parse(readFileSync(packageJson, "utf8")).exports as Record<string, { import: { default: string } }>;
  return new URL(exports["./esm/api"].import.default, pathToFileURL(packageJson)).href;
}

const require = createRequire(import.meta.url);
const tsxEsmApi = tsxEsmApiUrl();

/**
 * The old generation a worker's heap starts with, in MiB. V8 sizes a new isolate's old generation
 * from what it holds: a serving engine worker (12 MB live, about 16 MB of short-lived objects a
 * query) then stayed at V8's soft marking limit and marked and compacted its whole heap every ~6
 * queries, on the other core: 4-6 ms of CPU a query, the 8-client p50 125 ms against 106-111 with
 * this room (docs/research/index-faithfulness.md, section 13). Over 3,000 queries the workers then
 * compacted 3 times each, and the process's resident memory did not grow.
 */
const WORKER_INITIAL_OLD_SPACE_MB = 64;

/**
 * V8 reads the flag when it creates an isolate, so setting it once before the first worker covers
 * every later one (the main thread's isolate is made already and keeps its own).
 */
let workerHeapsSized = false;
function sizeWorkerHeaps(): void {
  if (workerHeapsSized) return;
  v8.setFlagsFromString(`--initial-old-space-size=${WORKER_INITIAL_OLD_SPACE_MB}`);
  workerHeapsSized = true;
}

/**
 * `new Worker(url, ...)` that also works when `url` is a `.ts` file, under `npx tsx`, vitest and
 * bin/influence.js alike. Pass `new URL("./my-worker.ts", import.meta.url)`.
 */
export function spawnTsWorker(url: URL, workerData: unknown, options: Omit<WorkerOptions, "workerData" | "eval"> = {}): Worker {
  sizeWorkerHeaps();
  if (!url.pathname.endsWith(".ts")) return new Worker(url, { ...options, workerData });
  const bootstrap = `import(${JSON.stringify(tsxEsmApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(bootstrap, { ...options, workerData, eval: true });
}
