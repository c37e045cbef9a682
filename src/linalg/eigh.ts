/**
 * Symmetric eigendecomposition in float64, A = V diag(values) V^T (numpy.linalg.eigh convention).
 *
 * 1. Householder tridiagonalisation A = Q T Q^T (tridiagonal.ts), Q formed explicitly
 *    (householder-q.ts).
 * 2. Implicit QL on T, recording its Givens rotations (tridiagonal-ql.ts).
 * 3. The rotations replayed on the rows of Q give the eigenvectors (rotations.ts).
 * Stages 1 and 3 are split over rows between threads (parallel.ts).
 */
import { availableParallelism } from "node:os";
import { groupFactors, transposeInPlace } from "./householder-q.js";
import { allocateWorkspace, RowTeam } from "./parallel.js";
import { pairSize } from "./rotations.js";
import { tridiagonalize } from "./tridiagonal.js";
import { qlImplicit } from "./tridiagonal-ql.js";

export interface Eigh {
  /** Eigenvalues, ascending. */
  values: Float64Array;
  /** Row-major n×n; column j is the unit eigenvector of values[j]. */
  vectors: Float64Array;
}

export interface EighOptions {
  /**
   * Threads to use, the caller's included (default: the number of CPUs, at most 4). Helpers are
   * only started from n = 512 on, where they pay for their start-up.
   */
  threads?: number;
}

/** Below this size helper threads cost more than they save. */
const PARALLEL_MIN_N = 512;

/**
 * Numbers per batch of recorded rotations (2 MiB, an L2 cache): each batch is one pass over Q, and
 * from 1 to 4 MiB the time hardly changes.
 */
const ROTATION_BATCH = 1 << 18;

/** Eigendecomposition of the symmetric row-major n×n matrix `a` (not modified). */
export function eigh(a: Float64Array, n: number, options: EighOptions = {}): Eigh {
  validateMatrix(a, n, "eigh");
  const requested = options.threads ?? Math.min(4, availableParallelism());
  if (!Number.isInteger(requested) || requested < 1) throw new Error(`eigh: threads must be a positive integer, got ${requested}`);
  const threads = n >= PARALLEL_MIN_N ? requested : 1;
  const ws = allocateWorkspace(n, Math.max(ROTATION_BATCH, pairSize(n)), threads);
  const team = RowTeam.start(ws, threads);
  try {
    ws.v.set(a);
    const { d, e, tau } = tridiagonalize(ws.v, n, team.trailingStep());
    ws.t.set(groupFactors(ws.v, tau, n));
    team.formQt();
    transposeInPlace(ws.q, n);
    for (const batch of qlImplicit(d, e, ws.rot)) team.rotate(batch);
    return sortByValue(d, ws.q, n);
  } finally {
    team.close();
  }
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

/** Eigenvalues ascending, with the columns of `vectors` permuted to match, in a fresh plain array. */
function sortByValue(values: Float64Array, vectors: Float64Array, n: number): Eigh {
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => values[i] - values[j]);
  const out = new Float64Array(n * n);
  for (let r = 0; r < n; r++) {
    const off = r * n;
    for (let j = 0; j < n; j++) out[off + j] = vectors[off + order[j]];
  }
  return { values: Float64Array.from(order, (i) => values[i]), vectors: out };
}
