import { describe, expect, it } from "vitest";
import { applyReflectors, ReflectorGroups } from "../src/linalg/back-transform.js";
import { tridiagonalEigen } from "../src/linalg/divide-conquer.js";
import type { Eigh } from "../src/linalg/eigenpairs.js";
import { BLOCKED_MIN_N, eigh } from "../src/linalg/eigh.js";
import { eighBlocked } from "../src/linalg/eigh-blocked.js";
import { eighByRotations } from "../src/linalg/eigh-rotations.js";
import { SymvTeam } from "../src/linalg/parallel.js";
import { subtractProduct } from "../src/linalg/products64.js";
import { randomSymmetric, symmetricWithSpectrum } from "../src/linalg/random-symmetric.js";
import { HELPERS_MIN_N } from "../src/linalg/tridiagonal-blocked.js";
import { uniformGenerator } from "../src/util/random.js";

/** Uniform in [-0.5, 0.5), seeded. */
const shiftedUniform = (seed: number) => {
  const uniform = uniformGenerator(seed);
  return () => uniform() - 0.5;
};

const TOL = 1e-12;

/** X^T X for an m×n random X: rank min(m, n), so with m < n most eigenvalues are (near) zero. */
function covariance(m: number, n: number, seed: number): Float64Array {
  const r = shiftedUniform(seed);
  const x = Float64Array.from({ length: m * n }, r);
  const a = new Float64Array(n * n);
  for (let k = 0; k < m; k++) {
    for (let i = 0; i < n; i++) {
      const xi = x[k * n + i];
      for (let j = 0; j < n; j++) a[i * n + j] += xi * x[k * n + j];
    }
  }
  return a;
}

/** Number of positions where two arrays differ (toEqual is slow on a million elements). */
const mismatches = (x: Float64Array, y: Float64Array) => x.reduce((count, xi, i) => count + (Object.is(xi, y[i]) ? 0 : 1), 0);

const frobenius = (a: Float64Array) => Math.sqrt(a.reduce((s, x) => s + x * x, 0));

/** ||A - V diag(w) V^T||_F / ||A||_F (absolute when A = 0). */
function reconstructionError(a: Float64Array, n: number, w: Float64Array, v: Float64Array): number {
  let err = 0;
  const scaled = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) scaled[k] = v[i * n + k] * w[k];
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += scaled[k] * v[j * n + k];
      err += (a[i * n + j] - s) ** 2;
    }
  }
  const norm = frobenius(a);
  return Math.sqrt(err) / (norm > 0 ? norm : 1);
}

/** ||V^T V - I||_F / sqrt(n), computed on V^T so that both operands are walked along rows. */
function orthogonalityError(n: number, v: Float64Array): number {
  const vt = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) vt[j * n + i] = v[i * n + j];
  let err = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += vt[i * n + k] * vt[j * n + k];
      err += (s - (i === j ? 1 : 0)) ** 2;
    }
  }
  return Math.sqrt(err / Math.max(n, 1));
}

type Solver = (a: Float64Array, n: number) => Eigh | Promise<Eigh>;

/** Decomposes `a` with `solve` (eigh by default), checks the accuracy bounds and the ordering, and returns the result. */
async function checkedEigh(a: Float64Array, n: number, solve: Solver = (x, size) => eigh(x, size)) {
  const copy = Float64Array.from(a);
  const result = await solve(a, n);
  expect(mismatches(a, copy)).toBe(0);
  expect(result.values.length).toBe(n);
  expect(result.vectors.length).toBe(n * n);
  for (let i = 1; i < n; i++) expect(result.values[i]).toBeGreaterThanOrEqual(result.values[i - 1]);
  expect(reconstructionError(a, n, result.values, result.vectors)).toBeLessThan(TOL);
  expect(orthogonalityError(n, result.vectors)).toBeLessThan(TOL);
  // Independent of V: the trace is the sum of the eigenvalues, ||A||_F^2 the sum of their squares.
  let trace = 0;
  for (let i = 0; i < n; i++) trace += a[i * n + i];
  const norm = frobenius(a);
  expect(Math.abs(result.values.reduce((s, x) => s + x, 0) - trace)).toBeLessThanOrEqual(TOL * Math.max(norm, 1) * Math.sqrt(n));
  expect(Math.abs(Math.sqrt(result.values.reduce((s, x) => s + x * x, 0)) - norm)).toBeLessThanOrEqual(TOL * Math.max(norm, 1));
  return result;
}

const solvers: Array<[string, Solver]> = [
  ["by rotations", eighByRotations],
  ["blocked", (a, n) => eighBlocked(a, n, 2)],
];

describe.each(solvers)("eigh %s", (_, solve) => {
  const check = (a: Float64Array, n: number) => checkedEigh(a, n, solve);

  // Around multiples of the reduction's panel (64) and its kernels' blocks of 4 rows and 2 columns.
  it.each([1, 2, 3, 5, 63, 64, 65, 127, 129, 130, 333])("decomposes a random symmetric matrix of size %i", async (n) => {
    await check(randomSymmetric(n, n), n);
  });

  it("solves a 2×2 matrix exactly", async () => {
    const { values, vectors } = await check(Float64Array.of(2, 1, 1, 2), 2);
    expect(values[0]).toBeCloseTo(1, 14);
    expect(values[1]).toBeCloseTo(3, 14);
    // Eigenvector of 3 is ±(1, 1)/√2, of 1 is ±(1, -1)/√2.
    expect(Math.abs(vectors[1])).toBeCloseTo(Math.SQRT1_2, 14);
    expect(vectors[1] * vectors[3]).toBeCloseTo(0.5, 14);
    expect(vectors[0] * vectors[2]).toBeCloseTo(-0.5, 14);
  });

  it("recovers a known spectrum Q diag(d) Q^T", async () => {
    const r = shiftedUniform(11);
    const d = Array.from({ length: 150 }, () => 10 * r());
    const { values } = await check(symmetricWithSpectrum(d, 12, d.length).matrix, d.length);
    const sorted = [...d].sort((x, y) => x - y);
    for (let i = 0; i < d.length; i++) expect(Math.abs(values[i] - sorted[i])).toBeLessThan(1e-12);
  });

  it("handles rank-deficient covariance matrices (many zero, clustered eigenvalues)", async () => {
    const n = 400;
    const { values } = await check(covariance(20, n, 5), n);
    const max = values[n - 1];
    // Rank 20: all but the top 20 eigenvalues vanish up to rounding.
    for (let i = 0; i < n - 20; i++) expect(Math.abs(values[i])).toBeLessThan(1e-12 * max);
    expect(values[n - 20]).toBeGreaterThan(1e-3 * max);
  });

  it("handles repeated eigenvalues", async () => {
    const d = Array.from({ length: 120 }, (_, i) => [-2, 1, 1, 3][i % 4]);
    const { values } = await check(symmetricWithSpectrum(d, 3, d.length).matrix, d.length);
    const sorted = [...d].sort((x, y) => x - y);
    for (let i = 0; i < d.length; i++) expect(Math.abs(values[i] - sorted[i])).toBeLessThan(1e-12);
  });

  it("handles clusters of eigenvalues 1e-10 apart", async () => {
    const n = 300;
    const r = shiftedUniform(21);
    const d = Array.from({ length: n }, (_, i) => (i % 6) - 2.5 + 1e-10 * r());
    const { values } = await check(symmetricWithSpectrum(d, 22, n).matrix, n);
    const sorted = [...d].sort((x, y) => x - y);
    for (let i = 0; i < n; i++) expect(Math.abs(values[i] - sorted[i])).toBeLessThan(1e-12 * 3);
  });

  it("handles eigenvalues spanning 1e-12 .. 1e4", async () => {
    const n = 100;
    const d = Array.from({ length: n }, (_, i) => 10 ** (-12 + (16 * i) / (n - 1)));
    const { values } = await check(symmetricWithSpectrum(d, 9, n).matrix, n);
    // Weyl: a backward error of eps·||A|| moves every eigenvalue by at most that much.
    for (let i = 0; i < n; i++) expect(Math.abs(values[i] - d[i])).toBeLessThan(1e-12 * 1e4);
  });

  it.each([6, 300])("returns sorted values and permuted unit vectors for a diagonal matrix of size %i", async (n) => {
    const diag = Array.from({ length: n }, (_, i) => [3, -1, 1e-8, 0, 7, -1][i % 6] * (1 + Math.floor(i / 6)));
    const a = new Float64Array(n * n);
    diag.forEach((x, i) => (a[i * n + i] = x));
    const { values, vectors } = await check(a, n);
    expect(Array.from(values)).toEqual([...diag].sort((x, y) => x - y));
    for (let j = 0; j < n; j++) {
      const column = Array.from({ length: n }, (_, i) => Math.abs(vectors[i * n + j]));
      expect(column.filter((x) => x === 1)).toHaveLength(1);
      expect(column.filter((x) => x === 0)).toHaveLength(n - 1);
      expect(a[column.indexOf(1) * (n + 1)]).toBe(values[j]);
    }
  });

  it("handles the zero matrix", async () => {
    for (const n of [4, 300]) {
      const { values, vectors } = await check(new Float64Array(n * n), n);
      expect(Array.from(values)).toEqual(new Array(n).fill(0));
      expect(orthogonalityError(n, vectors)).toBe(0);
    }
  });
});

describe("eigh", () => {
  it("takes the blocked solver from BLOCKED_MIN_N on, with the eigenvalues of the rotations", async () => {
    for (const n of [BLOCKED_MIN_N, 600]) {
      const a = randomSymmetric(n, 3 * n);
      const blocked = await checkedEigh(a, n);
      const rotations = eighByRotations(a, n);
      const norm = frobenius(a);
      for (let j = 0; j < n; j++) expect(Math.abs(blocked.values[j] - rotations.values[j])).toBeLessThan(1e-13 * norm);
      // Dispatched to the blocked solver: the same numbers as calling it directly.
      expect(mismatches(blocked.vectors, (await eighBlocked(a, n, 2)).vectors)).toBe(0);
    }
  });

  it("decomposes a random matrix of HELPERS_MIN_N alike on one thread and on two", async () => {
    const n = HELPERS_MIN_N;
    const a = randomSymmetric(n, 7);
    const two = await eigh(a, n, { threads: 2 });
    const one = await eigh(a, n, { threads: 1 });
    // The threads only change rounding: same eigenvalues, same eigenvectors up to sign (the
    // spectrum of a random matrix is well separated), each an eigenvector: ‖A v − λ v‖ small.
    const norm = frobenius(a);
    for (let j = 0; j < n; j++) {
      expect(Math.abs(one.values[j] - two.values[j])).toBeLessThan(1e-13 * norm);
      let dot = 0;
      for (let i = 0; i < n; i++) dot += one.vectors[i * n + j] * two.vectors[i * n + j];
      expect(Math.abs(dot)).toBeCloseTo(1, 8);
    }
    for (const j of [0, n >> 1, n - 1]) {
      let residual = 0;
      for (let i = 0; i < n; i++) {
        let av = 0;
        for (let k = 0; k < n; k++) av += a[i * n + k] * two.vectors[k * n + j];
        residual += (av - two.values[j] * two.vectors[i * n + j]) ** 2;
      }
      expect(Math.sqrt(residual)).toBeLessThan(1e-12 * norm);
    }
  });

  it("decomposes the empty and the 1×1 matrix", async () => {
    expect((await eigh(new Float64Array(0), 0)).values).toHaveLength(0);
    const { values, vectors } = await eigh(Float64Array.of(-4.5), 1);
    expect(Array.from(values)).toEqual([-4.5]);
    expect(Math.abs(vectors[0])).toBe(1);
  });

  it("rejects NaN/Inf entries, a wrong length and a bad thread count", async () => {
    await expect(eigh(Float64Array.of(1, Number.NaN, Number.NaN, 1), 2)).rejects.toThrow(/NaN\/Inf/);
    await expect(eigh(Float64Array.of(1, 0, 0, Number.POSITIVE_INFINITY), 2)).rejects.toThrow(/NaN\/Inf.*row 1, column 1/);
    await expect(eigh(new Float64Array(5), 2)).rejects.toThrow(/expected 2×2 = 4 entries, got 5/);
    await expect(eigh(new Float64Array(4), 1.5)).rejects.toThrow(/non-negative integer/);
    await expect(eigh(new Float64Array(4), 2, { threads: 0 })).rejects.toThrow(/threads must be a positive integer, got 0/);
  });
});

/** The row-major n×n tridiagonal matrix with diagonal d and off-diagonal e. */
function tridiagonalMatrix(d: Float64Array, e: Float64Array): Float64Array {
  const n = d.length;
  const t = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    t[i * n + i] = d[i];
    if (i + 1 < n) t[i * n + i + 1] = t[(i + 1) * n + i] = e[i];
  }
  return t;
}

describe("tridiagonalEigen (divide and conquer)", () => {
  const checkTridiagonal = async (d: Float64Array, e: Float64Array) => {
    const n = d.length;
    const t = tridiagonalMatrix(d, e);
    const result = await checkedEigh(t, n, () => tridiagonalEigen(d, e));
    // Against QL on the same tridiagonal matrix.
    const reference = eighByRotations(t, n);
    const norm = frobenius(t);
    for (let j = 0; j < n; j++) expect(Math.abs(result.values[j] - reference.values[j])).toBeLessThan(1e-13 * norm);
    return result;
  };

  it("finds the eigenvalues 2 − 2cos(kπ/(n+1)) of the 1-2-1 matrix", async () => {
    const n = 301;
    const { values } = await checkTridiagonal(new Float64Array(n).fill(2), new Float64Array(n - 1).fill(-1));
    for (let k = 1; k <= n; k++) expect(Math.abs(values[k - 1] - (2 - 2 * Math.cos((k * Math.PI) / (n + 1))))).toBeLessThan(1e-13);
  });

  it("separates the nearly equal eigenvalue pairs of Wilkinson's W+ matrix", async () => {
    // W+_{2m+1}: diagonal |i − m|, off-diagonal 1; its largest eigenvalues come in pairs closer than 1e-13.
    const n = 201;
    await checkTridiagonal(
      Float64Array.from({ length: n }, (_, i) => Math.abs(i - (n - 1) / 2)),
      new Float64Array(n - 1).fill(1),
    );
  });

  it("handles off-diagonals that vanish or are negligible, and a constant diagonal", async () => {
    const n = 150;
    await checkTridiagonal(
      Float64Array.from({ length: n }, (_, i) => i % 7),
      Float64Array.from({ length: n - 1 }, (_, i) => (i % 10 === 0 ? 0 : 1e-20)),
    );
    await checkTridiagonal(new Float64Array(n).fill(1), new Float64Array(n - 1).fill(1e-9));
  });

  it("decomposes a random tridiagonal matrix with negative off-diagonals", async () => {
    const r = shiftedUniform(31);
    const n = 500;
    await checkTridiagonal(
      Float64Array.from({ length: n }, r),
      Float64Array.from({ length: n - 1 }, () => -Math.abs(r())),
    );
  });
});

describe("subtractProduct (the reduction's trailing update)", () => {
  it.each([
    [1, 1, 1],
    [3, 2, 5],
    [70, 128, 301],
  ])("computes c − x yᵀ for %i rows, inner size %i and %i columns", async (rows, k, width) => {
    const r = shiftedUniform(rows + k + width);
    const [c, x, y] = [rows * width, rows * k, width * k].map((length) => Float64Array.from({ length }, r));
    const out = await subtractProduct(c, x, y, rows, k, width);
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < width; j++) {
        let expected = c[i * width + j];
        for (let q = 0; q < k; q++) expected -= x[i * k + q] * y[j * k + q];
        expect(Math.abs(out[i * width + j] - expected)).toBeLessThan(1e-13);
      }
    }
  });
});

describe("applyReflectors (the back-transformation)", () => {
  it.each([2, 3, 258, 600])("applies the reflectors of n = %i like one reflector at a time", async (n) => {
    const r = shiftedUniform(n);
    // v_k zero up to column k, one at k + 1, the rest random; τ = 2/‖v‖² makes I − τ v vᵀ a reflection.
    const reflectors = new ReflectorGroups(n);
    const vs: Float64Array[] = [];
    const tau = new Float64Array(n);
    for (let k = 0; k < n - 1; k++) {
      const v = Float64Array.from({ length: n }, (_, c) => (c <= k ? 0 : c === k + 1 ? 1 : r()));
      vs.push(v);
      tau[k] = 2 / v.reduce((s, x) => s + x * x, 0);
      // Stored the way the reduction does: from its panel's first column, here k − (k mod 3).
      const from = k - (k % 3);
      reflectors.store(k, from, v.subarray(from));
    }
    const z = Float64Array.from({ length: n * n }, r);
    const expected = Float64Array.from(z);
    // Q z = H_0 (H_1 (… (H_{n−2} z))), column by column.
    for (let k = n - 2; k >= 0; k--) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let i = k + 1; i < n; i++) s += vs[k][i] * expected[i * n + j];
        for (let i = k + 1; i < n; i++) expected[i * n + j] -= tau[k] * s * vs[k][i];
      }
    }
    await applyReflectors(reflectors, tau, z);
    let worst = 0;
    for (let i = 0; i < n * n; i++) worst = Math.max(worst, Math.abs(z[i] - expected[i]));
    expect(worst).toBeLessThan(1e-12);
  });
});

describe("the tridiagonal reduction's WebAssembly kernels (SymvTeam)", () => {
  const random = (length: number, seed: number) => Float64Array.from({ length }, shiftedUniform(seed));

  it.each([
    [1, 1],
    [2, 1],
    [5, 1],
    [7, 2],
    [131, 1],
    [300, 2],
  ])("multiplies by the upper triangle of an m×m matrix, for n = %i on %i threads", (n, threads) => {
    const team = SymvTeam.start(n, threads);
    try {
      // Sizes below n, first rows of every residue mod 4, and both parities of the columns left.
      for (const m of new Set([n, n - 1, Math.ceil(n / 2)].filter((m) => m > 0))) {
        for (const first of new Set([0, 1, 2, 3, 6, m - 1].filter((f) => f >= 0 && f < m))) {
          team.matrix.set(random(m * m, m + first));
          team.x.set(random(m, 2 * m + first));
          // Brute force with the matrix mirrored from its upper triangle: B[j][k] = B[min][max].
          const b = Float64Array.from(team.matrix.subarray(0, m * m));
          const x = Float64Array.from(team.x.subarray(0, m));
          const y = team.symv(m, first);
          for (let j = 0; j < m; j++) {
            let expected = 0;
            if (j >= first) for (let k = first; k < m; k++) expected += b[Math.min(j, k) * m + Math.max(j, k)] * x[k];
            expect(Math.abs(y[j] - expected)).toBeLessThan(1e-13 * Math.max(1, Math.abs(expected)) * Math.sqrt(m));
          }
        }
      }
    } finally {
      team.close();
    }
  });

  it("computes dot products with rows and combinations of rows over column ranges", () => {
    const n = 40;
    const stride = 37;
    const team = SymvTeam.start(n, 1, 12 * stride + 2 * n);
    try {
      const rows = team.scratch.subarray(0, 12 * stride);
      const vector = team.scratch.subarray(12 * stride, 12 * stride + n);
      const out = team.scratch.subarray(12 * stride + n, 12 * stride + 2 * n);
      for (const count of [0, 1, 3, 4, 5, 9, 12]) {
        for (const [c0, c1] of [
          [0, 37],
          [1, 37],
          [4, 36],
          [5, 6],
          [7, 7],
        ]) {
          rows.set(random(rows.length, count + c0));
          vector.set(random(n, 100 + count + c1));
          out.fill(0.5);
          team.dots(rows, stride, count, vector, out, c0, c1);
          for (let q = 0; q < n; q++) {
            let expected = 0.5;
            if (q < count) {
              expected = 0;
              for (let c = c0; c < c1; c++) expected += rows[q * stride + c] * vector[c];
            }
            expect(out[q]).toBeCloseTo(expected, 14);
          }
          // combine: y[c] += Σ_q coef[q] row_q[c] on [c0, c1), y untouched elsewhere.
          const before = Float64Array.from(out);
          team.combine(rows, stride, count, vector, out, c0, c1);
          for (let c = 0; c < n; c++) {
            let expected = before[c];
            if (c >= c0 && c < c1) for (let q = 0; q < count; q++) expected += vector[q] * rows[q * stride + c];
            expect(out[c]).toBeCloseTo(expected, 14);
          }
        }
      }
      expect(() => team.dots(new Float64Array(4), 1, 1, vector, out, 0, 1)).toThrow(/outside the team's memory/);
    } finally {
      team.close();
    }
  });

  it("refuses a matrix beyond the 4 GiB its kernels can address", () => {
    expect(() => SymvTeam.start(23_200, 1)).toThrow(/23200×23200 matrix exceeds the 4 GiB/);
  });
});
