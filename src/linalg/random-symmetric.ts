import { uniformGenerator } from "../util/random.js";

/** A seeded random symmetric n x n matrix, entries uniform in [-0.5, 0.5): for tests and benchmarks of eigh. */
export function randomSymmetric(n: number, seed: number): Float64Array {
  const uniform = uniformGenerator(seed);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = uniform() - 0.5;
  return a;
}
