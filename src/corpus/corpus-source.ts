/** A corpus file as a re-readable stream of training sequences, with its fingerprint. */
import { stat } from "node:fs/promises";
import path from "node:path";
import { type CorpusSequence, readSequences } from "./sequences.js";
import { InputError } from "../util/errors.js";
import { fingerprintFiles, fingerprintValue } from "../util/fingerprint.js";
import { type ModelTokenizer, modelVocabulary } from "../model/open-model.js";
import { TOKENIZER_FILES } from "../tokenizer/tokenizer.js";
import { TOKENIZER_CONFIG_FILE } from "../tokenizer/tokenizer-config.js";

export interface CorpusSource {
  path: string;
  /** Identifies the sequences: file content, tokenizer files, context length and limit. */
  fingerprint: string;
  /** A fresh pass over the sequences (at most maxSequences). */
  sequences(): AsyncGenerator<CorpusSequence>;
  /** Number of sequences, by one pass over the file. */
  count(): Promise<number>;
}

export async function corpusSource(file: string, opened: ModelTokenizer, maxSequences = Infinity): Promise<CorpusSource> {
  const corpusPath = path.resolve(file);
  await assertCorpusFile(corpusPath);
  const contextLength = opened.model.config.contextLength;
  const vocabulary = modelVocabulary(opened);
  const fingerprint = fingerprintValue({
    corpus: await fingerprintFiles([corpusPath]),
    tokenizer: await fingerprintFiles([...TOKENIZER_FILES, TOKENIZER_CONFIG_FILE].map((f) => path.join(opened.dir, f))),
    contextLength,
    maxSequences: Number.isFinite(maxSequences) ? maxSequences : null,
  });
  async function* sequences(): AsyncGenerator<CorpusSequence> {
    if (maxSequences <= 0) return;
    for await (const seq of readSequences(corpusPath, vocabulary, { contextLength })) {
      yield seq;
      if (seq.ordinal + 1 >= maxSequences) return;
    }
  }
  const count = async () => {
    let n = 0;
    for await (const _ of sequences()) n++;
    return n;
  };
  return { path: corpusPath, fingerprint, sequences, count };
}

/** Checked before any pass: the fingerprint skips missing files, and a pass would fail only once progress is drawn. */
async function assertCorpusFile(corpusPath: string): Promise<void> {
  const info = await stat(corpusPath).catch((err: NodeJS.ErrnoException) => {
    throw new InputError(
      err.code === "ENOENT" ? `${corpusPath}: missing (expected a JSONL corpus file)` : `${corpusPath}: cannot read (${err.code ?? err.message})`,
      { cause: err },
    );
  });
  if (!info.isFile()) throw new InputError(`${corpusPath}: not a file (expected a JSONL corpus file)`);
}
