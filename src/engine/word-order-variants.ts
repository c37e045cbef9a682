/**
 * The word-order experiment of Grosse et al. 2023 (Section 5.3) on one indexed sequence: the same
 * tokens in another order, or with a part left out. Each variant is made from the sequence's
 * tokens and its token scores for the query, by these rules (the README documents them):
 *
 * - sentences: a sentence ends after a token whose text, trailing whitespace aside, ends in
 *   ".", "!" or "?"; the rest after the last such token is a sentence too.
 * - halves: split at the word start (a token whose text begins with whitespace) nearest the
 *   middle, or at the middle when no token starts a word.
 * - completion-related words: the word of the token predicted by the position with the highest
 *   token score (position t carries the update that predicts token t+1). A word is a token that
 *   does not start with a letter or digit (" France", "(") with the tokens after it that do
 *   (" viol" "in"); the first token of the sequence starts a word in any case.
 *
 * A variant equal to the sequence, or shorter than SEQUENCE_TOKENS.min, is left out. A sequence
 * that starts with the tokenizer's beginning-of-sequence token keeps it first: the variants are
 * made of the tokens after it.
 */
import { SEQUENCE_TOKENS } from "../indexer/query-limits.js";
import type { TokenScore, WordOrderVariant as Variant } from "./types.js";

type Token = Pick<TokenScore, "tokenId" | "text" | "score">;

const SENTENCE_END = /[.!?]\s*$/;
const WORD_START = /^\s/;
const WORD_CONTINUATION = /^[\p{L}\p{N}]/u;

/** The variants of a sequence given as its token scores (in position order), in the order of VariantKind. */
export function wordOrderVariants(sequence: readonly Token[], bosTokenId?: number): Variant[] {
  if (bosTokenId !== undefined && sequence[0]?.tokenId === bosTokenId) {
    return wordOrderVariants(sequence.slice(1)).map((v) => ({ kind: v.kind, tokens: [bosTokenId, ...v.tokens] }));
  }
  const tokens = sequence.map((t) => t.tokenId);
  const sentences = splitAt(tokens, sentenceStarts(sequence));
  const middle = halfwayWordStart(sequence);
  const words = completionRelatedWords(sequence);
  const candidates: Variant[] = [
    { kind: "sentences-swapped", tokens: sentences.length > 1 ? sentences.reverse().flat() : tokens },
    { kind: "halves-swapped", tokens: [...tokens.slice(middle), ...tokens.slice(0, middle)] },
  ];
  if (words) {
    candidates.push(
      { kind: "parts-swapped", tokens: [...tokens.slice(words.start), ...tokens.slice(0, words.start)] },
      { kind: "before-removed", tokens: tokens.slice(words.start) },
      { kind: "after-removed", tokens: tokens.slice(0, words.end) },
    );
  }
  return candidates.filter((v) => v.tokens.length >= SEQUENCE_TOKENS.min && !sameTokens(v.tokens, tokens));
}

/** Positions [start, end) of the completion-related words; undefined when the best position predicts nothing (it is the last). */
export function completionRelatedWords(sequence: readonly Token[]): { start: number; end: number } | undefined {
  if (sequence.length === 0) return undefined;
  let best = 0;
  sequence.forEach((t, i) => {
    if (t.score > sequence[best].score) best = i;
  });
  const predicted = best + 1;
  if (predicted >= sequence.length) return undefined;
  let start = predicted;
  while (start > 0 && WORD_CONTINUATION.test(sequence[start].text)) start--;
  let end = predicted + 1;
  while (end < sequence.length && WORD_CONTINUATION.test(sequence[end].text)) end++;
  return { start, end };
}

/** Positions where a sentence other than the first starts. */
function sentenceStarts(sequence: readonly Token[]): number[] {
  const starts: number[] = [];
  sequence.forEach((t, i) => {
    if (i + 1 < sequence.length && SENTENCE_END.test(t.text)) starts.push(i + 1);
  });
  return starts;
}

function halfwayWordStart(sequence: readonly Token[]): number {
  const middle = Math.floor(sequence.length / 2);
  let best = middle;
  let distance = Number.POSITIVE_INFINITY;
  sequence.forEach((t, i) => {
    if (i > 0 && WORD_START.test(t.text) && Math.abs(i - middle) < distance) {
      best = i;
      distance = Math.abs(i - middle);
    }
  });
  return best;
}

function splitAt(tokens: readonly number[], starts: readonly number[]): number[][] {
  const bounds = [0, ...starts, tokens.length];
  return bounds.slice(1).map((end, i) => tokens.slice(bounds[i], end));
}

function sameTokens(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
