/** Orthonormal columns by modified Gram-Schmidt (twice, for stability), in float64. */
export function orthonormalColumns(x: Float64Array, rows: number, cols: number): Float64Array {
  const q = Float64Array.from(x);
  for (let pass = 0; pass < 2; pass++) {
    for (let j = 0; j < cols; j++) {
      for (let k = 0; k < j; k++) {
        let dot = 0;
        for (let i = 0; i < rows; i++) dot += q[i * cols + k] * q[i * cols + j];
        for (let i = 0; i < rows; i++) q[i * cols + j] -= dot * q[i * cols + k];
      }
      let norm = 0;
      for (let i = 0; i < rows; i++) norm += q[i * cols + j] ** 2;
      norm = Math.sqrt(norm);
      // A column in the span of the previous ones stays zero rather than becoming noise.
      const scale = norm > 1e-300 ? 1 / norm : 0;
      for (let i = 0; i < rows; i++) q[i * cols + j] *= scale;
    }
  }
  return q;
}
