/**
 * Hugging Face `config.json` for the architectures this project implements, validated into a
 * typed configuration. New architectures (GPT-NeoX/Pythia, Llama) add a parser here and a model
 * module beside gpt2.ts.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { InputError } from "../util/errors.js";

export interface Gpt2Config {
  architecture: "gpt2";
  vocabSize: number;
  /** Longest sequence the position embedding covers. */
  contextLength: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  /** Width of the MLP's hidden layer (4 x nEmbd unless n_inner says otherwise). */
  nInner: number;
  layerNormEps: number;
}

export type ModelConfig = Gpt2Config;

const SUPPORTED = { GPT2LMHeadModel: "gpt2" } as const;

function positiveInt(file: string, raw: Record<string, unknown>, key: string): number {
  const v = raw[key];
  if (!Number.isSafeInteger(v) || (v as number) <= 0) {
    throw new InputError(`${file}: "${key}" must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v as number;
}

export function parseConfig(file: string, raw: unknown): ModelConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new InputError(`${file}: not a JSON object`);
  const cfg = raw as Record<string, unknown>;
  const architectures = Array.isArray(cfg.architectures) ? (cfg.architectures as unknown[]) : [];
  const arch = architectures.find((a): a is keyof typeof SUPPORTED => typeof a === "string" && a in SUPPORTED);
  if (!arch && !(architectures.length === 0 && cfg.model_type === "gpt2")) {
    const named = architectures.length ? architectures.join(", ") : `model_type ${JSON.stringify(cfg.model_type)}`;
    throw new InputError(`${file}: architecture ${named} is not supported (supported: ${Object.keys(SUPPORTED).join(", ")})`);
  }
  const activation = cfg.activation_function ?? "gelu_new";
  if (activation !== "gelu_new") {
    throw new InputError(`${file}: activation_function ${JSON.stringify(activation)} is not supported (supported: gelu_new)`);
  }
  if (cfg.tie_word_embeddings === false) throw new InputError(`${file}: untied word embeddings are not supported for GPT-2`);
  const nEmbd = positiveInt(file, cfg, "n_embd");
  const nHead = positiveInt(file, cfg, "n_head");
  if (nEmbd % nHead !== 0) throw new InputError(`${file}: n_embd ${nEmbd} is not divisible by n_head ${nHead}`);
  const eps = cfg.layer_norm_epsilon ?? 1e-5;
  if (typeof eps !== "number" || !(eps > 0)) throw new InputError(`${file}: "layer_norm_epsilon" must be a positive number`);
  return {
    architecture: "gpt2",
    vocabSize: positiveInt(file, cfg, "vocab_size"),
    contextLength: positiveInt(file, cfg, "n_positions"),
    nEmbd,
    nLayer: positiveInt(file, cfg, "n_layer"),
    nHead,
    nInner: cfg.n_inner === null || cfg.n_inner === undefined ? 4 * nEmbd : positiveInt(file, cfg, "n_inner"),
    layerNormEps: eps,
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
