/** Sequence vectors from per-token captures, with the projection's matrices resident on the backend. */
import { download, tf } from "../backend/backend.js";
import type { TensorCapture } from "../ekfac/capture-tensors.js";
import type { Projection } from "./projection.js";
import { inputWidth } from "../model/model.js";

export class Projector {
  private readonly sides: Array<{ left: tf.Tensor2D; right: tf.Tensor2D }>;

  constructor(readonly projection: Projection) {
    this.sides = projection.modules.map((p) => ({
      left: tf.tensor2d(p.left, [p.module.outFeatures, p.rank * p.kOut]),
      right: tf.tensor2d(p.right, [inputWidth(p.module), p.rank * p.kIn]),
    }));
  }

  get dim(): number {
    return this.projection.dim;
  }

  /** One vector per sequence of the capture, [batch.size x dim] row-major. */
  vectors(capture: TensorCapture): Float32Array {
    const { batch } = capture;
    const dim = this.projection.dim;
    const out = new Float32Array(batch.size * dim);
    capture.modules.forEach((m, i) => {
      const { kOut, kIn, rank, offset } = this.projection.modules[i];
      // [batch.size, rank kOut, rank kIn]: per sequence, sum_t (L g_t)(R a_t)^T for all pairs of terms.
      const products = download(
        tf.tidy(() => {
          const gl = tf.reshape(tf.matMul(m.g, this.sides[i].left), [batch.size, batch.length, rank * kOut]);
          const ar = tf.reshape(tf.matMul(m.a, this.sides[i].right), [batch.size, batch.length, rank * kIn]);
          const gls = tf.unstack(gl) as tf.Tensor2D[];
          const ars = tf.unstack(ar) as tf.Tensor2D[];
          return tf.stack(gls.map((g, b) => tf.matMul(tf.transpose(g), ars[b])));
        }),
      );
      // Only the diagonal pairs (r, r) belong to the whitened projection: sum those blocks.
      const width = rank * kIn;
      const perSequence = rank * kOut * width;
      for (let b = 0; b < batch.size; b++) {
        const base = b * perSequence;
        const target = b * dim + offset;
        for (let r = 0; r < rank; r++) {
          for (let x = 0; x < kOut; x++) {
            const row = base + (r * kOut + x) * width + r * kIn;
            for (let y = 0; y < kIn; y++) out[target + x * kIn + y] += products[row + y];
          }
        }
      }
    });
    return out;
  }

  dispose(): void {
    tf.dispose(this.sides.flatMap((s) => [s.left, s.right]));
  }
}
