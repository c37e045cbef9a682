import { mkdir } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "../util/atomic-write.js";
import { InputError } from "../util/errors.js";
import { BYTE_LEVEL_CHARS } from "./byte-level.js";
import { type Gpt2Bpe, MERGES_FILE, readGpt2Bpe, VOCAB_FILE } from "./gpt2-files.js";
import { GPT2_EOS_TOKEN, gpt2SpecialTokensMap, gpt2TokenizerConfig, gpt2TokenizerJson } from "./gpt2-json.js";
import { toJsonText } from "./json-text.js";
import { TOKENIZER_FILE } from "./tokenizer.js";
import { TOKENIZER_CONFIG_FILE } from "./tokenizer-config.js";

const BYTE_TOKENS = 256;

export interface TruncateOptions {
  /** model_max_length written to tokenizer_config.json (the model's context length); GPT-2's 1024 by default. */
  modelMaxLength?: number;
}

/**
 * Writes a GPT-2 tokenizer with only `vocabSize` ids, for a demo model with a small embedding table.
 * GPT-2's ids 0..255 are the byte tokens and id 256+i is the token made by merge i, so keeping ids
 * 0..vocabSize-2 and the merges that made them gives a valid, smaller BPE; `<|endoftext|>` takes
 * the last id, vocabSize-1. Text whose GPT-2 tokens all lie below the cut is tokenized as by GPT-2.
 * Writes vocab.json, merges.txt, tokenizer.json, tokenizer_config.json and special_tokens_map.json.
 */
export async function writeTruncatedGpt2Tokenizer(srcDir: string, outDir: string, vocabSize: number, options: TruncateOptions = {}): Promise<void> {
  if (path.resolve(srcDir) === path.resolve(outDir)) {
    throw new InputError(`${outDir}: the truncated tokenizer must go to another folder than its source`);
  }
  const truncated = truncateGpt2Bpe(await readGpt2Bpe(srcDir), vocabSize, srcDir);
  const eosId = vocabSize - 1;
  const json = gpt2TokenizerJson(truncated);
  // The Map keeps the vocabulary listed by id in the written file.
  const tokenizerJson = { ...json, model: { ...(json.model as object), vocab: truncated.vocab } };
  const files: [string, string][] = [
    [VOCAB_FILE, toJsonText(truncated.vocab)],
    [MERGES_FILE, ["#version: 0.2", ...truncated.merges.map((merge) => merge.join(" "))].join("\n")],
    [TOKENIZER_FILE, toJsonText(tokenizerJson)],
    [TOKENIZER_CONFIG_FILE, toJsonText(gpt2TokenizerConfig(eosId, options.modelMaxLength ?? 1024))],
    ["special_tokens_map.json", toJsonText(gpt2SpecialTokensMap())],
  ];
  await mkdir(outDir, { recursive: true });
  for (const [name, text] of files) await writeFileAtomic(path.join(outDir, name), `${text}\n`);
}

/** Keeps ids below vocabSize-1 and their merges, after checking the source has GPT-2's id layout. */
function truncateGpt2Bpe({ vocab, merges }: Gpt2Bpe, vocabSize: number, srcDir: string): Gpt2Bpe {
  const keptMerges = vocabSize - BYTE_TOKENS - 1;
  if (!Number.isInteger(vocabSize) || keptMerges < 0 || keptMerges > merges.length) {
    throw new InputError(
      `vocabulary size ${vocabSize} is out of range: it must be an integer from ${BYTE_TOKENS + 1} (the byte tokens and ${GPT2_EOS_TOKEN}) to ` +
        `${BYTE_TOKENS + merges.length + 1} (all of ${srcDir})`,
    );
  }
  const tokenOfId = new Map<number, string>();
  for (const [token, id] of vocab) tokenOfId.set(id, token);
  const layoutError = (problem: string): InputError =>
    new InputError(`${srcDir}: ${problem}, so the vocabulary cannot be cut by id (GPT-2's layout: bytes at 0..255, merge i at 256+i)`);
  const byteTokens = new Set(BYTE_LEVEL_CHARS);
  for (let id = 0; id < BYTE_TOKENS; id++) {
    if (!byteTokens.has(tokenOfId.get(id) ?? "")) throw layoutError(`id ${id} is not a byte token`);
  }
  for (let i = 0; i < keptMerges; i++) {
    const [left, right] = merges[i];
    const id = BYTE_TOKENS + i;
    if (vocab.get(left + right) !== id) throw layoutError(`merge ${i} (${left} ${right}) does not make id ${id}`);
    // Parts made by later merges would be cut away with them.
    if (vocab.get(left)! >= id || vocab.get(right)! >= id) throw layoutError(`merge ${i} (${left} ${right}) uses a token made after it`);
  }
  const kept = new Map<string, number>();
  for (let id = 0; id < vocabSize - 1; id++) kept.set(tokenOfId.get(id)!, id);
  kept.set(GPT2_EOS_TOKEN, vocabSize - 1);
  return { vocab: kept, merges: merges.slice(0, keptMerges) };
}
