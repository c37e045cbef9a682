/**
 * Each sequence's gradient in the EK-FAC eigenbasis, Q_S^T G Q_A = (g Q_S)^T (a Q_A), for a
 * tracked matrix of a capture. Rotating the per-token vectors first is cheaper than rotating the
 * [out, in+1] gradient whenever a sequence is shorter than the layer is wide.
 */
import { tf } from "../backend/backend.js";
import type { TensorCapture } from "./capture-tensors.js";
import { type TrackedModule, inputWidth } from "../model/model.js";
import { sequenceRows } from "./gradients.js";

/** A module's eigenbases on the backend (eigenvectors as columns). */
export interface Eigenbases {
  qA: tf.Tensor2D;
  qS: tf.Tensor2D;
}

/**
 * Uploads a module's eigenbases for one use; call it inside the tf.tidy that uses them, which
 * frees them. Bases live in host memory between uses: GPT-2 small's 24 (1 GB) would not fit
 * beside the model in a wasm thread's 4 GiB, one module's at a time do, and an upload costs a
 * copy, far less than the products it serves.
 */
export function uploadBases(module: TrackedModule, host: { qA: Float32Array; qS: Float32Array }): Eigenbases {
  const nIn = inputWidth(module);
  return { qA: tf.tensor2d(host.qA, [nIn, nIn]), qS: tf.tensor2d(host.qS, [module.outFeatures, module.outFeatures]) };
}

/** The rotated gradient of every sequence for module `m`, [out, in+1] each; the caller disposes them. */
export function rotatedGradients(capture: TensorCapture, basis: Eigenbases, m: number): tf.Tensor2D[] {
  const { batch } = capture;
  const { a, g } = capture.modules[m];
  return tf.tidy(() => {
    const aRot: tf.Tensor2D = tf.matMul(a, basis.qA);
    const gRot: tf.Tensor2D = tf.matMul(g, basis.qS);
    return Array.from({ length: batch.size }, (_, b) => tf.matMul(tf.transpose(sequenceRows(gRot, batch, b)), sequenceRows(aRot, batch, b)));
  });
}
