/**
 * `influence evaluate`: the linear datamodeling score (LDS) of influence methods. The model is
 * fine-tuned on the whole corpus (the model whose influence scores are evaluated) and, from the
 * same starting weights with the same schedule, on N seeded random subsets of it; each query's
 * loss after each subset fine-tuning is measured. A method's LDS is the mean over queries of
 * Spearman's correlation across subsets between the subset's summed scores and minus that loss.
 */
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { existsSync } from "node:fs";
import { type Query, readQueries } from "../../corpus/queries.js";
import { corpusSource } from "../../corpus/corpus-source.js";
import { type FisherMode, holdsFactors } from "../../ekfac/artifacts.js";
import { DEFAULT_DAMPING_FACTOR } from "../../ekfac/lambda.js";
import { DEFAULT_ITERATIVE, SCORE_METHODS } from "../../ekfac/methods.js";
import { IndexEngine } from "../../engine/index-engine.js";
import { indexPath } from "../../indexer/index-manifest.js";
import { readTokenStore } from "../../indexer/token-store.js";
import { type ModelDescription, type OpenedModel, describeModel, modelVocabulary, openModel } from "../../model/open-model.js";
import type { CausalLM } from "../../model/model.js";
import type { Gpt2Config, ModelConfig } from "../../model/config.js";
import { readModel } from "../../model/load.js";
import { OnnxCausalLM } from "../../model/onnx/causal-lm.js";
import type { RuntimeOptions } from "../../runtime/session.js";
import { bootstrapMean, ldsPerQuery } from "../../stats/lds.js";
import { TOKENIZER_FILES } from "../../tokenizer/tokenizer.js";
import { TOKENIZER_CONFIG_FILE } from "../../tokenizer/tokenizer-config.js";
import { type FineTuneSchedule, fineTune } from "../../training/fine-tune.js";
import { saveHfGpt2 } from "../../training/save.js";
import { lockDirectory } from "../../util/directory-lock.js";
import { InputError } from "../../util/errors.js";
import { fingerprintFiles } from "../../util/fingerprint.js";
import type { ProgressListener } from "../../util/progress.js";
import { hashSeed, shuffle, uniformGenerator } from "../../util/random.js";
import { tempDir } from "../../util/temp-dir.js";
import { DEFAULT_BUILD_PARAMETERS, DEFAULT_WORKERS, runBuild } from "../build.js";
import { runFit } from "../fit.js";
import { runScore } from "../score.js";
import {
  type StoredScores,
  type SubsetResult,
  claimSettings,
  outPaths,
  readScores,
  readSubset,
  writeFolderAtomic,
  writeScores,
  writeSubset,
} from "./out-folder.js";

/**
 * The scoring methods of `ekfac/methods.ts`, and `index`: the projected scores of an index built
 * (`influence build`, default settings) on the fine-tuned model, what a served query ranks by.
 */
export const EVALUATE_METHODS = [...SCORE_METHODS, "index"] as const;
export type EvaluateMethod = (typeof EVALUATE_METHODS)[number];

/** A row of the report: a scoring method, with the Fisher of its factors where it uses them. */
export interface MethodSpec {
  method: EvaluateMethod;
  /** null for identity, which uses no curvature. */
  fisher: FisherMode | null;
}

const { kOut, kIn } = DEFAULT_BUILD_PARAMETERS.projection;
export const methodLabel = ({ method, fisher }: MethodSpec): string =>
  fisher === null ? method : method === "index" ? `index (${fisher} Fisher, ${kOut}x${kIn} projection)` : `${method} (${fisher} Fisher)`;
const methodKey = ({ method, fisher }: MethodSpec): string => (fisher === null ? method : `${method}-${fisher}`);

/** Confidence level of the reported intervals, and the bootstrap that makes them. */
export const LDS_INTERVAL = { level: 0.95, resamples: 10_000, seed: 0 };

export interface EvaluateSettings {
  subsets: number;
  /** Share of the corpus's sequences in each subset, in (0, 1). */
  fraction: number;
  /** Seed of the subsets, of every fine-tuning's batch order and of the fit's sampled labels. */
  seed: number;
  schedule: Omit<FineTuneSchedule, "seed" | "adamw">;
}

export interface EvaluateJob {
  modelDir: string;
  corpusFile: string;
  queriesFile: string;
  settings: EvaluateSettings;
  methods: MethodSpec[];
  /** Where fine-tunings, factors and scores are kept (resumable); a temporary folder, removed at the end, when absent. */
  outDir?: string;
  runtime?: RuntimeOptions;
  onProgress?: ProgressListener;
  log?: (message: string) => void;
}

export interface MethodResult extends MethodSpec {
  label: string;
  /** Mean LDS over the queries with a defined correlation, and its interval. */
  lds: number;
  low: number;
  high: number;
  perQuery: number[];
  /** [query][subset]: the summed scores of each subset's sequences. */
  summedScores: number[][];
}

export interface EvaluateReport {
  model: string;
  corpus: { path: string; sequences: number; subsetSize: number };
  queries: string[];
  settings: EvaluateSettings;
  interval: { level: number; how: string };
  /** Each query's loss under the model fine-tuned on the whole corpus. */
  fullLosses: number[];
  subsets: SubsetResult[];
  methods: MethodResult[];
}

/** Checks the settings before any work: each message names the option. */
export function checkSettings(settings: EvaluateSettings, methods: readonly MethodSpec[]): void {
  const { subsets, fraction, schedule } = settings;
  if (!(fraction > 0 && fraction < 1)) throw new InputError(`--fraction must be between 0 and 1 (exclusive), got ${fraction}`);
  if (!(Number.isInteger(subsets) && subsets >= 2))
    throw new InputError(`--subsets must be an integer of at least 2 (a correlation needs 2 subsets), got ${subsets}`);
  if (!(Number.isInteger(schedule.epochs) && schedule.epochs >= 1)) throw new InputError(`--epochs must be a positive integer, got ${schedule.epochs}`);
  if (methods.length === 0) throw new InputError("--methods: no method given");
}

/** Subset k: `size` ordinals of 0..n-1 drawn without replacement by a seeded shuffle, ascending. */
export function subsetMembers(n: number, size: number, seed: number, k: number): number[] {
  return shuffle([...Array(n).keys()], uniformGenerator(hashSeed(seed, k)))
    .slice(0, size)
    .sort((a, b) => a - b);
}

/** The corpus's sequences in file order, and the queries, as read once by the run. */
interface EvaluatedCorpus {
  sequences: ReadonlyArray<{ externalId: string; tokens: number[] }>;
  queries: readonly Query[];
}

/** Each query's summed completion NLL under the model. */
async function queryLosses(model: CausalLM, queries: readonly Query[]): Promise<number[]> {
  const capture = await model.capture(
    queries.map((q) => [...q.promptTokens, ...q.completionTokens]),
    { kind: "completion", promptLengths: queries.map((q) => q.promptTokens.length) },
  );
  return Array.from(capture.losses);
}

/** Each query's summed completion NLL under these weights, on a model made for it and released. */
async function lossesUnder(
  config: ModelConfig,
  weights: ReadonlyMap<string, Float32Array>,
  queries: readonly Query[],
  runtime: RuntimeOptions,
): Promise<number[]> {
  const model = new OnnxCausalLM(config, weights, runtime);
  try {
    return await queryLosses(model, queries);
  } finally {
    await model.release();
  }
}

export async function runEvaluate(job: EvaluateJob): Promise<EvaluateReport> {
  checkSettings(job.settings, job.methods);
  const runtime = job.runtime ?? {};
  const start = await describeModel(job.modelDir);
  const { config } = start.model;
  if (config.architecture !== "gpt2") {
    throw new InputError(
      `${start.dir}: evaluate fine-tunes the model, and fine-tuning runs on GPT-2 only; this is a ${config.architecture} model (fit, score and build take it)`,
    );
  }
  const source = await corpusSource(job.corpusFile, start);
  const sequences: Array<{ externalId: string; tokens: number[] }> = [];
  for await (const s of source.sequences()) sequences.push({ externalId: s.externalId, tokens: s.tokens });
  const subsetSize = Math.round(job.settings.fraction * sequences.length);
  if (subsetSize < 1 || subsetSize >= sequences.length) {
    throw new InputError(
      `${source.path}: ${sequences.length} sequences, so --fraction ${job.settings.fraction} gives subsets of ${subsetSize}; a subset needs at least 1 sequence and fewer than all`,
    );
  }
  const queries = await readQueries(job.queriesFile, modelVocabulary(start), { contextLength: config.contextLength });
  if (queries.length === 0) throw new InputError(`${job.queriesFile}: no queries`);

  const temporary = job.outDir === undefined ? await tempDir("influence-evaluate-") : undefined;
  const dir = path.resolve(job.outDir ?? (temporary as { dir: string }).dir);
  await mkdir(dir, { recursive: true });
  const lock = await lockDirectory(dir, {
    what: "evaluation folder",
    advice: "Another `influence evaluate` is running on it: wait for it to finish, or use another --out.",
  });
  try {
    await claimSettings(dir, {
      format: "influence-evaluate",
      version: 1,
      model: start.fingerprint,
      corpus: source.fingerprint,
      queries: await fingerprintFiles([path.resolve(job.queriesFile)]),
      ...job.settings,
    });
    const schedule: FineTuneSchedule = { ...job.settings.schedule, seed: job.settings.seed };
    const { weights } = await readModel(start.dir);
    const full = await fullModel(job, dir, start, weights, sequences, schedule);
    const fullLosses = await queryLosses(full.model, queries);
    const scores = new Map<string, number[][]>();
    for (const spec of job.methods) scores.set(methodKey(spec), await methodScores(job, dir, full, { sequences, queries }, spec));
    await full.model.release();

    const subsets: SubsetResult[] = [];
    const total = job.settings.subsets;
    for (let k = 0; k < total; k++) {
      const members = subsetMembers(sequences.length, subsetSize, job.settings.seed, k);
      let result = await readSubset(dir, k);
      if (result !== undefined && JSON.stringify(result.members) !== JSON.stringify(members)) {
        throw new InputError(`${outPaths(dir).subset(k)}: holds another subset than this run draws; use another --out`);
      }
      if (result === undefined) {
        const tuned = await fineTune(
          config,
          weights,
          members.map((i) => sequences[i].tokens),
          schedule,
          runtime,
        );
        result = { subset: k, members, losses: await lossesUnder(config, tuned, queries, runtime) };
        await writeSubset(dir, result);
      }
      subsets.push(result);
      job.onProgress?.({ phase: "subset fine-tunings", done: k + 1, total, unit: "fine-tunings" });
    }

    const methods = job.methods.map((spec): MethodResult => {
      const perSequence = scores.get(methodKey(spec)) as number[][];
      const summedScores = perSequence.map((row) => subsets.map((s) => s.members.reduce((sum, i) => sum + row[i], 0)));
      const perQuery = ldsPerQuery(
        summedScores,
        queries.map((_, q) => subsets.map((s) => s.losses[q])),
      );
      const { mean, low, high } = bootstrapMean(perQuery, LDS_INTERVAL);
      return { ...spec, label: methodLabel(spec), lds: mean, low, high, perQuery, summedScores };
    });
    return {
      model: start.dir,
      corpus: { path: source.path, sequences: sequences.length, subsetSize },
      queries: queries.map((q) => q.id),
      settings: job.settings,
      interval: {
        level: LDS_INTERVAL.level,
        how: `percentile bootstrap of the mean over queries (${LDS_INTERVAL.resamples.toLocaleString("en")} resamples of the queries, seed ${LDS_INTERVAL.seed})`,
      },
      fullLosses,
      subsets,
      methods,
    };
  } finally {
    await lock.release();
    await temporary?.remove();
  }
}

/** The model fine-tuned on every sequence of the corpus, saved once in the run's folder and opened. */
async function fullModel(
  job: EvaluateJob,
  dir: string,
  start: ModelDescription,
  weights: ReadonlyMap<string, Float32Array>,
  sequences: ReadonlyArray<{ tokens: number[] }>,
  schedule: FineTuneSchedule,
): Promise<OpenedModel> {
  const target = outPaths(dir).fullModel;
  if (!existsSync(target)) {
    job.log?.(`fine-tuning on all ${sequences.length} sequences`);
    const config = start.model.config as Gpt2Config;
    const tuned = await fineTune(
      config,
      weights,
      sequences.map((s) => s.tokens),
      schedule,
      job.runtime,
      job.onProgress,
    );
    // The starting model's config.json is copied over the written one: it keeps every field (the eos id among them).
    await writeFolderAtomic(target, start.dir, ["config.json", ...TOKENIZER_FILES, TOKENIZER_CONFIG_FILE], (out) =>
      saveHfGpt2(out, config, tuned, start.tokenizer.eosTokenId ?? 0),
    );
  }
  return openModel(target, job.runtime);
}

/** Every corpus sequence's score on every query by one method, on the fully fine-tuned model; kept in the run's folder. */
async function methodScores(job: EvaluateJob, dir: string, full: OpenedModel, corpus: EvaluatedCorpus, spec: MethodSpec): Promise<number[][]> {
  const key = methodKey(spec);
  const kept = await readScores(dir, key);
  if (kept !== undefined) return kept.scores;
  // identity uses no factors, but the scoring job reads a fit's damping and modules: any Fisher does.
  const fisher = spec.fisher ?? "sampled";
  if (spec.method === "index") {
    const scores = await indexScores(job, dir, corpus, fisher);
    await writeScores(dir, key, scores);
    return scores.scores;
  }
  const factorsDir = outPaths(dir).factors(fisher);
  if (!holdsFactors(factorsDir)) {
    job.log?.(`fitting EK-FAC (${fisher} Fisher) on the fine-tuned model`);
    await runFit({
      opened: full,
      corpusFile: job.corpusFile,
      outDir: factorsDir,
      fisher,
      damping: { rule: "heuristic", factor: DEFAULT_DAMPING_FACTOR },
      seed: job.settings.seed,
      onProgress: job.onProgress,
    });
  }
  job.log?.(`scoring by ${methodLabel(spec)}`);
  const out = await runScore({
    opened: full,
    factorsDir,
    train: { file: job.corpusFile },
    queriesFile: job.queriesFile,
    method: spec.method,
    perModule: false,
    perToken: false,
    iterative: DEFAULT_ITERATIVE,
    onProgress: job.onProgress,
  });
  await writeScores(dir, key, { queries: out.queries, train: out.train, scores: out.scores });
  return out.scores;
}

/**
 * Every corpus sequence's projected score on every query, from an index of the corpus built with
 * the default settings on the fully fine-tuned model (kept in the run's folder, resumed if
 * interrupted). The index's ordinals must follow the corpus's order: checked on its token store.
 */
async function indexScores(job: EvaluateJob, dir: string, corpus: EvaluatedCorpus, fisher: FisherMode): Promise<StoredScores> {
  const paths = outPaths(dir);
  const indexDir = paths.index(fisher);
  if (!existsSync(indexPath(indexDir, "manifest"))) {
    job.log?.(`building an index (${fisher} Fisher) of the corpus on the fine-tuned model`);
    await runBuild({
      modelDir: paths.fullModel,
      corpusFile: job.corpusFile,
      outDir: indexDir,
      parameters: { ...DEFAULT_BUILD_PARAMETERS, fisher, seed: job.settings.seed },
      workers: DEFAULT_WORKERS,
      device: job.runtime?.device,
      resume: existsSync(indexPath(indexDir, "buildState")),
      onProgress: job.onProgress,
      log: job.log,
    });
  }
  const store = await readTokenStore(indexPath(indexDir, "tokens"));
  const differing = corpus.sequences.findIndex((s, i) => i >= store.count || store.tokens(i).join() !== s.tokens.join());
  if (differing >= 0 || store.count !== corpus.sequences.length) {
    const at = differing >= 0 ? differing : corpus.sequences.length;
    throw new InputError(`${indexDir}: does not hold the corpus's sequences in its order (first difference at sequence ${at}); remove the folder and rerun`);
  }
  const engine = await IndexEngine.open(indexDir, job.runtime);
  try {
    const scores: number[][] = [];
    for (const q of corpus.queries) scores.push(Array.from((await engine.approximateScores(q)).scores));
    return { queries: corpus.queries.map((q) => q.id), train: corpus.sequences.map((s) => s.externalId), scores };
  } finally {
    await engine.close();
  }
}
