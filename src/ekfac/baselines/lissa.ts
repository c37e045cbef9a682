/**
 * LiSSA (Agarwal et al. 2017; the paper's Eq. 10): r_0 = v, r_j = v + (I - alpha (F~ + D)) r_{j-1}
 * with F~ a Fisher-vector product on a random mini-batch; alpha r_j tends to (F + D)^-1 v when
 * alpha times the largest eigenvalue stays below 1.
 */
import { uniformGenerator } from "../../util/random.js";

export interface LissaOptions {
  iterations: number;
  batchSize: number;
  /** alpha; must make the iteration contract. */
  scale: number;
  seed: number;
}

/** `applyOn(v, rows)` is the damped product (F~ + D) v on the mini-batch `rows`. */
export function lissa(
  applyOn: (v: Float64Array, rows: readonly number[]) => Float64Array,
  v: Float64Array,
  population: number,
  { iterations, batchSize, scale, seed }: LissaOptions,
): Float64Array {
  const uniform = uniformGenerator(seed);
  let r = Float64Array.from(v);
  for (let j = 0; j < iterations; j++) {
    const rows = Array.from({ length: Math.min(batchSize, population) }, () => Math.floor(uniform() * population));
    const fr = applyOn(r, rows);
    const next = new Float64Array(r.length);
    for (let i = 0; i < r.length; i++) next[i] = v[i] + r[i] - scale * fr[i];
    r = next;
  }
  for (let i = 0; i < r.length; i++) r[i] *= scale;
  return r;
}

/** Largest eigenvalue of a symmetric positive operator by power iteration (for choosing alpha). */
export function largestEigenvalue(apply: (v: Float64Array) => Float64Array, size: number, iterations = 30, seed = 1): number {
  const uniform = uniformGenerator(seed);
  let v: Float64Array = Float64Array.from({ length: size }, () => uniform() - 0.5);
  let estimate = 0;
  for (let k = 0; k < iterations; k++) {
    const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    v = v.map((x) => x / norm);
    const w = apply(v);
    estimate = w.reduce((s, x, i) => s + x * v[i], 0);
    v = w;
  }
  return estimate;
}
