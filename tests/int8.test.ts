/**
 * Rounding to int8 with one scale (indexer/int8.ts), for any finite float32 vector: values within
 * [-127, 127]; while the scale is a normal float32, the largest |x| stored as ±127 and every value
 * within half a step; below that (max |x| < 127 x 2^-126), within max |x|.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { quantizeInt8 } from "../src/indexer/int8.js";

const vectors = fc.array(fc.float({ noNaN: true, noDefaultInfinity: true }), { minLength: 1, maxLength: 64 }).map((values) => Float32Array.from(values));
const SMALLEST_NORMAL = 2 ** -126;

describe("quantizeInt8", () => {
  it("keeps every value in [-127, 127], within half a step while the scale is normal, the largest at ±127", () => {
    fc.assert(
      fc.property(vectors, (values) => {
        const out = new Int8Array(values.length);
        const scale = quantizeInt8(values, out);
        const max = Math.max(...Array.from(values, Math.abs));
        if (max === 0) return scale === 0 && out.every((v) => v === 0);
        expect(scale).toBe(Math.fround(max / 127));
        const normal = scale >= SMALLEST_NORMAL;
        values.forEach((x, i) => {
          expect(Math.abs(out[i])).toBeLessThanOrEqual(127);
          // Half a step, and the division's double rounding; a subnormal scale, the value's size.
          expect(Math.abs(x - out[i] * scale)).toBeLessThanOrEqual(normal ? scale * (0.5 + 1e-9) : max);
        });
        if (normal) expect(Math.max(...Array.from(out, Math.abs))).toBe(127);
        return true;
      }),
      { numRuns: 500 },
    );
  });

  it("stores a vector of zeros as zeros with scale 0", () => {
    const out = Int8Array.of(5, -5, 9);
    expect(quantizeInt8(new Float32Array(3), out)).toBe(0);
    expect(Array.from(out)).toEqual([0, 0, 0]);
  });

  it("keeps vectors too small for a normal scale in range, within their size", () => {
    // Largest values of 1 to 4,000 times the smallest float32: the scale is subnormal, so coarse that x / scale can pass 127.5.
    for (let k = 1; k <= 4000; k++) {
      const max = k * 2 ** -149;
      const values = Float32Array.of(max, -max / 3, max / 2);
      const out = new Int8Array(3);
      const scale = quantizeInt8(values, out);
      values.forEach((x, i) => {
        expect(Math.abs(out[i]), `max ${k} x 2^-149`).toBeLessThanOrEqual(127);
        expect(Math.abs(x - out[i] * scale)).toBeLessThanOrEqual(max);
      });
    }
  });
});
