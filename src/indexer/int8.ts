/**
 * Rounding to int8 with one scale per vector: how a vector file stores a sketch's rows, and how a
 * query meets int8 rows (indexer/row-scores.ts). A value x becomes round(x / scale) with
 * scale = max |x| / 127, so it errs by at most scale / 2 (by at most max |x| for vectors so small,
 * max |x| < 1.5e-36, that the float32 scale is subnormal).
 */

/**
 * Writes the int8 values of `values` into `out` (as long) and returns their scale, float32; a
 * vector of zeros has scale 0 and values 0.
 */
export function quantizeInt8(values: Float32Array, out: Int8Array): number {
  let max = 0;
  for (let i = 0; i < values.length; i++) {
    const size = Math.abs(values[i]);
    if (size > max) max = size;
  }
  const scale = Math.fround(max / 127);
  if (scale === 0) {
    out.fill(0);
    return 0;
  }
  // Math.round's rounding (half up) as floor(x + 0.5), which V8 runs several times faster on these
  // values. |x| / scale <= 127 (1 + 2^-24) while the scale is a normal float32; a subnormal one
  // (max |x| below 127 x 2^-126) is coarser, and the clamp keeps its values in range.
  for (let i = 0; i < values.length; i++) out[i] = Math.max(-127, Math.min(127, Math.floor(values[i] / scale + 0.5)));
  return scale;
}
