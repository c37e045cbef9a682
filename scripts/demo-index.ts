/** The demo index: its build parameters, and building, resuming or reusing it. */
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type BuildJob, DEFAULT_BUILD_PARAMETERS, runBuild } from "../src/indexer/build.js";
import { indexPath } from "../src/indexer/index-manifest.js";
import type { ProgressListener } from "../src/util/progress.js";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const DEMO_INDEX = path.join(REPO_ROOT, ".demo/index");

/** 6,000 WordNet entries, a 16x16 projection per matrix, EK-FAC fitted on the first 1,500. */
export const DEMO_BUILD: Omit<BuildJob, "outDir" | "resume"> = {
  modelDir: path.join(REPO_ROOT, "demo/model"),
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

/** Builds the demo index into `indexDir` unless it is complete; an interrupted build is resumed. */
export async function ensureDemoIndex(
  indexDir: string,
  options: { onProgress?: ProgressListener; log?: (m: string) => void } = {},
): Promise<"reused" | "built"> {
  if (existsSync(indexPath(indexDir, "manifest"))) return "reused";
  const resume = existsSync(indexPath(indexDir, "buildState"));
  options.log?.(`demo: ${resume ? "resuming the interrupted build" : "building the demo index"} in ${indexDir}`);
  await runBuild({ ...DEMO_BUILD, outDir: indexDir, resume, onProgress: options.onProgress, log: options.log });
  return "built";
}
