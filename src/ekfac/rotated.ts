/**
 * Each sequence's gradient in the EK-FAC eigenbasis, Q_S^T G Q_A = (g Q_S)^T (a Q_A), for a
 * tracked matrix of a capture. Rotating the per-token vectors first is cheaper than rotating the
 * [out, in+1] gradient whenever a sequence is shorter than the layer is wide.
 */
import { tf } from "../backend/backend.js";
import type { GradientCapture } from "../model/capture.js";
import { sequenceRows } from "./gradients.js";

/** A module's eigenbases as host arrays (eigenvectors as columns, row-major). */
export interface Eigenbases {
  qA: Float32Array;
  qS: Float32Array;
}

/**
 * The rotated gradient of every sequence for module `m`, [out, in+1] each; the caller disposes
 * them. The bases are uploaded for this call only: GPT-2 small's 24 bases (1 GB) would not fit
 * beside the model in a wasm thread's 4 GiB, one module's at a time do, and uploading costs a
 * copy, far less than the rotation itself.
 */
export function rotatedGradients(capture: GradientCapture, basis: Eigenbases, m: number): tf.Tensor2D[] {
  const { batch } = capture;
  const { a, g } = capture.modules[m];
  return tf.tidy(() => {
    const [nIn, nOut] = [a.shape[1], g.shape[1]];
    const aRot: tf.Tensor2D = tf.matMul(a, tf.tensor2d(basis.qA, [nIn, nIn]));
    const gRot: tf.Tensor2D = tf.matMul(g, tf.tensor2d(basis.qS, [nOut, nOut]));
    return Array.from({ length: batch.size }, (_, b) => tf.matMul(tf.transpose(sequenceRows(gRot, batch, b)), sequenceRows(aRot, batch, b)));
  });
}
