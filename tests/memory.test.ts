import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixturePath, REPO_ROOT } from "../support/fixtures.js";
import { groupLayers, layerGroups } from "../src/ekfac/layer-groups.js";
import { buildEstimate, fitEstimate, fitEstimates, memoryInputs, planBuildMemory, planFitMemory } from "../src/jobs/memory-plan.js";
import { layoutOf } from "../src/model/architectures.js";
import { PYTHIA_1B, TINYLLAMA_1B, shapeMemoryInputs } from "../scripts/bench-util.js";
import { DEFAULT_BATCH_TOKENS, batchBytesPerToken, largestBatchBytes } from "../src/model/batch-budget.js";
import { parseConfig, readConfig } from "../src/model/config.js";
import { weightBytes } from "../src/model/memory-estimate.js";
import { InputError } from "../src/util/errors.js";
import { parseMemorySize } from "../src/util/memory.js";
import { tempDir } from "../src/util/temp-dir.js";

function influence(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(REPO_ROOT, "bin/influence.js"), ...args], { env: { ...process.env, INFLUENCE_QUIET: "1" } }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe("memory sizes", () => {
  it.each([
    ["8G", 8 * 2 ** 30],
    ["512M", 512 * 2 ** 20],
    ["1.5G", 1.5 * 2 ** 30],
    ["64k", 64 * 1024],
    ["2GiB", 2 * 2 ** 30],
    ["300MB", 300 * 2 ** 20],
    ["1000000", 1_000_000],
  ])("reads %s", (text, bytes) => {
    expect(parseMemorySize(text)).toBe(bytes);
  });

  it.each(["", "G", "8X", "-1G", "0", "0.0M", "eight", "8 G B", "1e3M"])("refuses %j, naming --memory", (text) => {
    expect(() => parseMemorySize(text)).toThrow(InputError);
    expect(() => parseMemorySize(text)).toThrow(/^--memory: expected a size such as 8G/);
  });
});

describe("the memory model", () => {
  it("counts every parameter of the config as float32", async () => {
    // gpt2-tiny's model.safetensors holds float32 weights without the tied head: the same bytes, up to its header.
    const cfg = await readConfig(fixturePath("gpt2-tiny"));
    const file = readFileSync(fixturePath("gpt2-tiny", "model.safetensors"));
    const header = Number(file.readBigUInt64LE(0));
    const stored = JSON.parse(file.subarray(8, 8 + header).toString("utf8")) as Record<string, { shape?: number[]; dtype?: string }>;
    const floats = Object.entries(stored)
      .filter(([name, t]) => name !== "__metadata__" && t.dtype === "F32" && !name.endsWith(".attn.bias"))
      .reduce((s, [, t]) => s + (t.shape ?? []).reduce((a, b) => a * b, 1), 0);
    expect(weightBytes(cfg)).toBe(4 * floats);
  });

  it("counts the largest stored tensor while loading, not the whole checkpoint file", async () => {
    // Tensors are read one at a time: loading holds the float32 weights and one tensor as stored.
    const file = readFileSync(fixturePath("pythia-tiny", "model.safetensors"));
    const header = JSON.parse(file.subarray(8, 8 + Number(file.readBigUInt64LE(0))).toString("utf8")) as Record<string, { data_offsets?: number[] }>;
    const sizes = Object.entries(header)
      .filter(([name]) => name !== "__metadata__")
      .map(([, t]) => (t.data_offsets as number[])[1] - (t.data_offsets as number[])[0]);
    const inputs = await memoryInputs(fixturePath("pythia-tiny"), fixturePath("pythia-tiny", "train.jsonl"));
    expect(inputs.largestTensorBytes).toBe(Math.max(...sizes));
    // The embedding: about half of this small model's file.
    expect(inputs.largestTensorBytes).toBeLessThan(0.6 * file.length);
  });

  it("sizes the largest batch as batchesOf makes them", async () => {
    const cfg = await readConfig(fixturePath("gpt2-tiny"));
    // Lengths 10, 20, 30 under 60 padded tokens: [10, 20] (2 x 20 = 40), then [30] alone (60 would take 2 x 30).
    expect(largestBatchBytes(cfg, [30, 10, 20], 60)).toBe(Math.max(2 * 20 * batchBytesPerToken(cfg, 20), 30 * batchBytesPerToken(cfg, 30)));
    // A sequence longer than the batch size still runs, alone.
    expect(largestBatchBytes(cfg, [50], 10)).toBe(50 * batchBytesPerToken(cfg, 50));
  });

  it("cuts the batch to the largest size whose peak fits the budget", async () => {
    const inputs = await memoryInputs(fixturePath("gpt2-tiny"), fixturePath("gpt2-tiny", "train.jsonl"));
    const full = fitEstimate(inputs, 2048);
    const budget = { bytes: Math.round(full.bytes * 0.6), source: "--memory test" };
    const plan = planFitMemory(inputs, 2048, budget);
    expect(plan.batchTokens).toBeLessThan(inputs.lengths.length * 24);
    expect(plan.estimate.bytes).toBeLessThanOrEqual(budget.bytes);
    // One more sequence per batch (24 tokens each) would not fit.
    expect(fitEstimate(inputs, plan.batchTokens + 24).bytes).toBeGreaterThan(budget.bytes);
  });
});

describe("a fit in groups of layers", () => {
  it("cuts the layers into even groups of consecutive layers, every module of a layer in its layer's group", async () => {
    const cfg = parseConfig("config.json", TINYLLAMA_1B);
    const modules = layoutOf(cfg).modules(cfg);
    const groups = layerGroups(modules, 4);
    expect(groups.map(groupLayers)).toEqual(["layers 0-5", "layers 6-11", "layers 12-16", "layers 17-21"]);
    // Llama tracks gate, up and down projections: 3 modules per layer, the groups end to end.
    expect(groups.map((g) => [g.first, g.count])).toEqual([
      [0, 18],
      [18, 18],
      [36, 15],
      [51, 15],
    ]);
    expect(layerGroups(modules, 1)).toEqual([{ firstLayer: 0, lastLayer: 21, first: 0, count: 66 }]);
    expect(() => layerGroups(modules, 23)).toThrow(/cannot cut 22 layers into 23 groups/);
  });

  it("estimates a group's fit below the fit of all layers at once, and plans the fewest groups that fit the budget", async () => {
    const inputs = await memoryInputs(fixturePath("gpt2-tiny"), fixturePath("gpt2-tiny", "train.jsonl"));
    // Batches of the longest sequence alone: the smallest the plan could cut them to.
    const tokens = Math.max(...inputs.lengths);
    const all = fitEstimate(inputs, tokens);
    const byLayer = fitEstimates(inputs, tokens, undefined, layerGroups(inputs.modules, 2));
    // One layer's sums, means and eigenbases instead of two: what the fit phases hold beside the model shrinks.
    for (const group of byLayer.groups) expect(group.bytes).toBeLessThan(all.bytes);
    expect(byLayer.peak.bytes).toBe(Math.max(...byLayer.groups.map((g) => g.bytes)));

    const tight = planFitMemory(inputs, tokens, { bytes: byLayer.peak.bytes, source: "--memory test" });
    expect(tight.groups.map((g) => groupLayers(g.group))).toEqual(["layer 0", "layer 1"]);
    expect(tight.estimate.bytes).toBeLessThanOrEqual(byLayer.peak.bytes);
    expect(tight.allAtOnce.bytes).toBe(all.bytes);
    const roomy = planFitMemory(inputs, tokens, { bytes: all.bytes, source: "--memory test" });
    expect(roomy.groups.map((g) => groupLayers(g.group))).toEqual(["layers 0-1"]);
    expect(roomy.estimate).toEqual(all);
  });

  it.each([
    ["TinyLlama-1.1B", TINYLLAMA_1B, ["layers 0-5", "layers 6-11", "layers 12-16", "layers 17-21"]],
    ["Pythia-1B", PYTHIA_1B, ["layers 0-3", "layers 4-7", "layers 8-11", "layers 12-15"]],
  ])("plans a %s fit of 8 x 512 tokens under 16 GiB in 4 groups, each within the budget", (_, raw, expected) => {
    // Half-precision checkpoints (2 bytes a parameter), as the hub ships both.
    const inputs = shapeMemoryInputs(raw, 2, 8, 512);
    const budget = { bytes: 16 * 2 ** 30, source: "--memory 16 GiB" };
    const plan = planFitMemory(inputs, DEFAULT_BATCH_TOKENS, budget);
    expect(plan.allAtOnce.bytes).toBeGreaterThan(24 * 2 ** 30);
    expect(plan.groups.map((g) => groupLayers(g.group))).toEqual(expected);
    for (const g of plan.groups) expect(g.estimate.bytes).toBeLessThanOrEqual(budget.bytes);
    expect(plan.estimate.bytes).toBeLessThanOrEqual(budget.bytes);
    // Three groups would not fit.
    expect(fitEstimate(inputs, plan.batchTokens, undefined, layerGroups(inputs.modules, 3)).bytes).toBeGreaterThan(budget.bytes);
  });

  it("plans a TinyLlama-1.1B build's fit in groups too, more of them with more workers, each group within the budget", () => {
    const inputs = shapeMemoryInputs(TINYLLAMA_1B, 2, 8, 512);
    const budget = { bytes: 32 * 2 ** 30, source: "--memory 32 GiB" };
    const planned = (workers: number) => {
      const settings = { workers, shardSize: 512, embeddedDatabase: true };
      const plan = planBuildMemory(inputs, settings, DEFAULT_BATCH_TOKENS, budget);
      expect(plan.allAtOnce.bytes).toBeGreaterThan(budget.bytes);
      for (const g of plan.groups) expect(g.estimate.bytes).toBeLessThanOrEqual(budget.bytes);
      expect(plan.estimate.bytes).toBeLessThanOrEqual(budget.bytes);
      // One group fewer would not fit, even with one sequence per batch.
      expect(buildEstimate(inputs, settings, 1, layerGroups(inputs.modules, plan.groups.length - 1)).bytes).toBeGreaterThan(budget.bytes);
      return plan.groups.map((g) => groupLayers(g.group));
    };
    // One worker: the groups a fit makes under 16 GiB (the build's passes hold the workers' answers beside the pass's sums).
    expect(planned(1)).toEqual(["layers 0-5", "layers 6-11", "layers 12-16", "layers 17-21"]);
    // Each worker more holds its own weights, batches and chunk sums.
    expect(planned(2)).toHaveLength(11);
  });
});

describe("influence fit under a memory budget", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    tmp = await tempDir();
  });
  afterAll(() => tmp.remove());

  it.each(["gpt2-tiny", "pythia-tiny", "llama-tiny"])(
    "estimates the peak of a fit of %s within a quarter and records both in the manifest",
    async (model) => {
      const out = path.join(tmp.dir, model);
      const run = await influence(["fit", "--model", fixturePath(model), "--corpus", fixturePath(model, "train.jsonl"), "--out", out, "--fisher", "empirical"]);
      expect(run.stderr).toMatch(/peak memory [\d.]+ [KMG]iB \(estimated [\d.]+ [KMG]iB, in the /);
      expect(run.code).toBe(0);
      const { memory } = JSON.parse(readFileSync(path.join(out, "manifest.json"), "utf8"));
      expect(memory.budgetBytes).toBeGreaterThan(memory.peakBytes);
      expect(Math.abs(memory.estimateBytes - memory.peakBytes) / memory.peakBytes).toBeLessThanOrEqual(0.25);
    },
    120_000,
  );

  it("refuses a fit whose peak exceeds --memory before loading anything, naming the estimate and what to change", async () => {
    const out = path.join(tmp.dir, "refused");
    const run = await influence([
      "fit",
      "--model",
      fixturePath("gpt2-tiny"),
      "--corpus",
      fixturePath("gpt2-tiny", "train.jsonl"),
      "--out",
      out,
      "--memory",
      "200M",
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      /fit needs about [\d.]+ MiB at its peak \(.*: .*model weights \(float32\) [\d.]+ [KM]iB.*\), more than --memory 200 MiB \(200 MiB\) allows/,
    );
    expect(run.stderr).toMatch(/raise --memory/);
    expect(existsSync(out)).toBe(false);
  });

  it("refuses a --memory it cannot read", async () => {
    const run = await influence(["fit", "--model", "m", "--corpus", "c", "--out", "o", "--memory", "8X"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--memory.*expected a size such as 8G, 512M or 1.5G.*"8X"/);
  });
});
