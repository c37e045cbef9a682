/**
 * Fitting EK-FAC over a stream of training sequences: pass 1 (covariances A and S), float64
 * eigendecompositions, pass 2 (corrected eigenvalues Lambda), damping. How each pass runs over
 * the sequences is the caller's choice: serially on this thread (serialPasses), or spread over
 * worker threads whose partial sums are merged (indexer/parallel-passes.ts).
 */
import { batchTokenLimit } from "../model/batch-budget.js";
import type { CausalLM, GradientCapture, LossSpec, TrackedModule } from "../model/model.js";
import { batchesOf } from "../util/batches.js";
import type { ProgressListener } from "../util/progress.js";
import { hashSeed } from "../util/random.js";
import type { DampingRule, FisherMode } from "./artifacts.js";
import { CovarianceAccumulator, type ModuleCovariance } from "./covariance.js";
import { type ModuleEigenbasis, eigenbasis } from "./eigenbasis.js";
import type { ModuleFactors } from "./factors.js";
import { LambdaAccumulator } from "./lambda.js";
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

export interface FitOptions {
  damping: DampingRule;
  /** Reports the eigendecompositions; each pass reports its own progress. */
  onProgress?: ProgressListener;
}

export interface FitResult {
  covariance: ModuleCovariance[];
  factors: ModuleFactors[];
  sequences: number;
  tokens: number;
  timings: { covarianceSeconds: number; eigendecompositionSeconds: number; lambdaSeconds: number };
}

/** One pass over the fitting sequences: the covariances A and S, or Lambda in the given eigenbases. */
export type FisherPass = { kind: "covariance" } | { kind: "lambda"; eigen: ModuleEigenbasis[] };

/** What a pass adds up: captures of this thread's batches, or partial sums from other threads. */
export interface PassAccumulator {
  readonly totals: PartialSums;
  add(capture: GradientCapture): Promise<void>;
  merge(partial: PartialSums): void;
}

/**
 * A way of running each pass: feeds every fitting sequence once into `into` (progress reported
 * under the pass's kind) and returns how many sequences and tokens it covered.
 */
export type PassRunner = (pass: FisherPass, into: PassAccumulator) => Promise<{ sequences: number; tokens: number }>;

/** The accumulator of a pass, for the modules of a model. */
export function passAccumulator(pass: FisherPass, modules: readonly TrackedModule[]): CovarianceAccumulator | LambdaAccumulator {
  return pass.kind === "covariance" ? new CovarianceAccumulator(modules) : new LambdaAccumulator(modules, pass.eigen);
}

/** The loss whose gradients define the Fisher: true next tokens, or labels sampled per sequence. */
export function fisherLoss(fisher: FisherMode, seed: number, batch: readonly TokenSequence[]): LossSpec {
  return fisher === "empirical" ? { kind: "next-token" } : { kind: "sampled", seeds: batch.map((s) => hashSeed(seed, s.ordinal)) };
}

/**
 * Each pass on this thread: forward/backward over length-sorted batches of the stream (see
 * batchesOf), each capture added to the pass's accumulator.
 */
export function serialPasses(
  model: CausalLM,
  sequences: () => AsyncIterable<TokenSequence>,
  total: number,
  opts: FisherSettings & { batchTokens?: number; onProgress?: ProgressListener },
): PassRunner {
  return async (pass, into) => {
    let done = 0;
    let tokens = 0;
    opts.onProgress?.({ phase: pass.kind, done, total, tokens });
    for await (const batch of batchesOf(sequences(), { maxTokens: batchTokenLimit(model.config, opts.batchTokens) })) {
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
    return { sequences: done, tokens };
  };
}

/** What LambdaAccumulator.finish takes for a damping rule. */
export const lambdaDamping = (rule: DampingRule): number | { factor: number } => (rule.rule === "fixed" ? rule.value : { factor: rule.factor });

/** EK-FAC factors of the modules, each pass run by `runPass`. */
export async function fitEkfac(modules: readonly TrackedModule[], runPass: PassRunner, opts: FitOptions): Promise<FitResult> {
  const clock = () => performance.now() / 1000;
  let start = clock();
  const covariances = new CovarianceAccumulator(modules);
  const counts = await runPass({ kind: "covariance" }, covariances);
  const covariance = covariances.finish();
  const covarianceSeconds = clock() - start;

  start = clock();
  const bases: ModuleEigenbasis[] = [];
  for (const [i, cov] of covariance.entries()) {
    opts.onProgress?.({ phase: "eigendecomposition", done: i, total: covariance.length, unit: "matrices" });
    bases.push(await eigenbasis(cov));
  }
  opts.onProgress?.({ phase: "eigendecomposition", done: covariance.length, total: covariance.length, unit: "matrices" });
  const eigendecompositionSeconds = clock() - start;

  start = clock();
  const lambdas = new LambdaAccumulator(modules, bases);
  await runPass({ kind: "lambda", eigen: bases }, lambdas);
  const factors = lambdas.finish(lambdaDamping(opts.damping));
  const lambdaSeconds = clock() - start;

  return { covariance, factors, ...counts, timings: { covarianceSeconds, eigendecompositionSeconds, lambdaSeconds } };
}
