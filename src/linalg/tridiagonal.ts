/**
 * Householder reduction of a symmetric matrix to tridiagonal form, A = Q T Q^T.
 *
 * Everything runs on rows of the upper triangle of a row-major matrix: the part of row k right of
 * the diagonal is column k below the diagonal by symmetry, and it is contiguous in memory, so each
 * step reads and writes the trailing triangle row by row.
 */

export interface Tridiagonal {
  /** Diagonal of T, length n. */
  d: Float64Array;
  /** Off-diagonal of T: e[k] = T[k][k+1], length n (e[n-1] = 0). */
  e: Float64Array;
  /** Reflector scalars: H_k = I - tau[k] v_k v_k^T. */
  tau: Float64Array;
}

/**
 * Reduces the symmetric matrix in `work` (row-major n×n, only the upper triangle is read) to
 * tridiagonal form. On return row k of `work` is the Householder vector v_k (zero up to column k,
 * v_k[k+1] = 1), from which householder-q.ts builds Q; the last row is zero.
 *
 * The rank-2 update of step k-1 is deferred and fused with the symmetric mat-vec of step k, so the
 * trailing triangle is streamed once per step instead of twice.
 */
export function tridiagonalize(work: Float64Array, n: number): Tridiagonal {
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  const tau = new Float64Array(n);
  // Pending v, pending w, Householder vector u and result p, each indexed by global column.
  const vecs = new Float64Array(4 * n);
  const vPrev = vecs.subarray(0, n);
  const wPrev = vecs.subarray(n, 2 * n);
  const u = vecs.subarray(2 * n, 3 * n);
  const p = vecs.subarray(3 * n, 4 * n);
  for (let k = 0; k < n - 1; k++) {
    const rowK = k * n;
    for (let j = k; j < n; j++) work[rowK + j] -= vPrev[k] * wPrev[j] + wPrev[k] * vPrev[j];
    d[k] = work[rowK + k];
    const t = householder(work, rowK + k + 1, n - k - 1);
    e[k] = t.beta;
    tau[k] = t.tau;
    u.fill(0);
    for (let j = k + 1; j < n; j++) u[j] = work[rowK + j];
    p.fill(0);
    symvRows(work, n, k + 1, n, vecs, 3 * n);
    // w = p' - (tau/2)(p'.u) u with p' = tau B u, so that H B H = B - u w^T - w u^T.
    let pu = 0;
    for (let j = k + 1; j < n; j++) {
      p[j] *= t.tau;
      pu += p[j] * u[j];
    }
    const half = 0.5 * t.tau * pu;
    for (let j = k + 1; j < n; j++) p[j] -= half * u[j];
    work.fill(0, rowK, rowK + k + 1);
    vPrev.set(u);
    wPrev.set(p);
  }
  if (n > 0) d[n - 1] = work[n * n - 1];
  work.fill(0, n * (n - 1));
  return { d, e, tau };
}

/**
 * p += B u over rows [i0, i1) of the trailing block (upper triangle of `work`), after first
 * applying the pending update B -= v w^T + w v^T to those rows. `vecs` holds v, w, u at offsets 0,
 * n, 2n and p at `pOff`. Four rows are done together so that each loaded element of v, w, u and p
 * serves all four (a quarter faster than two).
 */
function symvRows(work: Float64Array, n: number, i0: number, i1: number, vecs: Float64Array, pOff: number): void {
  const v = vecs.subarray(0, n);
  const w = vecs.subarray(n, 2 * n);
  const u = vecs.subarray(2 * n, 3 * n);
  const p = vecs.subarray(pOff, pOff + n);
  let i = i0;
  for (; i + 3 < i1; i += 4) {
    for (let r = i; r < i + 4; r++) symvRow(work, n, r, r, i + 4, v, w, u, p);
    const r0 = i * n;
    const r1 = r0 + n;
    const r2 = r1 + n;
    const r3 = r2 + n;
    const v0 = v[i],
      w0 = w[i],
      u0 = u[i];
    const v1 = v[i + 1],
      w1 = w[i + 1],
      u1 = u[i + 1];
    const v2 = v[i + 2],
      w2 = w[i + 2],
      u2 = u[i + 2];
    const v3 = v[i + 3],
      w3 = w[i + 3],
      u3 = u[i + 3];
    let s0 = 0,
      s1 = 0,
      s2 = 0,
      s3 = 0;
    for (let j = i + 4; j < n; j++) {
      const vj = v[j];
      const wj = w[j];
      const uj = u[j];
      const a0 = work[r0 + j] - v0 * wj - w0 * vj;
      const a1 = work[r1 + j] - v1 * wj - w1 * vj;
      const a2 = work[r2 + j] - v2 * wj - w2 * vj;
      const a3 = work[r3 + j] - v3 * wj - w3 * vj;
      work[r0 + j] = a0;
      work[r1 + j] = a1;
      work[r2 + j] = a2;
      work[r3 + j] = a3;
      s0 += a0 * uj;
      s1 += a1 * uj;
      s2 += a2 * uj;
      s3 += a3 * uj;
      p[j] += a0 * u0 + a1 * u1 + a2 * u2 + a3 * u3;
    }
    p[i] += s0;
    p[i + 1] += s1;
    p[i + 2] += s2;
    p[i + 3] += s3;
  }
  for (; i < i1; i++) symvRow(work, n, i, i, n, v, w, u, p);
}

/** {@link symvRows} for columns [j0, j1) of row r alone (j0 >= r). */
function symvRow(work: Float64Array, n: number, r: number, j0: number, j1: number, v: Float64Array, w: Float64Array, u: Float64Array, p: Float64Array): void {
  const ro = r * n;
  const vr = v[r];
  const wr = w[r];
  const ur = u[r];
  let s = 0;
  let j = j0;
  if (j === r) {
    const a = work[ro + r] - 2 * vr * wr;
    work[ro + r] = a;
    s = a * ur;
    j++;
  }
  for (; j < j1; j++) {
    const a = work[ro + j] - vr * w[j] - wr * v[j];
    work[ro + j] = a;
    s += a * u[j];
    p[j] += a * ur;
  }
  p[r] += s;
}

/**
 * Householder reflector for x = work[off .. off+m): H x = beta e_1 with H = I - tau v v^T and
 * v[0] = 1. Overwrites x with v. A zero tail gives H = I (tau = 0).
 */
export function householder(work: Float64Array, off: number, m: number): { beta: number; tau: number } {
  const alpha = work[off];
  let scale = 0;
  for (let j = 1; j < m; j++) scale = Math.max(scale, Math.abs(work[off + j]));
  if (scale === 0) {
    work[off] = 1;
    return { beta: alpha, tau: 0 };
  }
  // Scaled sum of squares so that tiny or huge entries neither underflow nor overflow.
  let ss = 0;
  for (let j = 1; j < m; j++) {
    const x = work[off + j] / scale;
    ss += x * x;
  }
  const beta = -Math.sign(alpha || 1) * Math.hypot(alpha, scale * Math.sqrt(ss));
  const inv = 1 / (alpha - beta);
  work[off] = 1;
  for (let j = 1; j < m; j++) work[off + j] *= inv;
  return { beta, tau: (beta - alpha) / beta };
}
