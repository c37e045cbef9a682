/**
 * The fitted EK-FAC factors of one tracked matrix, and their backend tensors for
 * preconditioning: (G + damping)^-1 V = Q_S [(Q_S^T V Q_A) / (Lambda + damping)] Q_A^T.
 */
import { tf } from "../backend/backend.js";
import type { GradientCapture } from "../model/capture.js";
import type { TrackedModule } from "../model/model.js";
import { rotatedGradients } from "./rotated.js";

export interface ModuleFactors {
  module: TrackedModule;
  /** Eigenvectors of A as columns, [in+1, in+1] row-major. */
  qA: Float32Array;
  eigA: Float64Array;
  /** Eigenvectors of S as columns, [out, out] row-major. */
  qS: Float32Array;
  eigS: Float64Array;
  /** Corrected eigenvalues E_seq[(Q_S^T G Q_A)^2], [out, in+1] row-major. */
  lambda: Float32Array;
  damping: number;
}

/** Backend tensors of one module's factors, laid out for fast products. */
export interface FactorTensors {
  module: TrackedModule;
  qA: tf.Tensor2D;
  qAT: tf.Tensor2D;
  qS: tf.Tensor2D;
  qST: tf.Tensor2D;
  /** 1 / (Lambda + damping), [out, in+1]. */
  inverse: tf.Tensor2D;
}

/** 1 / (Lambda + damping), [out, in+1] row-major. */
export function inverseScale(f: ModuleFactors): Float32Array {
  return Float32Array.from(f.lambda, (x) => 1 / (x + f.damping));
}

export function factorTensors(f: ModuleFactors): FactorTensors {
  const nIn = f.module.inFeatures + 1;
  const nOut = f.module.outFeatures;
  const qA = tf.tensor2d(f.qA, [nIn, nIn]);
  const qS = tf.tensor2d(f.qS, [nOut, nOut]);
  return { module: f.module, qA, qAT: tf.transpose(qA), qS, qST: tf.transpose(qS), inverse: tf.tensor2d(inverseScale(f), [nOut, nIn]) };
}

export function disposeFactorTensors(ts: readonly FactorTensors[]): void {
  for (const t of ts) tf.dispose([t.qA, t.qAT, t.qS, t.qST, t.inverse]);
}

/** Rotates a gradient [out, in+1] into the eigenbasis: Q_S^T V Q_A. */
export const toEigenbasis = (f: FactorTensors, v: tf.Tensor2D): tf.Tensor2D => tf.matMul(tf.matMul(f.qST, v), f.qA);

/** Rotates back out of the eigenbasis: Q_S X Q_A^T. */
export const fromEigenbasis = (f: FactorTensors, x: tf.Tensor2D): tf.Tensor2D => tf.matMul(tf.matMul(f.qS, x), f.qAT);

/** (G + damping)^-1 V for this module's block of the curvature. */
export function precondition(f: FactorTensors, v: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => fromEigenbasis(f, tf.mul(toEigenbasis(f, v), f.inverse)));
}

/**
 * (G + damping)^-1 G_b for every sequence b of a capture, module m, from host factors and the
 * module's 1 / (Lambda + damping): the gradient enters the eigenbasis token by token (rotated.ts),
 * so it is never formed, and nothing stays on the backend between calls, which keeps a large
 * model's factors off a wasm thread's 4 GiB heap. The caller disposes the [out, in+1] results.
 */
export function preconditionedGradients(capture: GradientCapture, f: ModuleFactors, inverse: Float32Array, m: number): tf.Tensor2D[] {
  const nIn = f.module.inFeatures + 1;
  const nOut = f.module.outFeatures;
  return tf.tidy(() => {
    const scale = tf.tensor2d(inverse, [nOut, nIn]);
    const qS = tf.tensor2d(f.qS, [nOut, nOut]);
    const qAT = tf.transpose(tf.tensor2d(f.qA, [nIn, nIn]));
    return rotatedGradients(capture, f, m).map((x): tf.Tensor2D => tf.matMul(tf.matMul(qS, tf.mul(x, scale)), qAT));
  });
}
