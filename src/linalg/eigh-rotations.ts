/**
 * The eigensolver for small matrices, where the blocked one (eigh-blocked.ts) pays more for its
 * kernel calls than it saves, and the leaves of divide and conquer:
 *
 * 1. Householder tridiagonalisation A = Q T Q^T (tridiagonal.ts), Q formed explicitly
 *    (householder-q.ts).
 * 2. Implicit QL on T, recording its Givens rotations (tridiagonal-ql.ts).
 * 3. The rotations replayed on the rows of Q give the eigenvectors (rotations.ts).
 */
import { type Eigh, sortByValue } from "./eigenpairs.js";
import { formQt, groupFactors, transposeInPlace } from "./householder-q.js";
import { applyRotations, pairSize } from "./rotations.js";
import { tridiagonalize } from "./tridiagonal.js";
import { qlImplicit } from "./tridiagonal-ql.js";

/**
 * At most this many numbers per batch of recorded rotations (2 MiB, an L2 cache): each batch is one
 * pass over the vectors, and from 1 to 4 MiB the time hardly changes.
 */
const ROTATION_BATCH = 1 << 18;

/** Eigendecomposition of the symmetric row-major n×n matrix `a` (not modified), on the calling thread. */
export function eighByRotations(a: Float64Array, n: number): Eigh {
  const v = Float64Array.from(a);
  const { d, e, tau } = tridiagonalize(v, n);
  const q = new Float64Array(n * n);
  formQt(q, v, groupFactors(v, tau, n), n);
  transposeInPlace(q, n);
  rotateByQl(d, e, q, n);
  return sortByValue(d, q, n);
}

/** Eigendecomposition of the symmetric tridiagonal matrix with diagonal `d` and off-diagonal `e` (e[i] = T[i][i+1]). */
export function tridiagonalByRotations(d: Float64Array, e: Float64Array): Eigh {
  const n = d.length;
  const values = Float64Array.from(d);
  const off = new Float64Array(n);
  off.set(e.subarray(0, n - 1));
  const z = new Float64Array(n * n);
  for (let i = 0; i < n; i++) z[i * n + i] = 1;
  rotateByQl(values, off, z, n);
  return sortByValue(values, z, n);
}

/** QL on (d, e), its rotations replayed on the rows of x: d becomes the eigenvalues (unsorted), x becomes x Z. */
function rotateByQl(d: Float64Array, e: Float64Array, x: Float64Array, n: number): void {
  const buf = new Float64Array(Math.max(pairSize(n), Math.min(ROTATION_BATCH, 4 * n * n)));
  for (const batch of qlImplicit(d, e, buf)) applyRotations(x, n, 0, n, batch);
}
