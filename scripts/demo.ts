/**
 * `npm run demo`: indexes the committed demo corpus with the committed demo model on the embedded
 * database (no server to install), then serves the dashboard and the GraphQL API. A second run
 * reuses the index; an interrupted build is resumed.
 *
 *   npm run demo [-- --port 4000] [--host 127.0.0.1] [--index .demo/index] [--build-only]
 */
import "reflect-metadata";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { progressBars } from "../src/cli/progress.js";
import { runBuild } from "../src/indexer/build.js";
import { indexPath } from "../src/indexer/index-manifest.js";
import { defaultWebRoot, startIndexServer } from "../src/server/open-index-server.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** The demo's index: 6,000 WordNet entries, a small projection, EK-FAC fitted on a third of them. */
export const DEMO_BUILD = {
  modelDir: path.join(root, "demo/model"),
  corpusFile: path.join(root, "demo/corpus.jsonl.gz"),
  corpusName: "wordnet-demo",
  parameters: {
    fisher: "sampled" as const,
    damping: { rule: "heuristic" as const, factor: 0.1 },
    seed: 0,
    maxSequences: 6000,
    fitSequences: 2000,
    projection: { kOut: 16, kIn: 16, rank: 4, seed: 0, basis: "pca" as const },
    pcaSequences: 512,
    shardSize: 500,
    hnsw: { M: 16, efConstruction: 200 },
  },
};

const { values } = parseArgs({
  options: {
    port: { type: "string", default: process.env.PORT ?? "4000" },
    host: { type: "string", default: "127.0.0.1" },
    index: { type: "string", default: path.join(root, ".demo/index") },
    "build-only": { type: "boolean", default: false },
  },
});

const started = performance.now();
const indexDir = path.resolve(values.index as string);
if (existsSync(indexPath(indexDir, "manifest"))) {
  console.error(`demo: reusing the index in ${indexDir}`);
} else {
  const resume = existsSync(indexPath(indexDir, "buildState"));
  console.error(`demo: ${resume ? "resuming the interrupted build" : "building the demo index"} in ${indexDir}`);
  const bars = progressBars(process.stderr.isTTY);
  try {
    await runBuild({ ...DEMO_BUILD, outDir: indexDir, workers: 2, resume, onProgress: bars.listener, log: (m) => console.error(m) });
  } finally {
    bars.stop();
  }
}
if (values["build-only"]) {
  console.error(`demo: index ready in ${((performance.now() - started) / 1000).toFixed(1)} s`);
} else {
  const server = await startIndexServer({ indexDir, host: values.host as string, port: Number(values.port), workers: 2, maxQueue: 64, timeoutMs: 60_000, webRoot: defaultWebRoot() });
  console.error(`demo: serving in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  console.error(`  dashboard   ${server.url}/\n  playground  ${server.url}/playground\n  GraphQL     ${server.graphqlUrl}`);
  const stop = async () => {
    await server.close();
    process.exit(0);
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
