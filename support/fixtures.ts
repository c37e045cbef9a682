/** The reference fixtures and the repository's root, for the tests and the benchmarks. */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { readSafetensors, tensorAsFloat64 } from "../src/safetensors/read.js";
import { locateFixtures } from "./fixtures-dir.js";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

let located: string | undefined;

/**
 * The reference fixtures (see support/fixtures-dir.ts for where they are looked up), found on first
 * use: a benchmark section that needs no fixture runs without them.
 */
export function fixturesDir(): string {
  located ??= locateFixtures(REPO_ROOT);
  return located;
}

/** The GPT-2 fixtures (vocab.json + merges.txt tokenizers). */
export const fixtureModels = ["gpt2-tiny", "gpt2-tiny-legacy"] as const;
/** One fixture of every other architecture: GPT-NeoX, Llama (grouped-query attention, untied head), Qwen2 (q/k/v biases, tied head). */
export const architectureFixtures = ["pythia-tiny", "llama-tiny", "qwen2-tiny"] as const;
export const fixturePath = (...parts: string[]): string => path.join(fixturesDir(), ...parts);

/** Training sequences of a fixture model, in file order. */
export function fixtureTrain(model: string): Array<{ id: string; tokens: number[] }> {
  return readFileSync(fixturePath(model, "train.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
}

/** Queries of a fixture model, in file order. */
export function fixtureQueries(model: string): Array<{ id: string; prompt_tokens: number[]; completion_tokens: number[] }> {
  return readFileSync(fixturePath(model, "queries.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
}

/** The float64 reference values of a fixture model, by key. */
export async function fixtureExpected(model: string): Promise<(key: string) => { data: Float64Array; shape: number[] }> {
  const st = await readSafetensors(fixturePath(model, "expected.safetensors"));
  return (key) => {
    const info = st.tensors.get(key);
    if (!info) throw new Error(`expected.safetensors of ${model} has no ${key}`);
    return { data: tensorAsFloat64(st, key), shape: info.shape };
  };
}

/** A tokenizer cases file of the fixtures (`{"text", "tokens"}` or `{"text", "ids"}` lines), as texts with their ids. */
export function fixtureTokenizerCases(file: string): Array<{ text: string; ids: number[] }> {
  return readFileSync(fixturePath(file), "utf8")
    .trim()
    .split("\n")
    .map((l) => {
      const { text, tokens, ids } = JSON.parse(l) as { text: string; tokens?: number[]; ids?: number[] };
      return { text, ids: ids ?? tokens ?? [] };
    });
}
