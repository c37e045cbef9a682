import { describe, expect, it } from "vitest";
import { eigh } from "../src/linalg/eigh.js";
import { randomSymmetric, symmetricWithSpectrum } from "../src/linalg/random-symmetric.js";
import { uniformGenerator } from "../src/util/random.js";

/** Uniform in [-0.5, 0.5), seeded. */
const shiftedUniform = (seed: number) => {
  const uniform = uniformGenerator(seed);
  return () => uniform() - 0.5;
};

const TOL = 1e-10;

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

/** Decomposes `a`, checks the accuracy bounds and the ordering, and returns the result. */
function checkedEigh(a: Float64Array, n: number, threads?: number) {
  const copy = Float64Array.from(a);
  const result = eigh(a, n, { threads });
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

describe("eigh", () => {
  it.each([1, 2, 3, 5, 64, 256])("decomposes a random symmetric matrix of size %i", (n) => {
    checkedEigh(randomSymmetric(n, n), n);
  });

  it("decomposes a random 1024×1024 matrix alike on one thread and on two", () => {
    const n = 1024;
    const a = randomSymmetric(n, 7);
    const two = checkedEigh(a, n, 2);
    const one = checkedEigh(a, n, 1);
    // The threads only change rounding: same eigenvalues, same eigenvectors up to sign.
    for (let j = 0; j < n; j++) {
      expect(Math.abs(one.values[j] - two.values[j])).toBeLessThan(1e-12);
      let dot = 0;
      for (let i = 0; i < n; i++) dot += one.vectors[i * n + j] * two.vectors[i * n + j];
      expect(Math.abs(dot)).toBeCloseTo(1, 8);
    }
  });

  it("solves a 2×2 matrix exactly", () => {
    const { values, vectors } = checkedEigh(Float64Array.of(2, 1, 1, 2), 2);
    expect(values[0]).toBeCloseTo(1, 14);
    expect(values[1]).toBeCloseTo(3, 14);
    // Eigenvector of 3 is ±(1, 1)/√2, of 1 is ±(1, -1)/√2.
    expect(Math.abs(vectors[1])).toBeCloseTo(Math.SQRT1_2, 14);
    expect(vectors[1] * vectors[3]).toBeCloseTo(0.5, 14);
    expect(vectors[0] * vectors[2]).toBeCloseTo(-0.5, 14);
  });

  it("recovers a known spectrum Q diag(d) Q^T", () => {
    const r = shiftedUniform(11);
    const d = Array.from({ length: 150 }, () => 10 * r());
    const { values } = checkedEigh(symmetricWithSpectrum(d, 12, d.length).matrix, d.length);
    const sorted = [...d].sort((x, y) => x - y);
    for (let i = 0; i < d.length; i++) expect(Math.abs(values[i] - sorted[i])).toBeLessThan(1e-12);
  });

  it("handles rank-deficient covariance matrices (many zero, clustered eigenvalues)", () => {
    const n = 300;
    const { values } = checkedEigh(covariance(20, n, 5), n);
    const max = values[n - 1];
    // Rank 20: all but the top 20 eigenvalues vanish up to rounding.
    for (let i = 0; i < n - 20; i++) expect(Math.abs(values[i])).toBeLessThan(1e-12 * max);
    expect(values[n - 20]).toBeGreaterThan(1e-3 * max);
  });

  it("handles repeated eigenvalues", () => {
    const d = Array.from({ length: 120 }, (_, i) => [-2, 1, 1, 3][i % 4]);
    const { values } = checkedEigh(symmetricWithSpectrum(d, 3, d.length).matrix, d.length);
    const sorted = [...d].sort((x, y) => x - y);
    for (let i = 0; i < d.length; i++) expect(Math.abs(values[i] - sorted[i])).toBeLessThan(1e-12);
  });

  it("handles eigenvalues spanning 1e-12 .. 1e4", () => {
    const n = 100;
    const d = Array.from({ length: n }, (_, i) => 10 ** (-12 + (16 * i) / (n - 1)));
    const { values } = checkedEigh(symmetricWithSpectrum(d, 9, n).matrix, n);
    // Weyl: a backward error of eps·||A|| moves every eigenvalue by at most that much.
    for (let i = 0; i < n; i++) expect(Math.abs(values[i] - d[i])).toBeLessThan(1e-12 * 1e4);
  });

  it("returns sorted values and permuted unit vectors for a diagonal matrix", () => {
    const diag = [3, -1, 1e-8, 0, 7, -1];
    const n = diag.length;
    const a = new Float64Array(n * n);
    diag.forEach((x, i) => (a[i * n + i] = x));
    const { values, vectors } = checkedEigh(a, n);
    expect(Array.from(values)).toEqual([...diag].sort((x, y) => x - y));
    for (let j = 0; j < n; j++) {
      const column = Array.from({ length: n }, (_, i) => Math.abs(vectors[i * n + j]));
      expect(column.filter((x) => x === 1)).toHaveLength(1);
      expect(a[column.indexOf(1) * (n + 1)]).toBe(values[j]);
    }
  });

  it("handles the zero matrix and the empty matrix", () => {
    const { values, vectors } = checkedEigh(new Float64Array(16), 4);
    expect(Array.from(values)).toEqual([0, 0, 0, 0]);
    expect(orthogonalityError(4, vectors)).toBe(0);
    expect(eigh(new Float64Array(0), 0).values).toHaveLength(0);
  });

  it("decomposes a 1×1 matrix", () => {
    const { values, vectors } = eigh(Float64Array.of(-4.5), 1);
    expect(Array.from(values)).toEqual([-4.5]);
    expect(Math.abs(vectors[0])).toBe(1);
  });

  it("rejects NaN/Inf entries and a wrong length", () => {
    expect(() => eigh(Float64Array.of(1, Number.NaN, Number.NaN, 1), 2)).toThrow(/NaN\/Inf/);
    expect(() => eigh(Float64Array.of(1, 0, 0, Number.POSITIVE_INFINITY), 2)).toThrow(/NaN\/Inf.*row 1, column 1/);
    expect(() => eigh(new Float64Array(5), 2)).toThrow(/expected 2×2 = 4 entries, got 5/);
    expect(() => eigh(new Float64Array(4), 1.5)).toThrow(/non-negative integer/);
  });
});
