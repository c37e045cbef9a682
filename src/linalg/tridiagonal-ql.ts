/**
 * Eigenvalues of a symmetric tridiagonal matrix by implicit QL with Wilkinson shifts (EISPACK
 * tql2), recording the Givens rotations instead of applying them.
 *
 * Applying the rotations as they are made (tql2) touches two columns of the eigenvector matrix per
 * rotation, sweeping all of it from memory for every QL iteration. Recorded, they can be replayed
 * later row by row: a row of length n stays in cache while a whole batch of sweeps runs over it,
 * and rows are independent so they can be split across threads (rotations.ts).
 */
import { type RotationBatch, RotationRecorder } from "./rotations.js";

const EPS = 2 ** -52;
const MAX_ITERATIONS_PER_EIGENVALUE = 30;

/**
 * Diagonalises the tridiagonal matrix with diagonal `d` and off-diagonal `e` (e[k] = T[k][k+1],
 * e[n-1] unused) in place: on completion `d` holds the eigenvalues (unsorted) and `e` is destroyed.
 * Yields the rotations in batches recorded into `buf` (at least pairSize(n) numbers), which is
 * reused, so each batch must be consumed before asking for the next. Then T = Z diag(d) Z^T where
 * Z is the identity with all batches applied in order.
 */
export function* qlImplicit(d: Float64Array, e: Float64Array, buf: Float64Array): Generator<RotationBatch, void, void> {
  const n = d.length;
  if (n === 0) return;
  const recorder = new RotationRecorder(n, buf);
  e[n - 1] = 0;
  // Deflate when an off-diagonal is negligible next to the whole matrix: backward stable, and it
  // spares the iterations a relative test spends on eigenvalues tiny next to the norm.
  let norm = 0;
  for (let i = 0; i < n; i++) norm = Math.max(norm, Math.abs(d[i]) + Math.abs(e[i]) + (i > 0 ? Math.abs(e[i - 1]) : 0));
  const tol = EPS * norm;
  let shift = 0;
  for (let l = 0; l < n; l++) {
    let iterations = 0;
    for (;;) {
      let m = l;
      while (m < n - 1 && Math.abs(e[m]) > tol) m++;
      if (m === l) break;
      if (++iterations > MAX_ITERATIONS_PER_EIGENVALUE) {
        throw new Error(`eigh: QL iteration did not converge for eigenvalue ${l} of ${n}`);
      }
      if (recorder.full) {
        yield recorder.batch;
        recorder.clear();
      }
      // Wilkinson shift from the leading 2x2 block; the whole block is shifted and the shift
      // accumulated, as in tql2.
      const g0 = d[l];
      let p = (d[l + 1] - g0) / (2 * e[l]);
      let r = Math.hypot(p, 1);
      if (p < 0) r = -r;
      d[l] = e[l] / (p + r);
      d[l + 1] = e[l] * (p + r);
      const dl1 = d[l + 1];
      const h0 = g0 - d[l];
      for (let i = l + 2; i < n; i++) d[i] -= h0;
      shift += h0;

      p = d[m];
      let c = 1;
      let c2 = 1;
      let c3 = 1;
      const el1 = e[l + 1];
      let s = 0;
      let s2 = 0;
      const rot = recorder.begin(l, m);
      for (let i = m - 1; i >= l; i--) {
        c3 = c2;
        c2 = c;
        s2 = s;
        const g = c * e[i];
        const h = c * p;
        r = Math.hypot(p, e[i]);
        e[i + 1] = s * r;
        s = e[i] / r;
        c = p / r;
        p = c * d[i] - s * g;
        d[i + 1] = h + s * (c * g + s * d[i]);
        rot.c[i] = c;
        rot.s[i] = s;
      }
      p = (-s * s2 * c3 * el1 * e[l]) / dl1;
      e[l] = s * p;
      d[l] = c * p;
      recorder.end();
    }
    d[l] += shift;
    e[l] = 0;
  }
  recorder.flush();
  if (recorder.batch.length > 0) yield recorder.batch;
}
