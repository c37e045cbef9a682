import { uniformGenerator } from "../util/random.js";

/** A seeded random symmetric n x n matrix, entries uniform in [-0.5, 0.5): for tests and benchmarks of eigh. */
export function randomSymmetric(n: number, seed: number): Float64Array {
  const uniform = uniformGenerator(seed);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = uniform() - 0.5;
  return a;
}

/**
 * H diag(spectrum) H for H a product of random Householder reflectors: a dense symmetric matrix
 * whose eigenvalues are `spectrum` and whose eigenvector of spectrum[i] is H e_i: for tests and
 * benchmarks of the eigensolvers. O(n^2) per reflector.
 */
export function symmetricWithSpectrum(spectrum: readonly number[], seed: number): { matrix: Float64Array; eigenvector: (i: number) => Float64Array } {
  const n = spectrum.length;
  const uniform = uniformGenerator(seed);
  const reflectors = Array.from({ length: 3 }, () => {
    const v = Float64Array.from({ length: n }, () => uniform() - 0.5);
    const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    return v.map((x) => x / norm);
  });
  const m = new Float64Array(n * n);
  spectrum.forEach((s, i) => (m[i * n + i] = s));
  for (const v of reflectors) {
    // (I - 2vv^T) M (I - 2vv^T) = M - 2 v w^T - 2 w v^T + 4 (v^T w) v v^T, w = M v.
    const w = new Float64Array(n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) w[i] += m[i * n + j] * v[j];
    const vw = v.reduce((s, x, i) => s + x * w[i], 0);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) m[i * n + j] += -2 * v[i] * w[j] - 2 * w[i] * v[j] + 4 * vw * v[i] * v[j];
  }
  const eigenvector = (i: number) => {
    let x = new Float64Array(n);
    x[i] = 1;
    // M = R_3 R_2 R_1 D R_1 R_2 R_3 (R_i the i-th reflector): the eigenvector is R_3 R_2 R_1 e_i.
    for (const v of reflectors) {
      const dot = v.reduce((s, vi, j) => s + vi * x[j], 0);
      x = x.map((xj, j) => xj - 2 * dot * v[j]);
    }
    return x;
  };
  return { matrix: m, eigenvector };
}
