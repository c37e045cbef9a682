import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BYTE_LEVEL_CHARS } from "../src/tokenizer/byte-level.js";
import { loadTokenizer, type Tokenizer } from "../src/tokenizer/tokenizer.js";
import { writeTruncatedGpt2Tokenizer } from "../src/tokenizer/truncated-bpe.js";
import { InputError } from "../src/util/errors.js";
import { fixturePath } from "./helpers/fixtures.js";

const SRC = fixturePath("gpt2-tiny");
const VOCAB_SIZE = 1000;
const EOS = "<|endoftext|>";

const texts: string[] = readFileSync(fixturePath("gpt2-tokenizer-cases.jsonl"), "utf8")
  .split("\n")
  .filter((line) => line !== "")
  .map((line) => (JSON.parse(line) as { text: string }).text);

const readJson = (file: string): unknown => JSON.parse(readFileSync(file, "utf8"));

let tmp: string;
let full: Tokenizer;
let small: Tokenizer;
beforeAll(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), "truncated-bpe-test-"));
  await writeTruncatedGpt2Tokenizer(SRC, path.join(tmp, "small"), VOCAB_SIZE, { modelMaxLength: 64 });
  full = await loadTokenizer(SRC);
  small = await loadTokenizer(path.join(tmp, "small"));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("GPT-2's vocabulary layout, which truncation relies on", () => {
  it("has the byte tokens at ids 0..255 and the result of merge line i at id 256+i", () => {
    const vocab = readJson(path.join(SRC, "vocab.json")) as Record<string, number>;
    const tokenOfId = new Map(Object.entries(vocab).map(([token, id]) => [id, token]));
    const lines = readFileSync(path.join(SRC, "merges.txt"), "utf8").split("\n");
    expect(lines[0]).toBe("#version: 0.2");
    const merges = lines
      .slice(1)
      .filter((line) => line !== "")
      .map((line) => line.split(" "));

    expect(new Set(Array.from({ length: 256 }, (_, id) => tokenOfId.get(id)))).toEqual(new Set(BYTE_LEVEL_CHARS));
    expect(merges.length).toBe(50000);
    merges.forEach(([left, right], i) => {
      if (vocab[left + right] !== 256 + i) expect.fail(`merge ${i} (${left} ${right}) makes id ${vocab[left + right]}`);
      if (vocab[left] >= 256 + i || vocab[right] >= 256 + i) expect.fail(`merge ${i} uses a later token`);
    });
    expect(Object.keys(vocab).length).toBe(256 + 50000 + 1);
    expect(vocab[EOS]).toBe(50256);
  });
});

describe("writeTruncatedGpt2Tokenizer", () => {
  it("writes GPT-2's tokenizer files with vocabSize ids", () => {
    const dir = path.join(tmp, "small");
    const vocab = readJson(path.join(dir, "vocab.json")) as Record<string, number>;
    expect(Object.keys(vocab).length).toBe(VOCAB_SIZE);
    expect(vocab[EOS]).toBe(VOCAB_SIZE - 1);
    expect(new Set(Object.values(vocab)).size).toBe(VOCAB_SIZE);
    // Listed by id, as Hugging Face writes it.
    expect(readFileSync(path.join(dir, "vocab.json"), "utf8").split("\n").slice(1, 3)).toEqual(['  "!": 0,', '  "\\"": 1,']);

    const merges = readFileSync(path.join(dir, "merges.txt"), "utf8").split("\n");
    expect(merges[0]).toBe("#version: 0.2");
    expect(merges.slice(1).filter((line) => line !== "").length).toBe(VOCAB_SIZE - 257);

    const json = readJson(path.join(dir, "tokenizer.json")) as { model: { type: string; vocab: object; merges: string[] }; added_tokens: unknown[] };
    expect(json.model.type).toBe("BPE");
    expect(json.model.vocab).toEqual(vocab);
    expect(json.model.merges).toEqual(merges.slice(1).filter((line) => line !== ""));
    expect(json.added_tokens).toEqual([
      { id: VOCAB_SIZE - 1, content: EOS, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true },
    ]);

    expect(readJson(path.join(dir, "tokenizer_config.json"))).toMatchObject({
      tokenizer_class: "GPT2Tokenizer",
      eos_token: EOS,
      bos_token: EOS,
      unk_token: EOS,
      model_max_length: 64,
      clean_up_tokenization_spaces: false,
    });
    expect(readJson(path.join(dir, "special_tokens_map.json"))).toMatchObject({ eos_token: { content: EOS } });
  });

  it("loads as a tokenizer of vocabSize ids that round-trips text", () => {
    expect(small.vocabSize).toBe(VOCAB_SIZE);
    expect(small.eosTokenId).toBe(VOCAB_SIZE - 1);
    expect(small.encode(`a${EOS}`)).toEqual([64, VOCAB_SIZE - 1]);
    for (const text of texts) {
      const ids = small.encode(text);
      expect(Math.max(-1, ...ids)).toBeLessThan(VOCAB_SIZE);
      expect(small.decode(ids)).toBe(text);
    }
  });

  it("gives the same ids from its vocab.json + merges.txt as from its tokenizer.json", async () => {
    const dir = path.join(tmp, "small-files-only");
    mkdirSync(dir);
    for (const file of ["vocab.json", "merges.txt"]) copyFileSync(path.join(tmp, "small", file), path.join(dir, file));
    const fromFiles = await loadTokenizer(dir);
    for (const text of texts) expect(fromFiles.encode(text)).toEqual(small.encode(text));
  });

  it("tokenizes as GPT-2 does any text whose GPT-2 tokens all lie below the cut", () => {
    let sameAsFull = 0;
    const textOfLowIds = fc.array(fc.integer({ min: 0, max: VOCAB_SIZE - 2 }), { minLength: 1, maxLength: 12 }).map((ids) => full.decode(ids));
    fc.assert(
      fc.property(fc.oneof(textOfLowIds, fc.string({ unit: "grapheme", maxLength: 40 })), (text) => {
        const ids = small.encode(text);
        expect(ids.every((id) => id < VOCAB_SIZE)).toBe(true);
        expect(small.decode(ids)).toBe(text);
        const fullIds = full.encode(text);
        if (fullIds.every((id) => id < VOCAB_SIZE - 1)) {
          expect(ids).toEqual(fullIds);
          sameAsFull++;
        }
      }),
      { seed: 20240601, numRuns: 400 },
    );
    expect(sameAsFull).toBeGreaterThan(50);
  });

  it("with GPT-2's full size, reproduces GPT-2", async () => {
    const dir = path.join(tmp, "full");
    await writeTruncatedGpt2Tokenizer(SRC, dir, 50257);
    const copy = await loadTokenizer(dir);
    for (const text of texts) expect(copy.encode(text)).toEqual(full.encode(text));
  });

  it.each([256, 50258, 300.5])("rejects vocabulary size %s", async (size) => {
    const out = path.join(tmp, `bad-size-${size}`);
    await expect(writeTruncatedGpt2Tokenizer(SRC, out, size)).rejects.toThrow(
      new RegExp(`vocabulary size ${size} is out of range: it must be an integer from 257 .* to 50257`),
    );
    expect(existsSync(out)).toBe(false);
  });

  it("refuses to overwrite its source", async () => {
    await expect(writeTruncatedGpt2Tokenizer(SRC, SRC, 1000)).rejects.toThrow(/must go to another folder than its source/);
  });

  it("rejects a vocabulary whose ids do not follow the merges", async () => {
    const src = path.join(tmp, "shuffled");
    mkdirSync(src);
    const vocab = readJson(path.join(SRC, "vocab.json")) as Record<string, number>;
    // Swap the ids of the tokens made by merges 10 and 11.
    const [a, b] = Object.keys(vocab).filter((token) => vocab[token] === 266 || vocab[token] === 267);
    [vocab[a], vocab[b]] = [vocab[b], vocab[a]];
    writeFileSync(path.join(src, "vocab.json"), JSON.stringify(vocab));
    copyFileSync(path.join(SRC, "merges.txt"), path.join(src, "merges.txt"));
    const error = await writeTruncatedGpt2Tokenizer(src, path.join(tmp, "out"), 1000).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toMatch(/shuffled: merge 10 .* does not make id 266, so the vocabulary cannot be cut by id/);
  });
});
