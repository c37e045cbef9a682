import { uniformGenerator } from "../util/random.js";

/** A seeded random symmetric n x n matrix, entries uniform in [-0.5, 0.5): for tests and benchmarks of eigh. */
export function randomSymmetric(n: number, seed: number): Float64Array {
  const uniform = uniformGenerator(seed);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = uniform() - 0.5;
  return a;
}

/**
 * H diag(spectrum) H^T for H a product of `reflectors` random Householder reflectors (n of them
 * make H a generic random orthogonal matrix): an exactly symmetric matrix whose eigenvalues are
 * `spectrum` and whose eigenvector of spectrum[i] is H e_i, for tests and benchmarks of the
 * eigensolvers. O(n^2) per reflector.
 */
export function symmetricWithSpectrum(
  spectrum: readonly number[],
  seed: number,
  reflectors = 3,
): { matrix: Float64Array; eigenvector: (i: number) => Float64Array } {
  const n = spectrum.length;
  const uniform = uniformGenerator(seed);
  const vs = Array.from({ length: reflectors }, () => {
    const v = Float64Array.from({ length: n }, () => uniform() - 0.5);
    const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    return v.map((x) => x / norm);
  });
  const m = new Float64Array(n * n);
  spectrum.forEach((s, i) => (m[i * n + i] = s));
  for (const v of vs) {
    // (I - 2vv^T) M (I - 2vv^T) = M - 2 v w^T - 2 w v^T + 4 (v^T w) v v^T, w = M v.
    const w = new Float64Array(n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) w[i] += m[i * n + j] * v[j];
    const vw = v.reduce((s, x, i) => s + x * w[i], 0);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) m[i * n + j] += -2 * v[i] * w[j] - 2 * w[i] * v[j] + 4 * vw * v[i] * v[j];
  }
  const eigenvector = (i: number) => {
    let x = new Float64Array(n);
    x[i] = 1;
    // M = R_r ... R_1 D R_1 ... R_r (R_i the i-th reflector): the eigenvector is R_r ... R_1 e_i.
    for (const v of vs) {
      const dot = v.reduce((s, vi, j) => s + vi * x[j], 0);
      x = x.map((xj, j) => xj - 2 * dot * v[j]);
    }
    return x;
  };
  return { matrix: m, eigenvector };
}

/** tr(P^T M P) for the row-major n x n M and P [n, k]: the variance the columns of P capture. */
export function capturedVariance(m: Float64Array, p: Float64Array, n: number, k: number): number {
  let total = 0;
  const mp = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    mp.fill(0);
    for (let l = 0; l < n; l++) {
      const mil = m[i * n + l];
      for (let j = 0; j < k; j++) mp[j] += mil * p[l * k + j];
    }
    for (let j = 0; j < k; j++) total += p[i * k + j] * mp[j];
  }
  return total;
}
