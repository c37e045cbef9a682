/**
 * A data-adapted Kronecker basis for the projection: two-sided PCA of the whitened gradients
 * X = W o (Q_S^T G Q_A) of a sample of training sequences, i.e. the top eigenvectors of
 * E[X X^T] (rows) and E[X^T X] (columns). Measured on the reference fixtures, it preserves the
 * influence ranking far better than random projections of the same size.
 */
import type { ModuleFactors } from "../ekfac/factors.js";
import { type PartialSums, addInto, addSums, emptySums } from "../ekfac/partial-sums.js";
import { capturedTokens, eigenbases, whitenedMoments } from "../ekfac/products.js";
import { type GradientCapture, inputWidth } from "../model/model.js";
import type { HostTensor } from "../runtime/kernels.js";
import { whiteningScale } from "./scaling-factors.js";

export interface WhitenedMoments {
  /** Sum of X X^T, [out, out]. */
  rows: Float64Array;
  /** Sum of X^T X, [in+1, in+1]. */
  cols: Float64Array;
}

/** Sums of X X^T and X^T X per module (sums [rows_0, cols_0, rows_1, ...]) over `count` sequences. */
export class WhitenedMomentAccumulator {
  readonly totals: PartialSums;
  /** W per module, [out, in+1]. */
  private readonly scales: HostTensor[];

  constructor(private readonly factors: readonly ModuleFactors[]) {
    this.scales = factors.map((f) => ({ data: Float32Array.from(whiteningScale(f.lambda, f.damping)), dims: [f.module.outFeatures, inputWidth(f.module)] }));
    this.totals = emptySums(factors.flatMap((f) => [f.module.outFeatures ** 2, inputWidth(f.module) ** 2]));
  }

  async add(capture: GradientCapture): Promise<void> {
    for (const [m, f] of this.factors.entries()) {
      const bases = eigenbases(f, inputWidth(f.module), f.module.outFeatures);
      const { rows, cols } = await whitenedMoments(capturedTokens(capture, m), bases, this.scales[m]);
      addInto(this.totals.sums[2 * m], rows);
      addInto(this.totals.sums[2 * m + 1], cols);
    }
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
