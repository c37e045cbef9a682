/**
 * Per-token EK-FAC inputs for a batch of sequences under one of three losses:
 *  - "next-token": the summed training loss with the true next tokens (empirical Fisher, scores);
 *  - "sampled":    the same with labels drawn from the model's own predictive distribution
 *                  (the true Fisher of the paper), seeded per sequence so that it is reproducible
 *                  and independent of batching;
 *  - "completion": the query measurement, the summed NLL of the completion tokens given the prompt.
 * Losses are sums over positions, never means (influence-math.md).
 */
import { tf } from "../backend/backend.js";
import { InputError } from "../util/errors.js";
import { uniformGenerator } from "../util/random.js";
import { type Batch, makeBatch } from "./batch.js";
import type { CausalLM, ModuleCapture } from "./model.js";

export type LossSpec =
  | { kind: "next-token" }
  | { kind: "sampled"; seeds: readonly number[] }
  | { kind: "completion"; promptLengths: readonly number[] };

export interface GradientCapture {
  batch: Batch;
  modules: ModuleCapture[];
  /** Summed loss of each sequence under the spec (for "sampled", of the sampled labels). */
  losses: Float64Array;
  dispose(): void;
}

/** Which positions carry loss: position t predicts token t+1. */
function lossWeights(batch: Batch, spec: LossSpec): Float32Array {
  const w = new Float32Array(batch.size * batch.length);
  for (let b = 0; b < batch.size; b++) {
    const len = batch.lengths[b];
    let first = 0;
    if (spec.kind === "completion") {
      first = spec.promptLengths[b] - 1;
      if (first < 0 || first >= len - 1) {
        throw new InputError(`query ${b}: a prompt of ${spec.promptLengths[b]} tokens leaves no completion token in a sequence of ${len}`);
      }
    }
    for (let t = first; t < len - 1; t++) w[b * batch.length + t] = 1;
  }
  return w;
}

/** Next tokens as labels (0 where a position carries no loss). */
function trueLabels(batch: Batch, weights: Float32Array): Int32Array {
  const labels = new Int32Array(weights.length);
  for (let i = 0; i < weights.length; i++) if (weights[i]) labels[i] = batch.ids[i + 1];
  return labels;
}

/**
 * Labels drawn from softmax rows by inverse-CDF sampling with one uniform per position from the
 * sequence's own seed, so a sequence gets the same labels in any batch.
 */
function sampledLabels(probs: tf.Tensor2D, batch: Batch, weights: Float32Array, seeds: readonly number[]): Int32Array {
  if (seeds.length !== batch.size) throw new Error(`sampled labels need one seed per sequence (${seeds.length} for ${batch.size})`);
  const p = probs.dataSync();
  const V = probs.shape[1];
  const labels = new Int32Array(weights.length);
  for (let b = 0; b < batch.size; b++) {
    const uniform = uniformGenerator(seeds[b]);
    for (let t = 0; t < batch.length; t++) {
      const row = b * batch.length + t;
      if (!weights[row]) continue;
      const base = row * V;
      let total = 0;
      for (let v = 0; v < V; v++) total += p[base + v];
      const target = uniform() * total;
      let acc = 0;
      let v = 0;
      while (v < V - 1 && (acc += p[base + v]) <= target) v++;
      labels[row] = v;
    }
  }
  return labels;
}

/** Per-position NLL, lse(logits) - logit[label], weighted, summed per sequence (float64). */
function summedLosses(logits: tf.Tensor2D, labels: Int32Array, weights: Float32Array, batch: Batch): Float64Array {
  const V = logits.shape[1];
  const perPosition = tf.tidy(() => {
    const flatIdx = labels.map((label, row) => row * V + label);
    const picked = tf.gather(tf.reshape(logits, [-1]), tf.tensor1d(flatIdx, "int32"));
    return tf.sub(tf.logSumExp(logits, 1), picked).dataSync();
  });
  const losses = new Float64Array(batch.size);
  for (let i = 0; i < weights.length; i++) if (weights[i]) losses[Math.floor(i / batch.length)] += perPosition[i];
  return losses;
}

/** Forward and backward passes: per-token layer inputs and output gradients of every tracked matrix. */
export function captureGradients(model: CausalLM, sequences: readonly (readonly number[])[], spec: LossSpec): GradientCapture {
  const { contextLength, vocabSize } = model.config;
  const batch = makeBatch(sequences, contextLength, vocabSize);
  const weights = lossWeights(batch, spec);
  const pass = model.forward(batch);
  let modules: ModuleCapture[];
  let losses: Float64Array;
  try {
    const probs = tf.softmax(pass.logits) as tf.Tensor2D;
    const labels = spec.kind === "sampled" ? sampledLabels(probs, batch, weights, spec.seeds) : trueLabels(batch, weights);
    losses = summedLosses(pass.logits, labels, weights, batch);
    // dL/dlogits of a summed NLL: w_t (softmax - onehot(label)).
    const dlogits = tf.tidy(() => {
      const onehot = tf.oneHot(tf.tensor1d(labels, "int32"), vocabSize);
      return tf.mul(tf.sub(probs, onehot), tf.tensor2d(weights, [weights.length, 1])) as tf.Tensor2D;
    });
    probs.dispose();
    modules = pass.backward(dlogits);
    dlogits.dispose();
  } finally {
    pass.dispose();
    pass.logits.dispose();
  }
  return { batch, modules, losses, dispose: () => modules.forEach((m) => tf.dispose([m.a, m.g])) };
}
