/**
 * The demo's training and held-out sequences. Held out: every 25th document from the 6,000th on
 * (0-based index in file order), 240 of the 12,000; the first 6,000, which the demo indexes, are
 * all trained on.
 */
import { readCorpus } from "../corpus/corpus.js";
import { type Sequence, windowSequences } from "../corpus/windows.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";

const HELD_OUT_FROM = 6000;
const HELD_OUT_EVERY = 25;

export function isHeldOut(documentIndex: number): boolean {
  return documentIndex >= HELD_OUT_FROM && documentIndex % HELD_OUT_EVERY === 0;
}

export interface Split {
  train: Sequence[];
  heldOut: Sequence[];
  documents: number;
  heldOutDocuments: number;
}

/** Reads the corpus as the index does (same tokenizer, same windows), split by document. */
export async function readSplit(file: string, tokenizer: Pick<Tokenizer, "encodeSequence" | "decode" | "vocabSize">, contextLength: number): Promise<Split> {
  const split: Split = { train: [], heldOut: [], documents: 0, heldOutDocuments: 0 };
  const decode = (ids: number[]) => tokenizer.decode(ids);
  for await (const doc of readCorpus(file, { vocabSize: tokenizer.vocabSize })) {
    const heldOut = isHeldOut(split.documents++);
    if (heldOut) split.heldOutDocuments++;
    const sequences = windowSequences({ id: doc.id, tokens: doc.tokens ?? tokenizer.encodeSequence(doc.text), text: doc.text }, { contextLength, decode });
    (heldOut ? split.heldOut : split.train).push(...sequences);
  }
  return split;
}
