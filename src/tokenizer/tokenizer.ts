import { existsSync, statSync } from "node:fs";
import path from "node:path";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { errorMessage, InputError } from "../util/errors.js";
import { MERGES_FILE, readGpt2Bpe, VOCAB_FILE } from "./gpt2-files.js";
import { continuationTokenizerJson } from "./continuation-json.js";
import { GPT2_EOS_TOKEN, gpt2TokenizerJson } from "./gpt2-json.js";
import { isPlainObject, readJsonFile } from "./read-files.js";
import { addBosToken, readTokenizerConfig, specialTokenName, type TokenizerConfig } from "./tokenizer-config.js";

/** Text <-> token ids, as the model folder's Hugging Face tokenizer does it. */
export interface Tokenizer {
  /** Number of ids: one more than the largest token id (the model's embedding rows must cover it). */
  readonly vocabSize: number;
  /** End-of-text token, when the tokenizer names one (GPT-2: `<|endoftext|>`). */
  readonly eosTokenId: number | undefined;
  /** Beginning-of-sequence token that leads every text sequence, when the tokenizer adds one (Llama: `<s>`; GPT-2: none). */
  readonly bosTokenId: number | undefined;
  /** Ids of the text on its own, without any added special tokens. Special tokens written in the text are recognised. */
  encode(text: string): number[];
  /** Ids of a text that starts a sequence (a corpus document, a query's prompt): `bosTokenId` first, when there is one. */
  encodeSequence(text: string): number[];
  /** Ids of a text that continues the text before it (a query's completion): no special tokens, and no space put before it. */
  encodeContinuation(text: string): number[];
  /** Exact text of the ids (no clean-up of spaces); bytes of a split character show as U+FFFD. */
  decode(ids: readonly number[]): string;
  /** Text of one token, for showing per-token scores: its leading space kept (SentencePiece's `▁` shown as a space). */
  tokenText(id: number): string;
}

export const TOKENIZER_FILE = "tokenizer.json";
/** Files that hold a tokenizer; a folder with none of them takes token ids only. */
export const TOKENIZER_FILES = [TOKENIZER_FILE, VOCAB_FILE, MERGES_FILE] as const;

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
  const hf = hfTokenizer(json, config, source);
  const continuationJson = continuationTokenizerJson(json);
  const continuation = continuationJson === undefined ? hf : hfTokenizer(continuationJson, config, source);
  return new HfBackedTokenizer(hf, continuation, source, specialTokenName(config, "eos_token") ?? GPT2_EOS_TOKEN, bosTokenId(hf, config, source));
}

function hfTokenizer(json: Record<string, unknown>, config: TokenizerConfig, source: string): HfTokenizerApi {
  try {
    // Clean-up would turn "a ." into "a.": decoded text must be the text that was encoded.
    return new HfTokenizer(json, { ...config.json, clean_up_tokenization_spaces: false });
  } catch (err) {
    throw new InputError(`${source}: not a usable tokenizer (${errorMessage(err)})`, { cause: err });
  }
}

/**
 * The token that leads text sequences: the config's bos_token when add_bos_token is true, none when
 * false; without the flag, the one tokenizer.json's post-processor puts first, as Hugging Face's
 * fast tokenizers do (Llama 3 folders say it only there).
 */
function bosTokenId(hf: HfTokenizerApi, config: TokenizerConfig, source: string): number | undefined {
  const add = addBosToken(config);
  if (add === false) return undefined;
  if (add === true) {
    const name = specialTokenName(config, "bos_token");
    if (name === undefined) throw new InputError(`${config.file}: add_bos_token is true but no bos_token is named`);
    const id = hf.token_to_id(name);
    if (id === undefined) throw new InputError(`${config.file}: bos_token ${JSON.stringify(name)} is not in the vocabulary of ${source}`);
    return id;
  }
  const plain = hf.encode("a", { add_special_tokens: false }).ids;
  const withSpecial = hf.encode("a", { add_special_tokens: true }).ids;
  return withSpecial.length > plain.length && withSpecial[0] !== plain[0] ? withSpecial[0] : undefined;
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
    /** The same tokenizer for text in mid-sequence (continuation-json.ts); hf itself where that is no different. */
    private readonly continuation: HfTokenizerApi,
    private readonly source: string,
    eosToken: string,
    readonly bosTokenId: number | undefined,
  ) {
    let maxId = -1;
    for (const id of hf.get_vocab().values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    this.eosTokenId = hf.token_to_id(eosToken);
  }

  encode(text: string): number[] {
    return this.encodeWith(this.hf, text);
  }

  encodeSequence(text: string): number[] {
    const ids = this.encode(text);
    return this.bosTokenId === undefined ? ids : [this.bosTokenId, ...ids];
  }

  encodeContinuation(text: string): number[] {
    return this.encodeWith(this.continuation, text);
  }

  private encodeWith(hf: HfTokenizerApi, text: string): number[] {
    const { ids, tokens } = hf.encode(text, { add_special_tokens: false });
    // A vocabulary without unk token has no id for a piece it lacks; the library gives undefined.
    const missing = ids.findIndex((id) => typeof id !== "number");
    if (missing >= 0) {
      throw new InputError(`${this.source}: cannot encode ${JSON.stringify(tokens[missing])}: not in the vocabulary`);
    }
    return ids;
  }

  decode(ids: readonly number[]): string {
    return this.decodeWith(this.hf, ids);
  }

  tokenText(id: number): string {
    return this.decodeWith(this.continuation, [id]);
  }

  private decodeWith(hf: HfTokenizerApi, ids: readonly number[]): string {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || hf.id_to_token(id) === undefined) {
        throw new InputError(`token id ${id} is not in the vocabulary of ${this.source}`);
      }
    }
    // The library refuses an empty list.
    return ids.length === 0 ? "" : hf.decode([...ids], { skip_special_tokens: false });
  }
}
