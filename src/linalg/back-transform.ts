/**
 * The eigenvectors of A from those of its tridiagonal form T = Qᵀ A Q: V = Q Z with
 * Q = H_0 H_1 … H_{n−2}, applied to Z group by group from the last, each group of reflectors in
 * compact WY form H_k … H_{k+b−1} = I − Vᵀ T V (LAPACK dlarft/dlarfb, V one vector a row): three
 * matrix products per group, 2n³ multiply-adds in all.
 */
import { multiply, reflectBlock } from "./products64.js";

/**
 * Reflectors per group: the inner size of two of the three products. At n = 3,072 the stage took
 * 4.5 CPU seconds with groups of 128, 3.6 with 256 and 3.4 with 512 (whose T products cost more).
 */
const GROUP = 256;

/** z := Q z for the n×n row-major `z`, the reflectors v_k (rows of `reflectors`, as tridiagonal-blocked.ts leaves them) and their `tau`. */
export async function applyReflectors(reflectors: Float64Array, tau: Float64Array, n: number, z: Float64Array): Promise<void> {
  const count = n - 1;
  for (let k0 = Math.floor((count - 1) / GROUP) * GROUP; k0 >= 0; k0 -= GROUP) {
    const b = Math.min(GROUP, count - k0);
    // Rows k0+1.. of z are the ones these reflectors touch, and they are contiguous.
    const m = n - k0 - 1;
    const v = new Float64Array(b * m);
    for (let q = 0; q < b; q++) v.set(reflectors.subarray((k0 + q) * n + k0 + 1, (k0 + q + 1) * n), q * m);
    const t = triangularFactor(await multiply(v, v, b, m, b, { transB: true }), tau.subarray(k0, k0 + b), b);
    z.set(await reflectBlock(v, t, z.subarray((k0 + 1) * n), b, m, n), (k0 + 1) * n);
  }
}

/**
 * The upper triangular T of H_0 … H_{b−1} = I − Vᵀ T V from the Gram matrix g = V Vᵀ: forward
 * recurrence T[0:j, j] = −τ_j T[0:j, 0:j] g[0:j, j], T[j][j] = τ_j (dlarft).
 */
function triangularFactor(g: Float64Array, tau: Float64Array, b: number): Float64Array {
  const t = new Float64Array(b * b);
  for (let j = 0; j < b; j++) {
    t[j * b + j] = tau[j];
    for (let i = 0; i < j; i++) {
      let s = 0;
      for (let p = i; p < j; p++) s += t[i * b + p] * g[p * b + j];
      t[i * b + j] = -tau[j] * s;
    }
  }
  return t;
}
