import { describe, expect, it } from "vitest";
import { completionRelatedWords, wordOrderVariants } from "../src/engine/word-order-variants.js";

/** Tokens with ids 0, 1, 2, ... in order, so that a variant's ids show where each token came from. */
const sequence = (texts: string[], scores: number[]) => texts.map((text, i) => ({ tokenId: i, text, score: scores[i] }));

// "Paris is in France. It is big." with the most influence on " in", the update that predicts " France".
const paris = sequence([" Paris", " is", " in", " France", ".", " It", " is", " big", "."], [0.1, 0.2, 3, 0.5, 0, 0.1, 0.1, 0.2, 0]);

describe("word-order variants of a sequence", () => {
  it("swaps the sentences and the halves, and moves or removes the parts around the completion-related words", () => {
    const variants = Object.fromEntries(wordOrderVariants(paris).map((v) => [v.kind, v.tokens]));
    expect(variants).toEqual({
      "sentences-swapped": [5, 6, 7, 8, 0, 1, 2, 3, 4],
      // 9 tokens: the middle is 4; the nearest word start is token 3 (" France") at distance 1, before token 5.
      "halves-swapped": [3, 4, 5, 6, 7, 8, 0, 1, 2],
      "parts-swapped": [3, 4, 5, 6, 7, 8, 0, 1, 2],
      "before-removed": [3, 4, 5, 6, 7, 8],
      "after-removed": [0, 1, 2, 3],
    });
  });

  it("takes the whole word of the token the best position predicts", () => {
    const honshu = sequence(["Part", " of", " Hon", "shu", ",", " Japan"], [0, 2, 0.5, 0.1, 0.1, 0]);
    expect(completionRelatedWords(honshu)).toEqual({ start: 2, end: 4 });
    // " viol" predicts "in": the word is " violin", from " viol" on.
    const violin = sequence([" the", " viol", "in", " family"], [0.5, 3, 0.2, 0]);
    expect(completionRelatedWords(violin)).toEqual({ start: 1, end: 3 });
    const first = sequence(["P", "ar", "is", " is"], [0, 1, 0, 0]);
    expect(completionRelatedWords(first)).toEqual({ start: 0, end: 3 });
    // The last token predicts nothing: no completion-related words, and no variants made of them.
    const last = sequence([" a", " b", "."], [-1, -2, 0]);
    expect(completionRelatedWords(last)).toBeUndefined();
    expect(wordOrderVariants(last).map((v) => v.kind)).toEqual(["halves-swapped"]);
  });

  it("keeps a leading beginning-of-sequence token first", () => {
    const BOS = 100;
    const withBos = [{ tokenId: BOS, text: "<s>", score: 0.5 }, ...paris];
    const expected = wordOrderVariants(paris).map((v) => ({ kind: v.kind, tokens: [BOS, ...v.tokens] }));
    expect(wordOrderVariants(withBos, BOS)).toEqual(expected);
    // When the sequence does not start with the tokenizer's BOS, its first token is moved like any other.
    const moved = wordOrderVariants(withBos, 7);
    expect(moved).toEqual(wordOrderVariants(withBos));
    expect(moved.find((v) => v.kind === "sentences-swapped")?.tokens.at(-1)).toBe(4);
  });

  it("leaves out variants equal to the sequence or too short to score", () => {
    // One sentence, so no sentence swap; the best token predicts " purr", the completion-related word.
    const short = sequence([" cats", " purr", " loudly"], [5, 0, 0]);
    expect(wordOrderVariants(short)).toEqual([
      { kind: "halves-swapped", tokens: [1, 2, 0] },
      { kind: "parts-swapped", tokens: [1, 2, 0] },
      { kind: "before-removed", tokens: [1, 2] },
      { kind: "after-removed", tokens: [0, 1] },
    ]);
    // Two tokens: removing either side leaves one token, which predicts nothing.
    expect(wordOrderVariants(sequence([" a", " b"], [1, 0])).map((v) => v.kind)).toEqual(["halves-swapped", "parts-swapped"]);
  });
});
