import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { download, initBackend, tf } from "../src/backend/backend.js";
import { makeBatch } from "../src/model/batch.js";
import { captureGradients } from "../src/model/capture.js";
import type { Gpt2Config } from "../src/model/config.js";
import { Gpt2, gpt2ParameterShapes, gpt2Params } from "../src/model/gpt2.js";
import type { CausalLM } from "../src/model/model.js";
import { OnnxCausalLM } from "../src/model/onnx/causal-lm.js";
import { loadModel } from "../src/model/load.js";
import { readSafetensors } from "../src/safetensors/read.js";
import { DEFAULT_ADAMW } from "../src/training/adamw.js";
import { epochBatches } from "../src/training/batches.js";
import { prepareAutodiff } from "../src/training/gradients.js";
import { initGpt2Weights } from "../src/training/init.js";
import { nextTokenTargets, summedNextTokenLoss } from "../src/training/loss.js";
import { saveHfGpt2 } from "../src/training/save.js";
import { learningRate } from "../src/training/schedule.js";
import { Gpt2Trainer } from "../src/training/trainer.js";
import { normalGenerator } from "../src/util/random.js";
import { maxRelError } from "./helpers/compare.js";
import { sequenceGradient } from "./helpers/gradients.js";

const cfg: Gpt2Config = { architecture: "gpt2", vocabSize: 61, contextLength: 16, nEmbd: 16, nLayer: 2, nHead: 2, nInner: 48, layerNormEps: 1e-5 };

/** Sequences of different lengths, so that batches are padded. */
const sequences = [
  [3, 17, 42, 8, 8, 60, 1, 33, 12, 5],
  [9, 9, 14, 27, 50, 2, 0],
  [44, 31, 7, 19, 23, 38, 11, 56, 4, 16, 29, 21],
];

/** Initial weights with every parameter perturbed, so that biases and LayerNorm gains carry gradient too. */
function randomWeights(seed: number, config = cfg): Map<string, Float32Array> {
  const normal = normalGenerator(seed);
  const weights = initGpt2Weights(config, seed);
  for (const data of weights.values()) for (let i = 0; i < data.length; i++) data[i] += 0.1 * normal();
  return weights;
}

const trainerOf = (weights: Map<string, Float32Array>) => new Gpt2Trainer(cfg, weights, DEFAULT_ADAMW);

/** Summed next-token loss of the batch under the given weights, through the inference model. */
function lossOf(weights: Map<string, Float32Array>, batch = makeBatch(sequences, cfg.contextLength, cfg.vocabSize)): number {
  const model = new Gpt2(
    cfg,
    gpt2Params(cfg, (name) => weights.get(name) as Float32Array),
  );
  try {
    return download(tf.tidy(() => summedNextTokenLoss(model.forward(batch).logits, batch)))[0];
  } finally {
    model.dispose();
  }
}

let tmp: string;
beforeAll(async () => {
  await initBackend();
  prepareAutodiff();
  tmp = mkdtempSync(path.join(tmpdir(), "training-test-"));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("autodiff through the trainer's tfjs forward", () => {
  // A large vocabulary too: the LM head may then be computed in vocabulary blocks.
  it.each([cfg.vocabSize, 5000])("gives the MLP gradients of the engine's capture pass (captureGradients, next-token), vocabulary %i", async (vocabSize) => {
    const config = { ...cfg, vocabSize };
    const weights = randomWeights(1, config);
    const trainer = new Gpt2Trainer(config, weights, DEFAULT_ADAMW);
    const { loss, grads } = trainer.lossGradients(makeBatch(sequences, config.contextLength, config.vocabSize));
    const model = new OnnxCausalLM(config, weights, { device: "cpu" });
    try {
      const capture = await captureGradients(model, sequences, { kind: "next-token" });
      expect(loss).toBeCloseTo(
        capture.losses.reduce((a, b) => a + b, 0),
        3,
      );
      const rows = capture.batch.size * capture.batch.length;
      for (const { module, a, g } of capture.modules) {
        // Sum over tokens (padding rows are zero) of g_t a_t^T: [out, in + 1], the bias gradient in the last column.
        const [inW, outW] = [module.inFeatures + 1, module.outFeatures];
        const G = sequenceGradient(a, g, 0, rows, inW, outW);
        // Conv1D weights are [in, out]: the transpose of G's first `in` columns.
        const weight = Float64Array.from({ length: module.inFeatures * outW }, (_, k) => G[(k % outW) * inW + Math.floor(k / outW)]);
        const bias = Float64Array.from({ length: outW }, (_, o) => G[o * inW + module.inFeatures]);
        expect(maxRelError(download(grads.get(`${module.name}.weight`)!), weight), module.name).toBeLessThan(1e-4);
        expect(maxRelError(download(grads.get(`${module.name}.bias`)!), bias), module.name).toBeLessThan(1e-4);
      }
    } finally {
      await model.release();
      trainer.dispose();
    }
  });

  it("matches finite differences for every parameter tensor (embeddings, attention, LayerNorm)", () => {
    const weights = randomWeights(2);
    const trainer = trainerOf(weights);
    const { grads } = trainer.lossGradients(makeBatch(sequences, cfg.contextLength, cfg.vocabSize));
    trainer.dispose();
    // Float32 losses and curvature leave about 1% of error; a wrong gradient is off by far more.
    const eps = 3e-2;
    for (const [name, data] of weights) {
      // Derivative along a random unit direction: one pair of forward passes per tensor.
      const normal = normalGenerator(name.length);
      const direction = Float32Array.from(data, () => normal());
      const norm = Math.hypot(...direction);
      direction.forEach((x, i) => (direction[i] = x / norm));
      const shifted = (sign: number) => new Map([...weights].map(([n, d]) => [n, n === name ? d.map((x, i) => x + sign * eps * direction[i]) : d]));
      const numeric = (lossOf(shifted(1)) - lossOf(shifted(-1))) / (2 * eps);
      const analytic = download(grads.get(name)!).reduce((sum, g, i) => sum + g * direction[i], 0);
      expect(Math.abs(numeric - analytic), `${name}: ${numeric} vs ${analytic}`).toBeLessThan(2e-2 * Math.max(0.1, Math.abs(analytic)));
    }
    tf.dispose([...grads.values()]);
  });

  it("does not leak tensors over training steps", () => {
    const trainer = trainerOf(randomWeights(3));
    const batch = makeBatch(sequences, cfg.contextLength, cfg.vocabSize);
    trainer.step(batch, 1e-3);
    const before = tf.memory().numTensors;
    trainer.step(batch, 1e-3);
    trainer.evaluate([batch]);
    expect(tf.memory().numTensors).toBe(before);
    trainer.dispose();
  });
});

describe("training", () => {
  it("lowers the loss over a few AdamW steps", () => {
    const trainer = trainerOf(initGpt2Weights(cfg, 4));
    const batch = makeBatch(sequences, cfg.contextLength, cfg.vocabSize);
    const losses = Array.from({ length: 30 }, () => trainer.step(batch, 1e-2).loss);
    trainer.dispose();
    expect(losses[0]).toBeCloseTo(Math.log(cfg.vocabSize), 0);
    expect(losses[29]).toBeLessThan(0.5 * losses[0]);
  });

  it("is deterministic: the same seed and batches give the same weights", () => {
    const run = () => {
      const trainer = trainerOf(initGpt2Weights(cfg, 5));
      for (let i = 0; i < 3; i++) trainer.step(makeBatch(sequences, cfg.contextLength, cfg.vocabSize), 1e-2);
      const weights = trainer.weights();
      trainer.dispose();
      return weights;
    };
    const [a, b] = [run(), run()];
    for (const [name, data] of a) expect(b.get(name), name).toEqual(data);
  });

  it("reports the mean loss per predicted token, as evaluate's sum divided by its count", () => {
    const trainer = trainerOf(randomWeights(6));
    const batch = makeBatch(sequences, cfg.contextLength, cfg.vocabSize);
    const { loss, tokens } = trainer.evaluate([batch]);
    expect(tokens).toBe(nextTokenTargets(batch).count);
    expect(tokens).toBe(sequences.reduce((n, s) => n + s.length - 1, 0));
    expect(trainer.step(batch, 0).loss).toBeCloseTo(loss / tokens, 5);
    trainer.dispose();
  });
});

describe("saving in Hugging Face layout", () => {
  it("writes save_pretrained's keys and a model that loadModel reloads with identical logits", async () => {
    const weights = randomWeights(7);
    const dir = path.join(tmp, "model");
    await saveHfGpt2(dir, cfg, weights, cfg.vocabSize - 1);
    const st = await readSafetensors(path.join(dir, "model.safetensors"));
    expect([...st.tensors.keys()].sort()).toEqual([...gpt2ParameterShapes(cfg).keys()].map((n) => `transformer.${n}`).sort());
    expect(st.metadata).toEqual({ format: "pt" });
    const config = JSON.parse(readFileSync(path.join(dir, "config.json"), "utf8"));
    expect(config).toMatchObject({ architectures: ["GPT2LMHeadModel"], eos_token_id: 60, bos_token_id: 60, n_positions: 16, tie_word_embeddings: true });

    // The reloaded folder gives the logits of the weights saved, on the engine.
    const batch = makeBatch(sequences, cfg.contextLength, cfg.vocabSize);
    const logitsOf = async (model: CausalLM) => {
      try {
        return await model.logits(batch);
      } finally {
        await model.release();
      }
    };
    const expected = await logitsOf(new OnnxCausalLM(cfg, weights, { device: "cpu" }));
    expect(await logitsOf(await loadModel(dir))).toEqual(expected);
  });
});

describe("batches and schedule", () => {
  const lengths = Array.from({ length: 200 }, (_, i) => 2 + ((i * 37) % 60));

  it("puts every sequence in one batch per epoch, within the padded token budget", () => {
    for (const epoch of [0, 1]) {
      const batches = epochBatches(lengths, 256, 9, epoch);
      expect(batches.flat().sort((a, b) => a - b)).toEqual([...lengths.keys()]);
      for (const batch of batches) expect(batch.length * Math.max(...batch.map((i) => lengths[i]))).toBeLessThanOrEqual(256);
    }
  });

  it("orders batches by the seed alone, differently in each epoch, with the same count", () => {
    expect(epochBatches(lengths, 256, 9, 0)).toEqual(epochBatches(lengths, 256, 9, 0));
    expect(epochBatches(lengths, 256, 9, 1)).not.toEqual(epochBatches(lengths, 256, 9, 0));
    expect(epochBatches(lengths, 256, 9, 1).length).toBe(epochBatches(lengths, 256, 9, 0).length);
  });

  it("warms up linearly to the peak, then decays along a cosine to the floor", () => {
    const options = { peak: 1e-3, warmupSteps: 10, totalSteps: 110, floorRatio: 0.1 };
    expect(learningRate(0, options)).toBeCloseTo(1e-4, 10);
    expect(learningRate(9, options)).toBeCloseTo(1e-3, 10);
    expect(learningRate(60, options)).toBeCloseTo(0.55e-3, 10);
    expect(learningRate(110, options)).toBeCloseTo(1e-4, 10);
  });
});

describe("kernels and gradients for training", () => {
  it("differentiates concat and split", () => {
    const [a, b] = [tf.tensor2d([1, 2, 3, 4], [2, 2]), tf.tensor2d([5, 6], [2, 1])];
    const w = tf.tensor2d([1, -2, 3, 4, 5, -6], [2, 3]);
    const [da, db] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.concat([x, y], 1), w)))([a, b]);
    expect(Array.from(download(da))).toEqual([1, -2, 4, 5]);
    expect(Array.from(download(db))).toEqual([3, -6]);
    const [dw] = tf.grads((x: tf.Tensor) => tf.sum(tf.mul(tf.split(x, [1, 2], 1)[1], 2)))([w]);
    expect(Array.from(download(dw))).toEqual([0, 2, 2, 0, 2, 2]);
    tf.dispose([a, b, w]);
  });

  it("unstacks and sums segments as the reference ops do", () => {
    const x = tf.tensor3d(
      Float32Array.from({ length: 5 * 3 * 4 }, (_, i) => i * 0.5 - 7),
      [5, 3, 4],
    );
    tf.unstack(x).forEach((slice, i) => {
      expect(download(slice)).toEqual(download(tf.slice(x, [i, 0, 0], [1, -1, -1])));
    });
    const rows = tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8], [4, 2]);
    expect(Array.from(download(tf.unsortedSegmentSum(rows, tf.tensor1d([2, 0, 2, 1], "int32"), 3)))).toEqual([3, 4, 7, 8, 6, 8]);
    tf.dispose([x, rows]);
  });
});
