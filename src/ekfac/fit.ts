/**
 * Fitting EK-FAC over a stream of training sequences: pass 1 (covariances A and S), float64
 * eigendecompositions, pass 2 (corrected eigenvalues Lambda), damping.
 */
import { batchTokenLimit } from "../model/batch-budget.js";
import { type LossSpec, captureGradients } from "../model/capture.js";
import type { CausalLM } from "../model/model.js";
import { batchesOf } from "../util/batches.js";
import type { ProgressListener } from "../util/progress.js";
import { hashSeed } from "../util/random.js";
import type { DampingRule, FisherMode } from "./artifacts.js";
import { CovarianceAccumulator, type ModuleCovariance } from "./covariance.js";
import { eigenbasis } from "./eigenbasis.js";
import type { ModuleFactors } from "./factors.js";
import { LambdaAccumulator } from "./lambda.js";

export interface TokenSequence {
  /** Position in corpus order: also seeds the sampled labels of this sequence. */
  ordinal: number;
  tokens: readonly number[];
}

export interface FitOptions {
  fisher: FisherMode;
  damping: DampingRule;
  seed: number;
  /** Padded tokens per forward/backward batch (capped for large models, see batch-budget). */
  batchTokens?: number;
  onProgress?: ProgressListener;
}

export interface FitResult {
  covariance: ModuleCovariance[];
  factors: ModuleFactors[];
  sequences: number;
  tokens: number;
  timings: { covarianceSeconds: number; eigendecompositionSeconds: number; lambdaSeconds: number };
}

/** The loss whose gradients define the Fisher: true next tokens, or labels sampled per sequence. */
export function fisherLoss(fisher: FisherMode, seed: number, batch: readonly TokenSequence[]): LossSpec {
  return fisher === "empirical" ? { kind: "next-token" } : { kind: "sampled", seeds: batch.map((s) => hashSeed(seed, s.ordinal)) };
}

/** Runs one pass of forward/backward over the sequences, handing each capture to `consume`. */
async function pass(
  model: CausalLM,
  sequences: () => AsyncIterable<TokenSequence>,
  total: number,
  phase: string,
  opts: FitOptions,
  consume: (capture: ReturnType<typeof captureGradients>) => void,
): Promise<{ sequences: number; tokens: number }> {
  let done = 0;
  let tokens = 0;
  opts.onProgress?.({ phase, done, total, tokens });
  for await (const batch of batchesOf(sequences(), { maxTokens: batchTokenLimit(model.config, opts.batchTokens) })) {
    const capture = captureGradients(
      model,
      batch.map((s) => s.tokens),
      fisherLoss(opts.fisher, opts.seed, batch),
    );
    try {
      consume(capture);
    } finally {
      capture.dispose();
    }
    done += batch.length;
    tokens += batch.reduce((s, x) => s + x.tokens.length, 0);
    opts.onProgress?.({ phase, done, total, tokens });
  }
  return { sequences: done, tokens };
}

export async function fitEkfac(model: CausalLM, sequences: () => AsyncIterable<TokenSequence>, total: number, opts: FitOptions): Promise<FitResult> {
  const clock = () => performance.now() / 1000;
  let start = clock();
  const covAcc = new CovarianceAccumulator(model.modules);
  const counts = await pass(model, sequences, total, "covariance", opts, (c) => covAcc.add(c));
  const covariance = covAcc.finish();
  const covarianceSeconds = clock() - start;

  start = clock();
  const bases = covariance.map((cov, i) => {
    opts.onProgress?.({ phase: "eigendecomposition", done: i, total: covariance.length, unit: "matrices" });
    return eigenbasis(cov);
  });
  opts.onProgress?.({ phase: "eigendecomposition", done: covariance.length, total: covariance.length, unit: "matrices" });
  const eigendecompositionSeconds = clock() - start;

  start = clock();
  const lambdaAcc = new LambdaAccumulator(model.modules, bases);
  await pass(model, sequences, counts.sequences, "lambda", opts, (c) => lambdaAcc.add(c));
  const damping = opts.damping.rule === "fixed" ? opts.damping.value : { factor: opts.damping.factor };
  const factors = lambdaAcc.finish(damping);
  const lambdaSeconds = clock() - start;

  return { covariance, factors, ...counts, timings: { covarianceSeconds, eigendecompositionSeconds, lambdaSeconds } };
}
