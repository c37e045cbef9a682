/**
 * EK-FAC pass 2: the corrected eigenvalues Lambda = E_seq[(Q_S^T G Q_A)^2] of every tracked
 * matrix, with G = sum_t g_t a_t^T the sequence's gradient.
 */
import { download, tf } from "../backend/backend.js";
import type { GradientCapture } from "../model/capture.js";
import type { ModuleEigenbasis } from "./eigenbasis.js";
import type { ModuleFactors } from "./factors.js";
import { assertFinite } from "./finite.js";
import { type Eigenbases, rotatedGradients } from "./rotated.js";
import type { TrackedModule } from "../model/model.js";

/** The paper's damping: 0.1 x mean(Lambda), per matrix. */
export const DEFAULT_DAMPING_FACTOR = 0.1;

export class LambdaAccumulator {
  private readonly sums: Float64Array[];
  private readonly bases: Eigenbases[];
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
    this.modules.forEach((_, m) => {
      const rotated = rotatedGradients(capture, this.bases[m], m);
      const squares = download(tf.tidy(() => tf.addN(rotated.map((r) => tf.square(r)))));
      tf.dispose(rotated);
      const sum = this.sums[m];
      for (let j = 0; j < sum.length; j++) sum[j] += squares[j];
    });
    this.sequences += capture.batch.size;
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
