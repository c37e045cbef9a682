import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, fixturePath } from "../support/fixtures.js";
import { tempDir } from "../src/util/temp-dir.js";
import { CUDA_INSTALL } from "../src/runtime/device.js";

/** Runs the `influence` command line as users do, through bin/influence.js. */
function influence(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(REPO_ROOT, "bin/influence.js"), ...args],
      { env: { ...process.env, INFLUENCE_QUIET: "1" }, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe("the influence command line", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    tmp = await tempDir();
  });
  afterAll(() => tmp.remove());

  it("lists its commands", async () => {
    const { code, stdout } = await influence(["--help"]);
    expect(code).toBe(0);
    for (const command of ["fit", "score", "build", "query", "serve"]) expect(stdout).toMatch(new RegExp(`^\\s+${command} `, "m"));
  });

  it("refuses a folder without config.json, naming the file, with exit code 2", async () => {
    const empty = path.join(tmp.dir, "no-model");
    await mkdir(empty);
    const { code, stderr } = await influence(["fit", "--model", empty, "--corpus", fixturePath("gpt2-tiny", "train.jsonl"), "--out", path.join(tmp.dir, "f")]);
    expect(code).toBe(2);
    expect(stderr).toContain(`${path.join(empty, "config.json")}: missing`);
  });

  it("refuses an option value it cannot parse", async () => {
    const { code, stderr } = await influence(["build", "--model", "m", "--corpus", "c", "--out", "o", "--dims", "64by64"]);
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/--dims.*expected KOUTxKIN/);
  });

  it("refuses an unknown device, and a device whose provider is not installed with the command that installs it", async () => {
    const unknown = await influence(["score", "--model", "m", "--factors", "f", "--train", "t", "--queries", "q", "--device", "tpu"]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('--device: unknown device "tpu" (choose one of: cpu, cuda)');
    // This machine has no CUDA provider: the command stops before any work, with exit code 2.
    const model = fixturePath("gpt2-tiny");
    const cuda = await influence([
      "fit",
      "--model",
      model,
      "--corpus",
      fixturePath("gpt2-tiny", "train.jsonl"),
      "--out",
      path.join(tmp.dir, "f-cuda"),
      "--device",
      "cuda",
    ]);
    expect(cuda.code).toBe(2);
    expect(cuda.stderr).toContain(`Install it with \`${CUDA_INSTALL}\``);
  });

  it("refuses a folder that is not an index", async () => {
    const { code, stderr } = await influence(["query", "--index", path.join(tmp.dir, "nothing"), "--prompt", "a", "--completion", "b"]);
    expect(code).toBe(2);
    expect(stderr).toContain("index folder not found");
  });

  it("fits and scores, printing the documented JSON", async () => {
    const factors = path.join(tmp.dir, "factors");
    const corpus = path.join(tmp.dir, "train.jsonl");
    await writeFile(corpus, readFileSync(fixturePath("gpt2-tiny", "train.jsonl"), "utf8").split("\n").slice(0, 6).join("\n"));
    const fit = await influence(["fit", "--model", fixturePath("gpt2-tiny"), "--corpus", corpus, "--out", factors, "--fisher", "empirical", "--no-progress"]);
    expect(fit.code, fit.stderr).toBe(0);
    const score = await influence([
      "score",
      "--model",
      fixturePath("gpt2-tiny"),
      "--factors",
      factors,
      "--train",
      corpus,
      "--queries",
      fixturePath("gpt2-tiny", "queries.jsonl"),
      "--per-module",
      "--per-token",
      "--json",
      "--no-progress",
    ]);
    expect(score.code, score.stderr).toBe(0);
    const out = JSON.parse(score.stdout);
    expect(Object.keys(out).sort()).toEqual(["moduleScores", "queries", "scores", "tokenScores", "train"]);
    expect(out.queries).toHaveLength(4);
    expect(out.train).toHaveLength(6);
    expect(out.scores.map((q: number[]) => q.length)).toEqual([6, 6, 6, 6]);
    expect(Object.keys(out.moduleScores)).toEqual(["h.0.mlp.c_fc", "h.0.mlp.c_proj", "h.1.mlp.c_fc", "h.1.mlp.c_proj"]);
    expect(out.tokenScores[0][0]).toHaveLength(24);
  });
});
