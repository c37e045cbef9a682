/**
 * Per-sequence gradients of the fitting sequences with every tracked matrix flattened and
 * concatenated, for exact Fisher-vector products restricted to the MLP parameters:
 *   F v = (1/N) sum_n G_n <G_n, v>
 * with G_n computed under the same Fisher labels as the EK-FAC fit, so that EK-FAC, CG and LiSSA
 * approximate the same matrix.
 */
import { type CausalLM, inputWidth } from "../../model/model.js";
import { batchesOf } from "../../util/batches.js";
import type { ProgressListener } from "../../util/progress.js";
import type { FisherMode } from "../artifacts.js";
import { type TokenSequence, fisherLoss } from "../fit.js";
import { batchTokenLimit } from "../../model/batch-budget.js";
import { sequenceGradients } from "../gradients.js";

export class GradientBank {
  private constructor(
    readonly gradients: Float32Array[],
    /** Start of each module's block in a flattened vector. */
    readonly offsets: number[],
    readonly size: number,
  ) {}

  static async collect(
    model: CausalLM,
    sequences: AsyncIterable<TokenSequence>,
    fit: { fisher: FisherMode; seed: number; total: number },
    onProgress?: ProgressListener,
  ): Promise<GradientBank> {
    const sizes = model.modules.map((m) => m.outFeatures * inputWidth(m));
    const offsets = sizes.map((_, i) => sizes.slice(0, i).reduce((s, x) => s + x, 0));
    const size = sizes.reduce((s, x) => s + x, 0);
    const gradients: Float32Array[] = [];
    let tokens = 0;
    for await (const batch of batchesOf(sequences, { maxTokens: batchTokenLimit(model.config) })) {
      const capture = await model.capture(
        batch.map((s) => s.tokens),
        fisherLoss(fit.fisher, fit.seed, batch),
      );
      for (const perModule of await sequenceGradients(capture)) gradients.push(flatten(perModule, offsets, size));
      tokens += batch.reduce((s, x) => s + x.tokens.length, 0);
      onProgress?.({ phase: "gradients", done: gradients.length, total: fit.total, tokens });
    }
    return new GradientBank(gradients, offsets, size);
  }

  /** The largest squared norm of a sequence's gradient: a bound on any mini-batch Fisher's eigenvalues. */
  maxSquaredNorm(): number {
    return this.gradients.reduce(
      (max, g) =>
        Math.max(
          max,
          g.reduce((s, x) => s + x * x, 0),
        ),
      0,
    );
  }

  /** (1/|rows|) sum over the chosen rows of G_n <G_n, v>. */
  fisherProduct(v: Float64Array, rows?: readonly number[]): Float64Array {
    const out = new Float64Array(this.size);
    const chosen = rows ?? this.gradients.map((_, i) => i);
    for (const n of chosen) {
      const g = this.gradients[n];
      let dot = 0;
      for (let i = 0; i < g.length; i++) dot += g[i] * v[i];
      for (let i = 0; i < g.length; i++) out[i] += dot * g[i];
    }
    for (let i = 0; i < out.length; i++) out[i] /= chosen.length;
    return out;
  }
}

/** Module matrices concatenated into one float32 vector. */
export function flatten(perModule: readonly Float32Array[], offsets: readonly number[], size: number): Float32Array {
  const out = new Float32Array(size);
  perModule.forEach((t, m) => out.set(t, offsets[m]));
  return out;
}

/** The inverse of flatten: each module's [out, in+1] gradient, row-major, of `sizes[m]` values. */
export function unflatten(v: Float64Array, offsets: readonly number[], sizes: readonly number[]): Float32Array[] {
  return sizes.map((size, m) => Float32Array.from(v.subarray(offsets[m], offsets[m] + size)));
}
