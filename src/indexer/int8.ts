/**
 * Rounding to int8 with one scale per vector: how a vector file stores a sketch's rows, and how a
 * query meets int8 rows (indexer/row-scores.ts). A value x becomes round(x / scale) with
 * scale = max |x| / 127, so it errs by at most scale / 2 (by at most max |x| for vectors so small,
 * max |x| < 1.5e-36, that the float32 scale is subnormal).
 */

/** max |v| over `values` (0 for none). */
function largestMagnitude(values: Float32Array): number {
  let max = 0;
  for (let i = 0; i < values.length; i++) {
    const size = Math.abs(values[i]);
    if (size > max) max = size;
  }
  return max;
}

/**
 * round(x / scale) within [-limit, limit], half up: truncation of x / scale + limit + 0.5 (>= 0 once
 * clamped below, where truncation is floor), which V8 runs faster than Math.floor of a double.
 * |x| / scale <= limit (1 + 2^-24) while the scale max |x| / limit is a normal float32; a subnormal
 * one is coarser, and the clamp keeps the value in range. A quotient of float32 values is a
 * half-integer exactly or far from one, so adding limit rounds no differently.
 */
function roundToStep(x: number, scale: number, limit: number): number {
  const shifted = (x / scale + limit + 0.5) | 0;
  return Math.max(0, Math.min(2 * limit, shifted)) - limit;
}

/**
 * Writes the int8 values of `values` into `out` (as long) and returns their scale, float32; a
 * vector of zeros has scale 0 and values 0.
 */
export function quantizeInt8(values: Float32Array, out: Int8Array): number {
  const scale = Math.fround(largestMagnitude(values) / 127);
  if (scale === 0) {
    out.fill(0);
    return 0;
  }
  for (let i = 0; i < values.length; i++) out[i] = roundToStep(values[i], scale, 127);
  return scale;
}
