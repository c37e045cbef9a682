/** `influence fit`: EK-FAC factors of a model on a corpus, saved with a manifest. */
import path from "node:path";
import { type DampingRule, FACTORS_FORMAT, FACTORS_VERSION, type FactorsManifest, type FisherMode, saveFactors } from "../ekfac/artifacts.js";
import { type FitResult, fitEkfac, serialPasses } from "../ekfac/fit.js";
import { InputError } from "../util/errors.js";
import type { ProgressListener } from "../util/progress.js";
import { type CorpusSource, corpusSource } from "../corpus/corpus-source.js";
import type { ModelDescription, OpenedModel } from "../model/open-model.js";

export interface FitJob {
  opened: OpenedModel;
  corpusFile: string;
  outDir: string;
  fisher: FisherMode;
  damping: DampingRule;
  seed: number;
  maxSequences?: number;
  batchTokens?: number;
  onProgress?: ProgressListener;
}

export async function runFit(job: FitJob): Promise<{ manifest: FactorsManifest; result: FitResult }> {
  const { opened } = job;
  const source = await corpusSource(job.corpusFile, opened, job.maxSequences);
  job.onProgress?.({ phase: "counting", done: 0 });
  const total = await source.count();
  job.onProgress?.({ phase: "counting", done: total });
  if (total === 0) throw new InputError(`${source.path}: no training sequences (every document has fewer than 2 tokens?)`);
  const passes = serialPasses(opened.model, () => source.sequences(), total, job);
  const result = await fitEkfac(opened.model.modules, passes, job);
  const manifest = factorsManifest(opened, source, job, result);
  await saveFactors(path.resolve(job.outDir), manifest, result.covariance, result.factors);
  return { manifest, result };
}

/** The manifest of a fit of `opened` on `source` (its first maxSequences sequences). */
export function factorsManifest(
  opened: Pick<ModelDescription, "fingerprint" | "dir">,
  source: Pick<CorpusSource, "path" | "fingerprint">,
  settings: Pick<FitJob, "fisher" | "damping" | "seed" | "maxSequences">,
  result: FitResult,
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
