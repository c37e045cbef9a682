/** `influence fit`: EK-FAC factors of a model on a corpus, saved with a manifest. */
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { type DampingRule, FACTORS_FORMAT, FACTORS_VERSION, type FactorsManifest, type FisherMode, holdsFactors } from "../ekfac/artifacts.js";
import { DEFAULT_SHARD_SIZE, serialPasses } from "../ekfac/fit.js";
import { type LayerGroup, groupRange, layerGroups } from "../ekfac/layer-groups.js";
import { batchTokenLimit } from "../model/batch-budget.js";
import { lockDirectory } from "../util/directory-lock.js";
import { InputError } from "../util/errors.js";
import type { ProgressListener } from "../util/progress.js";
import { type CorpusSource, corpusSource } from "../corpus/corpus-source.js";
import type { ModelDescription, OpenedModel } from "../model/open-model.js";
import { FitCheckpointFolder } from "./fit-checkpoint.js";
import { type FitSummary, fitAndSave } from "./fit-groups.js";

export interface FitJob {
  opened: OpenedModel;
  corpusFile: string;
  outDir: string;
  fisher: FisherMode;
  damping: DampingRule;
  seed: number;
  maxSequences?: number;
  batchTokens?: number;
  /** Sequences per shard of each pass: a killed fit loses at most the shard it was in. */
  shardSize?: number;
  /** Continue the unfinished fit in outDir; without it, one found there is refused. */
  resume?: boolean;
  /** Groups of consecutive layers fitted one after another (jobs/fit-groups.ts); all layers at once when absent. */
  groups?: LayerGroup[];
  onProgress?: ProgressListener;
}

const FACTORS_FOLDER = { what: "factors folder", advice: "Another `influence fit` is writing it: wait for it to finish, or fit into another folder." };

export async function runFit(job: FitJob): Promise<{ manifest: FactorsManifest }> {
  const { opened } = job;
  const outDir = path.resolve(job.outDir);
  const source = await corpusSource(job.corpusFile, opened, job.maxSequences);
  await mkdir(outDir, { recursive: true });
  const lock = await lockDirectory(outDir, FACTORS_FOLDER);
  try {
    if (holdsFactors(outDir)) throw new InputError(`${outDir} already holds a complete fit; fit into a new folder (nothing was changed)`);
    job.onProgress?.({ phase: "counting", done: 0 });
    const total = await source.count();
    job.onProgress?.({ phase: "counting", done: total });
    if (total === 0) throw new InputError(`${source.path}: no training sequences (every document has fewer than 2 tokens?)`);
    const shardSize = job.shardSize ?? DEFAULT_SHARD_SIZE;
    const batchTokens = batchTokenLimit(opened.model.config, job.batchTokens);
    const { modules } = opened.model;
    const groups = job.groups ?? layerGroups(modules, 1);
    const checkpoint = await FitCheckpointFolder.open(
      outDir,
      {
        modelFingerprint: opened.fingerprint,
        corpusFingerprint: source.fingerprint,
        maxSequences: job.maxSequences ?? null,
        sequences: total,
        fisher: job.fisher,
        seed: job.seed,
        damping: job.damping,
        shardSize,
        batchTokens,
        groups: groups.map(groupRange),
      },
      job.resume ? "resume" : "refuse",
    );
    const passes = (group?: LayerGroup, onProgress = job.onProgress) =>
      serialPasses(opened.model, () => source.sequences(), total, { ...job, shardSize, batchTokens, group, onProgress });
    const manifest = await fitAndSave(outDir, modules, groups, passes, checkpoint, (fit) => factorsManifest(opened, source, job, fit), job);
    await checkpoint.clear();
    return { manifest };
  } finally {
    await lock.release();
  }
}

/** The manifest of a fit of `opened` on `source` (its first maxSequences sequences). */
export function factorsManifest(
  opened: Pick<ModelDescription, "fingerprint" | "dir">,
  source: Pick<CorpusSource, "path" | "fingerprint">,
  settings: Pick<FitJob, "fisher" | "damping" | "seed" | "maxSequences">,
  result: FitSummary,
): FactorsManifest {
  return {
    format: FACTORS_FORMAT,
    version: FACTORS_VERSION,
    createdAt: new Date().toISOString(),
    model: { fingerprint: opened.fingerprint, path: opened.dir },
    corpus: {
      fingerprint: source.fingerprint,
      path: source.path,
      maxSequences: settings.maxSequences ?? null,
      sequences: result.sequences,
      tokens: result.tokens,
    },
    fisher: settings.fisher,
    seed: settings.seed,
    damping: settings.damping,
    modules: result.factors.map((f) => ({ ...f.module, damping: f.damping })),
    timings: result.timings,
  };
}
