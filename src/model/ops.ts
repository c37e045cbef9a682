/** Tensor operations whose best implementation depends on the backend. */
import { tf } from "../backend/backend.js";

/** Slice length from which separate 2D products beat wasm's batched kernel (measured, see below). */
const LOOP_FROM_ROWS = 256;

/**
 * [n, a, b] x [n, b, c]. The wasm backend's BatchMatMul kernel does not use XNNPACK: for
 * attention over long sequences (12 x 512 x 64) separate 2D products are 3x faster, while for
 * short ones (64 x 64 x 32) the per-op overhead of a loop makes it 7x slower.
 */
export function batchedMatMul(x: tf.Tensor3D, y: tf.Tensor3D): tf.Tensor3D {
  if (tf.getBackend() !== "wasm" || x.shape[0] === 1 || x.shape[1] < LOOP_FROM_ROWS) return tf.matMul(x, y);
  return tf.tidy(() => {
    const xs = tf.unstack(x) as tf.Tensor2D[];
    const ys = tf.unstack(y) as tf.Tensor2D[];
    return tf.stack(xs.map((xi, i) => tf.matMul(xi, ys[i]))) as tf.Tensor3D;
  });
}
