/**
 * Symmetric eigendecomposition in float64, A = V diag(values) V^T (numpy.linalg.eigh convention):
 * by Givens rotations on the calling thread for small matrices (eigh-rotations.ts), by matrix
 * products on ONNX Runtime for the others (eigh-blocked.ts).
 */
import { availableParallelism } from "node:os";
import type { Eigh } from "./eigenpairs.js";
import { eighBlocked, type StageListener } from "./eigh-blocked.js";
import { eighByRotations } from "./eigh-rotations.js";

export type { Eigh } from "./eigenpairs.js";

export interface EighOptions {
  /**
   * Threads for the matrix-vector products of the blocked solver from n = HELPERS_MIN_N
   * (tridiagonal-blocked.ts) on, the caller's included (default: the number of CPUs, at most 4); its
   * matrix products use ONNX Runtime's own threads.
   */
  threads?: number;
  /** Told the wall time of each stage of the blocked solver as it finishes (benchmarks, progress). */
  onStage?: StageListener;
}

/**
 * Below this size the rotations are faster than the blocked solver's kernel calls (best of 7, load
 * average 2.5 on 2 cores: 2.5 against 4.4 ms at n = 96, 5.4 against 5.2 at 128, 9.6 against 8.3 at 160).
 */
export const BLOCKED_MIN_N = 160;

/** Eigendecomposition of the symmetric row-major n×n matrix `a` (not modified). */
export async function eigh(a: Float64Array, n: number, options: EighOptions = {}): Promise<Eigh> {
  validateMatrix(a, n, "eigh");
  const threads = options.threads ?? Math.min(4, availableParallelism());
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`eigh: threads must be a positive integer, got ${threads}`);
  return n < BLOCKED_MIN_N ? eighByRotations(a, n) : eighBlocked(a, n, threads, options.onStage);
}

/** Refuses, naming `caller`, a row-major n×n matrix of the wrong size or with NaN/Inf. */
export function validateMatrix(a: Float64Array, n: number, caller: string): void {
  if (!Number.isInteger(n) || n < 0) throw new Error(`${caller}: size must be a non-negative integer, got ${n}`);
  if (a.length !== n * n) throw new Error(`${caller}: expected ${n}×${n} = ${n * n} entries, got ${a.length}`);
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) {
      throw new Error(`${caller}: the matrix contains NaN/Inf (${a[i]} at row ${Math.floor(i / n)}, column ${i % n})`);
    }
  }
}

/** The k largest eigenvalues, descending, and their eigenvectors as the columns of [n, k]. */
export function largestFirst({ values, vectors }: Eigh, n: number, k: number): Eigh {
  const top = new Float64Array(n * k);
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) top[i * k + j] = vectors[i * n + (n - 1 - j)];
  return { values: Float64Array.from({ length: k }, (_, j) => values[n - 1 - j]), vectors: top };
}
