import { copyFile, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cp } from "node:fs/promises";
import { loadCovariance, loadFactors } from "../src/ekfac/artifacts.js";
import { readSafetensors, tensorAsFloat32 } from "../src/safetensors/read.js";
import { writeSafetensors } from "../src/safetensors/write.js";
import { runFit } from "../src/jobs/fit.js";
import { type OpenedModel, openModel } from "../src/model/open-model.js";
import { type ScoreJob, type ScoreOutput, runScore } from "../src/jobs/score.js";
import { DEFAULT_ITERATIVE, type ScoreMethod } from "../src/ekfac/methods.js";
import type { ProgressEvent } from "../src/util/progress.js";
import { pearson } from "../src/stats/correlation.js";
import { maxRelError } from "./helpers/compare.js";
import { fixtureExpected, fixtureModels, fixturePath, fixtureQueries } from "../support/fixtures.js";
import { tempDir } from "../src/util/temp-dir.js";

const heuristic = { rule: "heuristic" as const, factor: 0.1 };

describe.each(fixtureModels)("influence fit and score on %s", (name) => {
  let opened: OpenedModel;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let expected: Awaited<ReturnType<typeof fixtureExpected>>;
  let full: ScoreOutput;
  const factorsDir = () => path.join(tmp.dir, "empirical");

  beforeAll(async () => {
    tmp = await tempDir();
    opened = await openModel(fixturePath(name));
    expected = await fixtureExpected(name);
    await runFit({ opened, corpusFile: fixturePath(name, "train.jsonl"), outDir: factorsDir(), fisher: "empirical", damping: heuristic, seed: 0 });
    full = await runScore({
      opened,
      factorsDir: factorsDir(),
      train: { file: fixturePath(name, "train.jsonl") },
      queriesFile: fixturePath(name, "queries.jsonl"),
      method: "ekfac",
      perModule: true,
      perToken: true,
    });
  });
  afterAll(async () => {
    await opened.model.release();
    await tmp.remove();
  });

  it("saves A and S that reproduce the reference", async () => {
    for (const { module, A, S } of await loadCovariance(factorsDir(), opened.model.modules)) {
      expect(maxRelError(A, expected(`A.${module.name}`).data), `A.${module.name}`).toBeLessThan(1e-4);
      expect(maxRelError(S, expected(`S.${module.name}`).data), `S.${module.name}`).toBeLessThan(1e-4);
    }
  });

  it("scores like the reference, in total, per module, and per token", () => {
    expect(maxRelError(full.scores.flat(), expected("scores").data)).toBeLessThan(1e-3);
    for (const [module, scores] of Object.entries(full.moduleScores ?? {})) {
      expect(maxRelError(scores.flat(), expected(`scores.${module}`).data), module).toBeLessThan(1e-3);
    }
    full.scores.forEach((perQuery, q) =>
      perQuery.forEach((score, n) => {
        const modules = Object.values(full.moduleScores ?? {}).reduce((s, m) => s + m[q][n], 0);
        const tokens = (full.tokenScores ?? [])[q][n].reduce((s, x) => s + x, 0);
        expect(modules).toBeCloseTo(score, 8);
        expect(tokens).toBeCloseTo(score, 8);
      }),
    );
  });

  it("keeps the ranking with rank-32 query batching (Pearson >= 0.99 against full rank)", async () => {
    const lowRank = await runScore({
      opened,
      factorsDir: factorsDir(),
      train: { file: fixturePath(name, "train.jsonl") },
      queriesFile: fixturePath(name, "queries.jsonl"),
      method: "ekfac",
      rank: 32,
      perModule: false,
      perToken: false,
    });
    lowRank.scores.forEach((scores, q) => expect(pearson(scores, full.scores[q]), `query ${q}`).toBeGreaterThanOrEqual(0.99));
  });

  it("fits identical sampled-Fisher factors twice with the same seed", async () => {
    const dirs = ["sampled-a", "sampled-b"].map((d) => path.join(tmp.dir, d));
    for (const outDir of dirs) await runFit({ opened, corpusFile: fixturePath(name, "train.jsonl"), outDir, fisher: "sampled", damping: heuristic, seed: 7 });
    const [a, b] = await Promise.all(dirs.map((d) => loadFactors(d, { modelFingerprint: opened.fingerprint, modules: opened.model.modules })));
    a.factors.forEach((f, i) => {
      expect(Array.from(f.lambda)).toEqual(Array.from(b.factors[i].lambda));
      expect(f.damping).toBe(b.factors[i].damping);
    });
    // And they are not the empirical ones: the labels were really sampled.
    const empirical = await loadFactors(factorsDir(), { modelFingerprint: opened.fingerprint, modules: opened.model.modules });
    expect(maxRelError(a.factors[0].lambda, empirical.factors[0].lambda)).toBeGreaterThan(1e-3);
  });
});

describe("bad input to influence score", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let tiny: OpenedModel;
  let legacy: OpenedModel;
  const factors = () => path.join(tmp.dir, "factors");

  beforeAll(async () => {
    tmp = await tempDir();
    [tiny, legacy] = await Promise.all([openModel(fixturePath("gpt2-tiny")), openModel(fixturePath("gpt2-tiny-legacy"))]);
    await copyFile(fixturePath("gpt2-tiny", "train.jsonl"), path.join(tmp.dir, "train.jsonl"));
    await runFit({
      opened: tiny,
      corpusFile: path.join(tmp.dir, "train.jsonl"),
      outDir: factors(),
      fisher: "empirical",
      damping: heuristic,
      seed: 0,
      maxSequences: 12,
    });
  });
  afterAll(async () => {
    await tiny.model.release();
    await legacy.model.release();
    await tmp.remove();
  });

  const scoreJob = (opened: OpenedModel, queriesFile: string, method: ScoreMethod): ScoreJob => ({
    opened,
    factorsDir: factors(),
    train: { file: fixturePath("gpt2-tiny", "train.jsonl") },
    queriesFile,
    method,
    perModule: false,
    perToken: false,
  });
  const score = (opened: OpenedModel, queriesFile: string, method: "ekfac" | "cg" = "ekfac") => runScore(scoreJob(opened, queriesFile, method));

  async function queries(lines: object[]): Promise<string> {
    const file = path.join(tmp.dir, `queries-${Math.random().toString(36).slice(2)}.jsonl`);
    await writeFile(file, lines.map((l) => JSON.stringify(l)).join("\n"));
    return file;
  }

  it("refuses factors fitted on another model", async () => {
    await expect(score(legacy, fixturePath("gpt2-tiny-legacy", "queries.jsonl"))).rejects.toThrow(/fitted on another model/);
  });

  it("refuses cg when the fitting corpus changed after the fit", async () => {
    const file = path.join(tmp.dir, "train.jsonl");
    const original = await readFile(file, "utf8");
    await writeFile(file, original.replace("fortune-525", "fortune-x525"));
    try {
      await expect(score(tiny, fixturePath("gpt2-tiny", "queries.jsonl"), "cg")).rejects.toThrow(/fitting corpus changed/);
    } finally {
      await writeFile(file, original);
    }
  });

  it.each(["cg", "lissa"] as const)("reports each query %s solves, one event per query", async (method) => {
    const events: ProgressEvent[] = [];
    const queriesFile = fixturePath("gpt2-tiny", "queries.jsonl");
    const iterative = { ...DEFAULT_ITERATIVE, lissa: { ...DEFAULT_ITERATIVE.lissa, iterations: 20 } };
    await runScore({ ...scoreJob(tiny, queriesFile, method), iterative, onProgress: (e) => events.push(e) });
    const n = fixtureQueries("gpt2-tiny").length;
    expect(events.filter((e) => e.phase === `${method} solves`)).toEqual(
      Array.from({ length: n }, (_, i) => ({ phase: `${method} solves`, done: i + 1, total: n, unit: "queries" })),
    );
  });

  it("refuses a query longer than the context, and an empty completion, naming the line", async () => {
    const long = await queries([{ id: "long", prompt_tokens: Array(60).fill(11), completion_tokens: Array(10).fill(13) }]);
    await expect(score(tiny, long)).rejects.toThrow(/line 1.*64|64.*line 1/s);
    const empty = await queries([
      { id: "ok", prompt: "Hello", completion: " world" },
      { id: "empty", prompt: "Hello", completion: "" },
    ]);
    await expect(score(tiny, empty)).rejects.toThrow(/line 2/);
  });

  it("refuses statistics that overflow, naming the statistic and the module", async () => {
    // A LayerNorm gain of 1e30 makes the MLP inputs of block 1 overflow float32.
    const dir = path.join(tmp.dir, "overflowing-model");
    await cp(fixturePath("gpt2-tiny"), dir, { recursive: true });
    const st = await readSafetensors(path.join(dir, "model.safetensors"));
    const tensors = Object.fromEntries(
      [...st.tensors].map(([key, info]) => {
        const data = tensorAsFloat32(st, key);
        if (key === "transformer.h.1.ln_2.weight") data.fill(1e30);
        return [key, { dtype: "F32" as const, shape: info.shape, data }];
      }),
    );
    await writeSafetensors(path.join(dir, "model.safetensors"), tensors);
    const broken = await openModel(dir);
    await expect(
      runFit({
        opened: broken,
        corpusFile: fixturePath("gpt2-tiny", "train.jsonl"),
        outDir: path.join(tmp.dir, "nan"),
        fisher: "empirical",
        damping: heuristic,
        seed: 0,
      }),
    ).rejects.toThrow(/(A|S) of h\.\d\.mlp\.c_(fc|proj) contains (NaN|Infinity|-Infinity)/);
    await broken.model.release();
  });
});
