/**
 * Accumulates the orthogonal factor Q = H_0 H_1 ... H_{n-2} of a Householder tridiagonalisation,
 * H_k = I - tau[k] v_k v_k^T with v_k in row k of `v` (zero up to column k).
 *
 * Row r of Q^T is e_r^T H_{n-2} ... H_0, and H_k leaves e_r alone for k >= r, so rows are
 * independent and each needs only the reflectors below it. Reflectors are applied four at a time
 * in compact WY form, H_{4g+3} H_{4g+2} H_{4g+1} H_{4g} = I - V T V^T, to four rows at a time, so
 * that every element loaded from a row or a reflector serves four multiply-adds. Rows are taken in
 * blocks of 32 (256 KiB at n = 1024) that stay in cache while all the reflectors stream past.
 */

/**
 * The 4×4 upper triangular T of each group g of reflectors 4g+3, 4g+2, 4g+1, 4g (applied in that
 * order), 16 numbers per group, row-major. Missing reflectors past n-1 count as tau = 0.
 */
export function groupFactors(v: Float64Array, tau: Float64Array, n: number): Float64Array {
  const groups = Math.ceil(n / 4);
  const t = new Float64Array(16 * groups);
  const dots = new Float64Array(16);
  for (let g = 0; g < groups; g++) {
    const ks = [4 * g + 3, 4 * g + 2, 4 * g + 1, 4 * g];
    const taus = ks.map((k) => (k < n ? tau[k] : 0));
    for (let a = 0; a < 4; a++) {
      for (let b = a + 1; b < 4; b++) {
        let s = 0;
        if (ks[a] < n) for (let j = ks[b] + 1; j < n; j++) s += v[ks[a] * n + j] * v[ks[b] * n + j];
        dots[4 * a + b] = s;
      }
    }
    // Forward recurrence (LAPACK dlarft): T[0:j, j] = -tau_j T[0:j, 0:j] V[:, 0:j]^T v_j.
    const o = 16 * g;
    for (let j = 0; j < 4; j++) {
      t[o + 5 * j] = taus[j];
      for (let i = 0; i < j; i++) {
        let s = 0;
        for (let p = i; p < j; p++) s += t[o + 4 * i + p] * dots[4 * p + j];
        t[o + 4 * i + j] = -taus[j] * s;
      }
    }
  }
  return t;
}

/** Fills `qt` (zero on entry) with Q^T, given the reflectors `v` and their {@link groupFactors} `t`. */
export function formQt(qt: Float64Array, v: Float64Array, t: Float64Array, n: number): void {
  const rows = 32;
  for (let r0 = 0; r0 < n; r0 += rows) {
    const r1 = Math.min(n, r0 + rows);
    for (let r = r0; r < r1; r++) qt[r * n + r] = 1;
    // Group g touches columns 4g+1.. and, of rows e_r, only those with r >= 4g+1.
    for (let g = Math.floor((r1 - 2) / 4); g >= 0; g--) {
      const j0 = 4 * g + 1;
      // Reflectors past n-1 have tau = 0 in t; the (zero) last row stands in for them.
      const v0 = Math.min(4 * g + 3, n - 1) * n;
      const v1 = Math.min(4 * g + 2, n - 1) * n;
      const v2 = Math.min(4 * g + 1, n - 1) * n;
      const v3 = 4 * g * n;
      let r = Math.max(r0, j0);
      for (; r + 3 < r1; r += 4) reflectRows4x4(qt, r * n, n, v, v0, v1, v2, v3, j0, t, 16 * g);
      for (; r < r1; r++) reflectRow4(qt, r * n, n, v, v0, v1, v2, v3, j0, t, 16 * g);
    }
  }
}

/** x := x (I - V T V^T) on columns [j0, n) of four consecutive rows of `x` starting at `xo`. */
function reflectRows4x4(
  x: Float64Array,
  xo: number,
  n: number,
  v: Float64Array,
  v0: number,
  v1: number,
  v2: number,
  v3: number,
  j0: number,
  t: Float64Array,
  to: number,
): void {
  const x1 = xo + n;
  const x2 = x1 + n;
  const x3 = x2 + n;
  // y = x V, one row of y per row of x.
  let y00 = 0,
    y01 = 0,
    y02 = 0,
    y03 = 0;
  let y10 = 0,
    y11 = 0,
    y12 = 0,
    y13 = 0;
  let y20 = 0,
    y21 = 0,
    y22 = 0,
    y23 = 0;
  let y30 = 0,
    y31 = 0,
    y32 = 0,
    y33 = 0;
  for (let j = j0; j < n; j++) {
    const a = v[v0 + j];
    const b = v[v1 + j];
    const c = v[v2 + j];
    const d = v[v3 + j];
    const p = x[xo + j];
    const q = x[x1 + j];
    const r = x[x2 + j];
    const s = x[x3 + j];
    y00 += p * a;
    y01 += p * b;
    y02 += p * c;
    y03 += p * d;
    y10 += q * a;
    y11 += q * b;
    y12 += q * c;
    y13 += q * d;
    y20 += r * a;
    y21 += r * b;
    y22 += r * c;
    y23 += r * d;
    y30 += s * a;
    y31 += s * b;
    y32 += s * c;
    y33 += s * d;
  }
  // z = y T with T upper triangular.
  const t00 = t[to],
    t01 = t[to + 1],
    t02 = t[to + 2],
    t03 = t[to + 3];
  const t11 = t[to + 5],
    t12 = t[to + 6],
    t13 = t[to + 7];
  const t22 = t[to + 10],
    t23 = t[to + 11];
  const t33 = t[to + 15];
  const z00 = y00 * t00,
    z01 = y00 * t01 + y01 * t11,
    z02 = y00 * t02 + y01 * t12 + y02 * t22,
    z03 = y00 * t03 + y01 * t13 + y02 * t23 + y03 * t33;
  const z10 = y10 * t00,
    z11 = y10 * t01 + y11 * t11,
    z12 = y10 * t02 + y11 * t12 + y12 * t22,
    z13 = y10 * t03 + y11 * t13 + y12 * t23 + y13 * t33;
  const z20 = y20 * t00,
    z21 = y20 * t01 + y21 * t11,
    z22 = y20 * t02 + y21 * t12 + y22 * t22,
    z23 = y20 * t03 + y21 * t13 + y22 * t23 + y23 * t33;
  const z30 = y30 * t00,
    z31 = y30 * t01 + y31 * t11,
    z32 = y30 * t02 + y31 * t12 + y32 * t22,
    z33 = y30 * t03 + y31 * t13 + y32 * t23 + y33 * t33;
  // x -= z V^T.
  for (let j = j0; j < n; j++) {
    const a = v[v0 + j];
    const b = v[v1 + j];
    const c = v[v2 + j];
    const d = v[v3 + j];
    x[xo + j] -= z00 * a + z01 * b + z02 * c + z03 * d;
    x[x1 + j] -= z10 * a + z11 * b + z12 * c + z13 * d;
    x[x2 + j] -= z20 * a + z21 * b + z22 * c + z23 * d;
    x[x3 + j] -= z30 * a + z31 * b + z32 * c + z33 * d;
  }
}

/** {@link reflectRows4x4} for a single row. */
function reflectRow4(
  x: Float64Array,
  xo: number,
  n: number,
  v: Float64Array,
  v0: number,
  v1: number,
  v2: number,
  v3: number,
  j0: number,
  t: Float64Array,
  to: number,
): void {
  let y0 = 0,
    y1 = 0,
    y2 = 0,
    y3 = 0;
  for (let j = j0; j < n; j++) {
    const p = x[xo + j];
    y0 += p * v[v0 + j];
    y1 += p * v[v1 + j];
    y2 += p * v[v2 + j];
    y3 += p * v[v3 + j];
  }
  const z0 = y0 * t[to];
  const z1 = y0 * t[to + 1] + y1 * t[to + 5];
  const z2 = y0 * t[to + 2] + y1 * t[to + 6] + y2 * t[to + 10];
  const z3 = y0 * t[to + 3] + y1 * t[to + 7] + y2 * t[to + 11] + y3 * t[to + 15];
  for (let j = j0; j < n; j++) x[xo + j] -= z0 * v[v0 + j] + z1 * v[v1 + j] + z2 * v[v2 + j] + z3 * v[v3 + j];
}

/** Transposes the row-major n×n matrix `a` in place, tile by tile so that both sides stay in cache. */
export function transposeInPlace(a: Float64Array, n: number): void {
  const B = 32;
  for (let i0 = 0; i0 < n; i0 += B) {
    const i1 = Math.min(n, i0 + B);
    for (let j0 = i0; j0 < n; j0 += B) {
      const j1 = Math.min(n, j0 + B);
      for (let i = i0; i < i1; i++) {
        for (let j = Math.max(j0, i + 1); j < j1; j++) {
          const x = a[i * n + j];
          a[i * n + j] = a[j * n + i];
          a[j * n + i] = x;
        }
      }
    }
  }
}
