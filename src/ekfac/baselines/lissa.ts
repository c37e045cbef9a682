/**
 * LiSSA (Agarwal et al. 2017; the paper's Eq. 10): r_0 = v, r_j = v + (I - alpha (F~ + D)) r_{j-1}
 * with F~ a Fisher-vector product on a random mini-batch; alpha r_j tends to (F + D)^-1 v when
 * alpha times the largest eigenvalue stays below 1.
 */
import { uniformGenerator } from "../../util/random.js";

export interface LissaOptions {
  iterations: number;
  batchSize: number;
  /** alpha; must make the iteration contract (see lissaScale). */
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
    let squares = 0;
    for (let i = 0; i < r.length; i++) {
      next[i] = v[i] + r[i] - scale * fr[i];
      squares += next[i] * next[i];
    }
    if (!Number.isFinite(squares)) throw new Error(`LiSSA diverged at step ${j + 1} of ${iterations}: the scale ${scale} is too large for this curvature`);
    r = next;
  }
  for (let i = 0; i < r.length; i++) r[i] *= scale;
  return r;
}

/**
 * A scale that makes every step contract, whatever mini-batch it draws: the damped Fisher of a
 * mini-batch has no eigenvalue above the largest squared gradient norm of a single sequence plus
 * the largest damping. (Half the inverse of the full Fisher's top eigenvalue is not enough: a
 * batch that draws a sequence with a large gradient has far more curvature than the average,
 * and the recursion diverged on the demo model.)
 */
export function lissaScale(maxSquaredNorm: number, maxDamping: number): number {
  return 0.5 / (maxSquaredNorm + maxDamping);
}
