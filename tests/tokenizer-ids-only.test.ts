/** Model folders without tokenizer files: token ids work everywhere, text is refused naming the files it needs. */
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { corpusSource } from "../src/corpus/corpus-source.js";
import { readQueries } from "../src/corpus/queries.js";
import { describeModel, type ModelDescription, modelVocabulary } from "../src/model/open-model.js";
import { openTokenizer } from "../src/tokenizer/open-tokenizer.js";
import type { Tokenizer } from "../src/tokenizer/tokenizer.js";
import { tempDir } from "../src/util/temp-dir.js";
import { fixturePath, fixtureQueries, fixtureTrain } from "../support/fixtures.js";
import { collect, refusal } from "./helpers/refusal.js";

let tmp: Awaited<ReturnType<typeof tempDir>>;
/** gpt2-tiny's config and weights, without its vocab.json and merges.txt. */
let dir: string;
let opened: ModelDescription;
let tokenizer: Tokenizer;

const textRefusal = (modelDir: string): string =>
  `${modelDir} has no tokenizer.json (nor vocab.json + merges.txt): text input needs one; pass token ids instead`;

beforeAll(async () => {
  tmp = await tempDir();
  dir = path.join(tmp.dir, "no-tokenizer");
  await mkdir(dir);
  for (const file of ["config.json", "model.safetensors"]) await copyFile(fixturePath("gpt2-tiny", file), path.join(dir, file));
  opened = await describeModel(dir);
  tokenizer = opened.tokenizer;
});
afterAll(() => tmp.remove());

describe("a model folder without tokenizer files", () => {
  it("opens, with the model's vocabulary and no special tokens", () => {
    expect(tokenizer.vocabSize).toBe(opened.model.config.vocabSize);
    expect(tokenizer.bosTokenId).toBeUndefined();
    expect(tokenizer.eosTokenId).toBeUndefined();
  });

  it("refuses text, naming the files it would need", () => {
    for (const encode of [(t: string) => tokenizer.encode(t), (t: string) => tokenizer.encodeSequence(t), (t: string) => tokenizer.encodeContinuation(t)]) {
      expect(() => encode("Hello")).toThrow(textRefusal(dir));
    }
    expect(() => tokenizer.decode([1, 2])).toThrow(textRefusal(dir));
  });

  it("says that it does not read SentencePiece's tokenizer.model, when the folder has one", async () => {
    const withModel = path.join(tmp.dir, "sentencepiece-only");
    await mkdir(withModel);
    await writeFile(path.join(withModel, "tokenizer.model"), "");
    const sentencePiece = await openTokenizer(withModel, 100);
    expect(() => sentencePiece.encode("a")).toThrow(
      /sentencepiece-only has no tokenizer\.json .*\(its tokenizer\.model, SentencePiece's own format, is not read\)/,
    );
  });

  it("shows a token as #<id>, within the model's vocabulary", () => {
    expect(tokenizer.tokenText(262)).toBe("#262");
    expect(tokenizer.tokenText(0)).toBe("#0");
    expect(() => tokenizer.tokenText(opened.model.config.vocabSize)).toThrow(/token id 50257 is not in the vocabulary of .*no-tokenizer \(ids 0 to 50256\)/);
  });

  it("reads token-id corpora and queries as a folder with a tokenizer does", async () => {
    const corpus = await corpusSource(fixturePath("gpt2-tiny", "train.jsonl"), opened);
    expect((await collect(corpus.sequences())).map((s) => s.tokens)).toEqual(fixtureTrain("gpt2-tiny").map((s) => s.tokens));
    const queries = await readQueries(fixturePath("gpt2-tiny", "queries.jsonl"), modelVocabulary(opened), { contextLength: 64 });
    expect(queries.map((q) => q.completionTokens)).toEqual(fixtureQueries("gpt2-tiny").map((q) => q.completion_tokens));
  });

  it("refuses a text corpus and text queries with that error", async () => {
    const corpusFile = path.join(tmp.dir, "text.jsonl");
    await writeFile(corpusFile, `${JSON.stringify({ id: "a", text: "Hello world" })}\n`);
    const corpus = await corpusSource(corpusFile, opened);
    expect((await refusal(collect(corpus.sequences()))).message).toBe(textRefusal(dir));
    const queriesFile = path.join(tmp.dir, "text-queries.jsonl");
    await writeFile(queriesFile, `${JSON.stringify({ id: "q", prompt: "Hello", completion: " world" })}\n`);
    expect((await refusal(readQueries(queriesFile, modelVocabulary(opened), { contextLength: 64 }))).message).toBe(textRefusal(dir));
  });
});
