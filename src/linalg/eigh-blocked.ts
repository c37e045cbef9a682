/**
 * The eigensolver for large matrices, its cost dominated by matrix products on ONNX Runtime
 * (products64.ts), as LAPACK's dsyevd:
 *
 * 1. blocked Householder tridiagonalisation A = Q T Qᵀ (tridiagonal-blocked.ts);
 * 2. T = Z diag(w) Zᵀ by divide and conquer (divide-conquer.ts);
 * 3. V = Q Z by blocked reflectors (back-transform.ts).
 */
import { applyReflectors } from "./back-transform.js";
import { tridiagonalEigen } from "./divide-conquer.js";
import type { Eigh } from "./eigenpairs.js";
import { tridiagonalizeBlocked } from "./tridiagonal-blocked.js";

export type Stage = "tridiagonal" | "divide-and-conquer" | "back-transform";
export type StageListener = (stage: Stage, seconds: number) => void;

/**
 * Eigendecomposition of the symmetric row-major n×n matrix `a` (not modified); `threads` share the
 * matrix-vector products of step 1, and `onStage` hears how long each step took.
 */
export async function eighBlocked(a: Float64Array, n: number, threads: number, onStage?: StageListener): Promise<Eigh> {
  let start = performance.now();
  const lap = (stage: Stage) => {
    const now = performance.now();
    onStage?.(stage, (now - start) / 1000);
    start = now;
  };
  const reduced = await tridiagonalizeBlocked(a, n, threads);
  lap("tridiagonal");
  const { values, vectors } = await tridiagonalEigen(reduced.d, reduced.e);
  lap("divide-and-conquer");
  await applyReflectors(reduced.reflectors, reduced.tau, vectors);
  lap("back-transform");
  return { values, vectors };
}
