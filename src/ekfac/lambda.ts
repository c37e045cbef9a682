/**
 * EK-FAC pass 2: the corrected eigenvalues Lambda = E_seq[(Q_S^T G Q_A)^2] of every tracked
 * matrix, with G = sum_t g_t a_t^T the sequence's gradient. The rotation is applied to the
 * per-token vectors first, (g Q_S)^T (a Q_A), which is cheaper than rotating the [out, in+1]
 * gradient whenever a sequence is shorter than the layer is wide.
 */
import { download, tf } from "../backend/backend.js";
import type { GradientCapture } from "../model/capture.js";
import type { ModuleEigenbasis } from "./eigenbasis.js";
import type { ModuleFactors } from "./factors.js";
import { assertFinite } from "./finite.js";
import type { TrackedModule } from "../model/model.js";

/** The paper's damping: 0.1 x mean(Lambda), per matrix. */
export const DEFAULT_DAMPING_FACTOR = 0.1;

export class LambdaAccumulator {
  private readonly sums: Float64Array[];
  private readonly bases: Array<{ qA: tf.Tensor2D; qS: tf.Tensor2D }>;
  private sequences = 0;

  constructor(
    private readonly modules: readonly TrackedModule[],
    private readonly eigen: readonly ModuleEigenbasis[],
  ) {
    this.sums = modules.map((m) => new Float64Array(m.outFeatures * (m.inFeatures + 1)));
    this.bases = modules.map((m, i) => ({
      qA: tf.tensor2d(eigen[i].qA, [m.inFeatures + 1, m.inFeatures + 1]),
      qS: tf.tensor2d(eigen[i].qS, [m.outFeatures, m.outFeatures]),
    }));
  }

  add(capture: GradientCapture): void {
    const { batch } = capture;
    capture.modules.forEach((m, i) => {
      const squares = download(tf.tidy(() => {
        const aRot = tf.matMul(m.a, this.bases[i].qA);
        const gRot = tf.matMul(m.g, this.bases[i].qS);
        let total: tf.Tensor | undefined;
        for (let b = 0; b < batch.size; b++) {
          const rows = [b * batch.length, 0];
          const size = [batch.lengths[b], -1];
          const rotated = tf.matMul(tf.transpose(tf.slice(gRot, rows, size)), tf.slice(aRot, rows, size));
          total = total ? tf.add(total, tf.square(rotated)) : tf.square(rotated);
        }
        return total as tf.Tensor;
      }));
      const sum = this.sums[i];
      for (let j = 0; j < sum.length; j++) sum[j] += squares[j];
    });
    this.sequences += batch.size;
  }

  /** Factors with Lambda averaged over sequences and damping = factor x mean(Lambda) unless fixed. */
  finish(damping: number | { factor: number }): ModuleFactors[] {
    if (this.sequences === 0) throw new Error("no sequences were accumulated");
    tf.dispose(this.bases.flatMap((b) => [b.qA, b.qS]));
    return this.modules.map((module, i) => {
      const lambda = Float32Array.from(this.sums[i], (x) => x / this.sequences);
      assertFinite(lambda, `Lambda of ${module.name}`);
      const mean = this.sums[i].reduce((s, x) => s + x, 0) / this.sums[i].length / this.sequences;
      const value = typeof damping === "number" ? damping : damping.factor * mean;
      return { module, ...this.eigen[i], lambda, damping: value };
    });
  }
}
