/**
 * The fitted EK-FAC factors of one tracked matrix, and preconditioning with them:
 * (G + damping)^-1 V = Q_S [(Q_S^T V Q_A) / (Lambda + damping)] Q_A^T. The factors stay in host
 * memory and each call uploads the one module's bases it needs: GPT-2 small's 24 modules with
 * transposes would take 2 GB of a wasm thread's 4 GiB heap beside the model.
 */
import { tf } from "../backend/backend.js";
import type { TensorCapture } from "./capture-tensors.js";
import { type TrackedModule, inputWidth } from "../model/model.js";
import { type Eigenbases, rotatedGradients, uploadBases } from "./rotated.js";

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

/** 1 / (Lambda + damping), [out, in+1] row-major. */
export function inverseScale(f: ModuleFactors): Float32Array {
  return Float32Array.from(f.lambda, (x) => 1 / (x + f.damping));
}

/** Q_S [X o inverse] Q_A^T for each X in the eigenbasis; inside the caller's tidy. */
function scaledOutOfEigenbasis(f: ModuleFactors, bases: Eigenbases, inverse: Float32Array, rotated: readonly tf.Tensor2D[]): tf.Tensor2D[] {
  const scale = tf.tensor2d(inverse, [f.module.outFeatures, inputWidth(f.module)]);
  // Explicit transposes keep every product in the layout wasm multiplies fast.
  const qAT = tf.transpose(bases.qA);
  return rotated.map((x): tf.Tensor2D => tf.matMul(tf.matMul(bases.qS, tf.mul(x, scale)), qAT));
}

/** (G + damping)^-1 V for formed gradients V [out, in+1] of module f; the caller disposes the results. */
export function precondition(f: ModuleFactors, inverse: Float32Array, gradients: readonly tf.Tensor2D[]): tf.Tensor2D[] {
  return tf.tidy(() => {
    const bases = uploadBases(f.module, f);
    const qST = tf.transpose(bases.qS);
    return scaledOutOfEigenbasis(
      f,
      bases,
      inverse,
      gradients.map((v) => tf.matMul(tf.matMul(qST, v), bases.qA)),
    );
  });
}

/**
 * (G + damping)^-1 G_b for every sequence b of a capture, module m: the gradient enters the
 * eigenbasis token by token (rotated.ts), so it is never formed. The caller disposes the results.
 */
export function preconditionedGradients(capture: TensorCapture, f: ModuleFactors, inverse: Float32Array, m: number): tf.Tensor2D[] {
  return tf.tidy(() => {
    const bases = uploadBases(f.module, f);
    return scaledOutOfEigenbasis(f, bases, inverse, rotatedGradients(capture, bases, m));
  });
}
