import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readGpt2Bpe } from "../src/tokenizer/gpt2-files.js";
import { gpt2TokenizerJson } from "../src/tokenizer/gpt2-json.js";
import { loadTokenizer, type Tokenizer } from "../src/tokenizer/tokenizer.js";
import { InputError } from "../src/util/errors.js";
import { fixtureModels, fixturePath, fixtureTokenizerCases } from "../support/fixtures.js";
import { refusal } from "./helpers/refusal.js";

const cases = fixtureTokenizerCases("gpt2-tokenizer-cases.jsonl");

let tmp: string;
beforeAll(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), "tokenizer-test-"));
  // The tokenizer.json layout: the same tokenizer, with no vocab.json or merges.txt beside it.
  const json = gpt2TokenizerJson(await readGpt2Bpe(fixturePath("gpt2-tiny")));
  writeFileSync(path.join(tmp, "tokenizer.json"), JSON.stringify(json));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const layouts = [
  ...fixtureModels.map((model) => ({ name: `${model} (vocab.json + merges.txt)`, dir: () => fixturePath(model) })),
  { name: "generated tokenizer.json", dir: () => tmp },
  // GPT-NeoX folders ship only tokenizer.json; Pythia's holds GPT-2's BPE.
  { name: "pythia-tiny's tokenizer.json", dir: () => fixturePath("pythia-tiny") },
];

describe.each(layouts)("GPT-2 tokenizer from $name", ({ dir }) => {
  let tokenizer: Tokenizer;
  beforeAll(async () => {
    tokenizer = await loadTokenizer(dir());
  });

  it("has 50257 ids, <|endoftext|> as end of text and no BOS", () => {
    expect(cases.length).toBe(64);
    expect(tokenizer.vocabSize).toBe(50257);
    expect(tokenizer.eosTokenId).toBe(50256);
    expect(tokenizer.bosTokenId).toBeUndefined();
  });

  it.each(cases.map((c, i) => ({ i, ...c })))("encodes case $i as Hugging Face does, and decodes it back", ({ text, ids }) => {
    expect(tokenizer.encode(text)).toEqual(ids);
    expect(tokenizer.decode(ids)).toBe(text);
    // Byte-level BPE adds nothing at a sequence's start, nor takes anything from a continuation's.
    expect(tokenizer.encodeSequence(text)).toEqual(ids);
    expect(tokenizer.encodeContinuation(text)).toEqual(ids);
  });

  it("shows single tokens and special tokens", () => {
    expect(tokenizer.tokenText(262)).toBe(" the");
    expect(tokenizer.tokenText(50256)).toBe("<|endoftext|>");
    expect(tokenizer.encode("a<|endoftext|>b")).toEqual([64, 50256, 65]);
    expect(tokenizer.decode([])).toBe("");
  });

  it("rejects ids outside the vocabulary", () => {
    expect(() => tokenizer.decode([50257])).toThrow(InputError);
    expect(() => tokenizer.decode([-1])).toThrow(/token id -1 is not in the vocabulary/);
    expect(() => tokenizer.tokenText(1.5)).toThrow(InputError);
  });
});

describe("tokenizer loading errors", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), "tokenizer-errors-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const fixtureVocab = (): string => readFileSync(fixturePath("gpt2-tiny", "vocab.json"), "utf8");
  const fixtureMerges = (): string => readFileSync(fixturePath("gpt2-tiny", "merges.txt"), "utf8");

  async function expectInputError(modelDir: string, message: RegExp): Promise<void> {
    expect((await refusal(loadTokenizer(modelDir))).message).toMatch(message);
  }

  it("names a missing model folder", async () => {
    await expectInputError(path.join(dir, "nope"), /nope: model folder not found/);
  });

  it("names a folder without tokenizer files", async () => {
    const modelDir = mkdir(path.join(dir, "empty"));
    copyFileSync(fixturePath("gpt2-tiny", "config.json"), path.join(modelDir, "config.json"));
    await expectInputError(modelDir, /empty: no tokenizer found \(expected tokenizer\.json, or vocab\.json and merges\.txt\)/);
  });

  it("names the missing half of vocab.json + merges.txt", async () => {
    const modelDir = mkdir(path.join(dir, "vocab-only"));
    writeFileSync(path.join(modelDir, "vocab.json"), fixtureVocab());
    await expectInputError(modelDir, /has vocab\.json but no merges\.txt/);
  });

  it.each([
    { name: "bad-vocab-json", vocab: '{"a": 1,', message: /vocab\.json: not valid JSON/ },
    { name: "vocab-array", vocab: "[1, 2]", message: /vocab\.json: expected a JSON object mapping tokens to ids/ },
    { name: "vocab-bad-id", vocab: '{"a": -3}', message: /vocab\.json: token "a" has id -3, expected a non-negative integer/ },
    { name: "vocab-same-id", vocab: '{"a": 0, "b": 0}', message: /vocab\.json: id 0 is given to both "a" and "b"/ },
    { name: "vocab-no-bytes", vocab: '{"a": 0}', message: /vocab\.json: no token for byte 0x00 .*not a GPT-2 byte-level BPE vocabulary/ },
  ])("rejects a malformed vocab.json ($name)", async ({ name, vocab, message }) => {
    const modelDir = mkdir(path.join(dir, name));
    writeFileSync(path.join(modelDir, "vocab.json"), vocab);
    writeFileSync(path.join(modelDir, "merges.txt"), "#version: 0.2\n");
    await expectInputError(modelDir, message);
  });

  it("rejects a vocab.json that is not UTF-8", async () => {
    const modelDir = mkdir(path.join(dir, "vocab-latin1"));
    writeFileSync(path.join(modelDir, "vocab.json"), Buffer.from([0x7b, 0x22, 0xe9, 0x22, 0x3a, 0x30, 0x7d]));
    writeFileSync(path.join(modelDir, "merges.txt"), "");
    await expectInputError(modelDir, /vocab\.json: not valid UTF-8 text/);
  });

  it.each([
    { name: "merges-three-parts", line: "Ġ t h", message: /merges\.txt, line 3: expected two tokens separated by one space, got "Ġ t h"/ },
    { name: "merges-one-part", line: "Ġt", message: /merges\.txt, line 3: expected two tokens/ },
    { name: "merges-unknown-token", line: "Ġ zzzqq", message: /merges\.txt, line 3: token "zzzqq" is not in vocab\.json/ },
  ])("rejects a malformed merges.txt with its line number ($name)", async ({ name, line, message }) => {
    const modelDir = mkdir(path.join(dir, name));
    writeFileSync(path.join(modelDir, "vocab.json"), fixtureVocab());
    writeFileSync(path.join(modelDir, "merges.txt"), `#version: 0.2\nĠ t\n${line}\n`);
    await expectInputError(modelDir, message);
  });

  it("accepts merges.txt with CRLF line ends and no header", async () => {
    const modelDir = mkdir(path.join(dir, "merges-crlf"));
    writeFileSync(path.join(modelDir, "vocab.json"), fixtureVocab());
    writeFileSync(path.join(modelDir, "merges.txt"), fixtureMerges().split("\n").slice(1).join("\r\n"));
    const tokenizer = await loadTokenizer(modelDir);
    expect(tokenizer.encode(cases[0].text)).toEqual(cases[0].ids);
  });

  it.each([
    { name: "tokenizer-not-json", content: "{ nope", message: /tokenizer\.json: not valid JSON/ },
    {
      name: "tokenizer-no-model",
      content: '{"version": "1.0"}',
      message: /tokenizer\.json: expected a Hugging Face tokenizer\.json \(an object with a "model" object\)/,
    },
    {
      name: "tokenizer-bad-model",
      content: JSON.stringify({ added_tokens: [], normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, model: { type: "Nonsense" } }),
      message: /tokenizer\.json: not a usable tokenizer \(.*Nonsense/,
    },
  ])("rejects a malformed tokenizer.json ($name)", async ({ name, content, message }) => {
    const modelDir = mkdir(path.join(dir, name));
    writeFileSync(path.join(modelDir, "tokenizer.json"), content);
    await expectInputError(modelDir, message);
  });

  it("rejects a malformed tokenizer_config.json", async () => {
    const modelDir = mkdir(path.join(dir, "bad-config"));
    copyFileSync(path.join(tmp, "tokenizer.json"), path.join(modelDir, "tokenizer.json"));
    writeFileSync(path.join(modelDir, "tokenizer_config.json"), "[]");
    await expectInputError(modelDir, /tokenizer_config\.json: expected a JSON object/);
  });
});

/** An empty folder at `dir`. */
function mkdir(dir: string): string {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}
