/** config.json of every architecture: what is read from it, and what is refused by name. */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../src/model/config.js";
import { InputError } from "../src/util/errors.js";
import { fixturePath } from "../support/fixtures.js";

const FILE = "/models/x/config.json";
const fixtureConfig = (name: string): Record<string, unknown> => JSON.parse(readFileSync(fixturePath(name, "config.json"), "utf8"));
const llama = () => fixtureConfig("llama-tiny");
const neox = () => fixtureConfig("pythia-tiny");
const qwen2 = () => fixtureConfig("qwen2-tiny");
const mistral = () => ({ ...llama(), architectures: ["MistralForCausalLM"], model_type: "mistral", sliding_window: null });

/** The InputError message parseConfig refuses `raw` with; fails if it accepts it. */
function refusal(raw: Record<string, unknown>): string {
  try {
    parseConfig(FILE, raw);
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message.startsWith(`${FILE}: `)).toBe(true);
    return (err as Error).message;
  }
  throw new Error("the config was accepted");
}

describe("parsing config.json", () => {
  it("reads the fixtures' GPT-NeoX, Llama and Qwen2 configurations", () => {
    expect(parseConfig(FILE, neox())).toMatchObject({
      architecture: "gpt-neox",
      nEmbd: 32,
      nHead: 2,
      nInner: 128,
      rotaryDims: 4,
      rotaryBase: 10000,
      parallelResidual: true,
      attentionBias: true,
      tieWordEmbeddings: false,
    });
    expect(parseConfig(FILE, llama())).toMatchObject({
      architecture: "llama",
      nHead: 4,
      nKvHead: 2,
      headDim: 8,
      nInner: 88,
      ropeTheta: 10000,
      ropeScaling: null,
      qkvBias: false,
      outputBias: false,
      tieWordEmbeddings: false,
    });
    // Qwen2: biases on q, k, v (not o); its 4,096-token window is off (use_sliding_window false)
    expect(parseConfig(FILE, qwen2())).toMatchObject({ architecture: "llama", qkvBias: true, outputBias: false, tieWordEmbeddings: true, ropeTheta: 1e6 });
  });

  it("takes Llama's attention_bias as biases on all four projections, head_dim and the rope_scaling types it implements", () => {
    expect(parseConfig(FILE, { ...llama(), attention_bias: true })).toMatchObject({ qkvBias: true, outputBias: true });
    expect(parseConfig(FILE, { ...llama(), head_dim: 16 })).toMatchObject({ headDim: 16 });
    expect(parseConfig(FILE, { ...llama(), rope_scaling: { type: "linear", factor: 2 } })).toMatchObject({ ropeScaling: { type: "linear", factor: 2 } });
    const llama3 = { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
    expect(parseConfig(FILE, { ...llama(), rope_scaling: llama3 })).toMatchObject({
      ropeScaling: { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 8192 },
    });
    expect(parseConfig(FILE, { ...llama(), rope_scaling: { rope_type: "default" } })).toMatchObject({ ropeScaling: null });
  });

  it("runs Mistral without a sliding window, or with one no shorter than the context", () => {
    expect(parseConfig(FILE, mistral())).toMatchObject({ architecture: "llama", qkvBias: false, contextLength: 64 });
    expect(parseConfig(FILE, { ...mistral(), sliding_window: 64 })).toMatchObject({ contextLength: 64 });
  });

  describe("refuses, naming the key", () => {
    it("an unsupported architecture, listing the supported ones", () => {
      expect(refusal({ ...llama(), architectures: ["FalconForCausalLM"], model_type: "falcon" })).toBe(
        `${FILE}: architecture FalconForCausalLM is not supported (supported: GPT2LMHeadModel, GPTNeoXForCausalLM, LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)`,
      );
      expect(refusal({ model_type: "gemma" })).toMatch(/architecture model_type "gemma" is not supported \(supported: GPT2LMHeadModel, /);
    });

    it("an unknown rope_scaling type", () => {
      expect(refusal({ ...llama(), rope_scaling: { type: "dynamic", factor: 2 } })).toBe(
        `${FILE}: rope_scaling type "dynamic" is not supported (supported: null, linear, llama3)`,
      );
      expect(refusal({ ...neox(), rope_scaling: { rope_type: "yarn", factor: 4 } })).toMatch(/rope_scaling type "yarn" is not supported/);
    });

    it("rope_scaling parameters that are missing or inconsistent", () => {
      expect(refusal({ ...llama(), rope_scaling: { type: "linear" } })).toMatch(/rope_scaling "factor" must be a positive number, got undefined/);
      const llama3 = { rope_type: "llama3", factor: 8, low_freq_factor: 4, high_freq_factor: 4, original_max_position_embeddings: 8192 };
      expect(refusal({ ...llama(), rope_scaling: llama3 })).toMatch(/"high_freq_factor" \(4\) must exceed "low_freq_factor" \(4\)/);
      const { original_max_position_embeddings: _, ...noOriginal } = { ...llama3, low_freq_factor: 1 };
      expect(refusal({ ...llama(), rope_scaling: noOriginal })).toMatch(/"original_max_position_embeddings" must be a positive integer/);
    });

    it("heads that do not divide the hidden size", () => {
      expect(refusal({ ...llama(), num_attention_heads: 5, num_key_value_heads: 5 })).toBe(`${FILE}: hidden_size 32 is not divisible by num_attention_heads 5`);
      expect(refusal({ ...neox(), num_attention_heads: 3 })).toBe(`${FILE}: hidden_size 32 is not divisible by num_attention_heads 3`);
    });

    it("key/value heads that do not divide the query heads", () => {
      expect(refusal({ ...llama(), num_key_value_heads: 3 })).toBe(`${FILE}: num_key_value_heads 3 does not divide num_attention_heads 4`);
    });

    it("mlp_bias", () => {
      expect(refusal({ ...llama(), mlp_bias: true })).toMatch(/mlp_bias true is not supported/);
    });

    it("a sliding window shorter than the context the model runs at", () => {
      expect(refusal({ ...mistral(), sliding_window: 32 })).toBe(
        `${FILE}: sliding_window 32 is shorter than max_position_embeddings 64, the context this project runs the model at; sliding-window attention is not implemented`,
      );
      // Mistral's default window (4,096) when the key is absent
      const { sliding_window: _, ...noWindow } = { ...mistral(), max_position_embeddings: 32768 };
      expect(refusal(noWindow)).toMatch(/sliding_window 4096 is shorter than max_position_embeddings 32768/);
      // Qwen2: layer 1 of 2 slides from max_window_layers 1 up, or where layer_types says so
      expect(refusal({ ...qwen2(), use_sliding_window: true, sliding_window: 16, max_window_layers: 1 })).toMatch(
        /sliding_window 16 is shorter than max_position_embeddings 64/,
      );
      expect(refusal({ ...qwen2(), sliding_window: 16, layer_types: ["full_attention", "sliding_attention"] })).toMatch(/sliding_window 16 is shorter/);
    });

    it("but not a Qwen2 window that no layer uses", () => {
      expect(parseConfig(FILE, { ...qwen2(), use_sliding_window: true, sliding_window: 16, max_window_layers: 2 })).toMatchObject({ contextLength: 64 });
      expect(parseConfig(FILE, { ...qwen2(), use_sliding_window: true, sliding_window: 16, layer_types: ["full_attention", "full_attention"] })).toMatchObject({
        contextLength: 64,
      });
    });

    it("activations other than the architecture's", () => {
      expect(refusal({ ...neox(), hidden_act: "gelu_new" })).toBe(`${FILE}: hidden_act "gelu_new" is not supported (supported: gelu)`);
      expect(refusal({ ...llama(), hidden_act: "gelu" })).toBe(`${FILE}: hidden_act "gelu" is not supported (supported: silu)`);
    });

    it("a rotary fraction that rotates an odd number of features", () => {
      expect(refusal({ ...neox(), rotary_pct: 0.2 })).toMatch(
        /rotary_pct 0.2 of head size 16 rotates 3 features; rotary embedding needs an even, non-zero number/,
      );
    });

    it("flags that are not booleans", () => {
      expect(refusal({ ...neox(), use_parallel_residual: "yes" })).toMatch(/"use_parallel_residual" must be true or false, got "yes"/);
    });
  });
});
