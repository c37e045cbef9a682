/**
 * The fitted EK-FAC factors of one tracked matrix, and preconditioning with them:
 * (G + damping)^-1 V = Q_S [(Q_S^T V Q_A) / (Lambda + damping)] Q_A^T.
 */
import { type GradientCapture, type TrackedModule, inputWidth } from "../model/model.js";
import type { HostTensor } from "../runtime/kernels.js";
import { type Allocate, float32Array, ordinaryMemory } from "../util/allocate.js";
import { capturedTokens, eigenbases, precondition as preconditionProduct, preconditionedGradients as preconditionedProduct } from "./products.js";

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

/** 1 / (Lambda + damping), [out, in+1] row-major, in memory from `allocate` (ordinary by default). */
export function inverseScale(f: ModuleFactors, allocate: Allocate = ordinaryMemory): HostTensor {
  const data = float32Array(allocate, f.lambda.length);
  for (let i = 0; i < data.length; i++) data[i] = 1 / (f.lambda[i] + f.damping);
  return { data, dims: [f.module.outFeatures, inputWidth(f.module)] };
}

const basesOf = (f: ModuleFactors) => eigenbases(f, inputWidth(f.module), f.module.outFeatures);

/** Matrices [n, out, in+1] stacked, split back into one array per matrix. */
export function splitMatrices(stacked: Float32Array, count: number): Float32Array[] {
  const size = stacked.length / count;
  return Array.from({ length: count }, (_, i) => stacked.subarray(i * size, (i + 1) * size));
}

/** Several row-major [rows, cols] matrices as one [n, rows, cols] tensor. */
export function stackMatrices(matrices: readonly Float32Array[], rows: number, cols: number): HostTensor {
  const data = new Float32Array(matrices.length * rows * cols);
  matrices.forEach((m, i) => data.set(m, i * rows * cols));
  return { data, dims: [matrices.length, rows, cols] };
}

/** A module's gradient-shaped matrices [out, in+1] as one [n, out, in+1] tensor. */
const stackGradients = (module: TrackedModule, matrices: readonly Float32Array[]) => stackMatrices(matrices, module.outFeatures, inputWidth(module));

/** (G + damping)^-1 V for formed gradients V [out, in+1] of module f. */
export async function precondition(f: ModuleFactors, inverse: HostTensor, gradients: readonly Float32Array[]): Promise<Float32Array[]> {
  return splitMatrices(await preconditionProduct(stackGradients(f.module, gradients), basesOf(f), inverse), gradients.length);
}

/**
 * (G + damping)^-1 G_b for every sequence b of a capture, module m: the gradient enters the
 * eigenbasis token by token (products.ts), so it is never formed.
 */
export async function preconditionedGradients(capture: GradientCapture, f: ModuleFactors, inverse: HostTensor, m: number): Promise<Float32Array[]> {
  return splitMatrices(await preconditionedProduct(capturedTokens(capture, m), basesOf(f), inverse), capture.batch.size);
}
