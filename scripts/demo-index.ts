/** The demo indexes: their build parameters, and building, resuming or reusing one of them. */
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { defaultWebRoot, startIndexServer } from "../src/http/open-index-server.js";
import { type BuildJob, DEFAULT_BUILD_PARAMETERS, runBuild } from "../src/jobs/build.js";
import { indexPath } from "../src/indexer/index-manifest.js";
import type { ServerLogger } from "../src/server/logger.js";
import type { ProgressListener } from "../src/util/progress.js";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** The demo model (4 blocks, width 128) and its index. */
export const DEMO_MODEL = path.join(REPO_ROOT, "demo/model");
export const DEMO_INDEX = path.join(REPO_ROOT, ".demo/index");
/** The second, smaller model of the same corpus (4 blocks, width 64) and its index, for `npm run demo -- --compare`. */
export const DEMO_SMALL_MODEL = path.join(REPO_ROOT, "demo/model-small");
export const DEMO_SMALL_INDEX = path.join(REPO_ROOT, ".demo/index-small");

/** 6,000 WordNet entries, a 16x16 projection per matrix, EK-FAC fitted on the first 1,500; the demo model's. */
export const DEMO_BUILD: Omit<BuildJob, "outDir" | "resume"> = {
  modelDir: DEMO_MODEL,
  corpusFile: path.join(REPO_ROOT, "demo/corpus.jsonl.gz"),
  corpusName: "wordnet-demo",
  parameters: {
    ...DEFAULT_BUILD_PARAMETERS,
    maxSequences: 6000,
    fitSequences: 1500,
    projection: { kOut: 16, kIn: 16, rank: 4, seed: 0, basis: "pca" },
    pcaSequences: 256,
    shardSize: 500,
  },
  workers: 2,
};

export interface DemoIndexOptions {
  /** The model to index the demo corpus with (default: the demo model); every other setting is DEMO_BUILD's. */
  modelDir?: string;
  onProgress?: ProgressListener;
  log?: (m: string) => void;
}

/** Builds the demo index of a demo model into `indexDir` unless it is complete; an interrupted build is resumed. */
export async function ensureDemoIndex(indexDir: string, options: DemoIndexOptions = {}): Promise<"reused" | "built"> {
  if (existsSync(indexPath(indexDir, "manifest"))) return "reused";
  const resume = existsSync(indexPath(indexDir, "buildState"));
  const modelDir = options.modelDir ?? DEMO_BUILD.modelDir;
  const model = path.relative(REPO_ROOT, modelDir);
  options.log?.(`demo: ${resume ? "resuming the interrupted build" : "building the demo index"} of ${model} in ${indexDir}`);
  await runBuild({ ...DEMO_BUILD, modelDir, outDir: indexDir, resume, onProgress: options.onProgress, log: options.log });
  return "built";
}

/** The demo's server on built demo indexes, the first the default one: the dashboard, the playground and the GraphQL API. */
export function serveDemo(indexDirs: readonly string[], options: { host: string; port: number; logger?: ServerLogger }): ReturnType<typeof startIndexServer> {
  return startIndexServer({
    indexes: indexDirs.map((dir) => ({ dir })),
    host: options.host,
    port: options.port,
    workers: 2,
    maxQueue: 16,
    timeoutMs: 60_000,
    webRoot: defaultWebRoot(),
    logger: options.logger,
  });
}
