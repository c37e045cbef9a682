/**
 * `influence score`: exact (unprojected) influence of every training sequence of a file on every
 * query, by one of the methods of ekfac/methods.ts, optionally per module and per token.
 */
import { type Query, readQueries } from "../corpus/queries.js";
import { readFactorsManifest, loadFactors } from "../ekfac/artifacts.js";
import { GradientBank } from "../ekfac/baselines/gradient-bank.js";
import { queryGradients } from "../ekfac/gradients.js";
import { lowRankFactors } from "../ekfac/low-rank.js";
import { DEFAULT_ITERATIVE, type IterativeOptions, type ScoreMethod, queryMatrices } from "../ekfac/methods.js";
import { type ModuleQueries, denseModuleQueries, lowRankModuleQueries, scoreCapture } from "../ekfac/scoring.js";
import { batchTokenLimit } from "../model/batch-budget.js";
import { batchesOf } from "../util/batches.js";
import { InputError } from "../util/errors.js";
import type { ProgressListener } from "../util/progress.js";
import { hashSeed } from "../util/random.js";
import { corpusSource } from "../corpus/corpus-source.js";
import { type OpenedModel, modelVocabulary } from "../model/open-model.js";
import { type TrackedModule, inputWidth } from "../model/model.js";

/** Training sequences to score: a corpus file, or sequences given directly (checked by the caller: engine/query-validation.ts). */
export type TrainingInput = { file: string } | { sequences: Array<{ id: string; tokens: number[] }> };

export interface ScoreJob {
  opened: OpenedModel;
  factorsDir: string;
  train: TrainingInput;
  queriesFile: string;
  method: ScoreMethod;
  /** Keep each preconditioned query gradient as a rank-r product (query batching). */
  rank?: number;
  perModule: boolean;
  perToken: boolean;
  iterative?: IterativeOptions;
  onProgress?: ProgressListener;
}

export interface ScoreOutput {
  queries: string[];
  train: string[];
  scores: number[][];
  moduleScores?: Record<string, number[][]>;
  tokenScores?: number[][][];
  /** Seconds spent turning query gradients into preconditioned matrices, and scoring. */
  timings: { queriesSeconds: number; scoringSeconds: number };
}

/** Prepares each module's queries, densely or as rank-r factors. */
async function prepareModuleQueries(matrices: Float32Array[][], modules: readonly TrackedModule[], rank?: number): Promise<ModuleQueries[]> {
  const prepared: ModuleQueries[] = [];
  for (const [m, module] of modules.entries()) {
    const perQuery = matrices.map((q) => q[m]);
    if (rank === undefined) {
      prepared.push(denseModuleQueries(module, perQuery));
      continue;
    }
    const factors = [];
    for (const [q, matrix] of perQuery.entries()) factors.push(await lowRankFactors(matrix, module.outFeatures, inputWidth(module), rank, hashSeed(m, q)));
    prepared.push(lowRankModuleQueries(module, factors, Math.min(rank, module.outFeatures, inputWidth(module))));
  }
  return prepared;
}

async function fittingBank(job: ScoreJob): Promise<GradientBank> {
  const manifest = await readFactorsManifest(job.factorsDir);
  const source = await corpusSource(manifest.corpus.path, job.opened, manifest.corpus.maxSequences ?? undefined);
  if (source.fingerprint !== manifest.corpus.fingerprint) {
    throw new InputError(`${manifest.corpus.path}: the fitting corpus changed since the factors were fitted; refit before using --method cg or lissa`);
  }
  return GradientBank.collect(
    job.opened.model,
    source.sequences(),
    { fisher: manifest.fisher, seed: manifest.seed, total: manifest.corpus.sequences },
    job.onProgress,
  );
}

/** The sequences to score with their ordinals, the position each takes in the output. */
async function trainingSequences(job: ScoreJob): Promise<AsyncIterable<{ ordinal: number; externalId: string; tokens: number[] }>> {
  const { train } = job;
  if ("file" in train) return (await corpusSource(train.file, job.opened)).sequences();
  return (async function* () {
    yield* train.sequences.map((s, ordinal) => ({ ordinal, externalId: s.id, tokens: s.tokens }));
  })();
}

export async function runScore(job: ScoreJob): Promise<ScoreOutput> {
  const { model } = job.opened;
  const { factors } = await loadFactors(job.factorsDir, { modelFingerprint: job.opened.fingerprint, modules: model.modules });
  const queries: Query[] = await readQueries(job.queriesFile, modelVocabulary(job.opened), { contextLength: model.config.contextLength });
  if (queries.length === 0) throw new InputError(`${job.queriesFile}: no queries`);
  if (job.rank !== undefined && !(Number.isInteger(job.rank) && job.rank >= 1)) throw new InputError(`--rank must be a positive integer, got ${job.rank}`);

  let start = performance.now();
  const bank = job.method === "cg" || job.method === "lissa" ? await fittingBank(job) : undefined;
  const { gradients } = await queryGradients(model, queries);
  const { matrices } = await queryMatrices(job.method, factors, gradients, bank, job.iterative ?? DEFAULT_ITERATIVE, (done) =>
    job.onProgress?.({ phase: `${job.method} solves`, done, total: queries.length, unit: "queries" }),
  );
  const prepared = await prepareModuleQueries(matrices, model.modules, job.rank);
  const queriesSeconds = (performance.now() - start) / 1000;

  start = performance.now();
  // Batches group sequences by length; results are placed back in corpus order by ordinal.
  const train: string[] = [];
  const scores: number[][] = queries.map(() => []);
  const moduleScores: number[][][] = model.modules.map(() => queries.map(() => []));
  const tokenScores: number[][][] = queries.map(() => []);
  let tokens = 0;
  let done = 0;
  for await (const batch of batchesOf(await trainingSequences(job), { maxTokens: batchTokenLimit(model.config) })) {
    const capture = await model.capture(
      batch.map((s) => s.tokens),
      { kind: "next-token" },
    );
    const result = await scoreCapture(capture, prepared, queries.length);
    batch.forEach((s, b) => {
      train[s.ordinal] = s.externalId;
      queries.forEach((_, q) => {
        scores[q][s.ordinal] = result.scores[q][b];
        if (job.perToken) tokenScores[q][s.ordinal] = Array.from(result.tokenScores[q][b]);
        if (job.perModule) result.moduleScores.forEach((perModule, m) => (moduleScores[m][q][s.ordinal] = perModule[q][b]));
      });
    });
    done += batch.length;
    tokens += batch.reduce((s, x) => s + x.tokens.length, 0);
    job.onProgress?.({ phase: "scoring", done, tokens });
  }
  return {
    queries: queries.map((q) => q.id),
    train,
    scores,
    ...(job.perModule ? { moduleScores: Object.fromEntries(model.modules.map((m, i) => [m.name, moduleScores[i]])) } : {}),
    ...(job.perToken ? { tokenScores } : {}),
    timings: { queriesSeconds, scoringSeconds: (performance.now() - start) / 1000 },
  };
}
