/**
 * Rounding to int8 with one scale per vector: how a vector file stores a sketch's rows, and how a
 * query meets int8 rows (indexer/row-scores.ts). A value x becomes round(x / scale) with
 * scale = max |x| / 127, so it errs by at most scale / 2.
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
  // |x| / scale <= 127 up to the rounding of scale: clamped.
  for (let i = 0; i < values.length; i++) {
    const rounded = Math.round(values[i] / scale);
    out[i] = Math.max(-127, Math.min(127, rounded));
  }
  return scale;
}
