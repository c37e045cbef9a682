import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { readCorpus } from "../src/corpus/corpus.js";
import { readConfig } from "../src/model/config.js";
import { loadModel } from "../src/model/load.js";
import type { CausalLM } from "../src/model/model.js";
import { loadTokenizer, type Tokenizer } from "../src/tokenizer/tokenizer.js";
import { readSplit, type Split } from "../src/training/split.js";
import { unigramEntropy } from "../src/training/unigram.js";
import { readSafetensorsHeader } from "../src/safetensors/read.js";
import { fixturePath, REPO_ROOT } from "../support/fixtures.js";

const CORPUS = path.join(REPO_ROOT, "demo", "corpus.jsonl.gz");
const MODEL = path.join(REPO_ROOT, "demo", "model");
/** The second, smaller model of the same corpus, for `npm run demo -- --compare`. */
const SMALL_MODEL = path.join(REPO_ROOT, "demo", "model-small");
const TOKENIZER_FILES = ["tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"];
const MB = 2 ** 20;

describe("the demo corpus", () => {
  it("has at least 10,000 WordNet documents with unique ids, in at most 10 MB", async () => {
    expect(statSync(CORPUS).size).toBeLessThanOrEqual(10 * MB);
    // readCorpus rejects a repeated id.
    const docs: { id: string; text: string }[] = [];
    for await (const doc of readCorpus(CORPUS)) docs.push({ id: doc.id, text: doc.text as string });
    expect(docs.length).toBeGreaterThanOrEqual(10_000);
    expect(docs.every((d) => /^wn-.+\.[nvasr]\.\d\d$/.test(d.id) && d.text.length > 0)).toBe(true);
    expect(docs.find((d) => d.id === "wn-dog.n.01")?.text).toMatch(/^dog, domestic dog, Canis familiaris \(noun\): a member of the genus Canis/);
  });
});

describe.each([
  { name: "the demo model", dir: MODEL },
  { name: "the small demo model", dir: SMALL_MODEL },
])("$name", ({ dir: MODEL }) => {
  let model: CausalLM;
  let tokenizer: Tokenizer;
  let split: Split;
  beforeAll(async () => {
    model = await loadModel(MODEL);
    tokenizer = await loadTokenizer(MODEL);
    split = await readSplit(CORPUS, tokenizer, model.config.contextLength);
  });

  it("is a small Hugging Face GPT-2 folder with its own tokenizer", async () => {
    const files = readdirSync(MODEL);
    for (const name of ["config.json", "model.safetensors", ...TOKENIZER_FILES]) {
      expect(files).toContain(name);
    }
    const bytes = files.reduce((n, name) => n + statSync(path.join(MODEL, name)).size, 0);
    expect(bytes).toBeLessThanOrEqual(25 * MB);
    expect(await readConfig(MODEL)).toEqual(model.config);
    expect(tokenizer.vocabSize).toBe(model.config.vocabSize);
    expect(tokenizer.eosTokenId).toBe(model.config.vocabSize - 1);
  });

  it("stores its weights as save_pretrained does (the gpt2-tiny fixture was written by it)", async () => {
    const keys = async (dir: string) => {
      const { tensors, metadata } = await readSafetensorsHeader(path.join(dir, "model.safetensors"));
      const names = new Set([...tensors.keys()].map((name) => name.replace(/^transformer\.h\.\d+\./, "transformer.h.N.")));
      return { names: [...names].sort(), dtypes: [...new Set([...tensors.values()].map((t) => t.dtype))], metadata };
    };
    expect(await keys(MODEL)).toEqual(await keys(fixturePath("gpt2-tiny")));
  });

  it("tokenizes and decodes corpus texts exactly", async () => {
    let checked = 0;
    for await (const doc of readCorpus(CORPUS)) {
      if (checked++ % 40 !== 0) continue;
      expect(tokenizer.decode(tokenizer.encode(doc.text as string))).toBe(doc.text);
    }
    expect(tokenizer.decode(tokenizer.encode("The capital of France is Paris."))).toBe("The capital of France is Paris.");
  });

  it("predicts held-out documents better than the unigram entropy of the corpus", async () => {
    expect(split.heldOut.length).toBeGreaterThanOrEqual(200);
    // 48 held-out sequences spread over the held-out set, through the loss the influence code uses.
    const sample = split.heldOut
      .filter((_, i) => i % 5 === 0)
      .slice(0, 48)
      .map((s) => s.tokens);
    const capture = await model.capture(sample, { kind: "next-token" });
    const predicted = sample.reduce((n, s) => n + s.length - 1, 0);
    const loss = capture.losses.reduce((a, b) => a + b, 0) / predicted;
    const unigram = unigramEntropy([...split.train, ...split.heldOut].map((s) => s.tokens));
    expect(loss).toBeLessThan(unigram - 1);
  });
});

describe("the two demo models", () => {
  it("share the tokenizer, so that the token overlaps of their hits count the same tokens", () => {
    for (const name of TOKENIZER_FILES) expect(readFileSync(path.join(SMALL_MODEL, name)).equals(readFileSync(path.join(MODEL, name))), name).toBe(true);
  });

  it("differ in size: the second has fewer parameters and the same context", async () => {
    const [big, small] = await Promise.all([readConfig(MODEL), readConfig(SMALL_MODEL)]);
    const parameters = async (dir: string) => {
      const { tensors } = await readSafetensorsHeader(path.join(dir, "model.safetensors"));
      return [...tensors.values()].reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    };
    expect(small.contextLength).toBe(big.contextLength);
    expect(small.vocabSize).toBe(big.vocabSize);
    expect(await parameters(SMALL_MODEL)).toBeLessThan((await parameters(MODEL)) / 2);
  });
});
