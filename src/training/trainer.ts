/**
 * Training steps for GPT-2 on ONNX Runtime: the training graph (gpt2-train.ts) gives the batch's
 * summed next-token loss and every parameter's gradient, and AdamW updates the weights on the host.
 * The weights are Float32Arrays that the graph reads in place and AdamW updates in place.
 */
import ort from "onnxruntime-node";
import type { Batch } from "../model/batch.js";
import type { Gpt2Config, ModelConfig } from "../model/config.js";
import { gpt2ParameterShapes } from "../model/gpt2-architecture.js";
import { int64 } from "../model/onnx/causal-lm.js";
import { buildGpt2TrainingGraph, type TrainingGraphVariant } from "../model/onnx/gpt2-train.js";
import { type RuntimeOptions, SessionCache } from "../runtime/session.js";
import { AdamW, type AdamWOptions } from "./adamw.js";
import { nextTokenTargets } from "./loss.js";
import { InputError } from "../util/errors.js";

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
  readonly config: Gpt2Config;
  readonly optimizer: AdamW;
  private readonly params = new Map<string, Float32Array>();
  private readonly weightFeeds: Record<string, ort.Tensor> = {};
  private readonly sessions: SessionCache<TrainingGraphVariant>;

  /** `weights` are copied: the caller's arrays are not changed. Only GPT-2 has training graphs: other architectures are refused. */
  constructor(config: ModelConfig, weights: ReadonlyMap<string, Float32Array>, options: AdamWOptions, runtime: RuntimeOptions = {}) {
    if (config.architecture !== "gpt2") {
      throw new InputError(`training runs on GPT-2 only; a ${config.architecture} model can be fitted, scored and indexed but not trained here`);
    }
    this.config = config;
    for (const [name, shape] of gpt2ParameterShapes(config)) {
      const data = weights.get(name);
      const size = shape.reduce((a, b) => a * b, 1);
      if (!data) throw new Error(`initial weights lack ${name}`);
      if (data.length !== size) throw new Error(`initial weights: ${name} has ${data.length} values, the model ${size} ([${shape}])`);
      const copy = data.slice();
      this.params.set(name, copy);
      this.weightFeeds[name] = new ort.Tensor("float32", copy, shape);
    }
    this.optimizer = new AdamW(this.params, options, isDecayed);
    this.sessions = new SessionCache((variant) => buildGpt2TrainingGraph(config, variant), runtime);
  }

  private async run(variant: TrainingGraphVariant, batch: Batch, extra: Record<string, ort.Tensor>, fetches: string[]) {
    const { rows, labels, count } = nextTokenTargets(batch);
    const session = await this.sessions.get(variant);
    const out = await session.run(
      {
        ...this.weightFeeds,
        ...extra,
        ids: int64(batch.ids, [batch.size, batch.length]),
        rows: int64(rows, [count]),
        labels: int64(labels, [count]),
      },
      ["loss", ...fetches],
    );
    // Summed in float64, in row order.
    const loss = (out.loss.data as Float32Array).reduce((sum, x) => sum + x, 0);
    return { loss, count, out };
  }

  /**
   * The batch's summed next-token loss (unscaled) and its gradient times `scale` with respect to
   * every parameter, by name.
   */
  async lossGradients(batch: Batch, scale = 1): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
    const names = [...this.params.keys()];
    const { loss, out } = await this.run(
      "train",
      batch,
      { scale: new ort.Tensor("float32", Float32Array.of(scale), []) },
      names.map((name) => `grad.${name}`),
    );
    return { loss, grads: new Map(names.map((name) => [name, out[`grad.${name}`].data as Float32Array])) };
  }

  /** One AdamW step on the batch's mean loss per predicted token. */
  async step(batch: Batch, lr: number): Promise<StepResult> {
    const { count } = nextTokenTargets(batch);
    const { loss, grads } = await this.lossGradients(batch, 1 / count);
    return { loss: loss / count, gradNorm: this.optimizer.apply(grads, lr), tokens: count };
  }

  /** Summed loss and number of predicted tokens over the batches, without updating anything. */
  async evaluate(batches: Iterable<Batch>): Promise<{ loss: number; tokens: number }> {
    let loss = 0;
    let tokens = 0;
    for (const batch of batches) {
      const result = await this.run("loss", batch, {}, []);
      loss += result.loss;
      tokens += result.count;
    }
    return { loss, tokens };
  }

  /** Copies of the current parameter values, by name. */
  weights(): Map<string, Float32Array> {
    return new Map([...this.params].map(([name, data]) => [name, data.slice()]));
  }

  release(): Promise<void> {
    return this.sessions.release();
  }
}
