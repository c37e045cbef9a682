/** Tensor operations whose best implementation depends on the backend. */
import { tf } from "../backend/backend.js";

/**
 * [n, a, b] x [n, b, c]. The wasm backend's BatchMatMul kernel does not use XNNPACK and runs at
 * about 2 GFLOP/s; separate 2D products reach 12-25 GFLOP/s on attention-sized slices.
 */
export function batchedMatMul(x: tf.Tensor3D, y: tf.Tensor3D): tf.Tensor3D {
  if (tf.getBackend() !== "wasm" || x.shape[0] === 1) return tf.matMul(x, y);
  return tf.tidy(() => {
    const xs = tf.unstack(x) as tf.Tensor2D[];
    const ys = tf.unstack(y) as tf.Tensor2D[];
    return tf.stack(xs.map((xi, i) => tf.matMul(xi, ys[i]))) as tf.Tensor3D;
  });
}
