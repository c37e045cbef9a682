/**
 * What every causal language model offers to influence computations, run on ONNX Runtime: logits
 * of a batch, and a capture pass that, for each tracked linear map (the MLP matrices), returns the
 * per-token layer inputs (with a trailing 1 for the bias) and the gradients of the loss with
 * respect to the map's pre-activation outputs, in host memory. Parameter gradients are not formed.
 */
import type { Batch } from "./batch.js";
import type { ModelConfig } from "./config.js";

export interface TrackedModule {
  /** Hugging Face name without the base model's prefix, e.g. `h.0.mlp.c_fc`, `layers.0.mlp.up_proj`. */
  name: string;
  /** Index of the transformer block. */
  layer: number;
  /** Input features, not counting the appended 1 of a bias. */
  inFeatures: number;
  outFeatures: number;
  /** Whether the matrix has a bias, folded in as a trailing 1 on its input (Llama's MLP has none). */
  bias: boolean;
  /** An earlier module that reads the same input (Llama's up_proj reads gate_proj's): the A factor of both. */
  sameInputAs?: string;
}

/** For each module, the index of the module whose input it reads: its own, or that of the earlier module named by sameInputAs. */
export function inputOwners(modules: readonly TrackedModule[]): number[] {
  const index = new Map(modules.map((m, i) => [m.name, i]));
  return modules.map((m, i) => {
    if (m.sameInputAs === undefined) return i;
    const owner = index.get(m.sameInputAs);
    if (owner === undefined || owner >= i) throw new Error(`${m.name} reads the input of ${m.sameInputAs}, which is not an earlier module`);
    return owner;
  });
}

/** Columns of a module's captured inputs and of its gradient [outFeatures, inputWidth]: the inputs, and 1 for a bias. */
export function inputWidth(module: TrackedModule): number {
  return module.inFeatures + (module.bias ? 1 : 0);
}

/** An architecture as data: the parameters of its checkpoints and the matrices influence tracks. */
export interface ArchitectureLayout<C extends ModelConfig = ModelConfig> {
  /** The base model's prefix on stored names (`transformer.`, `gpt_neox.`, `model.`), stripped where present. */
  prefix: string;
  /** Stored entries (named without the prefix) that are not parameters: buffers, a tied LM head. */
  ignored(config: C): RegExp[];
  /** Parameter names (without the prefix) and shapes: the weights the graphs read. */
  parameterShapes(config: C): Map<string, number[]>;
  modules(config: C): TrackedModule[];
}

/**
 * The loss of a capture pass:
 *  - "next-token": the summed training loss with the true next tokens (empirical Fisher, scores);
 *  - "sampled":    the same with labels drawn from the model's own predictive distribution
 *                  (the true Fisher of the paper), seeded per sequence so that it is reproducible
 *                  and independent of batching;
 *  - "completion": the query measurement, the summed NLL of the completion tokens given the prompt.
 * Losses are sums over positions, never means (influence-math.md).
 */
export type LossSpec =
  | { kind: "next-token" }
  | { kind: "sampled"; seeds: readonly number[] }
  | {
      kind: "completion";
      promptLengths: readonly number[];
      /** Per sequence, the 0-based completion tokens whose loss is measured (all when absent). */
      positions?: ReadonlyArray<readonly number[] | undefined>;
    };

/** One tracked matrix's per-token inputs and output gradients, row-major, in host memory. */
export interface ModuleCapture {
  module: TrackedModule;
  /** Layer inputs (with a trailing 1 where the module has a bias), [rows, inputWidth]; padding rows are zero. */
  a: Float32Array;
  /** Loss gradients with respect to the pre-activation output, [rows, out]; zero on padding. */
  g: Float32Array;
}

export interface GradientCapture {
  batch: Batch;
  /** Rows of the flattened batch that carry loss, ascending, and their labels (sampled or true). */
  rows: Int32Array;
  labels: Int32Array;
  modules: ModuleCapture[];
  /** Summed loss of each sequence under the spec (for "sampled", of the sampled labels). */
  losses: Float64Array;
}

export interface CausalLM {
  readonly config: ModelConfig;
  readonly modules: readonly TrackedModule[];
  /**
   * logits [R, V] of the given rows of the flattened batch (every row when absent), row-major.
   * A query's loss sits on its few completion tokens, and the head is a large share of a short
   * sequence's cost.
   */
  logits(batch: Batch, rows?: Int32Array): Promise<Float32Array>;
  /** Forward, loss and backward passes over a batch of sequences. */
  capture(sequences: readonly (readonly number[])[], spec: LossSpec): Promise<GradientCapture>;
  /** Frees the model's sessions. */
  release(): Promise<void>;
}
