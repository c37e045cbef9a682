/**
 * Each sequence's gradient in the EK-FAC eigenbasis, Q_S^T G Q_A = (g Q_S)^T (a Q_A), for every
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

/** Calls `visit(module, rotated)` for every module and sequence, inside a tidy per module. */
export function forEachRotatedGradient(
  capture: GradientCapture,
  bases: readonly Eigenbases[],
  visit: (module: number, sequence: number, rotated: tf.Tensor2D) => void,
): void {
  const { batch } = capture;
  capture.modules.forEach((m, i) => {
    tf.tidy(() => {
      const aRot: tf.Tensor2D = tf.matMul(m.a, bases[i].qA);
      const gRot: tf.Tensor2D = tf.matMul(m.g, bases[i].qS);
      for (let b = 0; b < batch.size; b++) visit(i, b, tf.matMul(tf.transpose(sequenceRows(gRot, batch, b)), sequenceRows(aRot, batch, b)));
    });
  });
}
