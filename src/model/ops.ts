/** Tensor operations whose best implementation depends on the backend. */
import { tf } from "../backend/backend.js";

/** Multiply-adds per slice from which separate 2D products beat wasm's batched kernel (measured, see below). */
const LOOP_FROM_SLICE_WORK = 2 ** 16;

/**
 * [n, a, b] x [n, b, c]. The wasm backend's BatchMatMul kernel does not use XNNPACK and runs at
 * about 2.5 GFLOP/s. Separate 2D products (one XNNPACK call each, after a cheap unstack) were
 * measured 2.5x faster for attention over 64-token slices (64 x 64 x 32), 6x over 128 and 10x
 * over 512; below about 44 x 44 x 32 the per-op overhead of the loop makes it the slower one.
 */
export function batchedMatMul(x: tf.Tensor3D, y: tf.Tensor3D): tf.Tensor3D {
  const sliceWork = x.shape[1] * x.shape[2] * y.shape[2];
  if (tf.getBackend() !== "wasm" || x.shape[0] === 1 || sliceWork < LOOP_FROM_SLICE_WORK) return tf.matMul(x, y);
  return tf.tidy(() => {
    const xs = tf.unstack(x) as tf.Tensor2D[];
    const ys = tf.unstack(y) as tf.Tensor2D[];
    return tf.stack(xs.map((xi, i) => tf.matMul(xi, ys[i]))) as tf.Tensor3D;
  });
}
