/**
 * Training steps for GPT-2 through the same forward code the influence computations use: the
 * parameters are tf.Variables, the transposed copies Gpt2 needs are made inside the gradient tape
 * (gpt2ParamsFromTensors), and tfjs autodiff differentiates Gpt2.forward.
 */
import { download, tf } from "../backend/backend.js";
import type { Batch } from "../model/batch.js";
import type { Gpt2Config } from "../model/config.js";
import { Gpt2, gpt2ParameterShapes, gpt2ParamsFromTensors } from "../model/gpt2.js";
import { AdamW, type AdamWOptions } from "./adamw.js";
import { prepareAutodiff } from "./gradients.js";
import { nextTokenTargets, summedNextTokenLoss } from "./loss.js";

/** GPT-2 practice: decay matrices and embeddings, not biases or LayerNorm gains. */
const isDecayed = (name: string): boolean => name.endsWith(".weight") && !/(^|\.)ln_(1|2|f)\.weight$/.test(name);

export interface StepResult {
  /** Mean loss per predicted token of the batch, before the update. */
  loss: number;
  gradNorm: number;
  /** Predicted positions in the batch. */
  tokens: number;
}

export class Gpt2Trainer {
  readonly optimizer: AdamW;
  private readonly variables = new Map<string, tf.Variable>();

  /** Call after initBackend. */
  constructor(
    readonly config: Gpt2Config,
    weights: ReadonlyMap<string, Float32Array>,
    options: AdamWOptions,
  ) {
    prepareAutodiff();
    for (const [name, shape] of gpt2ParameterShapes(config)) {
      const data = weights.get(name);
      if (!data) throw new Error(`initial weights lack ${name}`);
      this.variables.set(name, tf.variable(tf.tensor(data, shape)));
    }
    this.optimizer = new AdamW(this.variables, options, isDecayed);
  }

  /** A view of the current parameters as the model the influence code runs; valid inside a tidy. */
  private model(): Gpt2 {
    return new Gpt2(
      this.config,
      gpt2ParamsFromTensors(this.config, (name) => this.variables.get(name) as tf.Variable),
    );
  }

  /**
   * The batch's summed next-token loss times `scale`, and its gradient with respect to every
   * parameter by name; the caller disposes the gradients.
   */
  lossGradients(batch: Batch, scale = 1): { loss: number; grads: Map<string, tf.Tensor> } {
    const names = [...this.variables.keys()];
    const list = names.map((name) => this.variables.get(name) as tf.Variable);
    // variableGrads runs the function inside a tidy: the forward pass's saved activations are
    // released there, once the tape holds its own references to what the gradient needs.
    const { value, grads } = tf.variableGrads(() => tf.mul(summedNextTokenLoss(this.model().forward(batch).logits, batch), scale), list);
    return { loss: download(value)[0], grads: new Map(names.map((name, i) => [name, grads[list[i].name]])) };
  }

  /** One AdamW step on the batch's mean loss per predicted token. */
  step(batch: Batch, lr: number): StepResult {
    const { count } = nextTokenTargets(batch);
    const { loss, grads } = this.lossGradients(batch, 1 / count);
    try {
      return { loss, gradNorm: this.optimizer.apply(grads, lr), tokens: count };
    } finally {
      tf.dispose([...grads.values()]);
    }
  }

  /** Summed loss and number of predicted tokens over the batches, without updating anything. */
  evaluate(batches: Iterable<Batch>): { loss: number; tokens: number } {
    let loss = 0;
    let tokens = 0;
    for (const batch of batches) {
      loss += download(tf.tidy(() => summedNextTokenLoss(this.model().forward(batch).logits, batch)))[0];
      tokens += nextTokenTargets(batch).count;
    }
    return { loss, tokens };
  }

  /** Current parameter values by name. */
  weights(): Map<string, Float32Array> {
    return new Map([...this.variables].map(([name, v]) => [name, v.dataSync() as Float32Array]));
  }

  dispose(): void {
    this.optimizer.dispose();
    tf.dispose([...this.variables.values()]);
  }
}
