import path from "node:path";
import { InputError } from "../util/errors.js";
import { BYTE_LEVEL_CHARS } from "./byte-level.js";
import { isPlainObject, readJsonFile, readTextFile } from "./read-files.js";

export type Merge = readonly [left: string, right: string];

/** The two files of a GPT-2 style byte-level BPE tokenizer, checked for consistency. */
export interface Gpt2Bpe {
  vocab: Map<string, number>;
  /** In priority order: merges[0] is applied first. */
  merges: Merge[];
}

export const VOCAB_FILE = "vocab.json";
export const MERGES_FILE = "merges.txt";

export async function readGpt2Bpe(dir: string): Promise<Gpt2Bpe> {
  const vocabFile = path.join(dir, VOCAB_FILE);
  const mergesFile = path.join(dir, MERGES_FILE);
  const vocab = parseVocab(await readJsonFile(vocabFile), vocabFile);
  const merges = parseMerges(await readTextFile(mergesFile), mergesFile, vocab);
  return { vocab, merges };
}

function parseVocab(json: unknown, file: string): Map<string, number> {
  if (!isPlainObject(json)) throw new InputError(`${file}: expected a JSON object mapping tokens to ids`);
  const vocab = new Map<string, number>();
  const tokenOfId = new Map<number, string>();
  for (const [token, id] of Object.entries(json)) {
    if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 0) {
      throw new InputError(`${file}: token ${JSON.stringify(token)} has id ${JSON.stringify(id)}, expected a non-negative integer`);
    }
    const other = tokenOfId.get(id);
    if (other !== undefined) {
      throw new InputError(`${file}: id ${id} is given to both ${JSON.stringify(other)} and ${JSON.stringify(token)}`);
    }
    tokenOfId.set(id, token);
    vocab.set(token, id);
  }
  // Without all 256 byte tokens some texts could not be encoded at all.
  BYTE_LEVEL_CHARS.forEach((char, byte) => {
    if (!vocab.has(char)) {
      throw new InputError(
        `${file}: no token for byte 0x${byte.toString(16).padStart(2, "0")} (${JSON.stringify(char)}); not a GPT-2 byte-level BPE vocabulary`,
      );
    }
  });
  return vocab;
}

/** Parses merges.txt as the Rust `tokenizers` crate does: `#version` lines and blank lines are skipped. */
function parseMerges(text: string, file: string, vocab: ReadonlyMap<string, number>): Merge[] {
  const merges: Merge[] = [];
  text.split("\n").forEach((rawLine, index) => {
    const line = rawLine.endsWith("\r") ? rawLine.slice(0, -1) : rawLine;
    if (line === "" || line.startsWith("#version")) return;
    const where = `${file}, line ${index + 1}`;
    const parts = line.split(" ");
    if (parts.length !== 2 || parts[0] === "" || parts[1] === "") {
      throw new InputError(`${where}: expected two tokens separated by one space, got ${JSON.stringify(line)}`);
    }
    const [left, right] = parts as [string, string];
    for (const token of [left, right, left + right]) {
      if (!vocab.has(token)) throw new InputError(`${where}: token ${JSON.stringify(token)} is not in ${VOCAB_FILE}`);
    }
    merges.push([left, right]);
  });
  return merges;
}
