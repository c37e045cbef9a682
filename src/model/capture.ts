/**
 * Per-token EK-FAC inputs for a batch of sequences under one of three losses:
 *  - "next-token": the summed training loss with the true next tokens (empirical Fisher, scores);
 *  - "sampled":    the same with labels drawn from the model's own predictive distribution
 *                  (the true Fisher of the paper), seeded per sequence so that it is reproducible
 *                  and independent of batching;
 *  - "completion": the query measurement, the summed NLL of the completion tokens given the prompt.
 * Losses are sums over positions, never means (docs/math.md).
 */
import { download, tf } from "../backend/backend.js";
import { InputError } from "../util/errors.js";
import { uniformGenerator } from "../util/random.js";
import { type Batch, makeBatch } from "./batch.js";
import type { CausalLM, ModuleCapture } from "./model.js";

export type LossSpec =
  | { kind: "next-token" }
  | { kind: "sampled"; seeds: readonly number[] }
  | {
      kind: "completion";
      promptLengths: readonly number[];
      /** Per sequence, the 0-based completion tokens whose loss is measured (all when absent). */
      positions?: ReadonlyArray<readonly number[] | undefined>;
    };

export interface GradientCapture {
  batch: Batch;
  modules: ModuleCapture[];
  /** Summed loss of each sequence under the spec (for "sampled", of the sampled labels). */
  losses: Float64Array;
  dispose(): void;
}

/** Which positions carry loss: position t predicts token t+1. */
export function lossWeights(batch: Batch, spec: LossSpec): Float32Array {
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
    const measured = spec.kind === "completion" ? spec.positions?.[b] : undefined;
    if (measured) {
      for (const i of measured) {
        if (!Number.isInteger(i) || i < 0 || first + i >= len - 1) {
          throw new InputError(`completion position ${i} is outside the completion (0..${len - 2 - first})`);
        }
        w[b * batch.length + first + i] = 1;
      }
      continue;
    }
    for (let t = first; t < len - 1; t++) w[b * batch.length + t] = 1;
  }
  return w;
}

/** The rows of the flattened batch that carry loss, ascending. */
export function rowsWithLoss(weights: Float32Array): Int32Array {
  return Int32Array.from(weights.keys()).filter((row) => weights[row] !== 0);
}

/** The next token of each loss row. */
export function trueLabels(batch: Batch, rows: Int32Array): Int32Array {
  return rows.map((row) => batch.ids[row + 1]);
}

/**
 * Labels drawn from the softmax rows (one per loss row) by inverse-CDF sampling with one uniform
 * per position from the sequence's own seed, so a sequence gets the same labels in any batch.
 */
export function sampledLabels(p: Float32Array, vocab: number, batch: Batch, rows: Int32Array, seeds: readonly number[]): Int32Array {
  if (seeds.length !== batch.size) throw new Error(`sampled labels need one seed per sequence (${seeds.length} for ${batch.size})`);
  const uniforms = seeds.map((seed) => uniformGenerator(seed));
  return rows.map((row, k) => {
    const base = k * vocab;
    let total = 0;
    for (let v = 0; v < vocab; v++) total += p[base + v];
    const target = uniforms[Math.floor(row / batch.length)]() * total;
    let acc = 0;
    let v = 0;
    while (v < vocab - 1 && (acc += p[base + v]) <= target) v++;
    return v;
  });
}

/**
 * -log p(label) of one loss row. A probability that underflowed float32 (a logit gap beyond
 * about 87) is recomputed from that row's logits, so no loss is ever infinite.
 */
function positionLoss(p: Float32Array, vocab: number, logits: tf.Tensor2D, row: number, label: number): number {
  const prob = p[row * vocab + label];
  if (prob > 0) return -Math.log(prob);
  const values = download(tf.slice(logits, [row, 0], [1, -1]));
  const max = values.reduce((m, x) => Math.max(m, x), -Infinity);
  const lse = max + Math.log(values.reduce((s, x) => s + Math.exp(x - max), 0));
  return lse - values[label];
}

/** Forward and backward passes: per-token layer inputs and output gradients of every tracked matrix. */
export function captureGradients(model: CausalLM, sequences: readonly (readonly number[])[], spec: LossSpec): GradientCapture {
  const { contextLength, vocabSize } = model.config;
  const batch = makeBatch(sequences, contextLength, vocabSize);
  const weights = lossWeights(batch, spec);
  const rows = rowsWithLoss(weights);
  const pass = model.forward(batch, rows);
  const vocab = vocabSize;
  let modules: ModuleCapture[];
  const losses = new Float64Array(batch.size);
  try {
    // One softmax on the backend; labels, losses and dL/dlogits = w (p - onehot) are cheaper as
    // in-place edits of its downloaded copy than as further vocabulary-sized tensor ops.
    const p = download(tf.softmax(pass.logits));
    const labels = spec.kind === "sampled" ? sampledLabels(p, vocab, batch, rows, spec.seeds) : trueLabels(batch, rows);
    rows.forEach((row, k) => {
      const w = weights[row];
      losses[Math.floor(row / batch.length)] += w * positionLoss(p, vocab, pass.logits, k, labels[k]);
      p[k * vocab + labels[k]] -= 1;
      if (w !== 1) for (let v = k * vocab; v < (k + 1) * vocab; v++) p[v] *= w;
    });
    modules = pass.backward(p);
  } finally {
    pass.dispose();
    pass.logits.dispose();
  }
  return { batch, modules, losses, dispose: () => modules.forEach((m) => tf.dispose([m.a, m.g])) };
}
