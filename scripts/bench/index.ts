/**
 * The index: build time by phase, index-pass throughput next to a plain forward+backward pass on
 * the same model, bytes per sequence, query latency by stage; and the first tier's recall@10, by
 * its int8 scan and by HNSW, against exact inner-product search over the stored vectors on a corpus
 * of 12,000 real sequences.
 */
import { readFileSync } from "node:fs";
import { cp, writeFile } from "node:fs/promises";
import path from "node:path";
import { readCorpus } from "../../src/corpus/corpus.js";
import { IndexEngine } from "../../src/engine/index-engine.js";
import { checkInfluenceArgs } from "../../src/engine/query-validation.js";
import type { InfluenceResult, QueryInput } from "../../src/engine/types.js";
import { type BuildJob, DEFAULT_BUILD_PARAMETERS, runBuild } from "../../src/jobs/build.js";
import type { IndexManifest } from "../../src/indexer/index-manifest.js";
import { DEFAULT_EF } from "../../src/indexer/query-limits.js";
import { SCAN_MAX_VALUES, scansFirstTier } from "../../src/indexer/scan-search.js";
import { readTokenStore } from "../../src/indexer/token-store.js";
import { indexPath, readIndexManifest, vectorBytesPerSequence } from "../../src/indexer/index-manifest.js";
import { batchTokenLimit } from "../../src/model/batch-budget.js";
import type { Gpt2Config } from "../../src/model/config.js";
import { loadModel } from "../../src/model/load.js";
import { loadTokenizer } from "../../src/tokenizer/tokenizer.js";
import { initGpt2Weights } from "../../src/training/init.js";
import { saveHfGpt2 } from "../../src/training/save.js";
import { lengthSortedBatches } from "../../src/util/batches.js";
import { tempDir } from "../../src/util/temp-dir.js";
import type { BenchSection } from "../bench.js";
import { demoQueries, openHnswEngine } from "../bench-util.js";
import { median } from "../../support/percentile.js";
import { REPO_ROOT, fixturesDir } from "../../support/fixtures.js";

const parameters = (overrides: Partial<BuildJob["parameters"]>): BuildJob["parameters"] => ({ ...DEFAULT_BUILD_PARAMETERS, ...overrides });

/** Tokens per second of forward+backward with capture over the index's own sequences, one thread. */
async function forwardBackwardRate(modelDir: string, indexDir: string, limit: number): Promise<number> {
  const model = await loadModel(modelDir, { threads: 1 });
  const store = await readTokenStore(indexPath(indexDir, "tokens"));
  const sequences = Array.from({ length: Math.min(limit, store.count) }, (_, o) => Array.from(store.tokens(o)));
  // Compiles the capture graph's session, which the index pass's workers do before their timed work too.
  await model.capture([sequences[0]], { kind: "next-token" });
  const t0 = performance.now();
  for (const positions of lengthSortedBatches(
    sequences.map((s) => s.length),
    { maxTokens: batchTokenLimit(model.config) },
  )) {
    await model.capture(
      positions.map((i) => sequences[i]),
      { kind: "next-token" },
    );
  }
  await model.release();
  return sequences.reduce((s, x) => s + x.length, 0) / ((performance.now() - t0) / 1000);
}

/** Median milliseconds per query stage, with re-ranking (default candidates). */
type Latency = { gradientMs: number; searchMs: number; rerankMs: number; totalMs: number };

/** Median stage timings of top-10 queries, from the index alone (the default) or re-ranked. */
async function latency(indexDir: string, queries: QueryInput[], rerank: boolean): Promise<Latency> {
  const engine = await IndexEngine.open(indexDir);
  const timings: InfluenceResult["timings"][] = [];
  for (const q of [...queries, ...queries])
    timings.push((await engine.influence(checkInfluenceArgs({ ...q, topK: 10, rerank }, engine.tokenizer, engine.info(), false))).timings);
  await engine.close();
  // The first round warms up; the second is measured.
  const stage = (key: keyof InfluenceResult["timings"]) => median(timings.slice(queries.length).map((t) => t[key]));
  return { gradientMs: stage("gradientMs"), searchMs: stage("searchMs"), rerankMs: stage("rerankMs"), totalMs: stage("totalMs") };
}

interface Measured {
  name: string;
  manifest: IndexManifest;
  workers: number;
  forwardBackward: number;
  latency: Latency;
  reranked: Latency;
}

async function measure(name: string, job: BuildJob, queries: QueryInput[], rateSample: number): Promise<Measured> {
  const manifest = await runBuild(job);
  return {
    name,
    manifest,
    workers: job.workers,
    forwardBackward: await forwardBackwardRate(job.modelDir, job.outDir, rateSample),
    latency: await latency(job.outDir, queries, false),
    reranked: await latency(job.outDir, queries, true),
  };
}

function buildRow(m: Measured): string {
  const s = m.manifest.build.phaseSeconds;
  const indexRate = m.manifest.corpus.tokens / s.vectors / m.workers;
  const phases = ["ingest", "factors", "projection", "vectors", "hnsw"].map((p) => (s[p] ?? 0).toFixed(1)).join(" / ");
  return (
    `| ${m.name} | ${m.manifest.corpus.sequences} (${m.manifest.corpus.tokens} tokens) | ${m.manifest.vectors.dim} | ` +
    `${(m.manifest.sketch?.dim ?? 0).toLocaleString("en")} | ${vectorBytesPerSequence(m.manifest).toLocaleString("en")} | ${m.manifest.build.seconds.toFixed(1)} (${phases}) | ${indexRate.toFixed(0)} | ` +
    `${m.forwardBackward.toFixed(0)} | ${(m.forwardBackward / indexRate).toFixed(2)} |`
  );
}

function latencyRow(m: Measured): string {
  const [l, r] = [m.latency, m.reranked];
  return `| ${m.name} | ${l.gradientMs.toFixed(0)} | ${l.searchMs.toFixed(1)} | ${l.totalMs.toFixed(0)} | ${r.rerankMs.toFixed(0)} | ${r.totalMs.toFixed(0)} |`;
}

/** Recall rows of the engine as opened (which scans a first tier of at most SCAN_MAX_VALUES coordinates), then of HNSW's search. */
async function recallRows(indexDir: string, queries: QueryInput[]): Promise<string[]> {
  const { vectors } = await readIndexManifest(indexDir);
  const scanned = scansFirstTier(vectors) ? await searchRecall("int8 scan", await IndexEngine.open(indexDir), queries) : [];
  return [...scanned, ...(await searchRecall("HNSW", await openHnswEngine(indexDir), queries))];
}

async function searchRecall(search: string, engine: IndexEngine, queries: QueryInput[]): Promise<string[]> {
  const layers = engine.info().layers;
  const restrictions: Array<number[] | undefined> = [undefined, [layers[0]], [layers[layers.length - 1]], layers.slice(1, 3)];
  const rows: string[] = [];
  for (const restriction of restrictions) {
    let found = 0;
    const times: number[] = [];
    for (const q of queries) {
      const request = checkInfluenceArgs({ ...q, layers: restriction }, engine.tokenizer, engine.info(), false);
      const t0 = performance.now();
      const approx = await engine.approximateTopK(request, 10, false);
      times.push(performance.now() - t0);
      const exact = await engine.approximateTopK(request, 10, true);
      const truth = new Set(exact.labels);
      found += approx.labels.filter((l) => truth.has(l)).length;
    }
    rows.push(
      `| ${search} | ${restriction ? `layers ${restriction.join(", ")}` : "all layers"} | ${queries.length} | ${(found / (10 * queries.length)).toFixed(3)} | ` +
        `${median(times).toFixed(1)} |`,
    );
  }
  await engine.close();
  return rows;
}

/** A randomly initialised GPT-2 small in Hugging Face layout, with GPT-2's tokenizer files. */
async function gpt2Small(dir: string): Promise<string> {
  const cfg: Gpt2Config = { architecture: "gpt2", vocabSize: 50257, contextLength: 1024, nEmbd: 768, nLayer: 12, nHead: 12, nInner: 3072, layerNormEps: 1e-5 };
  await saveHfGpt2(dir, cfg, initGpt2Weights(cfg, 1), 50256);
  for (const f of ["vocab.json", "merges.txt"]) await cp(path.join(fixturesDir(), "gpt2-tiny", f), path.join(dir, f));
  return dir;
}

/** `count` windows of `length` GPT-2 tokens of demo-corpus text. */
async function gpt2Corpus(file: string, modelDir: string, count: number, length: number): Promise<void> {
  const tokenizer = await loadTokenizer(modelDir);
  const tokens: number[] = [];
  for await (const doc of readCorpus(path.join(REPO_ROOT, "demo/corpus.jsonl.gz"))) {
    tokens.push(...tokenizer.encode(`${doc.text ?? ""}\n`));
    if (tokens.length >= count * length) break;
  }
  const lines = Array.from({ length: count }, (_, i) => JSON.stringify({ id: `w${i}`, tokens: tokens.slice(i * length, (i + 1) * length) }));
  await writeFile(file, `${lines.join("\n")}\n`);
}

const section: BenchSection = {
  title: "Index: build, size, query latency and recall",
  async run() {
    const tmp = await tempDir();
    try {
      const fixture = path.join(fixturesDir(), "gpt2-tiny");
      const fixtureQueries = readFileSync(path.join(fixture, "queries.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => {
          const q = JSON.parse(l);
          return { promptTokens: q.prompt_tokens, completionTokens: q.completion_tokens };
        });
      const demoModel = path.join(REPO_ROOT, "demo/model");
      const queries = await demoQueries(100);
      const measured: Measured[] = [];
      measured.push(
        await measure(
          "gpt2-tiny fixture, 64x64",
          {
            modelDir: fixture,
            corpusFile: path.join(fixture, "train.jsonl"),
            outDir: path.join(tmp.dir, "tiny"),
            parameters: parameters({ fisher: "empirical", shardSize: 16 }),
            workers: 1,
            resume: false,
          },
          fixtureQueries,
          48,
        ),
      );
      const smallDir = await gpt2Small(path.join(tmp.dir, "gpt2-small"));
      const smallCorpus = path.join(tmp.dir, "gpt2-small.jsonl");
      await gpt2Corpus(smallCorpus, smallDir, 8, 512);
      const smallJob: BuildJob = {
        modelDir: smallDir,
        corpusFile: smallCorpus,
        outDir: path.join(tmp.dir, "small"),
        parameters: parameters({ projection: { kOut: 16, kIn: 16, rank: 4, seed: 0, basis: "pca" }, pcaSequences: 8, shardSize: 4 }),
        workers: 1,
        resume: false,
      };
      const smallQueries = [{ prompt: "The capital of France is", completion: " Paris" }];
      measured.push(await measure("GPT-2 small (random init), 8 x 512 tokens, 16x16", smallJob, smallQueries, 8));
      const demoJob: BuildJob = {
        modelDir: demoModel,
        corpusFile: path.join(REPO_ROOT, "demo/corpus.jsonl.gz"),
        outDir: path.join(tmp.dir, "demo"),
        parameters: parameters({ projection: { kOut: 16, kIn: 16, rank: 4, seed: 0, basis: "pca" }, fitSequences: 2000, pcaSequences: 512 }),
        workers: 2,
        resume: false,
      };
      measured.push(await measure("demo model, 12,000 WordNet entries, 16x16, 2 workers", demoJob, queries.slice(0, 10), 1000));
      const recall = await recallRows(demoJob.outDir, queries);
      return [
        "Index pass = the vectors phase (training-loss gradients, whitening and projection of every sequence), per worker thread; forward+backward " +
          "= the model's capture pass (`CausalLM.capture`) alone over the same sequences on one thread. Phases: ingest / factors (EK-FAC fit) / projection (PCA pass) / " +
          "vectors / hnsw (full and per-layer graphs), seconds.",
        "",
        "| index | sequences | dims | sketch coordinates | bytes per sequence (vectors + sketch) | build seconds (phases) | index pass tokens/s per worker | forward+backward tokens/s | ratio |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
        ...measured.map(buildRow),
        "",
        "Query latency by stage (median ms; one query at a time in process, top 10): the default answer from the index (search = the first " +
          "tier's default candidates, capped at the index size, by its int8 scan on these indexes, re-scored by the sketch), and with " +
          "`rerank: true` (the sketch's best 30 re-scored exactly):",
        "",
        "| index | gradient | search | total | re-rank | total re-ranked |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        ...measured.map(latencyRow),
        "",
        `The first tier's recall@10 against exact inner-product search over the stored vectors (float64), demo index of 12,000 sequences, ` +
          `${queries.length} queries made from held-out documents: the int8 scan the engine uses on an index of at most ` +
          `${SCAN_MAX_VALUES.toLocaleString("en")} coordinates (rows x dims; its misses are near ties the rounding swaps), and HNSW, used above that ` +
          `(M 16, efConstruction 200, ef max(k, ${DEFAULT_EF}); per-layer graphs serve one-layer filters, the full graph with a masked query ` +
          `and scaled ef serves others):`,
        "",
        "| search | restriction | queries | recall@10 | ms, gradient and search (median) |",
        "| --- | --- | ---: | ---: | ---: |",
        ...recall,
      ].join("\n");
    } finally {
      await tmp.remove();
    }
  },
};

export default section;
