/**
 * EK-FAC pass 1 (Section 2.2.3): the Kronecker factors of every tracked matrix,
 *   A = E_tokens[a a^T]   (inputs with the trailing 1)   and   S = E_tokens[g g^T],
 * over all real tokens of all sequences (the last position counts, its g is zero). Batch sums
 * are formed on the compute engine in float32 and accumulated in float64.
 */
import { type GradientCapture, type TrackedModule, inputOwners, inputWidth } from "../model/model.js";
import { assertFinite } from "./finite.js";
import { type PartialSums, addInto, addSums, emptySums } from "./partial-sums.js";
import { capturedRows, gram } from "./products.js";

export interface ModuleCovariance {
  module: TrackedModule;
  /** [in+1, in+1], row-major, symmetric. */
  A: Float64Array;
  /** [out, out], row-major, symmetric. */
  S: Float64Array;
}

/**
 * A and S as they are saved: float64 as pass 1 makes them, or float32 as the factors files store
 * them, which is all a fit keeps of them once their eigenbases are found.
 */
export interface StoredCovariance {
  module: TrackedModule;
  A: Float64Array | Float32Array;
  S: Float64Array | Float32Array;
}

/**
 * Sums of a a^T and g g^T per module (sums [A_0, S_0, A_1, S_1, ...]) over `count` tokens. A
 * module that reads another's input (TrackedModule.sameInputAs) has an empty A sum: its A is the
 * other module's.
 */
export class CovarianceAccumulator {
  readonly totals: PartialSums;
  private readonly owners: number[];

  constructor(private readonly modules: readonly TrackedModule[]) {
    this.owners = inputOwners(modules);
    this.totals = emptySums(modules.flatMap((m, i) => [this.owners[i] === i ? inputWidth(m) ** 2 : 0, m.outFeatures ** 2]));
  }

  async add(capture: GradientCapture): Promise<void> {
    for (let i = 0; i < capture.modules.length; i++) {
      const { a, g } = capturedRows(capture, i);
      if (this.owners[i] === i) addInto(this.totals.sums[2 * i], await gram(a));
      addInto(this.totals.sums[2 * i + 1], await gram(g));
    }
    this.totals.count += capture.batch.lengths.reduce((s, n) => s + n, 0);
  }

  /** Adds another thread's totals. */
  merge(partial: PartialSums): void {
    addSums(this.totals, partial);
  }

  /**
   * Means over tokens, symmetrised; throws naming the module if anything is not finite. The means
   * are made in the sums' own arrays (a second copy of every factor would double the peak of a
   * fit): the accumulator is spent.
   */
  finish(): ModuleCovariance[] {
    const { sums, count } = this.totals;
    if (count === 0) throw new Error("no tokens were accumulated");
    const means: ModuleCovariance[] = [];
    for (const [i, module] of this.modules.entries()) {
      const owner = this.owners[i];
      const result = { module, A: owner === i ? symmetricMeanInPlace(sums[2 * i], count) : means[owner].A, S: symmetricMeanInPlace(sums[2 * i + 1], count) };
      assertFinite(result.A, `A of ${module.name}`);
      assertFinite(result.S, `S of ${module.name}`);
      means.push(result);
    }
    return means;
  }
}

/** (sum + sum^T) / (2 count), written over `sum`: each pair (i, j), (j, i) is read before either is written. */
function symmetricMeanInPlace(sum: Float64Array, count: number): Float64Array {
  const n = Math.round(Math.sqrt(sum.length));
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      const mean = (sum[i * n + j] + sum[j * n + i]) / (2 * count);
      sum[i * n + j] = mean;
      sum[j * n + i] = mean;
    }
  }
  return sum;
}
