/**
 * Configurations the fixtures do not cover (GPT-NeoX's sequential residual, Llama's rope_scaling,
 * Llama's attention biases) against a float64 host forward pass written from Hugging Face's
 * modeling code (helpers/reference-lm.ts), itself checked on the fixtures first: logits, and the
 * capture's gradients against finite differences of the reference's loss.
 */
import { afterAll, describe, expect, it } from "vitest";
import { makeBatch } from "../src/model/batch.js";
import type { LlamaConfig, ModelConfig, NeoxConfig } from "../src/model/config.js";
import { readModel } from "../src/model/load.js";
import { type CausalLM, inputWidth } from "../src/model/model.js";
import { OnnxCausalLM } from "../src/model/onnx/causal-lm.js";
import { inverseFrequencies } from "../src/model/rope.js";
import { fixtureExpected, fixturePath, fixtureTrain } from "../support/fixtures.js";
import { maxRelError } from "./helpers/compare.js";
import { sequenceGradient } from "./helpers/gradients.js";
import { hfInverseFrequencies, llamaReferenceLogits, neoxReferenceLogits, type ReferenceWeights, referenceLoss } from "./helpers/reference-lm.js";

const referenceLogits = (cfg: ModelConfig, w: ReferenceWeights, tokens: readonly number[]) => {
  if (cfg.architecture === "gpt-neox") return neoxReferenceLogits(cfg, w, tokens);
  if (cfg.architecture === "llama") return llamaReferenceLogits(cfg, w, tokens);
  throw new Error(`no reference for ${cfg.architecture}`);
};

const opened: CausalLM[] = [];
afterAll(() => Promise.all(opened.map((m) => m.release())));

/** The fixture's config (changed by `change`) and weights (with `extra` parameters) as an engine model. */
async function variant<C extends ModelConfig>(fixture: string, change: (cfg: C) => C, extra: Record<string, Float32Array> = {}) {
  const { config, weights } = await readModel(fixturePath(fixture));
  const cfg = change(config as C);
  const all = new Map([...weights, ...Object.entries(extra)]);
  const model = new OnnxCausalLM(cfg, all, { device: "cpu" });
  opened.push(model);
  return { cfg, weights: all, model };
}

/** All logits [T * V] of one sequence from the engine. */
async function engineLogits(model: CausalLM, tokens: number[]): Promise<Float32Array> {
  return model.logits(makeBatch([tokens], model.config.contextLength, model.config.vocabSize));
}

/** Small deterministic values for parameters a fixture lacks (biases). */
const pseudoRandom = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => 0.05 * Math.sin(seed * 7.1 + i * 1.3));

/**
 * The capture's gradient G = sum_t g_t a_t^T of every tracked module, at its largest entries and a
 * few others (weight columns and the bias column), against central differences of the reference's
 * loss in float64.
 */
async function expectGradientsMatchFiniteDifferences(model: CausalLM, cfg: ModelConfig, weights: ReadonlyMap<string, Float32Array>, tokens: number[]) {
  const capture = await model.capture([tokens], { kind: "next-token" });
  const eps = 1e-3;
  for (const { module, a, g } of capture.modules) {
    const [inW, outW] = [inputWidth(module), module.outFeatures];
    const G = sequenceGradient(a, g, 0, tokens.length, inW, outW);
    const largest = Array.from(G.keys())
      .sort((x, y) => Math.abs(G[y]) - Math.abs(G[x]))
      .slice(0, 3);
    const entries = [...largest, 0, (outW >> 1) * inW + (inW >> 1), G.length - 1];
    const finite = entries.map((e) => {
      const [o, i] = [Math.floor(e / inW), e % inW];
      const [name, index] = i < module.inFeatures ? [`${module.name}.weight`, o * module.inFeatures + i] : [`${module.name}.bias`, o];
      const loss = (delta: number) => {
        const changed = Float64Array.from(weights.get(name) as Float32Array);
        changed[index] += delta;
        return referenceLoss(referenceLogits(cfg, new Map<string, ArrayLike<number>>([...weights, [name, changed]]), tokens), tokens);
      };
      return (loss(eps) - loss(-eps)) / (2 * eps);
    });
    expect(
      maxRelError(
        entries.map((e) => G[e]),
        finite,
      ),
      module.name,
    ).toBeLessThan(1e-3);
  }
}

describe("the float64 reference forward pass", () => {
  it.each(["pythia-tiny", "llama-tiny", "qwen2-tiny"])("reproduces the logits of %s's fixture", async (fixture) => {
    const { config, weights } = await readModel(fixturePath(fixture));
    const tokens = fixtureTrain(fixture)[0].tokens;
    const logits = referenceLogits(config, weights, tokens);
    const first64 = logits.flatMap((row) => Array.from(row.subarray(0, 64)));
    expect(maxRelError(first64, (await fixtureExpected(fixture))("logits_seq0_first64").data)).toBeLessThan(1e-9);
  });
});

describe("GPT-NeoX with a sequential residual (use_parallel_residual false)", () => {
  const tokens = fixtureTrain("pythia-tiny")[0].tokens.slice(0, 12);

  it("gives the reference's logits, which differ from the parallel residual's", async () => {
    const sequential = await variant<NeoxConfig>("pythia-tiny", (c) => ({ ...c, parallelResidual: false }));
    const parallel = await variant<NeoxConfig>("pythia-tiny", (c) => c);
    const actual = await engineLogits(sequential.model, tokens);
    const expected = referenceLogits(sequential.cfg, sequential.weights, tokens).flatMap((r) => Array.from(r));
    expect(maxRelError(actual, expected)).toBeLessThan(1e-4);
    expect(maxRelError(await engineLogits(parallel.model, tokens), expected)).toBeGreaterThan(1e-2);
  });

  it("captures gradients that match finite differences of the reference's loss", async () => {
    const { cfg, weights, model } = await variant<NeoxConfig>("pythia-tiny", (c) => ({ ...c, parallelResidual: false }));
    await expectGradientsMatchFiniteDifferences(model, cfg, weights, tokens);
  });
});

describe("other configurations of the fixtures' weights", () => {
  it("GPT-NeoX without attention biases, its head tied to embed_in: the reference's logits", async () => {
    const { cfg, weights, model } = await variant<NeoxConfig>("pythia-tiny", (c) => ({ ...c, attentionBias: false, tieWordEmbeddings: true }));
    const tokens = fixtureTrain("pythia-tiny")[0].tokens.slice(0, 12);
    const expected = referenceLogits(cfg, weights, tokens).flatMap((r) => Array.from(r));
    expect(maxRelError(await engineLogits(model, tokens), expected)).toBeLessThan(1e-4);
  });

  it("Llama with head_dim 16 (heads wider than hidden_size / heads): the reference's logits", async () => {
    // q [4 x 16, 32], k and v [2 x 16, 32], o [32, 4 x 16]
    const projections = Object.fromEntries(
      [0, 1].flatMap((layer) =>
        (
          [
            ["q_proj", 64 * 32],
            ["k_proj", 32 * 32],
            ["v_proj", 32 * 32],
            ["o_proj", 32 * 64],
          ] as const
        ).map(([proj, size], j) => [`layers.${layer}.self_attn.${proj}.weight`, pseudoRandom(size, 10 + 4 * layer + j).map((x) => 4 * x)]),
      ),
    );
    const { cfg, weights, model } = await variant<LlamaConfig>("llama-tiny", (c) => ({ ...c, headDim: 16 }), projections);
    const tokens = fixtureTrain("llama-tiny")[0].tokens.slice(0, 12);
    const expected = referenceLogits(cfg, weights, tokens).flatMap((r) => Array.from(r));
    expect(maxRelError(await engineLogits(model, tokens), expected)).toBeLessThan(1e-4);
  });
});

describe("Llama's rope_scaling", () => {
  const tokens = fixtureTrain("llama-tiny")[0].tokens;
  // llama-tiny's head of 8 features has wavelengths 2 pi x (1, 10, 100, 1000): with these settings one
  // is kept (< 256/8), one interpolated, two divided by the factor (> 256/1).
  const llama3 = { type: "llama3" as const, factor: 4, lowFreqFactor: 1, highFreqFactor: 8, originalContextLength: 256 };
  const scalings = [{ type: "linear" as const, factor: 4 }, llama3];

  it("computes the inverse frequencies as Hugging Face does, in all three llama3 bands", () => {
    for (const scaling of [null, ...scalings]) {
      const expected = hfInverseFrequencies(8, 10000, scaling);
      expect(maxRelError(inverseFrequencies(8, 10000, scaling), expected), scaling?.type ?? "none").toBeLessThan(1e-15);
    }
    const plain = hfInverseFrequencies(8, 10000, null);
    const ratios = hfInverseFrequencies(8, 10000, llama3).map((f, i) => plain[i] / f);
    expect(ratios[0]).toBe(1);
    expect(ratios[1]).toBeGreaterThan(1);
    expect(ratios[1]).toBeLessThan(4);
    expect(ratios.slice(2).map((r) => r.toFixed(12))).toEqual(["4.000000000000", "4.000000000000"]);
  });

  it.each(scalings)("gives the reference's logits with $type scaling, which differ from unscaled RoPE's", async (scaling) => {
    const scaled = await variant<LlamaConfig>("llama-tiny", (c) => ({ ...c, ropeScaling: scaling }));
    const expected = referenceLogits(scaled.cfg, scaled.weights, tokens).flatMap((r) => Array.from(r));
    expect(maxRelError(await engineLogits(scaled.model, tokens), expected)).toBeLessThan(1e-4);
    const plain = await variant<LlamaConfig>("llama-tiny", (c) => c);
    expect(maxRelError(await engineLogits(plain.model, tokens), expected)).toBeGreaterThan(1e-3);
  });

  it("captures gradients that match finite differences of the reference's loss (llama3 scaling, biases on all four projections)", async () => {
    const biases = Object.fromEntries(
      [0, 1].flatMap((layer) =>
        (
          [
            ["q_proj", 32],
            ["k_proj", 16],
            ["v_proj", 16],
            ["o_proj", 32],
          ] as const
        ).map(([proj, width], j) => [`layers.${layer}.self_attn.${proj}.bias`, pseudoRandom(width, 4 * layer + j)]),
      ),
    );
    const { cfg, weights, model } = await variant<LlamaConfig>("llama-tiny", (c) => ({ ...c, ropeScaling: llama3, qkvBias: true, outputBias: true }), biases);
    await expectGradientsMatchFiniteDifferences(model, cfg, weights, tokens.slice(0, 12));
  });
});
