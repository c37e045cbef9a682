import { existsSync, statSync } from "node:fs";
import path from "node:path";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { errorMessage, InputError } from "../util/errors.js";
import { MERGES_FILE, readGpt2Bpe, VOCAB_FILE } from "./gpt2-files.js";
import { GPT2_EOS_TOKEN, gpt2TokenizerJson } from "./gpt2-json.js";
import { isPlainObject, readJsonFile } from "./read-files.js";

/** Text <-> token ids, as the model folder's Hugging Face tokenizer does it. */
export interface Tokenizer {
  /** Number of ids: one more than the largest token id (the model's embedding rows must cover it). */
  readonly vocabSize: number;
  /** End-of-text token, when the tokenizer names one (GPT-2: `<|endoftext|>`). */
  readonly eosTokenId: number | undefined;
  /** Ids of the text, without any added special tokens. Special tokens written in the text are recognised. */
  encode(text: string): number[];
  /** Exact text of the ids (no clean-up of spaces); bytes of a split character show as U+FFFD. */
  decode(ids: readonly number[]): string;
  /** Decoded text of one token, for showing per-token scores. */
  tokenText(id: number): string;
}

export const TOKENIZER_FILE = "tokenizer.json";
export const TOKENIZER_CONFIG_FILE = "tokenizer_config.json";

/**
 * Loads the tokenizer of a Hugging Face model folder: tokenizer.json when present, else GPT-2's
 * vocab.json + merges.txt, turned into the equivalent tokenizer.json so one library serves both.
 */
export async function loadTokenizer(modelDir: string): Promise<Tokenizer> {
  if (!existsSync(modelDir) || !statSync(modelDir).isDirectory()) {
    throw new InputError(`${modelDir}: model folder not found`);
  }
  const config = await readTokenizerConfig(modelDir);
  const { json, source } = await readTokenizerJson(modelDir);
  let hf: HfTokenizerApi;
  try {
    // Clean-up would turn "a ." into "a.": decoded text must be the text that was encoded.
    hf = new HfTokenizer(json, { ...config, clean_up_tokenization_spaces: false });
  } catch (err) {
    throw new InputError(`${source}: not a usable tokenizer (${errorMessage(err)})`, { cause: err });
  }
  return new HfBackedTokenizer(hf, source, eosTokenName(config));
}

async function readTokenizerJson(modelDir: string): Promise<{ json: Record<string, unknown>; source: string }> {
  const tokenizerFile = path.join(modelDir, TOKENIZER_FILE);
  if (existsSync(tokenizerFile)) {
    const json = await readJsonFile(tokenizerFile);
    if (!isPlainObject(json) || !isPlainObject(json.model)) {
      throw new InputError(`${tokenizerFile}: expected a Hugging Face tokenizer.json (an object with a "model" object)`);
    }
    return { json, source: tokenizerFile };
  }
  const hasVocab = existsSync(path.join(modelDir, VOCAB_FILE));
  const hasMerges = existsSync(path.join(modelDir, MERGES_FILE));
  if (hasVocab && hasMerges) return { json: gpt2TokenizerJson(await readGpt2Bpe(modelDir)), source: path.join(modelDir, VOCAB_FILE) };
  if (hasVocab || hasMerges) {
    const [present, missing] = hasVocab ? [VOCAB_FILE, MERGES_FILE] : [MERGES_FILE, VOCAB_FILE];
    throw new InputError(`${modelDir}: has ${present} but no ${missing}; a GPT-2 BPE tokenizer needs both`);
  }
  throw new InputError(`${modelDir}: no tokenizer found (expected ${TOKENIZER_FILE}, or ${VOCAB_FILE} and ${MERGES_FILE})`);
}

async function readTokenizerConfig(modelDir: string): Promise<Record<string, unknown>> {
  const file = path.join(modelDir, TOKENIZER_CONFIG_FILE);
  if (!existsSync(file)) return {};
  const json = await readJsonFile(file);
  if (!isPlainObject(json)) throw new InputError(`${file}: expected a JSON object`);
  return json;
}

/** The config's eos_token, a string or an AddedToken object; GPT-2's when not given. */
function eosTokenName(config: Record<string, unknown>): string {
  const eos = config.eos_token;
  if (typeof eos === "string") return eos;
  if (isPlainObject(eos) && typeof eos.content === "string") return eos.content;
  return GPT2_EOS_TOKEN;
}

/**
 * The part of the library's Tokenizer used here, typed by hand: the library's .d.ts files import
 * each other without file extensions, which NodeNext resolution rejects, so they arrive as `any`.
 */
interface HfTokenizerApi {
  encode(text: string, options: { add_special_tokens: boolean }): { ids: number[]; tokens: string[] };
  decode(ids: number[], options: { skip_special_tokens: boolean }): string;
  token_to_id(token: string): number | undefined;
  id_to_token(id: number): string | undefined;
  get_vocab(): Map<string, number>;
}

class HfBackedTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly eosTokenId: number | undefined;

  constructor(
    private readonly hf: HfTokenizerApi,
    private readonly source: string,
    eosToken: string,
  ) {
    let maxId = -1;
    for (const id of hf.get_vocab().values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    this.eosTokenId = hf.token_to_id(eosToken);
  }

  encode(text: string): number[] {
    const { ids, tokens } = this.hf.encode(text, { add_special_tokens: false });
    // A vocabulary without unk token has no id for a piece it lacks; the library gives undefined.
    const missing = ids.findIndex((id) => typeof id !== "number");
    if (missing >= 0) {
      throw new InputError(`${this.source}: cannot encode ${JSON.stringify(tokens[missing])}: not in the vocabulary`);
    }
    return ids;
  }

  decode(ids: readonly number[]): string {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.hf.id_to_token(id) === undefined) {
        throw new InputError(`token id ${id} is not in the vocabulary of ${this.source}`);
      }
    }
    // The library refuses an empty list.
    return ids.length === 0 ? "" : this.hf.decode([...ids], { skip_special_tokens: false });
  }

  tokenText(id: number): string {
    return this.decode([id]);
  }
}
