/** Shared helpers of the benchmark sections. */
import path from "node:path";
import ort from "onnxruntime-node";
import { readCorpus } from "../../src/corpus/corpus.js";
import type { QueryInput } from "../../src/engine/types.js";
import type { Gpt2Config } from "../../src/model/config.js";
import { GraphBuilder } from "../../src/runtime/graph.js";
import { GraphSession } from "../../src/runtime/session.js";
import { loadTokenizer } from "../../src/tokenizer/tokenizer.js";
import { isHeldOut } from "../../src/training/split.js";
import { REPO_ROOT } from "../../support/fixtures.js";

/** Wall-clock seconds of `repeats` runs of fn, after one warm-up run. */
export function timeIt(fn: () => void, repeats: number): number[] {
  fn();
  return Array.from({ length: repeats }, () => {
    const t0 = performance.now();
    fn();
    return (performance.now() - t0) / 1000;
  });
}

/** timeIt for asynchronous work (ONNX Runtime's runs). */
export async function timeItAsync(fn: () => Promise<unknown>, repeats: number): Promise<number[]> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await fn();
    times.push((performance.now() - t0) / 1000);
  }
  return times;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Queries from documents held out of the demo model's training: two thirds of the text as prompt, then up to 8 tokens as completion. */
export async function demoQueries(count: number): Promise<QueryInput[]> {
  const tokenizer = await loadTokenizer(path.join(REPO_ROOT, "demo/model"));
  const queries: QueryInput[] = [];
  let i = 0;
  for await (const doc of readCorpus(path.join(REPO_ROOT, "demo/corpus.jsonl.gz"))) {
    if (!isHeldOut(i++) || !doc.text) continue;
    const tokens = tokenizer.encode(doc.text).slice(0, 120);
    const cut = Math.floor((tokens.length * 2) / 3);
    queries.push({ promptTokens: tokens.slice(0, cut), completionTokens: tokens.slice(cut, cut + 8) });
    if (queries.length === count) break;
  }
  return queries;
}

/** GPT-2 small's configuration (124M parameters). */
export const GPT2_SMALL: Gpt2Config = {
  architecture: "gpt2",
  vocabSize: 50257,
  contextLength: 1024,
  nEmbd: 768,
  nLayer: 12,
  nHead: 12,
  nInner: 3072,
  layerNormEps: 1e-5,
};

/** ONNX Runtime's rate for an [n, n] x [n, n] product, GFLOP/s. */
export async function onnxMatMulRate(n: number, threads: number): Promise<number> {
  const g = new GraphBuilder("bench", "matmul");
  g.output(g.op("MatMul", [g.input("a", "float32", [n, n]), g.input("b", "float32", [n, n])]), "c", "float32", [n, n]);
  const session = await GraphSession.create(g, { device: "cpu", threads });
  const x = new ort.Tensor(
    "float32",
    Float32Array.from({ length: n * n }, (_, i) => Math.sin(i)),
    [n, n],
  );
  const seconds = median(await timeItAsync(() => session.run({ a: x, b: x }, ["c"]), 5));
  await session.release();
  return (2 * n ** 3) / seconds / 1e9;
}
