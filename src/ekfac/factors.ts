/**
 * The fitted EK-FAC factors of one tracked matrix, and their backend tensors for
 * preconditioning: (G + damping)^-1 V = Q_S [(Q_S^T V Q_A) / (Lambda + damping)] Q_A^T.
 */
import { tf } from "../backend/backend.js";
import type { TrackedModule } from "../model/model.js";

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

export function factorTensors(f: ModuleFactors): FactorTensors {
  const nIn = f.module.inFeatures + 1;
  const nOut = f.module.outFeatures;
  const qA = tf.tensor2d(f.qA, [nIn, nIn]);
  const qS = tf.tensor2d(f.qS, [nOut, nOut]);
  const inverse = new Float32Array(f.lambda.length);
  for (let i = 0; i < inverse.length; i++) inverse[i] = 1 / (f.lambda[i] + f.damping);
  return { module: f.module, qA, qAT: tf.transpose(qA), qS, qST: tf.transpose(qS), inverse: tf.tensor2d(inverse, [nOut, nIn]) };
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
