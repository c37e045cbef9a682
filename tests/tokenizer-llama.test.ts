import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readQueries } from "../src/corpus/queries.js";
import { readSequences } from "../src/corpus/sequences.js";
import { loadTokenizer, type Tokenizer } from "../src/tokenizer/tokenizer.js";
import { fixturePath, fixtureTokenizerCases, fixtureTrain } from "../support/fixtures.js";
import { collect, refusal } from "./helpers/refusal.js";

/** SentencePiece-style BPE with byte fallback (llama-tiny's tokenizer.json, shared by qwen2-tiny). */
const cases = fixtureTokenizerCases("llama-tokenizer-cases.jsonl");
const vocab = (JSON.parse(readFileSync(fixturePath("llama-tiny", "tokenizer.json"), "utf8")) as { model: { vocab: Record<string, number> } }).model.vocab;
const SPECIAL_TOKENS = ["<unk>", "<s>", "</s>"];
/** Byte-fallback tokens stand for a byte that is not a whole UTF-8 character unless it is ASCII. */
const hasSpecialToken = (text: string): boolean => SPECIAL_TOKENS.some((token) => text.includes(token));
/**
 * Where a text splits before a single space between two words, where its tokens break too; -1 when
 * it has no such space or holds a special token (after which SentencePiece starts with its own ▁).
 */
const wordSplit = (text: string): number => (hasSpecialToken(text) ? -1 : text.search(/(?<=\S) (?=\S)/));
const partialByteIds = new Set(Object.entries(vocab).flatMap(([token, id]) => (/^<0x[89A-F][0-9A-F]>$/.test(token) ? [id] : [])));

let tmp: string;
let tokenizer: Tokenizer;
beforeAll(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), "tokenizer-llama-"));
  tokenizer = await loadTokenizer(fixturePath("llama-tiny"));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("SentencePiece-style BPE from llama-tiny's tokenizer.json", () => {
  it("has 32000 ids, </s> as end of text and <s> (id 1, as the fixtures' README says) as BOS", () => {
    expect(cases.length).toBe(54);
    expect(tokenizer.vocabSize).toBe(32000);
    expect(tokenizer.eosTokenId).toBe(vocab["</s>"]);
    expect(tokenizer.bosTokenId).toBe(1);
    expect(vocab["<s>"]).toBe(1);
  });

  it.each(cases.map((c, i) => ({ i, ...c })))("encodes case $i as Hugging Face does", ({ text, ids }) => {
    expect(tokenizer.encode(text)).toEqual(ids);
    expect(tokenizer.encodeSequence(text)).toEqual([1, ...ids]);
    // A special token written in the text is recognised, and the text after it gets its own leading "▁": such texts do not decode back exactly.
    if (!hasSpecialToken(text)) expect(tokenizer.decode(ids)).toBe(text);
  });

  it("continues a text as the whole text is tokenized: no second ▁ before a completion", () => {
    let checked = 0;
    for (const { text, ids } of cases) {
      const at = wordSplit(text);
      if (at < 0) continue;
      const joined = [...tokenizer.encode(text.slice(0, at)), ...tokenizer.encodeContinuation(text.slice(at))];
      expect(joined, JSON.stringify(text)).toEqual(ids);
      checked++;
    }
    expect(checked).toBeGreaterThan(cases.length / 2);
    expect(tokenizer.encodeContinuation("")).toEqual([]);
  });

  it("shows ▁ as a space and a byte-fallback token as its character when that is a whole one", () => {
    expect(tokenizer.tokenText(vocab["▁world"])).toBe(" world");
    expect(tokenizer.tokenText(vocab["▁"])).toBe(" ");
    expect(tokenizer.tokenText(vocab["<0x0A>"])).toBe("\n");
    expect(tokenizer.tokenText(vocab["<0x41>"])).toBe("A");
    // Like GPT-2's byte tokens, a lone byte of a longer character shows as U+FFFD.
    expect(tokenizer.tokenText(vocab["<0xE6>"])).toBe("\uFFFD");
    expect(tokenizer.tokenText(1)).toBe("<s>");
    // Over whole texts: the token texts spell the text after the one space SentencePiece puts before it.
    for (const { text, ids } of cases) {
      if (hasSpecialToken(text) || ids.some((id) => partialByteIds.has(id))) continue;
      expect(ids.map((id) => tokenizer.tokenText(id)).join("")).toBe(` ${text}`);
    }
  });
});

describe("add_bos_token", () => {
  /** A copy of llama-tiny's tokenizer with `config` as tokenizer_config.json (none when undefined). */
  async function withConfig(name: string, config: Record<string, unknown> | undefined): Promise<string> {
    const made = mkdtempSync(path.join(tmp, `${name}-`));
    copyFileSync(fixturePath("llama-tiny", "tokenizer.json"), path.join(made, "tokenizer.json"));
    if (config !== undefined) writeFileSync(path.join(made, "tokenizer_config.json"), JSON.stringify(config));
    return made;
  }
  const llamaConfig = JSON.parse(readFileSync(fixturePath("llama-tiny", "tokenizer_config.json"), "utf8")) as Record<string, unknown>;

  it("is true in llama-tiny's and qwen2-tiny's tokenizer_config.json, whose sequences and prompts all start with it", async () => {
    expect(llamaConfig.add_bos_token).toBe(true);
    const qwen = await loadTokenizer(fixturePath("qwen2-tiny"));
    expect(qwen.bosTokenId).toBe(1);
    for (const model of ["llama-tiny", "qwen2-tiny"]) {
      for (const { tokens } of fixtureTrain(model)) expect(tokens[0]).toBe(tokenizer.bosTokenId);
    }
  });

  it("false leaves BOS out", async () => {
    const noBos = await loadTokenizer(await withConfig("false", { ...llamaConfig, add_bos_token: false }));
    expect(noBos.bosTokenId).toBeUndefined();
    expect(noBos.encodeSequence(cases[0].text)).toEqual(cases[0].ids);
  });

  it("when absent, the token tokenizer.json's post-processor puts first decides (as Llama 3 folders have it)", async () => {
    const { add_bos_token: _, ...withoutFlag } = llamaConfig;
    expect((await loadTokenizer(await withConfig("absent", withoutFlag))).bosTokenId).toBe(1);
    expect((await loadTokenizer(await withConfig("no-config", undefined))).bosTokenId).toBe(1);
  });

  it.each([
    {
      name: "not-boolean",
      config: { add_bos_token: "yes", bos_token: "<s>" },
      message: /tokenizer_config\.json: add_bos_token is "yes", expected true or false/,
    },
    { name: "no-bos-named", config: { add_bos_token: true }, message: /tokenizer_config\.json: add_bos_token is true but no bos_token is named/ },
    {
      name: "unknown-bos",
      config: { add_bos_token: true, bos_token: { content: "<bos>" } },
      message: /tokenizer_config\.json: bos_token "<bos>" is not in the vocabulary of .*tokenizer\.json/,
    },
  ])("refuses a config that cannot be followed ($name)", async ({ name, config, message }) => {
    expect((await refusal(loadTokenizer(await withConfig(name, config)))).message).toMatch(message);
  });
});

describe("text corpora and text queries under add_bos_token", () => {
  it("start every text document with BOS, then its tokens, cut into windows", async () => {
    const file = path.join(tmp, "corpus.jsonl");
    writeFileSync(file, cases.map(({ text }, i) => JSON.stringify({ id: `case-${i}`, text })).join("\n"));
    const sequences = await collect(readSequences(file, tokenizer, { contextLength: 24 }));
    for (const [i, { ids }] of cases.entries()) {
      // Windows cut the document's tokens, BOS included: only the first starts with it.
      const windows = sequences.filter((s) => s.documentId === `case-${i}`);
      expect(windows[0].offset).toBe(0);
      for (const w of windows) expect(w.tokens).toEqual([1, ...ids].slice(w.offset, w.offset + 24));
    }
  });

  it("start a text prompt with BOS and continue it with the completion's tokens", async () => {
    const file = path.join(tmp, "queries.jsonl");
    const split = cases.map(({ text }) => wordSplit(text));
    const lines = cases.flatMap(({ text }, i) =>
      split[i] < 0 ? [] : [JSON.stringify({ id: i, prompt: text.slice(0, split[i]), completion: text.slice(split[i]) })],
    );
    writeFileSync(file, lines.join("\n"));
    const queries = await readQueries(file, tokenizer, { contextLength: 64 });
    expect(queries.length).toBe(lines.length);
    for (const query of queries) {
      expect(query.promptTokens[0]).toBe(1);
      expect([...query.promptTokens, ...query.completionTokens]).toEqual([1, ...cases[Number(query.id)].ids]);
    }
  });

  it("keep token-id input as given", async () => {
    const file = path.join(tmp, "token-queries.jsonl");
    writeFileSync(file, JSON.stringify({ id: "q", prompt_tokens: [22557], completion_tokens: [1526] }));
    const [query] = await readQueries(file, tokenizer, { contextLength: 64 });
    expect(query.promptTokens).toEqual([22557]);
  });
});
