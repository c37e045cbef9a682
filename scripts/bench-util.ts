/** Shared helpers of the benchmark sections. */
import { execFile } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import ort from "onnxruntime-node";
import { readCorpus } from "../src/corpus/corpus.js";
import type { MemoryInputs } from "../src/jobs/memory-plan.js";
import type { QueryInput } from "../src/engine/types.js";
import { layoutOf } from "../src/model/architectures.js";
import { type Gpt2Config, type ModelConfig, parseConfig } from "../src/model/config.js";
import type { MemoryRecord } from "../src/model/memory-estimate.js";
import { type IndexManifest, readIndexManifest } from "../src/indexer/index-manifest.js";
import { openIndexArrays } from "../src/engine/index-arrays.js";
import { IndexEngine } from "../src/engine/index-engine.js";
import { openModel } from "../src/model/open-model.js";
import { ordinaryMemory } from "../src/util/allocate.js";
import { sketchPrecision } from "../src/projection/sketch.js";
import { type TensorToWrite, writeSafetensors } from "../src/safetensors/write.js";
import { writeJsonAtomic } from "../src/util/atomic-write.js";
import { formatBytes } from "../src/util/memory.js";
import { tempDir } from "../src/util/temp-dir.js";
import { hashSeed, normalGenerator } from "../src/util/random.js";
import { GraphBuilder } from "../src/runtime/graph.js";
import { GraphSession } from "../src/runtime/session.js";
import { loadTokenizer } from "../src/tokenizer/tokenizer.js";
import { isHeldOut } from "../src/training/split.js";
import { REPO_ROOT } from "../support/fixtures.js";
import { median } from "../support/percentile.js";
import type { BenchSection } from "./bench.js";

/**
 * The engine on an index folder, searching its first tier by HNSW even where it would scan it
 * (indexer/scan-search.ts): the two searches side by side in one run.
 */
export async function openHnswEngine(indexDir: string): Promise<IndexEngine> {
  const manifest = await readIndexManifest(indexDir);
  const arrays = await openIndexArrays(indexDir, manifest, (await openModel(manifest.model.path)).model.modules, ordinaryMemory);
  return IndexEngine.open(indexDir, {}, { ...arrays, scan: undefined });
}

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

/** The hub's config.json of TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T (the keys this project reads). */
export const TINYLLAMA_1B = {
  architectures: ["LlamaForCausalLM"],
  hidden_act: "silu",
  hidden_size: 2048,
  intermediate_size: 5632,
  max_position_embeddings: 2048,
  num_attention_heads: 32,
  num_hidden_layers: 22,
  num_key_value_heads: 4,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  tie_word_embeddings: false,
  vocab_size: 32000,
};

/** The hub's config.json of EleutherAI/pythia-1b (the keys this project reads). */
export const PYTHIA_1B = {
  architectures: ["GPTNeoXForCausalLM"],
  hidden_act: "gelu",
  hidden_size: 2048,
  intermediate_size: 8192,
  max_position_embeddings: 2048,
  num_attention_heads: 8,
  num_hidden_layers: 16,
  rotary_emb_base: 10000,
  rotary_pct: 0.25,
  tie_word_embeddings: false,
  use_parallel_residual: true,
  vocab_size: 50304,
};

/** Random weights of any architecture: N(0, 0.02) matrices and embeddings, norm gains 1, biases 0. */
export function randomWeights(cfg: ModelConfig): Map<string, Float32Array> {
  return new Map(
    [...layoutOf(cfg).parameterShapes(cfg)].map(([name, shape], index) => {
      const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
      if (shape.length === 1) data.fill(name.endsWith(".weight") ? 1 : 0);
      else {
        const normal = normalGenerator(hashSeed(1, index));
        for (let i = 0; i < data.length; i++) data[i] = 0.02 * normal();
      }
      return [name, data];
    }),
  );
}

/** Bytes per checkpoint shard: every file stays far below the 2 GiB a single read takes. */
const SHARD_BYTES = 2 ** 30;

/**
 * A Hugging Face model folder with random weights (randomWeights) for a hub config.json `raw`:
 * config.json, and the weights in `dtype` (as the hub ships them) as shards of at most about
 * 1 GiB listed in model.safetensors.index.json. Returns the parsed config.
 */
export async function saveRandomModel(dir: string, raw: object, dtype: TensorToWrite["dtype"]): Promise<ModelConfig> {
  const cfg = parseConfig(path.join(dir, "config.json"), raw);
  const shapes = layoutOf(cfg).parameterShapes(cfg);
  const bytesPer = { F64: 8, F32: 4, F16: 2, BF16: 2, BOOL: 1 }[dtype];
  const shards: Array<Record<string, TensorToWrite>> = [{}];
  let shardBytes = 0;
  for (const [name, data] of randomWeights(cfg)) {
    if (shardBytes > 0 && shardBytes + bytesPer * data.length > SHARD_BYTES) {
      shards.push({});
      shardBytes = 0;
    }
    shards[shards.length - 1][name] = { dtype, shape: shapes.get(name) as number[], data };
    shardBytes += bytesPer * data.length;
  }
  await mkdir(dir, { recursive: true });
  const file = (i: number) => `model-${String(i + 1).padStart(5, "0")}-of-${String(shards.length).padStart(5, "0")}.safetensors`;
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (const [i, tensors] of shards.entries()) {
    await writeSafetensors(path.join(dir, file(i)), tensors, { format: "pt" });
    for (const [name, t] of Object.entries(tensors)) {
      weightMap[name] = file(i);
      totalSize += bytesPer * t.data.length;
    }
  }
  await writeJsonAtomic(path.join(dir, "model.safetensors.index.json"), { metadata: { total_size: totalSize }, weight_map: weightMap });
  await writeJsonAtomic(path.join(dir, "config.json"), raw);
  return cfg;
}

/** `count` sequences of `length` token ids below `vocabSize`, from a fixed linear congruential stream, as a corpus file. */
export async function writeRandomCorpus(file: string, count: number, length: number, vocabSize: number): Promise<void> {
  let state = 1;
  const token = () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state % vocabSize;
  };
  const lines = Array.from({ length: count }, (_, i) => JSON.stringify({ id: `s${i}`, tokens: Array.from({ length }, token) }));
  await writeFile(file, `${lines.join("\n")}\n`);
}

/** What a fit run by measuredFit recorded: its memory and timings (from its manifest) and its wall-clock seconds. */
export interface MeasuredFit extends MemoryRecord {
  timings: { covarianceSeconds: number; eigendecompositionSeconds: number; lambdaSeconds: number };
  seconds: number;
}

/**
 * `influence fit --fisher empirical` as a child process at nice 10 (benchmarks share the machine),
 * with `args` added; its memory and timings are read from the manifest it wrote.
 */
export async function measuredFit(modelDir: string, corpus: string, out: string, args: string[] = []): Promise<MeasuredFit> {
  const started = performance.now();
  await new Promise<void>((resolve, reject) =>
    execFile(
      "nice",
      [
        "-n",
        "10",
        process.execPath,
        path.join(REPO_ROOT, "bin/influence.js"),
        "fit",
        "--model",
        modelDir,
        "--corpus",
        corpus,
        "--out",
        out,
        "--fisher",
        "empirical",
        "--no-progress",
        ...args,
      ],
      { env: { ...process.env, INFLUENCE_QUIET: "1" }, maxBuffer: 64 * 2 ** 20 },
      (err, _stdout, stderr) => (err ? reject(new Error(`influence fit failed: ${stderr}`)) : resolve()),
    ),
  );
  const { memory, timings } = JSON.parse(await readFile(path.join(out, "manifest.json"), "utf8"));
  return { ...memory, timings, seconds: (performance.now() - started) / 1000 };
}

/** A fit's estimate, its peak and the estimate's error against the peak, as three table cells (one decimal: an error can be under 1 %). */
export function estimateCells(m: MeasuredFit): string {
  const error = (100 * (m.estimateBytes - m.peakBytes)) / m.peakBytes;
  return `${formatBytes(m.estimateBytes)} | ${formatBytes(m.peakBytes)} | ${error >= 0 ? "+" : ""}${error.toFixed(1)}%`;
}

function fitRow(name: string, layers: number, m: MeasuredFit): string {
  const { covarianceSeconds: c, eigendecompositionSeconds: e, lambdaSeconds: l } = m.timings;
  return `| ${name} | ${layers} | ${c.toFixed(0)} | ${e.toFixed(0)} | ${l.toFixed(0)} | ${m.seconds.toFixed(0)} | ${estimateCells(m)} | ${m.estimatePhase} |`;
}

/** Inputs of an estimate for a config with its checkpoint's bytes per parameter, on `count` sequences of `length` tokens. */
export function shapeMemoryInputs(raw: object, bytesPerParameter: number, count: number, length: number): MemoryInputs {
  const config = parseConfig("config.json", raw);
  return {
    config,
    modules: layoutOf(config).modules(config),
    largestTensorBytes:
      Math.max(...[...layoutOf(config).parameterShapes(config).values()].map((shape) => shape.reduce((a, b) => a * b, 1))) * bytesPerParameter,
    lengths: Array.from({ length: count }, () => length),
  };
}

/**
 * A section of `influence fit` (nice 10, child process) of 8 random sequences of 512 tokens on a
 * billion-parameter shape with random weights (the hub's config, weights saved as the hub ships
 * them), with the time of each phase and the estimated and reached peak memory. One section per
 * shape, so that each hours-long fit lands in BENCHMARKS.md when it ends. INFLUENCE_BENCH_LAYERS
 * keeps the first N layers (every matrix keeps its width, so each layer costs what it costs at full
 * depth); INFLUENCE_BENCH_MEMORY is the fit's --memory (16G: the machine is shared).
 */
export function fitShapeSection(name: string, raw: typeof TINYLLAMA_1B | typeof PYTHIA_1B, dtype: TensorToWrite["dtype"]): BenchSection {
  return {
    title: `Fit of a ${name}-shaped model: time per phase and peak memory`,
    async run() {
      const memory = process.env.INFLUENCE_BENCH_MEMORY ?? "16G";
      const layers = Number(process.env.INFLUENCE_BENCH_LAYERS ?? raw.num_hidden_layers);
      const tmp = await tempDir();
      try {
        const cfg = await saveRandomModel(path.join(tmp.dir, "model"), { ...raw, num_hidden_layers: layers }, dtype);
        const corpus = path.join(tmp.dir, "corpus.jsonl");
        await writeRandomCorpus(corpus, 8, 512, cfg.vocabSize);
        const m = await measuredFit(path.join(tmp.dir, "model"), corpus, path.join(tmp.dir, "factors"), ["--memory", memory]);
        console.error(`${name}, ${layers} of ${raw.num_hidden_layers} layers: ${JSON.stringify(m)}`);
        return [
          `\`influence fit --fisher empirical --memory ${memory}\` at nice 10 on 8 sequences of 512 random tokens; random weights, saved as ${dtype};`,
          "seconds per phase from the manifest's timings, total = wall clock of the command (loading and saving included); peak = VmHWM of the process.",
          "",
          "| shape | layers | covariance pass s | eigendecompositions s | Lambda pass s | total s | estimate | peak | estimate − peak | peak phase (estimated) |",
          "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
          fitRow(name, layers, m),
        ].join("\n");
      } finally {
        await tmp.remove();
      }
    },
  };
}

/** An index's sketch as the bench sections name it: "a sketch of 131,072 int8 coordinates", or "no sketch". */
export const sketchText = (m: Pick<IndexManifest, "sketch" | "parameters">): string =>
  m.sketch ? `a sketch of ${m.sketch.dim.toLocaleString("en")} ${sketchPrecision(m.parameters.sketch)} coordinates` : "no sketch";
