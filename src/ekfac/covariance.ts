/**
 * EK-FAC pass 1 (Section 2.2.3): the Kronecker factors of every tracked matrix,
 *   A = E_tokens[a a^T]   (inputs with the trailing 1)   and   S = E_tokens[g g^T],
 * over all real tokens of all sequences (the last position counts, its g is zero). Batch sums
 * are formed on the backend in float32 and accumulated in float64.
 */
import { download, tf } from "../backend/backend.js";
import type { GradientCapture } from "../model/capture.js";
import type { TrackedModule } from "../model/model.js";
import { assertFinite } from "./finite.js";

export interface ModuleCovariance {
  module: TrackedModule;
  /** [in+1, in+1], row-major, symmetric. */
  A: Float64Array;
  /** [out, out], row-major, symmetric. */
  S: Float64Array;
}

/** x^T x of a [rows, n] tensor; the explicit transpose keeps the product in the fast layout. */
const gram = (x: tf.Tensor2D): Float32Array => download(tf.tidy(() => tf.matMul(tf.transpose(x), x)));

export class CovarianceAccumulator {
  private readonly sums: ModuleCovariance[];
  private tokens = 0;

  constructor(modules: readonly TrackedModule[]) {
    this.sums = modules.map((module) => ({
      module,
      A: new Float64Array((module.inFeatures + 1) ** 2),
      S: new Float64Array(module.outFeatures ** 2),
    }));
  }

  add(capture: GradientCapture): void {
    capture.modules.forEach((m, i) => {
      addInto(this.sums[i].A, gram(m.a));
      addInto(this.sums[i].S, gram(m.g));
    });
    this.tokens += capture.batch.lengths.reduce((s, n) => s + n, 0);
  }

  get tokenCount(): number {
    return this.tokens;
  }

  /** Means over tokens, symmetrised; throws naming the module if anything is not finite. */
  finish(): ModuleCovariance[] {
    if (this.tokens === 0) throw new Error("no tokens were accumulated");
    return this.sums.map(({ module, A, S }) => {
      const result = { module, A: symmetricMean(A, this.tokens), S: symmetricMean(S, this.tokens) };
      assertFinite(result.A, `A of ${module.name}`);
      assertFinite(result.S, `S of ${module.name}`);
      return result;
    });
  }
}

function addInto(acc: Float64Array, x: Float32Array): void {
  for (let i = 0; i < acc.length; i++) acc[i] += x[i];
}

function symmetricMean(sum: Float64Array, count: number): Float64Array {
  const n = Math.round(Math.sqrt(sum.length));
  const out = new Float64Array(sum.length);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) out[i * n + j] = (sum[i * n + j] + sum[j * n + i]) / (2 * count);
  }
  return out;
}
