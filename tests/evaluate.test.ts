/**
 * `influence evaluate` against a brute-force computation on gpt2-tiny: every fine-tuning redone
 * here with the trainer's own loop, each query's loss computed from the logits, the scores summed
 * and Spearman's correlation computed from rank differences.
 */
import { execFile } from "node:child_process";
import { readFile, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_ITERATIVE } from "../src/ekfac/methods.js";
import { IndexEngine } from "../src/engine/index-engine.js";
import { type EvaluateJob, type EvaluateReport, runEvaluate } from "../src/jobs/evaluate/evaluate.js";
import { runFit } from "../src/jobs/fit.js";
import { runScore } from "../src/jobs/score.js";
import { makeBatch } from "../src/model/batch.js";
import type { ModelConfig } from "../src/model/config.js";
import { readModel } from "../src/model/load.js";
import { OnnxCausalLM } from "../src/model/onnx/causal-lm.js";
import { openModel } from "../src/model/open-model.js";
import { DEFAULT_ADAMW } from "../src/training/adamw.js";
import { epochBatches } from "../src/training/batches.js";
import { learningRate } from "../src/training/schedule.js";
import { Gpt2Trainer } from "../src/training/trainer.js";
import { tempDir } from "../src/util/temp-dir.js";
import { REPO_ROOT, fixturePath, fixtureQueries, fixtureTrain } from "../support/fixtures.js";
import { expectRefused, refusal } from "./helpers/refusal.js";

const MODEL = fixturePath("gpt2-tiny");
const CORPUS = fixturePath("gpt2-tiny", "train.jsonl");
const QUERIES = fixturePath("gpt2-tiny", "queries.jsonl");
const SCHEDULE = { epochs: 2, batchTokens: 128, lr: 1e-3, warmupRatio: 0.1, floorRatio: 0.1 };
const SETTINGS = { subsets: 4, fraction: 0.5, seed: 3, schedule: SCHEDULE };

const job = (outDir: string, overrides: Partial<EvaluateJob> = {}): EvaluateJob => ({
  modelDir: MODEL,
  corpusFile: CORPUS,
  queriesFile: QUERIES,
  settings: SETTINGS,
  methods: [
    { method: "ekfac", fisher: "empirical" },
    { method: "index", fisher: "empirical" },
    { method: "identity", fisher: null },
  ],
  outDir,
  runtime: { device: "cpu" },
  ...overrides,
});

/** The training loop written out: seeded epoch batches, AdamW, warmup over 10% of the steps, cosine decay to 10%. */
async function bruteFineTune(config: ModelConfig, weights: Map<string, Float32Array>, sequences: number[][]): Promise<Map<string, Float32Array>> {
  const trainer = new Gpt2Trainer(config, weights, DEFAULT_ADAMW, { device: "cpu" });
  const lengths = sequences.map((s) => s.length);
  const perEpoch = epochBatches(lengths, SCHEDULE.batchTokens, SETTINGS.seed, 0).length;
  const totalSteps = SCHEDULE.epochs * perEpoch;
  const rates = { peak: SCHEDULE.lr, warmupSteps: Math.max(1, Math.round(0.1 * totalSteps)), totalSteps, floorRatio: 0.1 };
  let step = 0;
  for (let epoch = 0; epoch < SCHEDULE.epochs; epoch++) {
    for (const batch of epochBatches(lengths, SCHEDULE.batchTokens, SETTINGS.seed, epoch)) {
      await trainer.step(
        makeBatch(
          batch.map((i) => sequences[i]),
          config.contextLength,
          config.vocabSize,
        ),
        learningRate(step++, rates),
      );
    }
  }
  const tuned = trainer.weights();
  await trainer.release();
  return tuned;
}

/** Summed NLL of each query's completion, from the full logits rows and a float64 log-softmax. */
async function bruteQueryLosses(config: ModelConfig, weights: Map<string, Float32Array>): Promise<number[]> {
  const model = new OnnxCausalLM(config, weights, { device: "cpu" });
  const losses: number[] = [];
  for (const q of fixtureQueries("gpt2-tiny")) {
    const tokens = [...q.prompt_tokens, ...q.completion_tokens];
    const logits = await model.logits(makeBatch([tokens], config.contextLength, config.vocabSize));
    const V = config.vocabSize;
    let loss = 0;
    for (let t = q.prompt_tokens.length; t < tokens.length; t++) {
      const row = logits.subarray((t - 1) * V, t * V);
      const max = row.reduce((m, x) => Math.max(m, x), -Infinity);
      const logSum = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
      loss += logSum - row[tokens[t]];
    }
    losses.push(loss);
  }
  await model.release();
  return losses;
}

/** Spearman's rho as 1 - 6 sum d^2 / (n (n^2 - 1)): values without ties. */
function spearmanByRanks(x: number[], y: number[]): number {
  const rank = (v: number[]) => {
    const order = v.map((_, i) => i).sort((a, b) => v[a] - v[b]);
    const r: number[] = [];
    order.forEach((i, position) => (r[i] = position));
    return r;
  };
  expect(new Set(x).size).toBe(x.length);
  expect(new Set(y).size).toBe(y.length);
  const [rx, ry] = [rank(x), rank(y)];
  const n = x.length;
  return 1 - (6 * rx.reduce((s, r, i) => s + (r - ry[i]) ** 2, 0)) / (n * (n * n - 1));
}

let tmp: Awaited<ReturnType<typeof tempDir>>;
let report: EvaluateReport;
beforeAll(async () => {
  tmp = await tempDir("evaluate-test-");
  report = await runEvaluate(job(path.join(tmp.dir, "run")));
}, 600_000);
afterAll(() => tmp.remove());

describe("influence evaluate on gpt2-tiny", () => {
  it("draws distinct subsets of half the sequences", () => {
    const n = fixtureTrain("gpt2-tiny").length;
    expect(report.corpus).toMatchObject({ sequences: n, subsetSize: n / 2 });
    expect(report.subsets).toHaveLength(SETTINGS.subsets);
    for (const { members } of report.subsets) {
      expect(new Set(members).size).toBe(n / 2);
      expect(members.every((i) => Number.isInteger(i) && i >= 0 && i < n)).toBe(true);
    }
    expect(new Set(report.subsets.map((s) => s.members.join())).size).toBe(SETTINGS.subsets);
  });

  it("matches a brute-force computation: fine-tunings, measured losses, summed scores and Spearman", async () => {
    const { config, weights } = await readModel(MODEL);
    const train = fixtureTrain("gpt2-tiny").map((s) => s.tokens);

    // The model scores are computed on: fine-tuned on every sequence, saved in the run's folder.
    const full = await bruteFineTune(config, weights, train);
    const saved = (await readModel(path.join(tmp.dir, "run", "full-model"))).weights;
    for (const [name, data] of full) expect(Array.from(saved.get(name) as Float32Array), name).toEqual(Array.from(data));
    expect(report.fullLosses.map((x) => x.toFixed(4))).toEqual((await bruteQueryLosses(config, full)).map((x) => x.toFixed(4)));

    // Scores of the fully fine-tuned model by the existing scoring job (the machinery evaluate reuses, tested on its own).
    const opened = await openModel(path.join(tmp.dir, "run", "full-model"), { device: "cpu" });
    const factorsDir = path.join(tmp.dir, "brute-factors");
    await runFit({ opened, corpusFile: CORPUS, outDir: factorsDir, fisher: "empirical", damping: { rule: "heuristic", factor: 0.1 }, seed: 0 });
    const scoresOf = async (method: "ekfac" | "identity") =>
      (
        await runScore({
          opened,
          factorsDir,
          train: { file: CORPUS },
          queriesFile: QUERIES,
          method,
          perModule: false,
          perToken: false,
          iterative: DEFAULT_ITERATIVE,
        })
      ).scores;
    // The index's own scores (its sketch's) through the engine's other path: every sequence a candidate of a query, re-scored by the sketch.
    const engine = await IndexEngine.open(path.join(tmp.dir, "run", "index-empirical"), { device: "cpu" });
    const index = [];
    for (const q of fixtureQueries("gpt2-tiny")) {
      const all = { topK: train.length, candidates: train.length, rerank: false, tokenScores: false };
      const { hits } = await engine.influence({ promptTokens: q.prompt_tokens, completionTokens: q.completion_tokens, ...all });
      expect(hits.every((h) => h.scoredBy === "sketch")).toBe(true);
      const row = new Array<number>(train.length);
      for (const h of hits) row[h.ordinal] = h.score;
      index.push(row);
    }
    await engine.close();
    const scores = { ekfac: await scoresOf("ekfac"), identity: await scoresOf("identity"), index };
    await opened.model.release();

    const losses: number[][] = [];
    for (const { members } of report.subsets) {
      losses.push(
        await bruteQueryLosses(
          config,
          await bruteFineTune(
            config,
            weights,
            members.map((i) => train[i]),
          ),
        ),
      );
    }
    report.subsets.forEach((s, k) =>
      expect(
        s.losses.map((x) => x.toFixed(4)),
        `subset ${k}`,
      ).toEqual(losses[k].map((x) => x.toFixed(4))),
    );

    for (const result of report.methods) {
      const perSequence = scores[result.method as keyof typeof scores];
      const perQuery = perSequence.map((row, q) => {
        const summed = report.subsets.map((s) => s.members.reduce((sum, i) => sum + row[i], 0));
        summed.forEach((x, k) => expect(result.summedScores[q][k]).toBeCloseTo(x, 3));
        return spearmanByRanks(
          summed,
          losses.map((l) => -l[q]),
        );
      });
      result.perQuery.forEach((x, q) => expect(x, `${result.label}, query ${q}`).toBeCloseTo(perQuery[q], 9));
      expect(result.lds).toBeCloseTo(perQuery.reduce((a, b) => a + b, 0) / perQuery.length, 9);
      expect(result.low).toBeLessThanOrEqual(result.lds);
      expect(result.high).toBeGreaterThanOrEqual(result.lds);
      expect(result.low).toBeGreaterThanOrEqual(Math.min(...perQuery));
      expect(result.high).toBeLessThanOrEqual(Math.max(...perQuery));
    }
  }, 600_000);

  it("resumes an interrupted run to the same report, and refuses to resume with other settings", async () => {
    const dir = path.join(tmp.dir, "interrupted");
    const stop = new Error("interrupted after 2 fine-tunings");
    const interrupted = runEvaluate(
      job(dir, {
        onProgress: (e) => {
          if (e.phase === "subset fine-tunings" && e.done === 2) throw stop;
        },
      }),
    );
    await expect(interrupted).rejects.toBe(stop);
    expect(await readdir(path.join(dir, "subsets"))).toEqual(["0000.json", "0001.json"]);
    const kept = await readFile(path.join(dir, "subsets", "0001.json"), "utf8");

    await expectRefused(runEvaluate(job(dir, { settings: { ...SETTINGS, fraction: 0.25 } })), dir, /other settings \(fraction differ\)/);
    expect(await readFile(path.join(dir, "subsets", "0001.json"), "utf8")).toBe(kept);

    const resumed = await runEvaluate(job(dir));
    expect(resumed).toEqual(report);
  }, 600_000);
});

describe("influence evaluate refuses bad input", () => {
  it.each([0, 1, 1.5, -0.2, Number.NaN])("--fraction %s", async (fraction) => {
    const err = await refusal(runEvaluate(job(path.join(tmp.dir, "bad"), { settings: { ...SETTINGS, fraction } })));
    expect(err.message).toMatch(/--fraction must be between 0 and 1/);
  });

  it.each([1, 0, 2.5])("--subsets %s", async (subsets) => {
    const err = await refusal(runEvaluate(job(path.join(tmp.dir, "bad"), { settings: { ...SETTINGS, subsets } })));
    expect(err.message).toMatch(/--subsets must be an integer of at least 2/);
  });

  it("a model it cannot fine-tune (not GPT-2)", async () => {
    const err = await refusal(runEvaluate(job(path.join(tmp.dir, "bad"), { modelDir: fixturePath("pythia-tiny") })));
    expect(err.message).toMatch(/fine-tuning runs on GPT-2 only; this is a gpt-neox model/);
  });

  it("a malformed queries file, naming its line", async () => {
    const file = path.join(tmp.dir, "bad-queries.jsonl");
    await writeFile(file, `${JSON.stringify(fixtureQueries("gpt2-tiny")[0])}\n{"id": "q2", "prompt_tokens": [1, 2]}\n`);
    await expectRefused(runEvaluate(job(path.join(tmp.dir, "bad"), { queriesFile: file })), file, /line 2.*missing "completion_tokens"/);
    await writeFile(file, "{not json\n");
    await expectRefused(runEvaluate(job(path.join(tmp.dir, "bad"), { queriesFile: file })), file, /line 1/);
  });

  it("on the command line: an unknown method, and --fraction out of range, with exit code 2", async () => {
    const run = (args: string[]) =>
      new Promise<{ code: number; stderr: string }>((resolve) =>
        execFile(
          process.execPath,
          [path.join(REPO_ROOT, "bin/influence.js"), "evaluate", "--model", MODEL, "--corpus", CORPUS, "--queries", QUERIES, ...args],
          { env: { ...process.env, INFLUENCE_QUIET: "1" } },
          (err, _stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
        ),
      );
    const unknown = await run(["--methods", "ekfac,influence"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/--methods.*expected one of ekfac, cg, lissa, identity, index, got "influence"/);
    const fraction = await run(["--fraction", "1"]);
    expect(fraction.code).toBe(2);
    expect(fraction.stderr).toMatch(/--fraction must be between 0 and 1 \(exclusive\), got 1/);
  }, 60_000);
});
