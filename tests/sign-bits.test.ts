/**
 * Sign rows (a bit per coordinate and a factor |x|^2 / |x|_1) against brute force: the bits and
 * factor as written, a query's products by its bit planes equal to the integer sums
 * sum_j q_j sign(x_j) of its rounded values, for stretches at any coordinate (not only whole bytes),
 * restricted to sub-ranges; and the estimator's two properties the index relies on
 * (docs/research/index-faithfulness.md, section 14): f sum_j y_j sign(x_j) is an unbiased estimate
 * of <y, x> for jointly Gaussian coordinates, erring by (pi/2 - 1)(1 - rho^2) per coordinate in
 * variance (in units of |x| |y| / dim): given x, the error is sum_j z_j (f sign(x_j) - x_j) with z the
 * part of y independent of x, whose variance is (1 - rho^2) (dim f^2 - |x|^2) ~ (1 - rho^2)(pi/2 - 1) dim.
 * A first pass's query of signs alone: its agreements with a row equal the integer sums
 * sum_j sign(y_j) sign(x_j) at any coordinate, and f g times them estimates <y, x> arcsin(rho) / rho.
 */
import { describe, expect, it } from "vitest";
import { planesOver, signAgreement, signProduct, signsPlane, stretchProduct } from "../src/indexer/sign-bits.js";
import { packSigns, signBytes, signPlanes } from "../src/indexer/sign-kernels.js";
import { normalGenerator } from "../src/util/random.js";

/** The rounding signPlanes documents: q = round(v / s) within [-15, 15], s = max |v| / 15 in float32. */
function rounded(values: Float32Array): { q: number[]; scale: number } {
  const scale = Math.fround(Math.max(...Array.from(values, Math.abs)) / 15);
  return { q: Array.from(values, (v) => Math.max(-15, Math.min(15, Math.floor(v / scale + 0.5)))), scale };
}

const bitOf = (row: Uint8Array, j: number): number => (row[j >> 3] >> (j & 7)) & 1;

/** The integer that 5 bit planes (two's complement, weights 1, 2, 4, 8, -16) hold at bit j. */
function planeValue(planes: Uint8Array, j: number): number {
  const bytes = planes.length / 5;
  return [1, 2, 4, 8, -16].reduce((sum, w, k) => sum + w * bitOf(planes.subarray(k * bytes, (k + 1) * bytes), j), 0);
}

describe("sign bits", () => {
  const normal = normalGenerator(5);
  /** The signs of a row of `dim` normal values. */
  const signRow = (dim: number): Uint8Array => {
    const row = new Uint8Array(signBytes(dim));
    packSigns(
      Float32Array.from({ length: dim }, () => normal()),
      row,
    );
    return row;
  };
  /** Stretches [offset, length) of a 203-coordinate row: from a byte's first bit and from inside bytes, short and long. */
  const STRETCHES = [
    [0, 203],
    [3, 1],
    [5, 6],
    [9, 3],
    [13, 100],
    [64, 64],
    [101, 102],
  ];
  /** |x|^2 / |x|_1 in float64, rounded to float32 as packSigns returns it. */
  const factorOf = (values: Float32Array): number =>
    Math.fround(Array.from(values).reduce((a, v) => a + v * v, 0) / Array.from(values).reduce((a, v) => a + Math.abs(v), 0));

  it("packs each value's sign and the factor |x|^2 / |x|_1; a row of zeros has factor 0", () => {
    const values = Float32Array.from({ length: 37 }, () => normal());
    values[4] = 0;
    const out = new Uint8Array(signBytes(37)).fill(0xff);
    const factor = packSigns(values, out);
    expect(out.length).toBe(5);
    for (let j = 0; j < 37; j++) expect(bitOf(out, j), `value ${j}`).toBe(values[j] > 0 ? 1 : 0);
    for (let j = 37; j < 40; j++) expect(bitOf(out, j), `spare bit ${j}`).toBe(0);
    expect(factor).toBe(factorOf(values));
    expect(packSigns(new Float32Array(9), new Uint8Array(2))).toBe(0);
  });

  it("scores a stretch at any coordinate by its bit planes as the integer sum of its rounded values times the signs", () => {
    const row = signRow(203);
    for (const [offset, length] of STRETCHES) {
      const stretch = Float32Array.from({ length }, () => normal());
      const planes = signPlanes(stretch, offset);
      if (!planes) throw new Error("a stretch of normal values has planes");
      const { q, scale } = rounded(stretch);
      expect(planes.scale).toBe(scale);
      const expected = q.reduce((a, v, i) => a + v * (bitOf(row, offset + i) ? 1 : -1), 0);
      expect(signProduct(row, offset, planes.planes), `[${offset}, ${offset + length})`).toBe(expected);
      // Restricted to a sub-range: the same sum over it, the bits around it left out.
      const [from, to] = [offset + Math.floor(length / 3), offset + Math.ceil((2 * length) / 3)];
      const over = q.slice(from - offset, to - offset).reduce((a, v, i) => a + v * (bitOf(row, from + i) ? 1 : -1), 0);
      expect(signProduct(row, from, planesOver(planes.planes, offset, from, to)), `[${from}, ${to}) of [${offset}, ${offset + length})`).toBe(over);
    }
    expect(signPlanes(new Float32Array(10), 4)).toBeUndefined();
  });

  it("makes the planes of a long stretch, and rounds values half a step from a boundary up, as roundToStep does", () => {
    // Long: many 16-value chunks of the kernels, a length not a multiple of 4, from bit 5 of a byte.
    const long = Float32Array.from({ length: 100_003 }, () => normal());
    long[77] = Number.NaN; // passed over by the maximum, as largestMagnitude passes it over
    const planes = signPlanes(long, 5);
    if (!planes) throw new Error("a stretch of normal values has planes");
    long[77] = 0;
    const { q, scale } = rounded(long);
    expect(planes.scale).toBe(scale);
    expect(planes.planes.length).toBe(5 * signBytes(5 + long.length));
    const wrong = q.findIndex((v, j) => j !== 77 && planeValue(planes.planes, 5 + j) !== v);
    expect(wrong, `value ${wrong}`).toBe(-1);
    for (let j = 0; j < 5; j++) expect(bitOf(planes.planes, j), "bits before the stretch").toBe(0);
    // Ties: k + 1/2 steps exactly (the largest value 15 steps), each rounded up, -0.5 to 0 and -15.5 to -15.
    const step = 0.25;
    const ties = Float32Array.from([15, 0.5, -0.5, 2.5, -2.5, 14.5, -14.5, -15.5 + 0.5, 0], (v) => v * step);
    const tied = signPlanes(ties, 0);
    if (!tied) throw new Error("ties have planes");
    expect(tied.scale).toBe(step);
    expect(Array.from(ties, (_, j) => planeValue(tied.planes, j))).toEqual([15, 1, 0, 3, -2, 15, -14, -15, 0]);
  });

  it("scores a stretch at any coordinate by the query's signs alone as the integer sum of sign agreements, whatever row bits lie around it", () => {
    const row = signRow(203);
    for (const [offset, length] of STRETCHES) {
      const stretch = Float32Array.from({ length }, () => normal());
      const signs = signsPlane(stretch, offset);
      if (!signs) throw new Error("a stretch of normal values has signs");
      for (let j = 0; j < length; j++) expect(bitOf(signs.plane, (offset & 7) + j), `value ${j}`).toBe(stretch[j] > 0 ? 1 : 0);
      expect(signs.factor).toBe(factorOf(stretch));
      const expected = Array.from(stretch).reduce((a, v, i) => a + (v > 0 ? 1 : -1) * (bitOf(row, offset + i) ? 1 : -1), 0);
      expect(signAgreement(row, offset, length, signs.plane), `[${offset}, ${offset + length})`).toBe(expected);
      expect(stretchProduct(row, offset, length, signs.plane)).toBe(expected);
      // Five planes of the same stretch go to signProduct.
      const planes = signPlanes(stretch, offset)?.planes ?? new Uint8Array(0);
      expect(stretchProduct(row, offset, length, planes)).toBe(signProduct(row, offset, planes));
    }
    expect(signsPlane(new Float32Array(10), 4)).toBeUndefined();
  });

  it("estimates <y, x> by the query's signs alone as SimHash does: times arcsin(rho) / rho, so unbiased at small rho", () => {
    const dim = 4096;
    const trials = 200;
    for (const rho of [0.1, 0.6]) {
      let estimates = 0;
      let exacts = 0;
      for (let t = 0; t < trials; t++) {
        const x = Float32Array.from({ length: dim }, () => normal());
        const y = Float32Array.from(x, (v) => rho * v + Math.sqrt(1 - rho * rho) * normal());
        const bits = new Uint8Array(signBytes(dim));
        const f = packSigns(x, bits);
        const signs = signsPlane(y, 0);
        if (!signs) throw new Error("normal values have signs");
        estimates += f * signs.factor * signAgreement(bits, 0, dim, signs.plane);
        exacts += x.reduce((a, v, j) => a + v * y[j], 0);
      }
      // E[sign(x) sign(y)] = (2/pi) arcsin(rho), and f g -> pi/2 for unit variances: dim arcsin(rho) against dim rho.
      const expected = Math.asin(rho) / rho;
      // Per trial the estimate errs by about sqrt(dim (pi/2)^2 (1 - (2/pi arcsin rho)^2)); the mean by 1/sqrt(trials) of that.
      const sd = (Math.sqrt(dim) * (Math.PI / 2)) / Math.sqrt(trials);
      expect(Math.abs(estimates / trials - (expected * exacts) / trials), `rho ${rho}`).toBeLessThan(4 * sd);
    }
  });

  it("estimates <y, x> without bias, erring by (pi/2 - 1)(1 - rho^2) per coordinate, for Gaussian coordinates of correlation rho", () => {
    const dim = 4096;
    const trials = 400;
    for (const rho of [0, 0.6]) {
      const errors: number[] = [];
      for (let t = 0; t < trials; t++) {
        const x = Float32Array.from({ length: dim }, () => normal());
        const y = Float32Array.from(x, (v) => rho * v + Math.sqrt(1 - rho * rho) * normal());
        const bits = new Uint8Array(signBytes(dim));
        const factor = packSigns(x, bits);
        let estimate = 0;
        let exact = 0;
        let xx = 0;
        let yy = 0;
        for (let j = 0; j < dim; j++) {
          estimate += y[j] * (bitOf(bits, j) ? 1 : -1);
          exact += x[j] * y[j];
          xx += x[j] * x[j];
          yy += y[j] * y[j];
        }
        // In units of |x| |y| / sqrt(dim): the error of one coordinate's worth.
        errors.push(((factor * estimate - exact) / Math.sqrt(xx * yy)) * Math.sqrt(dim));
      }
      const mean = errors.reduce((a, b) => a + b, 0) / trials;
      const variance = errors.reduce((a, e) => a + (e - mean) ** 2, 0) / (trials - 1);
      const expected = (Math.PI / 2 - 1) * (1 - rho * rho);
      expect(Math.abs(mean), `rho ${rho}: mean error ${mean}`).toBeLessThan(4 * Math.sqrt(expected / trials));
      expect(variance / expected, `rho ${rho}: variance ${variance}`).toBeGreaterThan(0.8);
      expect(variance / expected, `rho ${rho}: variance ${variance}`).toBeLessThan(1.25);
    }
  });
});
