/** Fresh GPT-2 weights, initialised as Hugging Face's GPT2PreTrainedModel._init_weights does. */
import type { Gpt2Config } from "../model/config.js";
import { gpt2ParameterShapes } from "../model/gpt2-architecture.js";
import { hashSeed, normalGenerator } from "../util/random.js";

const INITIALIZER_RANGE = 0.02;

/**
 * Weights and embeddings ~ N(0, 0.02); the residual projections (attn.c_proj, mlp.c_proj) ~
 * N(0, 0.02 / sqrt(2 n_layer)) so the residual stream's variance does not grow with depth; biases
 * 0 and LayerNorm gains 1. Each tensor has its own seed, so the result depends only on `seed`.
 */
export function initGpt2Weights(cfg: Gpt2Config, seed: number): Map<string, Float32Array> {
  const weights = new Map<string, Float32Array>();
  [...gpt2ParameterShapes(cfg)].forEach(([name, shape], index) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (/ln_(1|2|f)\.weight$/.test(name)) data.fill(1);
    else if (!name.endsWith(".bias")) {
      const std = /c_proj\.weight$/.test(name) ? INITIALIZER_RANGE / Math.sqrt(2 * cfg.nLayer) : INITIALIZER_RANGE;
      const normal = normalGenerator(hashSeed(seed, index));
      for (let i = 0; i < data.length; i++) data[i] = std * normal();
    }
    weights.set(name, data);
  });
  return weights;
}
