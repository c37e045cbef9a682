/**
 * Each sequence's gradient in the EK-FAC eigenbasis, Q_S^T G Q_A = (g Q_S)^T (a Q_A), for a
 * tracked matrix of a capture. Rotating the per-token vectors first is cheaper than rotating the
 * [out, in+1] gradient whenever a sequence is shorter than the layer is wide.
 */
import { tf } from "../backend/backend.js";
import type { GradientCapture } from "../model/capture.js";
import { sequenceRows } from "./gradients.js";

export interface Eigenbases {
  qA: tf.Tensor2D;
  qS: tf.Tensor2D;
}

/** The rotated gradient of every sequence for module `m`, [out, in+1] each; the caller disposes them. */
export function rotatedGradients(capture: GradientCapture, basis: Eigenbases, m: number): tf.Tensor2D[] {
  const { batch } = capture;
  const { a, g } = capture.modules[m];
  return tf.tidy(() => {
    const aRot: tf.Tensor2D = tf.matMul(a, basis.qA);
    const gRot: tf.Tensor2D = tf.matMul(g, basis.qS);
    return Array.from({ length: batch.size }, (_, b) => tf.matMul(tf.transpose(sequenceRows(gRot, batch, b)), sequenceRows(aRot, batch, b)));
  });
}
