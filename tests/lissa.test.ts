/**
 * The LiSSA recursion on a small dense problem whose exact solve is known: 32 "sequence
 * gradients" in 8 dimensions, one of them ten times longer than the others, so that a mini-batch
 * drawing it has far more curvature than the full Fisher (as on the demo model, where the scale
 * taken from the full Fisher's top eigenvalue made the recursion diverge).
 */
import { describe, expect, it } from "vitest";
import { lissa, lissaScale } from "../src/ekfac/baselines/lissa.js";
import { uniformGenerator } from "../src/util/random.js";

const DIM = 8;
const DAMPING = 0.1;
const uniform = uniformGenerator(7);
const gradients = Array.from({ length: 32 }, (_, n) => Array.from({ length: DIM }, () => (uniform() - 0.5) * (n === 5 ? 20 : 2)));
const v = Float64Array.from({ length: DIM }, (_, i) => Math.sin(i + 1));

/** (F_rows + damping) x with F_rows the mean of g g^T over the rows. */
function applyOn(x: Float64Array, rows: readonly number[]): Float64Array {
  const out = Float64Array.from(x, (xi) => DAMPING * xi);
  for (const n of rows) {
    const g = gradients[n];
    const dot = g.reduce((s, gi, i) => s + gi * x[i], 0);
    for (let i = 0; i < DIM; i++) out[i] += (dot * g[i]) / rows.length;
  }
  return out;
}

/** (F + damping)^-1 v by Gaussian elimination on the dense matrix. */
function exactSolve(): number[] {
  const all = gradients.map((_, n) => n);
  const a = Array.from({ length: DIM }, (_, j) =>
    Array.from(
      applyOn(
        Float64Array.from({ length: DIM }, (_, i) => (i === j ? 1 : 0)),
        all,
      ),
    ),
  );
  const m = a.map((row, i) => [...Array.from({ length: DIM }, (_, j) => a[j][i]), v[i]]); // the matrix is symmetric
  for (let c = 0; c < DIM; c++) {
    const p = m.reduce((best, row, r) => (r >= c && Math.abs(row[c]) > Math.abs(m[best][c]) ? r : best), c);
    [m[c], m[p]] = [m[p], m[c]];
    for (let r = 0; r < DIM; r++) {
      if (r === c) continue;
      const f = m[r][c] / m[c][c];
      for (let k = c; k <= DIM; k++) m[r][k] -= f * m[c][k];
    }
  }
  return m.map((row, i) => row[DIM] / row[i]);
}

const squaredNorms = gradients.map((g) => g.reduce((s, x) => s + x * x, 0));
const relativeError = (x: ArrayLike<number>, y: number[]) => Math.sqrt(y.reduce((s, yi, i) => s + (x[i] - yi) ** 2, 0) / y.reduce((s, yi) => s + yi * yi, 0));

describe("LiSSA", () => {
  it("converges to (F + damping)^-1 v with the scale bounded by the largest squared gradient norm", () => {
    const scale = lissaScale(Math.max(...squaredNorms), DAMPING);
    const x = lissa(applyOn, v, gradients.length, { iterations: 20_000, batchSize: 4, scale, seed: 0 });
    expect(relativeError(x, exactSolve())).toBeLessThan(0.05);
  });

  it("refuses to return non-finite values when the scale is too large, naming the step", () => {
    // Half the inverse of the full Fisher's top eigenvalue (at most its trace): a batch with the long gradient overshoots.
    const meanSquaredNorm = squaredNorms.reduce((s, x) => s + x, 0) / squaredNorms.length;
    const scale = 0.5 / (meanSquaredNorm + DAMPING);
    expect(Math.max(...squaredNorms) * scale).toBeGreaterThan(2);
    expect(() => lissa(applyOn, v, gradients.length, { iterations: 20_000, batchSize: 4, scale, seed: 0 })).toThrow(
      /^LiSSA diverged at step \d+ of 20000: the scale .* is too large/,
    );
  });
});
