import { describe, expect, it } from "vitest";
import { eigh } from "../src/linalg/eigh.js";
import { SUBSPACE_MIN_N, topEigenvectors } from "../src/linalg/top-eigenvectors.js";
import { capturedVariance, symmetricWithSpectrum } from "../src/linalg/random-symmetric.js";

const column = (p: Float64Array, n: number, k: number, j: number) => Float64Array.from({ length: n }, (_, i) => p[i * k + j]);
const dot = (x: Float64Array, y: Float64Array) => x.reduce((s, xi, i) => s + xi * y[i], 0);

function maxOrthonormalityError(p: Float64Array, n: number, k: number): number {
  let worst = 0;
  for (let a = 0; a < k; a++) {
    for (let b = 0; b < k; b++) worst = Math.max(worst, Math.abs(dot(column(p, n, k, a), column(p, n, k, b)) - (a === b ? 1 : 0)));
  }
  return worst;
}

describe("topEigenvectors", () => {
  it.each([
    ["a small matrix", 200, 8],
    ["a large k for its size", SUBSPACE_MIN_N, 64],
  ])("takes the full eigendecomposition for %s, with the same vectors", async (_, n, k) => {
    const { matrix } = symmetricWithSpectrum(
      Array.from({ length: n }, (_, i) => 1 / (1 + i)),
      1,
    );
    const top = await topEigenvectors(matrix, n, k);
    const full = await eigh(matrix, n);
    expect(top.method).toBe("eigh");
    for (let j = 0; j < k; j++) {
      expect(top.values[j]).toBe(full.values[n - 1 - j]);
      for (let i = 0; i < n; i++) expect(top.vectors[i * k + j]).toBe(full.vectors[i * n + (n - 1 - j)]);
    }
  });

  it("finds the eigenvectors of a large matrix with separated eigenvalues by subspace iteration", async () => {
    const n = SUBSPACE_MIN_N;
    const k = 16;
    const spectrum = Array.from({ length: n }, (_, i) => 1e4 * 0.8 ** i + 1e-3);
    const { matrix, eigenvector } = symmetricWithSpectrum(spectrum, 2);
    const top = await topEigenvectors(matrix, n, k);
    expect(top.method).toBe("subspace");
    expect(maxOrthonormalityError(top.vectors, n, k)).toBeLessThan(1e-12);
    for (let j = 0; j < k; j++) {
      expect(Math.abs(top.values[j] - spectrum[j]) / spectrum[j]).toBeLessThan(1e-5);
      expect(Math.abs(dot(column(top.vectors, n, k, j), eigenvector(j)))).toBeGreaterThan(1 - 1e-5);
    }
  });

  it("captures the top-k variance when eigenvalues nearly tie around k, as PCA spectra do", async () => {
    // Gaps like the demo model's whitened moments: λ_17/λ_16 ≈ 0.98, λ_49/λ_16 ≈ 0.6.
    const n = 1100;
    const k = 16;
    const spectrum = Array.from({ length: n }, (_, i) => 1e5 / (1 + i / 30) ** 1.5);
    const { matrix } = symmetricWithSpectrum(spectrum, 3);
    const top = await topEigenvectors(matrix, n, k);
    expect(top.method).toBe("subspace");
    const best = spectrum.slice(0, k).reduce((s, x) => s + x, 0);
    expect(capturedVariance(matrix, top.vectors, n, k) / best).toBeGreaterThan(1 - 1e-5);
    expect(maxOrthonormalityError(top.vectors, n, k)).toBeLessThan(1e-12);
    // The same matrix gives the same basis: builds are reproducible.
    expect((await topEigenvectors(matrix, n, k)).vectors).toEqual(top.vectors);
  });

  it("refuses a k outside 1..n and a matrix with NaN", async () => {
    const n = SUBSPACE_MIN_N;
    const { matrix } = symmetricWithSpectrum(
      Array.from({ length: n }, (_, i) => 1 / (1 + i)),
      4,
    );
    await expect(topEigenvectors(matrix, n, 0)).rejects.toThrow(/k must be an integer from 1 to 1024, got 0/);
    await expect(topEigenvectors(matrix, n, n + 1)).rejects.toThrow(/got 1025/);
    matrix[5 * n + 7] = Number.NaN;
    await expect(topEigenvectors(matrix, n, 4)).rejects.toThrow(/NaN\/Inf \(NaN at row 5, column 7\)/);
  });
});
