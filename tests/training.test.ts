import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeBatch } from "../src/model/batch.js";
import type { Gpt2Config, ModelConfig } from "../src/model/config.js";
import { gpt2Modules, gpt2ParameterShapes } from "../src/model/gpt2-architecture.js";
import { loadModel, readModel } from "../src/model/load.js";
import { type CausalLM, inputWidth } from "../src/model/model.js";
import { OnnxCausalLM } from "../src/model/onnx/causal-lm.js";
import { readSafetensors } from "../src/safetensors/read.js";
import { AdamW, DEFAULT_ADAMW } from "../src/training/adamw.js";
import { epochBatches } from "../src/training/batches.js";
import { loadTrainingState, saveTrainingState } from "../src/training/checkpoint.js";
import { initGpt2Weights } from "../src/training/init.js";
import { nextTokenTargets } from "../src/training/loss.js";
import { saveHfGpt2 } from "../src/training/save.js";
import { learningRate } from "../src/training/schedule.js";
import { Gpt2Trainer } from "../src/training/trainer.js";
import { InputError } from "../src/util/errors.js";
import { normalGenerator } from "../src/util/random.js";
import { fixtureExpected, fixturePath, fixtureTrain } from "../support/fixtures.js";
import { maxRelError } from "./helpers/compare.js";

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

const trainerOf = (weights: Map<string, Float32Array>, config: ModelConfig = cfg) => new Gpt2Trainer(config, weights, DEFAULT_ADAMW, { device: "cpu" });

/** Summed next-token loss of the batch under the given weights: forward graph only (the "loss" variant). */
async function lossOf(weights: Map<string, Float32Array>, batch = makeBatch(sequences, cfg.contextLength, cfg.vocabSize)): Promise<number> {
  const trainer = trainerOf(weights);
  try {
    return (await trainer.evaluate([batch])).loss;
  } finally {
    await trainer.release();
  }
}

/** The weight and bias gradients of a Conv1D module ([in, out] and [out]) as the fixtures' [out, in + 1]. */
function homogeneous(dw: Float32Array, db: Float32Array, inW: number, outW: number): Float64Array {
  const G = new Float64Array(outW * (inW + 1));
  for (let o = 0; o < outW; o++) {
    for (let i = 0; i < inW; i++) G[o * (inW + 1) + i] = dw[i * outW + o];
    G[o * (inW + 1) + inW] = db[o];
  }
  return G;
}

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(tmpdir(), "training-test-"));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("parameter gradients of the training graph", () => {
  it("reproduce the fixture's MLP gradients of sequence 0 (gpt2-tiny, float64 reference)", async () => {
    const { config, weights } = await readModel(fixturePath("gpt2-tiny"));
    const expected = await fixtureExpected("gpt2-tiny");
    const trainer = trainerOf(weights, config);
    const { grads } = await trainer.lossGradients(makeBatch([fixtureTrain("gpt2-tiny")[0].tokens], config.contextLength, config.vocabSize));
    await trainer.release();
    for (const m of gpt2Modules(config as Gpt2Config)) {
      const G = homogeneous(grads.get(`${m.name}.weight`)!, grads.get(`${m.name}.bias`)!, m.inFeatures, m.outFeatures);
      expect(maxRelError(G, expected(`grad_seq0.${m.name}`).data), m.name).toBeLessThan(1e-4);
    }
  });

  // A large vocabulary too, where the head's gradient dominates the embedding's.
  it.each([cfg.vocabSize, 5000])("give the MLP gradients of the capture graph (sum over tokens of g a^T), vocabulary %i", async (vocabSize) => {
    const config = { ...cfg, vocabSize };
    const weights = randomWeights(1, config);
    const trainer = trainerOf(weights, config);
    const { loss, grads } = await trainer.lossGradients(makeBatch(sequences, config.contextLength, config.vocabSize));
    await trainer.release();
    const model = new OnnxCausalLM(config, weights, { device: "cpu" });
    const capture = await model.capture(sequences, { kind: "next-token" });
    await model.release();
    expect(loss).toBeCloseTo(
      capture.losses.reduce((a, b) => a + b, 0),
      3,
    );
    for (const { module, a, g } of capture.modules) {
      // Sum over tokens of g_t a_t^T: [out, in + 1], the bias gradient in the last column.
      const [inW, outW] = [inputWidth(module), module.outFeatures];
      const G = new Float64Array(outW * inW);
      for (let t = 0; t < a.length / inW; t++) for (let o = 0; o < outW; o++) for (let i = 0; i < inW; i++) G[o * inW + i] += g[t * outW + o] * a[t * inW + i];
      const actual = homogeneous(grads.get(`${module.name}.weight`)!, grads.get(`${module.name}.bias`)!, module.inFeatures, outW);
      expect(maxRelError(actual, G), module.name).toBeLessThan(1e-4);
    }
  });

  it("match finite differences for every parameter tensor (embeddings, attention, LayerNorm)", async () => {
    const weights = randomWeights(2);
    const trainer = trainerOf(weights);
    const { grads } = await trainer.lossGradients(makeBatch(sequences, cfg.contextLength, cfg.vocabSize));
    await trainer.release();
    // Float32 losses and curvature leave about 1% of error; a wrong gradient is off by far more.
    const eps = 3e-2;
    for (const [name, data] of weights) {
      // Derivative along a random unit direction: one pair of forward passes per tensor.
      const normal = normalGenerator(name.length);
      const direction = Float32Array.from(data, () => normal());
      const norm = Math.hypot(...direction);
      direction.forEach((x, i) => (direction[i] = x / norm));
      const shifted = (sign: number) => new Map([...weights].map(([n, d]) => [n, n === name ? d.map((x, i) => x + sign * eps * direction[i]) : d]));
      const numeric = ((await lossOf(shifted(1))) - (await lossOf(shifted(-1)))) / (2 * eps);
      const analytic = grads.get(name)!.reduce((sum, g, i) => sum + g * direction[i], 0);
      expect(Math.abs(numeric - analytic), `${name}: ${numeric} vs ${analytic}`).toBeLessThan(2e-2 * Math.max(0.1, Math.abs(analytic)));
    }
  });

  it("match central differences entry by entry: each tensor's largest-gradient entry, and a repeated token's embedding row", async () => {
    const weights = randomWeights(3);
    const trainer = trainerOf(weights);
    const { grads } = await trainer.lossGradients(makeBatch(sequences, cfg.contextLength, cfg.vocabSize));
    await trainer.release();
    // Token 8 occurs twice in sequence 0 and 9 twice in sequence 1: their wte rows add the
    // lookups' gradients to the head's. Token 60 only ends sequence 0 (head gradient alone).
    const picks: Array<[string, number]> = [
      ["wte.weight", 8 * cfg.nEmbd + 3],
      ["wte.weight", 9 * cfg.nEmbd + 5],
      ["wte.weight", 60 * cfg.nEmbd + 1],
    ];
    for (const [name, grad] of grads) picks.push([name, grad.reduce((best, g, i, all) => (Math.abs(g) > Math.abs(all[best]) ? i : best), 0)]);
    // A step of 1e-2 on one entry moves the summed loss (about 100) by ~1e-2 |grad|: float32's
    // rounding of the loss (~1e-5) and the curvature stay below 1% of these largest entries.
    const eps = 1e-2;
    for (const [name, index] of picks) {
      const shifted = (sign: number) => new Map([...weights].map(([n, d]) => [n, n === name ? d.map((x, i) => (i === index ? x + sign * eps : x)) : d]));
      const numeric = ((await lossOf(shifted(1))) - (await lossOf(shifted(-1)))) / (2 * eps);
      const analytic = grads.get(name)![index];
      expect(Math.abs(numeric - analytic), `${name}[${index}]: ${numeric} vs ${analytic}`).toBeLessThan(1e-2 * Math.max(0.1, Math.abs(analytic)));
    }
  });
});

describe("AdamW", () => {
  it("takes the hand-computed steps: clipping, bias correction, decoupled decay of decayed parameters only", () => {
    const w = Float32Array.of(1, -2);
    const b = Float32Array.of(0.5);
    const adamw = new AdamW(
      new Map([
        ["w", w],
        ["b", b],
      ]),
      { beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: 0.1, clipNorm: 1 },
      (name) => name === "w",
    );
    // Step 1: norm 5 > 1 clips g to [0.6, -0.8 | 0]. m = 0.1 g, v = 0.05 g^2: bias-corrected, the
    // update is g / |g| = +-1 (b's is 0 / (0 + eps) = 0). w -= 0.1 (+-1 + 0.1 w): 0.89, -1.88.
    const norm1 = adamw.apply(
      new Map([
        ["w", Float32Array.of(3, -4)],
        ["b", Float32Array.of(0)],
      ]),
      0.1,
    );
    expect(norm1).toBeCloseTo(5, 6);
    expect(Array.from(w)).toEqual([0.89, -1.88].map(Math.fround));
    expect(b[0]).toBe(0.5);
    // Step 2: g = [0.3, 0 | 0.1], norm 0.316 (no clipping). m = [0.084, -0.072 | 0.01],
    // v = [0.0216, 0.0304 | 0.0005]; 1 - 0.9^2 = 0.19, 1 - 0.95^2 = 0.0975.
    // w0 = 0.89 - 0.1 (0.084 / 0.19 / sqrt(0.0216 / 0.0975) + 0.1 * 0.89) = 0.787171
    // w1 = -1.88 - 0.1 (-0.072 / 0.19 / sqrt(0.0304 / 0.0975) - 0.1 * 1.88) = -1.793335
    // b = 0.5 - 0.1 (0.01 / 0.19 / sqrt(0.0005 / 0.0975)) = 0.426504 (not decayed)
    const norm2 = adamw.apply(
      new Map([
        ["w", Float32Array.of(0.3, 0)],
        ["b", Float32Array.of(0.1)],
      ]),
      0.1,
    );
    expect(norm2).toBeCloseTo(Math.sqrt(0.1), 6);
    expect(w[0]).toBeCloseTo(0.787171, 6);
    expect(w[1]).toBeCloseTo(-1.793335, 6);
    expect(b[0]).toBeCloseTo(0.426504, 6);
    expect(adamw.step).toBe(2);
    const state = adamw.state();
    expect(state.m.get("w")![0]).toBeCloseTo(0.084, 7);
    expect(state.v.get("b")![0]).toBeCloseTo(0.0005, 9);
  });

  it("names a missing gradient", () => {
    const adamw = new AdamW(new Map([["w", new Float32Array(2)]]), DEFAULT_ADAMW, () => true);
    expect(() => adamw.apply(new Map(), 0.1)).toThrow("no gradient for parameter w");
  });
});

describe("training", () => {
  it("refuses a model of another architecture than GPT-2, naming it", async () => {
    const { config, weights } = await readModel(fixturePath("pythia-tiny"));
    expect(() => new Gpt2Trainer(config, weights, DEFAULT_ADAMW)).toThrow(
      new InputError("training runs on GPT-2 only; a gpt-neox model can be fitted, scored and indexed but not trained here"),
    );
  });

  it("lowers the loss over a few AdamW steps", async () => {
    const trainer = trainerOf(initGpt2Weights(cfg, 4));
    const batch = makeBatch(sequences, cfg.contextLength, cfg.vocabSize);
    const losses: number[] = [];
    for (let i = 0; i < 30; i++) losses.push((await trainer.step(batch, 1e-2)).loss);
    await trainer.release();
    expect(losses[0]).toBeCloseTo(Math.log(cfg.vocabSize), 0);
    expect(losses[29]).toBeLessThan(0.5 * losses[0]);
  });

  it("is deterministic: the same seed and batches give the same weights", async () => {
    const run = async () => {
      const trainer = trainerOf(initGpt2Weights(cfg, 5));
      for (let i = 0; i < 3; i++) await trainer.step(makeBatch(sequences, cfg.contextLength, cfg.vocabSize), 1e-2);
      const weights = trainer.weights();
      await trainer.release();
      return weights;
    };
    const [a, b] = [await run(), await run()];
    for (const [name, data] of a) expect(b.get(name), name).toEqual(data);
  });

  it("resumes from a saved training state exactly where it stopped", async () => {
    const batch = makeBatch(sequences, cfg.contextLength, cfg.vocabSize);
    const straight = trainerOf(initGpt2Weights(cfg, 8));
    for (let i = 0; i < 4; i++) await straight.step(batch, 1e-2);
    const stopped = trainerOf(initGpt2Weights(cfg, 8));
    for (let i = 0; i < 2; i++) await stopped.step(batch, 1e-2);
    const dir = path.join(tmp, "state");
    const log = { run: { seed: 8 }, unigramEntropy: 1, entries: [] };
    await saveTrainingState(dir, { weights: stopped.weights(), optimizer: stopped.optimizer.state(), log });
    const state = await loadTrainingState(dir);
    expect(state.optimizer.step).toBe(2);
    expect(state.log).toEqual(log);
    const resumed = trainerOf(state.weights);
    resumed.optimizer.restore(state.optimizer);
    for (let i = 0; i < 2; i++) await resumed.step(batch, 1e-2);
    expect(resumed.optimizer.step).toBe(4);
    const expected = straight.weights();
    for (const [name, data] of resumed.weights()) expect(data, name).toEqual(expected.get(name));
    await Promise.all([straight.release(), stopped.release(), resumed.release()]);
  });

  it("reports the mean loss per predicted token, as evaluate's sum divided by its count", async () => {
    const trainer = trainerOf(randomWeights(6));
    const batch = makeBatch(sequences, cfg.contextLength, cfg.vocabSize);
    const { loss, tokens } = await trainer.evaluate([batch]);
    expect(tokens).toBe(nextTokenTargets(batch).count);
    expect(tokens).toBe(sequences.reduce((n, s) => n + s.length - 1, 0));
    expect((await trainer.step(batch, 0)).loss).toBeCloseTo(loss / tokens, 5);
    await trainer.release();
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

    const batch = makeBatch(sequences, cfg.contextLength, cfg.vocabSize);
    const logitsOf = async (model: CausalLM) => {
      const logits = await model.logits(batch);
      await model.release();
      return logits;
    };
    const expected = await logitsOf(new OnnxCausalLM(cfg, weights, { device: "cpu" }));
    expect(await logitsOf(await loadModel(dir, { device: "cpu" }))).toEqual(expected);
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
