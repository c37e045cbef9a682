/**
 * What every causal language model offers to influence computations: a forward pass over a batch
 * and a backward pass that, for each tracked linear map (the MLP matrices), returns the per-token
 * layer inputs (with a trailing 1 for the bias) and the gradients of the loss with respect to the
 * map's pre-activation outputs. Parameter gradients are not formed.
 */
import type { tf } from "../backend/backend.js";
import type { Batch } from "./batch.js";
import type { ModelConfig } from "./config.js";

export interface TrackedModule {
  /** Hugging Face name without the `transformer.` prefix, e.g. `h.0.mlp.c_fc`. */
  name: string;
  /** Index of the transformer block. */
  layer: number;
  /** Input features, not counting the appended 1; the gradient is [outFeatures, inFeatures + 1]. */
  inFeatures: number;
  outFeatures: number;
}

export interface ModuleCapture {
  module: TrackedModule;
  /** Layer inputs with a trailing 1, [rows, in + 1]; padding rows are zero. */
  a: tf.Tensor2D;
  /** Loss gradients with respect to the pre-activation output, [rows, out]; zero on padding. */
  g: tf.Tensor2D;
}

export interface ForwardPass {
  /** [rows, vocab]: the loss rows asked for, or every row of the flattened, right-padded batch. */
  logits: tf.Tensor2D;
  /**
   * Backpropagates dLoss/dlogits, row-major and shaped as the logits, in host memory (the loss
   * gradient is formed there), and disposes the saved activations. The caller owns the result.
   */
  backward(dlogits: Float32Array): ModuleCapture[];
  /** Frees the saved activations without a backward pass. */
  dispose(): void;
}

export interface CausalLM {
  readonly config: ModelConfig;
  readonly modules: readonly TrackedModule[];
  /**
   * With `lossRows` (ascending rows of the flattened batch), only those rows go through the LM
   * head: a query's loss sits on its few completion tokens, and the head is a large share of a
   * short sequence's cost.
   */
  forward(batch: Batch, lossRows?: Int32Array): ForwardPass;
  dispose(): void;
}
