/** The causal language-modelling loss, as a differentiable tensor for training. */
import { tf } from "../backend/backend.js";
import type { Batch } from "../model/batch.js";

/** Row r of a right-padded batch predicts ids[r + 1]; the last real row and padding predict nothing. */
export function nextTokenTargets(batch: Batch): { labels: Int32Array; weights: Float32Array; count: number } {
  const labels = new Int32Array(batch.size * batch.length);
  const weights = new Float32Array(labels.length);
  let count = 0;
  batch.lengths.forEach((len, b) => {
    for (let t = 0; t < len - 1; t++) {
      const row = b * batch.length + t;
      labels[row] = batch.ids[row + 1];
      weights[row] = 1;
      count++;
    }
  });
  return { labels, weights, count };
}

/** Smallest positive normal float32: a probability that underflowed costs at most -log of it (87 nats). */
const TINY = 1.1754944e-38;

/**
 * Sum over the batch's predicted positions of -log p(next token): the loss captureGradients uses
 * with kind "next-token". Divide by the count of nextTokenTargets for the per-token mean.
 * One custom-gradient op: its gradient w (softmax - onehot) reuses the forward softmax, where
 * autodiff through logSoftmax would take several more passes over the [rows, vocab] logits.
 */
export function summedNextTokenLoss(logits: tf.Tensor2D, batch: Batch): tf.Scalar {
  const { labels, weights } = nextTokenTargets(batch);
  const loss = tf.customGrad((x, save) => {
    const w = tf.tensor2d(weights, [weights.length, 1]);
    // Cast rather than oneHot(..., "float32"): wasm's OneHot writes int32 bits into a float32 output.
    const onehot = tf.cast(tf.oneHot(tf.tensor1d(labels, "int32"), logits.shape[1]), "float32");
    const p = tf.softmax(x as tf.Tensor2D);
    const picked = tf.sum(tf.mul(p, onehot), 1, true);
    (save as tf.GradSaveFunc)([p, onehot, w]);
    return {
      value: tf.neg(tf.sum(tf.mul(tf.log(tf.maximum(picked, TINY)), w))),
      gradFunc: (dy, [ps, onehots, ws]) => tf.mul(tf.sub(ps, onehots), tf.mul(ws, dy)),
    };
  });
  return loss(logits) as tf.Scalar;
}
