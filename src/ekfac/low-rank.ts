/**
 * Rank-r factors M ~ U V^T of preconditioned query gradients (Section 3.2.2), by a randomized
 * SVD (Halko, Martinsson & Tropp 2011) with oversampling and power iterations: O(out x in x r)
 * work instead of a full SVD of every [out, in+1] matrix.
 */
import { tf } from "../backend/backend.js";
import { eigh } from "../linalg/eigh.js";
import { orthonormalColumns } from "../linalg/orthonormalize.js";
import { normalGenerator } from "../util/random.js";

const OVERSAMPLING = 10;
const POWER_ITERATIONS = 2;

function orth(y: tf.Tensor2D): tf.Tensor2D {
  const [rows, cols] = y.shape;
  return tf.tensor2d(Float32Array.from(orthonormalColumns(Float64Array.from(y.dataSync()), rows, cols)), [rows, cols]);
}

/** U [out, r] and V [in+1, r] with M ~ U V^T, the best rank-r approximation up to sketching error. */
export function lowRankFactors(m: tf.Tensor2D, rank: number, seed: number): { u: tf.Tensor2D; v: tf.Tensor2D } {
  const [rows, cols] = m.shape;
  const k = Math.min(rank + OVERSAMPLING, rows, cols);
  const r = Math.min(rank, k);
  return tf.tidy(() => {
    const mT = tf.transpose(m);
    const normal = normalGenerator(seed);
    let y = orth(tf.matMul(m, tf.tensor2d(Float32Array.from({ length: cols * k }, normal), [cols, k])));
    for (let i = 0; i < POWER_ITERATIONS; i++) y = orth(tf.matMul(m, orth(tf.matMul(mT, y))));
    // M ~ Y B with B = Y^T M [k, cols]; keep B's top-r left singular vectors W: M ~ (Y W)(W^T B).
    const b = tf.matMul(tf.transpose(y), m);
    const gram = Float64Array.from(tf.matMul(b, tf.transpose(b)).dataSync());
    const { vectors } = eigh(gram, k);
    // Eigenvalues ascend: the last r columns are the top singular directions.
    const w = new Float32Array(k * r);
    for (let i = 0; i < k; i++) for (let j = 0; j < r; j++) w[i * r + j] = vectors[i * k + (k - r + j)];
    const wT = tf.tensor2d(w, [k, r]);
    return { u: tf.matMul(y, wT), v: tf.matMul(tf.transpose(b), wT) };
  });
}
