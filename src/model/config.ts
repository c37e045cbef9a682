/**
 * Hugging Face `config.json` for the architectures this project implements, validated into a
 * typed configuration: GPT-2, GPT-NeoX (Pythia), and the Llama family (Llama, Mistral, Qwen2).
 * Whatever in a config changes the maths in a way the model code does not implement is refused
 * by name.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { InputError } from "../util/errors.js";
import { type RopeScaling, parseRopeScaling } from "./rope.js";

/** What every architecture's configuration gives: sizes the engine, batching and index reports read. */
interface CommonConfig {
  vocabSize: number;
  /** Longest sequence the model is run on (GPT-2's position embedding; max_position_embeddings). */
  contextLength: number;
  /** Width of the residual stream (hidden_size). */
  nEmbd: number;
  nLayer: number;
  /** Query heads. */
  nHead: number;
  /** Width of the MLP's hidden layer. */
  nInner: number;
}

export interface Gpt2Config extends CommonConfig {
  architecture: "gpt2";
  layerNormEps: number;
}

/** GPTNeoXForCausalLM (Pythia): fused per-head q|k|v, partial rotary embedding, exact gelu. */
export interface NeoxConfig extends CommonConfig {
  architecture: "gpt-neox";
  layerNormEps: number;
  /** Features of each head that rotate: floor(head size x rotary_pct), even. */
  rotaryDims: number;
  rotaryBase: number;
  ropeScaling: RopeScaling | null;
  /** x + attn(ln1(x)) + mlp(ln2(x)) when true; else the MLP reads x + attn(ln1(x)). */
  parallelResidual: boolean;
  /** Biases on query_key_value and attention.dense. */
  attentionBias: boolean;
  /** The LM head is the input embedding (no embed_out.weight). */
  tieWordEmbeddings: boolean;
}

/** LlamaForCausalLM, MistralForCausalLM and Qwen2ForCausalLM: RMSNorm, RoPE, grouped-query attention, SwiGLU. */
export interface LlamaConfig extends CommonConfig {
  architecture: "llama";
  /** Key/value heads; each serves nHead / nKvHead query heads. */
  nKvHead: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  /** Biases on q_proj, k_proj and v_proj (Qwen2; Llama's attention_bias). */
  qkvBias: boolean;
  /** A bias on o_proj (Llama's attention_bias). */
  outputBias: boolean;
  /** The LM head is the input embedding (no lm_head.weight). */
  tieWordEmbeddings: boolean;
}

export type ModelConfig = Gpt2Config | NeoxConfig | LlamaConfig;

/** Hugging Face model classes this project runs, and the model_type that stands for each in a config without `architectures`. */
const SUPPORTED = {
  GPT2LMHeadModel: "gpt2",
  GPTNeoXForCausalLM: "gpt_neox",
  LlamaForCausalLM: "llama",
  MistralForCausalLM: "mistral",
  Qwen2ForCausalLM: "qwen2",
} as const;
type SupportedClass = keyof typeof SUPPORTED;

type RawConfig = Record<string, unknown>;

function positiveInt(file: string, raw: RawConfig, key: string, fallback?: number): number {
  const v = raw[key] ?? fallback;
  if (!Number.isSafeInteger(v) || (v as number) <= 0) {
    throw new InputError(`${file}: "${key}" must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v as number;
}

function nonNegativeInt(file: string, raw: RawConfig, key: string, fallback: number): number {
  const v = raw[key] ?? fallback;
  if (!Number.isSafeInteger(v) || (v as number) < 0) throw new InputError(`${file}: "${key}" must be a non-negative integer, got ${JSON.stringify(v)}`);
  return v as number;
}

function positiveNumber(file: string, raw: RawConfig, key: string, fallback: number): number {
  const v = raw[key] ?? fallback;
  if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v)) throw new InputError(`${file}: "${key}" must be a positive number, got ${JSON.stringify(v)}`);
  return v;
}

function flag(file: string, raw: RawConfig, key: string, fallback: boolean): boolean {
  const v = raw[key] ?? fallback;
  if (typeof v !== "boolean") throw new InputError(`${file}: "${key}" must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

/** The activation a config names (under `key`, `fallback` when absent), refused unless it is `supported`. */
function activation(file: string, raw: RawConfig, key: string, fallback: string, supported: string): void {
  const v = raw[key] ?? fallback;
  if (v !== supported) throw new InputError(`${file}: ${key} ${JSON.stringify(v)} is not supported (supported: ${supported})`);
}

/** hidden_size split over the heads: refused when they do not divide it. */
function headSize(file: string, hidden: number, heads: number): number {
  if (hidden % heads !== 0) throw new InputError(`${file}: hidden_size ${hidden} is not divisible by num_attention_heads ${heads}`);
  return hidden / heads;
}

function modelClass(file: string, cfg: RawConfig): SupportedClass {
  const architectures = Array.isArray(cfg.architectures) ? (cfg.architectures as unknown[]) : [];
  const named = architectures.find((a): a is SupportedClass => typeof a === "string" && a in SUPPORTED);
  if (named) return named;
  const byType = (Object.keys(SUPPORTED) as SupportedClass[]).find((c) => SUPPORTED[c] === cfg.model_type);
  if (architectures.length === 0 && byType) return byType;
  const what = architectures.length ? architectures.join(", ") : `model_type ${JSON.stringify(cfg.model_type)}`;
  throw new InputError(`${file}: architecture ${what} is not supported (supported: ${Object.keys(SUPPORTED).join(", ")})`);
}

export function parseConfig(file: string, raw: unknown): ModelConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new InputError(`${file}: not a JSON object`);
  const cfg = raw as RawConfig;
  const cls = modelClass(file, cfg);
  if (cls === "GPT2LMHeadModel") return parseGpt2(file, cfg);
  if (cls === "GPTNeoXForCausalLM") return parseNeox(file, cfg);
  return parseLlama(file, cfg, cls);
}

function parseGpt2(file: string, cfg: RawConfig): Gpt2Config {
  activation(file, cfg, "activation_function", "gelu_new", "gelu_new");
  if (cfg.tie_word_embeddings === false) throw new InputError(`${file}: untied word embeddings are not supported for GPT-2`);
  const nEmbd = positiveInt(file, cfg, "n_embd");
  const nHead = positiveInt(file, cfg, "n_head");
  if (nEmbd % nHead !== 0) throw new InputError(`${file}: n_embd ${nEmbd} is not divisible by n_head ${nHead}`);
  return {
    architecture: "gpt2",
    vocabSize: positiveInt(file, cfg, "vocab_size"),
    contextLength: positiveInt(file, cfg, "n_positions"),
    nEmbd,
    nLayer: positiveInt(file, cfg, "n_layer"),
    nHead,
    nInner: cfg.n_inner === null || cfg.n_inner === undefined ? 4 * nEmbd : positiveInt(file, cfg, "n_inner"),
    layerNormEps: positiveNumber(file, cfg, "layer_norm_epsilon", 1e-5),
  };
}

/** Defaults are GPTNeoXConfig's. */
function parseNeox(file: string, cfg: RawConfig): NeoxConfig {
  activation(file, cfg, "hidden_act", "gelu", "gelu");
  const nEmbd = positiveInt(file, cfg, "hidden_size");
  const nHead = positiveInt(file, cfg, "num_attention_heads");
  const head = headSize(file, nEmbd, nHead);
  const rotaryPct = cfg.rotary_pct ?? 0.25;
  if (typeof rotaryPct !== "number" || !(rotaryPct > 0 && rotaryPct <= 1)) {
    throw new InputError(`${file}: "rotary_pct" must be a number in (0, 1], got ${JSON.stringify(rotaryPct)}`);
  }
  const rotaryDims = Math.floor(head * rotaryPct);
  if (rotaryDims === 0 || rotaryDims % 2 !== 0) {
    throw new InputError(
      `${file}: rotary_pct ${rotaryPct} of head size ${head} rotates ${rotaryDims} features; rotary embedding needs an even, non-zero number`,
    );
  }
  return {
    architecture: "gpt-neox",
    vocabSize: positiveInt(file, cfg, "vocab_size"),
    contextLength: positiveInt(file, cfg, "max_position_embeddings"),
    nEmbd,
    nLayer: positiveInt(file, cfg, "num_hidden_layers"),
    nHead,
    nInner: positiveInt(file, cfg, "intermediate_size"),
    layerNormEps: positiveNumber(file, cfg, "layer_norm_eps", 1e-5),
    rotaryDims,
    rotaryBase: positiveNumber(file, cfg, "rotary_emb_base", 10000),
    ropeScaling: parseRopeScaling(file, cfg.rope_scaling),
    parallelResidual: flag(file, cfg, "use_parallel_residual", true),
    attentionBias: flag(file, cfg, "attention_bias", true),
    tieWordEmbeddings: flag(file, cfg, "tie_word_embeddings", false),
  };
}

/**
 * The attention window of a Mistral or Qwen2 config, if some layer's slides: null when every layer
 * sees the whole context. Mistral: sliding_window (4,096 when absent), unless null. Qwen2: the
 * layers `layer_types` names "sliding_attention", or else, with use_sliding_window, the layers from
 * max_window_layers (28 when absent) up.
 */
function slidingWindow(file: string, cfg: RawConfig, cls: SupportedClass, layers: number): number | null {
  if (cls === "LlamaForCausalLM" || cfg.sliding_window === null) return null;
  if (cls === "Qwen2ForCausalLM") {
    const slides = Array.isArray(cfg.layer_types)
      ? cfg.layer_types.includes("sliding_attention")
      : flag(file, cfg, "use_sliding_window", false) && nonNegativeInt(file, cfg, "max_window_layers", 28) < layers;
    if (!slides) return null;
  }
  return positiveInt(file, cfg, "sliding_window", 4096);
}

/** Defaults are LlamaConfig's, MistralConfig's and Qwen2Config's (they agree on every key read here). */
function parseLlama(file: string, cfg: RawConfig, cls: SupportedClass): LlamaConfig {
  activation(file, cfg, "hidden_act", "silu", "silu");
  if (cls === "LlamaForCausalLM" && flag(file, cfg, "mlp_bias", false)) {
    throw new InputError(`${file}: mlp_bias true is not supported (the tracked MLP matrices of Llama have no bias)`);
  }
  const nEmbd = positiveInt(file, cfg, "hidden_size");
  const nHead = positiveInt(file, cfg, "num_attention_heads");
  const headDim = cfg.head_dim === null || cfg.head_dim === undefined ? headSize(file, nEmbd, nHead) : positiveInt(file, cfg, "head_dim");
  const nKvHead = positiveInt(file, cfg, "num_key_value_heads", nHead);
  if (nHead % nKvHead !== 0) throw new InputError(`${file}: num_key_value_heads ${nKvHead} does not divide num_attention_heads ${nHead}`);
  const contextLength = positiveInt(file, cfg, "max_position_embeddings");
  const nLayer = positiveInt(file, cfg, "num_hidden_layers");
  const window = slidingWindow(file, cfg, cls, nLayer);
  if (window !== null && window < contextLength) {
    throw new InputError(
      `${file}: sliding_window ${window} is shorter than max_position_embeddings ${contextLength}, the context this project runs the model at; sliding-window attention is not implemented`,
    );
  }
  const attentionBias = cls === "LlamaForCausalLM" && flag(file, cfg, "attention_bias", false);
  return {
    architecture: "llama",
    vocabSize: positiveInt(file, cfg, "vocab_size"),
    contextLength,
    nEmbd,
    nLayer,
    nHead,
    nInner: positiveInt(file, cfg, "intermediate_size"),
    nKvHead,
    headDim,
    rmsNormEps: positiveNumber(file, cfg, "rms_norm_eps", 1e-6),
    ropeTheta: positiveNumber(file, cfg, "rope_theta", 10000),
    ropeScaling: parseRopeScaling(file, cfg.rope_scaling),
    qkvBias: cls === "Qwen2ForCausalLM" || attentionBias,
    outputBias: attentionBias,
    tieWordEmbeddings: flag(file, cfg, "tie_word_embeddings", false),
  };
}

export async function readConfig(modelDir: string): Promise<ModelConfig> {
  const file = path.join(modelDir, "config.json");
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(code === "ENOENT" ? `${file}: missing (is ${modelDir} a Hugging Face model folder?)` : `${file}: cannot read (${code})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new InputError(`${file}: malformed JSON (${(err as Error).message})`);
  }
  return parseConfig(file, raw);
}

/**
 * The config.json a Hugging Face GPT2LMHeadModel would write for this configuration; bos and eos
 * are the tokenizer's end-of-text id (GPT-2's layout puts it last).
 */
export function toHfConfig(cfg: Gpt2Config, eosTokenId = cfg.vocabSize - 1): Record<string, unknown> {
  return {
    architectures: ["GPT2LMHeadModel"],
    model_type: "gpt2",
    activation_function: "gelu_new",
    vocab_size: cfg.vocabSize,
    n_positions: cfg.contextLength,
    n_ctx: cfg.contextLength,
    n_embd: cfg.nEmbd,
    n_layer: cfg.nLayer,
    n_head: cfg.nHead,
    n_inner: cfg.nInner === 4 * cfg.nEmbd ? null : cfg.nInner,
    layer_norm_epsilon: cfg.layerNormEps,
    resid_pdrop: 0,
    embd_pdrop: 0,
    attn_pdrop: 0,
    bos_token_id: eosTokenId,
    eos_token_id: eosTokenId,
    tie_word_embeddings: true,
    torch_dtype: "float32",
  };
}
