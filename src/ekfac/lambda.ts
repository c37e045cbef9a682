/**
 * EK-FAC pass 2: the corrected eigenvalues Lambda = E_seq[(Q_S^T G Q_A)^2] of every tracked
 * matrix, with G = sum_t g_t a_t^T the sequence's gradient.
 */
import type { ModuleEigenbasis } from "./eigenbasis.js";
import type { ModuleFactors } from "./factors.js";
import { assertFinite } from "./finite.js";
import { type PartialSums, addInto, addSums, emptySums } from "./partial-sums.js";
import { capturedTokens, eigenbases, rotatedSquareSum } from "./products.js";
import { type GradientCapture, type TrackedModule, inputWidth } from "../model/model.js";

/** The paper's damping: 0.1 x mean(Lambda), per matrix. */
export const DEFAULT_DAMPING_FACTOR = 0.1;

/** Sums of the squared rotated gradients per module over `count` sequences. */
export class LambdaAccumulator {
  readonly totals: PartialSums;

  constructor(
    private readonly modules: readonly TrackedModule[],
    private readonly eigen: readonly ModuleEigenbasis[],
  ) {
    this.totals = emptySums(modules.map((m) => m.outFeatures * inputWidth(m)));
  }

  async add(capture: GradientCapture): Promise<void> {
    for (const [m, module] of this.modules.entries()) {
      const bases = eigenbases(this.eigen[m], inputWidth(module), module.outFeatures);
      addInto(this.totals.sums[m], await rotatedSquareSum(capturedTokens(capture, m), bases));
    }
    this.totals.count += capture.batch.size;
  }

  /** Adds another thread's totals. */
  merge(partial: PartialSums): void {
    addSums(this.totals, partial);
  }

  /** Factors with Lambda averaged over sequences and damping = factor x mean(Lambda) unless fixed. */
  finish(damping: number | { factor: number }): ModuleFactors[] {
    const { sums, count } = this.totals;
    if (count === 0) throw new Error("no sequences were accumulated");
    return this.modules.map((module, i) => {
      const lambda = Float32Array.from(sums[i], (x) => x / count);
      assertFinite(lambda, `Lambda of ${module.name}`);
      const mean = sums[i].reduce((s, x) => s + x, 0) / sums[i].length / count;
      const value = typeof damping === "number" ? damping : damping.factor * mean;
      return { module, ...this.eigen[i], lambda, damping: value };
    });
  }
}
