import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { readCorpus } from "./corpus.js";
import { fieldError } from "./fields.js";
import type { JsonlOptions } from "./jsonl.js";
import { type Sequence, windowSequences } from "./windows.js";

export interface CorpusSequence extends Sequence {
  /** 0-based position of the sequence in the corpus, in file order. */
  ordinal: number;
}

export interface SequenceOptions extends JsonlOptions {
  contextLength: number;
  stride?: number;
}

/**
 * Streams the training sequences of a corpus JSONL file: each document is read, tokenized when
 * given as text, and cut into windows (see windowSequences), numbered in file order.
 */
export async function* readSequences(
  file: string,
  tokenizer: Pick<Tokenizer, "encodeSequence" | "decode" | "vocabSize">,
  options: SequenceOptions,
): AsyncGenerator<CorpusSequence> {
  // Document ids are unique, but a window id "a#24" could still equal another document's id.
  const externalIds = new Set<string>();
  let ordinal = 0;
  const windowOptions = { contextLength: options.contextLength, stride: options.stride, decode: (ids: number[]) => tokenizer.decode(ids) };
  for await (const doc of readCorpus(file, { maxLineBytes: options.maxLineBytes, vocabSize: tokenizer.vocabSize })) {
    const tokens = doc.tokens ?? tokenizer.encodeSequence(doc.text);
    for (const sequence of windowSequences({ id: doc.id, tokens, text: doc.text }, windowOptions)) {
      if (externalIds.has(sequence.externalId)) {
        throw fieldError(
          `${file}, line ${doc.line}`,
          `sequence id ${JSON.stringify(sequence.externalId)} is also used by another document (split documents get "<id>#<offset>"); rename one`,
        );
      }
      externalIds.add(sequence.externalId);
      yield { ...sequence, ordinal: ordinal++ };
    }
  }
}
