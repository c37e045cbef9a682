/** Sequence gradients from host captures, in float64: the reference the tests compare against. */

/** G = sum_t g_t a_t^T over rows [from, from + len) of row-major a [rows, in] and g [rows, out]. */
export function sequenceGradient(a: Float32Array, g: Float32Array, from: number, len: number, inW: number, outW: number): Float64Array {
  const G = new Float64Array(outW * inW);
  for (let t = from; t < from + len; t++) {
    for (let o = 0; o < outW; o++) {
      const go = g[t * outW + o];
      if (go !== 0) for (let i = 0; i < inW; i++) G[o * inW + i] += go * a[t * inW + i];
    }
  }
  return G;
}
