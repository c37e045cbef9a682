/**
 * Low-rank factors of EK-FAC's elementwise whitening scale W = 1 / sqrt(Lambda + damping),
 * W ~ sum_r u_r v_r^T, from the top singular pairs of W (eigendecomposition of W^T W or W W^T,
 * whichever is smaller, in float64). W is positive and close to a function of a Kronecker
 * product, so a handful of terms carry nearly all of it.
 */
import { eigh, largestFirst } from "../linalg/eigh.js";

export interface ScalingFactors {
  rank: number;
  /** [rank, out] row-major: u_r. */
  u: Float64Array;
  /** [rank, in+1] row-major: v_r. */
  v: Float64Array;
  /** ||W - U V^T||_F / ||W||_F. */
  relativeError: number;
}

export function whiteningScale(lambda: ArrayLike<number>, damping: number): Float64Array {
  return Float64Array.from(lambda, (x) => 1 / Math.sqrt(x + damping));
}

export async function scalingFactors(w: Float64Array, rows: number, cols: number, rank: number): Promise<ScalingFactors> {
  const r = Math.min(rank, rows, cols);
  // Gram matrix of the shorter side: its eigenvectors are W's singular vectors on that side.
  const transposed = rows < cols;
  const n = transposed ? rows : cols;
  const gram = new Float64Array(n * n);
  if (transposed) {
    for (let i = 0; i < rows; i++)
      for (let j = i; j < rows; j++) {
        let s = 0;
        for (let k = 0; k < cols; k++) s += w[i * cols + k] * w[j * cols + k];
        gram[i * n + j] = gram[j * n + i] = s;
      }
  } else {
    for (let i = 0; i < rows; i++)
      for (let a = 0; a < cols; a++) {
        const x = w[i * cols + a];
        if (x === 0) continue;
        for (let b = a; b < cols; b++) gram[a * n + b] += x * w[i * cols + b];
      }
    for (let a = 0; a < cols; a++) for (let b = 0; b < a; b++) gram[a * n + b] = gram[b * n + a];
  }
  const { vectors } = largestFirst(await eigh(gram, n), n, r);
  const u = new Float64Array(r * rows);
  const v = new Float64Array(r * cols);
  for (let k = 0; k < r; k++) {
    if (transposed) {
      // u_k = left singular vector, v_k = W^T u_k (carries the singular value)
      for (let i = 0; i < rows; i++) u[k * rows + i] = vectors[i * r + k];
      for (let j = 0; j < cols; j++) {
        let s = 0;
        for (let i = 0; i < rows; i++) s += w[i * cols + j] * u[k * rows + i];
        v[k * cols + j] = s;
      }
    } else {
      for (let j = 0; j < cols; j++) v[k * cols + j] = vectors[j * r + k];
      for (let i = 0; i < rows; i++) {
        let s = 0;
        for (let j = 0; j < cols; j++) s += w[i * cols + j] * v[k * cols + j];
        u[k * rows + i] = s;
      }
    }
  }
  let err = 0;
  let norm = 0;
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < cols; j++) {
      let approx = 0;
      for (let k = 0; k < r; k++) approx += u[k * rows + i] * v[k * cols + j];
      err += (w[i * cols + j] - approx) ** 2;
      norm += w[i * cols + j] ** 2;
    }
  return { rank: r, u, v, relativeError: Math.sqrt(err / norm) };
}
