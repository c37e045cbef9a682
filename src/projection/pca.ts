/**
 * A data-adapted Kronecker basis for the projection: two-sided PCA of the whitened gradients
 * X = W o (Q_S^T G Q_A) of a sample of training sequences, i.e. the top eigenvectors of
 * E[X X^T] (rows) and E[X^T X] (columns). Measured on the reference fixtures, it preserves the
 * influence ranking far better than random projections of the same size.
 */
import { download, tf } from "../backend/backend.js";
import type { ModuleFactors } from "../ekfac/factors.js";
import { rotatedGradients, uploadBases } from "../ekfac/rotated.js";
import type { TensorCapture } from "../ekfac/capture-tensors.js";
import { type PartialSums, addInto, addSums, emptySums } from "../ekfac/partial-sums.js";
import { whiteningScale } from "./scaling-factors.js";
import { inputWidth } from "../model/model.js";

export interface WhitenedMoments {
  /** Sum of X X^T, [out, out]. */
  rows: Float64Array;
  /** Sum of X^T X, [in+1, in+1]. */
  cols: Float64Array;
}

/** Sums of X X^T and X^T X per module (sums [rows_0, cols_0, rows_1, ...]) over `count` sequences. */
export class WhitenedMomentAccumulator {
  readonly totals: PartialSums;
  /** W per module, [out, in+1]; like the bases, uploaded per batch (see uploadBases). */
  private readonly scales: Float32Array[];

  constructor(private readonly factors: readonly ModuleFactors[]) {
    this.scales = factors.map((f) => Float32Array.from(whiteningScale(f.lambda, f.damping)));
    this.totals = emptySums(factors.flatMap((f) => [f.module.outFeatures ** 2, inputWidth(f.module) ** 2]));
  }

  add(capture: TensorCapture): void {
    this.factors.forEach((f, m) => {
      const rotated = tf.tidy(() => rotatedGradients(capture, uploadBases(f.module, f), m));
      // All sequences side by side: [X_1 .. X_B] [X_1 .. X_B]^T = sum_b X_b X_b^T in one product.
      const [rows, cols] = tf.tidy(() => {
        const scale = tf.tensor2d(this.scales[m], [f.module.outFeatures, inputWidth(f.module)]);
        const whitened = rotated.map((r) => tf.mul(r, scale) as tf.Tensor2D);
        const wide = tf.concat(whitened, 1);
        const tall = tf.concat(whitened, 0);
        return [tf.matMul(wide, tf.transpose(wide)), tf.matMul(tf.transpose(tall), tall)];
      });
      tf.dispose(rotated);
      addInto(this.totals.sums[2 * m], download(rows));
      addInto(this.totals.sums[2 * m + 1], download(cols));
    });
    this.totals.count += capture.batch.size;
  }

  /** Adds another thread's totals. */
  merge(partial: PartialSums): void {
    addSums(this.totals, partial);
  }

  finish(): WhitenedMoments[] {
    return this.factors.map((_, m) => ({ rows: this.totals.sums[2 * m], cols: this.totals.sums[2 * m + 1] }));
  }
}
