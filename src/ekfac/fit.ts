/**
 * Fitting EK-FAC over a stream of training sequences: pass 1 (covariances A and S), float64
 * eigendecompositions, pass 2 (corrected eigenvalues Lambda), damping. How each pass runs over
 * the sequences is the caller's choice: serially on this thread (serialPasses), or spread over
 * worker threads whose partial sums are merged (indexer/parallel-passes.ts). Either way a pass is
 * cut into shards whose sums are added in shard order; with a checkpoint, the running sums after
 * every shard and every eigenbasis are kept, so a killed fit continues where it stopped and ends
 * with the same bits as one never stopped.
 */
import { batchTokenLimit } from "../model/batch-budget.js";
import { type CausalLM, type GradientCapture, type LossSpec, type TrackedModule, inputOwners } from "../model/model.js";
import { batchesOf } from "../util/batches.js";
import type { ProgressListener } from "../util/progress.js";
import { hashSeed } from "../util/random.js";
import type { DampingRule, FisherMode } from "./artifacts.js";
import { CovarianceAccumulator, type ModuleCovariance, type StoredCovariance } from "./covariance.js";
import { type ModuleEigenbasis, eigenbasis } from "./eigenbasis.js";
import type { ModuleFactors } from "./factors.js";
import { LambdaAccumulator } from "./lambda.js";
import { type LayerGroup, groupModules } from "./layer-groups.js";
import type { PartialSums } from "./partial-sums.js";

export interface TokenSequence {
  /** Position in corpus order: also seeds the sampled labels of this sequence. */
  ordinal: number;
  tokens: readonly number[];
}

/** The labels of the Fisher's gradients, and what seeds the sampled ones. */
export interface FisherSettings {
  fisher: FisherMode;
  seed: number;
}

/** Sequences per shard of a pass, unless told otherwise: the unit a killed fit loses at most. */
export const DEFAULT_SHARD_SIZE = 512;

export interface FitOptions {
  damping: DampingRule;
  /** Reports the eigendecompositions; each pass reports its own progress. */
  onProgress?: ProgressListener;
  /** Where finished shards and eigendecompositions are kept, and found again by a resumed fit. */
  checkpoint?: FitCheckpoint;
}

export interface FitResult {
  /** Float32 in a fit on this machine: what the factors files keep of A and S. */
  covariance: StoredCovariance[];
  factors: ModuleFactors[];
  sequences: number;
  tokens: number;
  timings: { covarianceSeconds: number; eigendecompositionSeconds: number; lambdaSeconds: number };
}

/** One pass over the fitting sequences: the covariances A and S, or Lambda in the given eigenbases. */
export type FisherPass = { kind: "covariance" } | { kind: "lambda"; eigen: ModuleEigenbasis[] };

/** What a pass adds up: captures of this thread's batches, or partial sums of shards. */
export interface PassAccumulator {
  readonly totals: PartialSums;
  add(capture: GradientCapture): Promise<void>;
  merge(partial: PartialSums): void;
}

/**
 * A way of running each pass over the fitting sequences, cut into `shards` shards of consecutive
 * sequences: `run` sums every shard from `first` on from zeros and hands the sums to `onShard` in
 * shard order, awaiting each (progress reported under the pass's kind). Shard sums added in shard
 * order make one summation order, whichever shards an earlier, interrupted run finished.
 */
export interface PassRunner {
  shards: number;
  run(pass: FisherPass, first: number, onShard: (sums: PartialSums) => Promise<void>): Promise<void>;
}

/** A pass's sums over its first `shards` shards. */
export interface PassProgress {
  shards: number;
  sums: PartialSums;
}

/** What a fit keeps as it goes (jobs/fit-checkpoint.ts keeps it in files). */
export interface FitCheckpoint {
  passProgress(kind: FisherPass["kind"]): Promise<PassProgress | undefined>;
  savePassProgress(kind: FisherPass["kind"], progress: PassProgress): Promise<void>;
  eigenbasis(module: number): Promise<ModuleEigenbasis | undefined>;
  saveEigenbasis(module: number, basis: ModuleEigenbasis): Promise<void>;
}

/**
 * The accumulator of a pass, for the modules of a model; with a `group`, for that group's modules
 * only (a grouped fit), adding their part of each capture.
 */
export function passAccumulator(pass: FisherPass, modules: readonly TrackedModule[], group?: LayerGroup): PassAccumulator {
  if (!group) return pass.kind === "covariance" ? new CovarianceAccumulator(modules) : new LambdaAccumulator(modules, pass.eigen);
  const into = passAccumulator(pass, groupModules(modules, group));
  return {
    totals: into.totals,
    add: (capture) => into.add({ ...capture, modules: capture.modules.slice(group.first, group.first + group.count) }),
    merge: (partial) => into.merge(partial),
  };
}

/** The loss whose gradients define the Fisher: true next tokens, or labels sampled per sequence. */
export function fisherLoss(fisher: FisherMode, seed: number, batch: readonly TokenSequence[]): LossSpec {
  return fisher === "empirical" ? { kind: "next-token" } : { kind: "sampled", seeds: batch.map((s) => hashSeed(seed, s.ordinal)) };
}

/** The stream in lists of `size` consecutive items, from list `first` on (the lists before are read past). */
async function* shardsOf<T>(items: AsyncIterable<T>, size: number, first: number): AsyncGenerator<T[]> {
  const skipped = first * size;
  let position = 0;
  let shard: T[] = [];
  for await (const item of items) {
    if (position++ < skipped) continue;
    shard.push(item);
    if (shard.length === size) {
      yield shard;
      shard = [];
    }
  }
  if (shard.length) yield shard;
}

/**
 * Each pass on this thread, in shards of `shardSize` sequences (DEFAULT_SHARD_SIZE): each shard's
 * forward/backward over length-sorted batches of it (see batchesOf), its captures added to a
 * fresh accumulator. With a `group`, the passes sum that group's modules only (a grouped fit).
 */
export function serialPasses(
  model: CausalLM,
  sequences: () => AsyncIterable<TokenSequence>,
  total: number,
  opts: FisherSettings & { batchTokens?: number; shardSize?: number; group?: LayerGroup; onProgress?: ProgressListener },
): PassRunner {
  const shardSize = opts.shardSize ?? DEFAULT_SHARD_SIZE;
  return {
    shards: Math.ceil(total / shardSize),
    run: async (pass, first, onShard) => {
      let done = Math.min(total, first * shardSize);
      let tokens = 0;
      opts.onProgress?.({ phase: pass.kind, done, total, tokens });
      for await (const shard of shardsOf(sequences(), shardSize, first)) {
        const into = passAccumulator(pass, model.modules, opts.group);
        for await (const batch of batchesOf(shard, { maxTokens: batchTokenLimit(model.config, opts.batchTokens) })) {
          await into.add(
            await model.capture(
              batch.map((s) => s.tokens),
              fisherLoss(opts.fisher, opts.seed, batch),
            ),
          );
          done += batch.length;
          tokens += batch.reduce((s, x) => s + x.tokens.length, 0);
          opts.onProgress?.({ phase: pass.kind, done, total, tokens });
        }
        await onShard(into.totals);
      }
    },
  };
}

/** What LambdaAccumulator.finish takes for a damping rule. */
export const lambdaDamping = (rule: DampingRule): number | { factor: number } => (rule.rule === "fixed" ? rule.value : { factor: rule.factor });

/**
 * Runs a pass into `into`: the sums a checkpoint holds first, then the shards after them, each
 * added in shard order and the running sums kept after every shard.
 */
async function checkpointedPass(pass: FisherPass, into: PassAccumulator, runPass: PassRunner, checkpoint?: FitCheckpoint): Promise<void> {
  const saved = await checkpoint?.passProgress(pass.kind);
  if (saved && saved.shards > runPass.shards) throw new Error(`the checkpoint of the ${pass.kind} pass covers ${saved.shards} shards of ${runPass.shards}`);
  if (saved) into.merge(saved.sums);
  let shards = saved?.shards ?? 0;
  if (shards === runPass.shards) return;
  await runPass.run(pass, shards, async (sums) => {
    into.merge(sums);
    shards++;
    await checkpoint?.savePassProgress(pass.kind, { shards, sums: into.totals });
  });
}

/**
 * Eigenbases of the covariances: those a checkpoint holds, then the others, each kept once found;
 * a module that reads another's input takes that module's eigenbasis of A. Each module's float64
 * A and S then give way to float32 copies, the precision they are saved in, so that the fit holds
 * half of them from here on.
 */
async function eigenbases(modules: readonly TrackedModule[], covariance: StoredCovariance[], opts: FitOptions): Promise<ModuleEigenbasis[]> {
  const owners = inputOwners(modules);
  const bases: ModuleEigenbasis[] = [];
  const progress = (item?: string) => opts.onProgress?.({ phase: "eigendecomposition", done: bases.length, total: covariance.length, unit: "matrices", item });
  for (let m = 0; m < covariance.length; m++) {
    // Float64 as pass 1 made it, until replaced below.
    const cov = covariance[m] as ModuleCovariance;
    const owner = owners[m];
    let basis = await opts.checkpoint?.eigenbasis(m);
    if (!basis) {
      progress(cov.module.name);
      basis = await eigenbasis(cov, owner === m ? undefined : bases[owner]);
      await opts.checkpoint?.saveEigenbasis(m, basis);
    }
    bases.push(owner === m ? basis : { ...basis, qA: bases[owner].qA, eigA: bases[owner].eigA });
    covariance[m] = { module: cov.module, A: owner === m ? Float32Array.from(cov.A) : covariance[owner].A, S: Float32Array.from(cov.S) };
  }
  progress();
  return bases;
}

/** Pass 1 and its means; the accumulator, whose sums became the means, is not kept. */
async function covariancePass(
  modules: readonly TrackedModule[],
  runPass: PassRunner,
  checkpoint?: FitCheckpoint,
): Promise<{ covariance: StoredCovariance[]; tokens: number }> {
  const covariances = new CovarianceAccumulator(modules);
  await checkpointedPass({ kind: "covariance" }, covariances, runPass, checkpoint);
  return { covariance: covariances.finish(), tokens: covariances.totals.count };
}

/** EK-FAC factors of the modules, each pass run by `runPass`, continuing from `opts.checkpoint`. */
export async function fitEkfac(modules: readonly TrackedModule[], runPass: PassRunner, opts: FitOptions): Promise<FitResult> {
  const clock = () => performance.now() / 1000;
  let start = clock();
  const { covariance, tokens } = await covariancePass(modules, runPass, opts.checkpoint);
  const covarianceSeconds = clock() - start;

  start = clock();
  const bases = await eigenbases(modules, covariance, opts);
  const eigendecompositionSeconds = clock() - start;

  start = clock();
  const lambdas = new LambdaAccumulator(modules, bases);
  await checkpointedPass({ kind: "lambda", eigen: bases }, lambdas, runPass, opts.checkpoint);
  const factors = lambdas.finish(lambdaDamping(opts.damping));
  const lambdaSeconds = clock() - start;

  return { covariance, factors, sequences: lambdas.totals.count, tokens, timings: { covarianceSeconds, eigendecompositionSeconds, lambdaSeconds } };
}
