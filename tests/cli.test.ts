import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectedQueryScores, topIds } from "../support/fixture-index.js";
import { REPO_ROOT, architectureFixtures, fixtureExpected, fixturePath, fixtureQueries, fixtureTrain } from "../support/fixtures.js";
import { gql } from "../support/server.js";
import { CLI_ENV, INFLUENCE_BIN, influence } from "../support/cli.js";
import { tempDir } from "../src/util/temp-dir.js";
import { CUDA_INSTALL } from "../src/runtime/device.js";
import { readSafetensorsHeader } from "../src/safetensors/read.js";
import { maxRelError } from "./helpers/compare.js";

describe("the influence command line", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    tmp = await tempDir();
  });
  afterAll(() => tmp.remove());

  it("lists its commands", async () => {
    const { code, stdout } = await influence(["--help"]);
    expect(code).toBe(0);
    for (const command of ["fit", "score", "build", "query", "serve", "worker"]) expect(stdout).toMatch(new RegExp(`^\\s+${command} `, "m"));
  });

  it("documents its exit codes in --help and prints its version", async () => {
    const help = await influence(["--help"]);
    expect(help.stdout).toMatch(/Exit codes: 0 success; 2 bad input .*; 1 any other failure\./s);
    const version = await influence(["--version"]);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe(JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")).version);
  });

  it.each([
    ["an unknown command", ["bogus"], /unknown command 'bogus'/],
    ["an unknown option", ["query", "--index", "x", "--topk", "3"], /unknown option '--topk'/],
    ["a bad option value", ["fit", "--model", "m", "--corpus", "c", "--out", "o", "--fisher", "exact"], /--fisher.*expected sampled or empirical/],
    ["a missing option", ["fit", "--model", "m", "--corpus", "c"], /required option '--out <dir>' not specified/],
    ["an --index without a folder", ["serve", "--index", "a="], /--index.*expected \[NAME=\]DIR, got "a="/],
    ["two indexes of one name", ["serve", "--index", "/x/index", "--index", "b=/y", "--index", "/z/index"], /two indexes are named "index"/],
    ["an index name it cannot take", ["serve", "--index", "my index=/x"], /index name "my index" is not 1 to 64 letters/],
    [
      "a missing option of build (checked by the command: `build status` does not take it)",
      ["build", "--model", "m", "--out", "o"],
      /required option '--corpus <file>' not specified/,
    ],
    [
      "--distributed without a database",
      ["build", "--model", "m", "--corpus", "c", "--out", "o", "--distributed"],
      /--distributed needs --database postgres:\/\//,
    ],
    [
      "--memory with --distributed (no budget of this machine bounds the workers')",
      ["build", "--model", "m", "--corpus", "c", "--out", "o", "--distributed", "--database", "postgres://127.0.0.1/x", "--memory", "8G"],
      /--memory is for single-machine builds: a distributed build's jobs run on its workers' machines/,
    ],
  ])("exits with code 2 on %s, like every other bad input", async (_, args, message) => {
    const { code, stderr } = await influence(args);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
  });

  it("refuses a missing corpus before drawing any progress", async () => {
    const missing = path.join(tmp.dir, "no-corpus.jsonl");
    const { code, stderr } = await influence(["fit", "--model", fixturePath("gpt2-tiny"), "--corpus", missing, "--out", path.join(tmp.dir, "f0")]);
    expect(code).toBe(2);
    expect(stderr).toContain(`${missing}: missing`);
    expect(stderr).not.toMatch(/counting|sequences/);
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
    expect(code).toBe(2);
    expect(stderr).toMatch(/--dims.*expected KOUTxKIN/);
    const precision = await influence(["build", "--model", "m", "--corpus", "c", "--out", "o", "--sketch-precision", "int4"]);
    expect(precision.code).toBe(2);
    expect(precision.stderr).toMatch(/--sketch-precision.*auto, int8, sign, float32/);
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
    const scoreArgs = [
      "score",
      "--model",
      fixturePath("gpt2-tiny"),
      "--factors",
      factors,
      "--train",
      corpus,
      "--queries",
      fixturePath("gpt2-tiny", "queries.jsonl"),
    ];
    const score = await influence([...scoreArgs, "--per-module", "--per-token", "--json", "--no-progress"]);
    expect(score.code, score.stderr).toBe(0);
    const out = JSON.parse(score.stdout);
    expect(Object.keys(out).sort()).toEqual(["moduleScores", "queries", "scores", "tokenScores", "train"]);
    expect(out.queries).toHaveLength(4);
    expect(out.train).toHaveLength(6);
    expect(out.scores.map((q: number[]) => q.length)).toEqual([6, 6, 6, 6]);
    expect(Object.keys(out.moduleScores)).toEqual(["h.0.mlp.c_fc", "h.0.mlp.c_proj", "h.1.mlp.c_fc", "h.1.mlp.c_proj"]);
    expect(out.tokenScores[0][0]).toHaveLength(24);

    // Without --json: each query's top 5 as a table, one column per module.
    const table = await influence([...scoreArgs, "--per-module", "--no-progress"]);
    expect(table.code, table.stderr).toBe(0);
    const blocks = table.stdout.trim().split("\n\n");
    expect(blocks.map((b) => b.split("\n")[0])).toEqual(out.queries.map((id: string) => `query ${id}`));
    const modules = Object.keys(out.moduleScores);
    blocks.forEach((block, q) => {
      const [header, ...rows] = block.split("\n").slice(1);
      expect(header.trim().split(/\s+/)).toEqual(["rank", "train", "score", ...modules]);
      const order = out.train.map((_: string, n: number) => n).sort((a: number, b: number) => out.scores[q][b] - out.scores[q][a]);
      expect(rows).toHaveLength(5);
      rows.forEach((row, r) => {
        const n = order[r];
        expect(row.trim().split(/\s+/)).toEqual([
          String(r + 1),
          out.train[n],
          out.scores[q][n].toExponential(3),
          ...modules.map((m) => out.moduleScores[m][q][n].toExponential(3)),
        ]);
        expect(row).toHaveLength(header.length); // right-aligned numbers end under their headers
      });
    });
    // Training sequences on the command line score as the same sequences read from the file, up to float32
    // rounding: the file's sequences ran in one padded batch, these in one pass each (README, "Compute engine").
    const train = readFileSync(corpus, "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { id: string; tokens: number[] });
    const fileArgs = scoreArgs.slice(0, scoreArgs.indexOf("--train"));
    const queriesArgs = ["--queries", fixturePath("gpt2-tiny", "queries.jsonl"), "--json", "--no-progress"];
    const given = await influence([...fileArgs, ...queriesArgs, "--tokens", train[2].tokens.join(","), "--tokens", train[4].tokens.join(",")]);
    expect(given.code, given.stderr).toBe(0);
    const givenOut = JSON.parse(given.stdout);
    expect(givenOut.train).toEqual(["tokens-1", "tokens-2"]);
    out.scores.forEach((perQuery: number[], q: number) => {
      const scale = Math.max(...perQuery.map(Math.abs));
      expect(Math.abs(givenOut.scores[q][0] - perQuery[2]) / scale).toBeLessThan(1e-5);
      expect(Math.abs(givenOut.scores[q][1] - perQuery[4]) / scale).toBeLessThan(1e-5);
    });
    const texts = await influence([...fileArgs, ...queriesArgs, "--text", " The cat sat on the mat.", "--text", " Then it left."]);
    expect(texts.code, texts.stderr).toBe(0);
    expect(JSON.parse(texts.stdout).train).toEqual(["text-1", "text-2"]);
    // Bad sequences are refused like scoreSequences' (exit code 2).
    for (const [extra, message] of [
      [["--train", corpus, "--text", " a b"], "give the training sequences either as a file (--train) or on the command line (--text, --tokens), not both"],
      [[], "no training sequences: give a file (--train FILE) or sequences (--text TEXT or --tokens IDS, repeatable)"],
      [["--text", ""], "--text[0] is empty: a training sequence needs at least 2 tokens"],
      [["--tokens", "464,50257"], "--tokens[0][1] = 50257 is not a token id (the vocabulary has ids 0 to 50256)"],
      [["--text", " a b", "--tokens", "464,262"], "give the sequences either as text (--text) or as token ids (--tokens), not both"],
    ] as const) {
      const refused = await influence([...fileArgs, ...queriesArgs, ...extra]);
      expect([refused.code, refused.stderr.trim()]).toEqual([2, `influence: ${message}`]);
    }
  });

  it("fits and scores a folder without tokenizer files on token ids, and refuses text queries for it naming the missing files", async () => {
    const model = path.join(tmp.dir, "no-tokenizer");
    await mkdir(model);
    for (const file of ["config.json", "model.safetensors"]) await copyFile(fixturePath("gpt2-tiny", file), path.join(model, file));
    const corpus = path.join(tmp.dir, "ids-train.jsonl");
    await writeFile(corpus, readFileSync(fixturePath("gpt2-tiny", "train.jsonl"), "utf8").split("\n").slice(0, 4).join("\n"));
    const factors = path.join(tmp.dir, "ids-factors");
    const fit = await influence(["fit", "--model", model, "--corpus", corpus, "--out", factors, "--fisher", "empirical", "--no-progress"]);
    expect(fit.code, fit.stderr).toBe(0);
    const scoreArgs = ["score", "--model", model, "--factors", factors, "--train", corpus, "--json", "--no-progress", "--queries"];
    const score = await influence([...scoreArgs, fixturePath("gpt2-tiny", "queries.jsonl")]);
    expect(score.code, score.stderr).toBe(0);
    expect(JSON.parse(score.stdout).scores).toHaveLength(4);
    const textQueries = path.join(tmp.dir, "text-queries.jsonl");
    await writeFile(textQueries, JSON.stringify({ id: "q", prompt: "The quick", completion: " fox" }));
    const refused = await influence([...scoreArgs, textQueries]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`${model} has no tokenizer.json (nor vocab.json + merges.txt): text input needs one; pass token ids instead`);
  });

  describe("on an index it built", () => {
    let index: string;
    let build: Awaited<ReturnType<typeof influence>>;
    beforeAll(async () => {
      index = path.join(tmp.dir, "index");
      build = await influence([
        "build",
        "--model",
        fixturePath("gpt2-tiny"),
        "--corpus",
        fixturePath("gpt2-tiny", "train.jsonl"),
        "--out",
        index,
        "--fisher",
        "empirical",
        "--shard-size",
        "4",
        "--workers",
        "1",
      ]);
    });

    it("reports the build's peak memory beside its estimate, within a quarter of it, and records both in the manifest", () => {
      expect(build.code, build.stderr).toBe(0);
      expect(build.stderr).toMatch(/; peak memory [\d.]+ [KMG]iB \(estimated [\d.]+ [KMG]iB, in the .*; budget [\d.]+ [KMG]iB\)\n$/);
      const { memory } = JSON.parse(readFileSync(path.join(index, "manifest.json"), "utf8")).build;
      expect(Math.abs(memory.estimateBytes - memory.peakBytes) / memory.peakBytes).toBeLessThanOrEqual(0.25);
    });

    it("records the sketch its default request resolves to: gpt2-tiny's matrices whole in int8, a rank-4 scale", () => {
      const { parameters } = JSON.parse(readFileSync(path.join(index, "manifest.json"), "utf8"));
      expect(parameters.sketch).toEqual({ floats: 131_072, precision: "int8", rank: 4, seed: 0 });
      expect(parameters.projection.rank).toBe(4);
    });

    it("gives a sign sketch a rank-2 scale unless --scale-rank names one, which both tiers then take", async () => {
      const built = async (name: string, extra: string[]) => {
        const out = path.join(tmp.dir, name);
        const args = ["--corpus", fixturePath("gpt2-tiny", "train.jsonl"), "--out", out, "--max-sequences", "8", "--shard-size", "4", "--workers", "1"];
        const run = await influence(["build", "--model", fixturePath("gpt2-tiny"), ...args, ...extra, "--no-progress"]);
        expect(run.code, run.stderr).toBe(0);
        return JSON.parse(readFileSync(path.join(out, "manifest.json"), "utf8")).parameters;
      };
      const signs = await built("signs", ["--sketch-precision", "sign"]);
      expect([signs.sketch, signs.projection.rank]).toEqual([{ floats: 131_072, precision: "sign", rank: 2, seed: 0 }, 4]);
      const ranked = await built("signs-rank-3", ["--sketch-precision", "sign", "--scale-rank", "3"]);
      expect([ranked.sketch.rank, ranked.projection.rank]).toEqual([3, 3]);
    });

    it("builds with plain progress lines in a pipe", () => {
      expect(build.code, build.stderr).toBe(0);
      const progress = build.stderr.split("\n").filter((l) => /^(ingest|covariance|eigendecomposition|lambda|projection|vectors|hnsw)/.test(l));
      const phases = [...new Set(progress.map((l) => l.split(/\s+/)[0]))];
      expect(phases.slice(0, 6)).toEqual(["ingest", "covariance", "eigendecomposition", "lambda", "projection", "vectors"]);
      for (let i = 1; i < progress.length; i++) expect(progress[i]).not.toBe(progress[i - 1]);
      for (const line of progress) {
        expect(line).not.toMatch(/[█░]/); // no bars in a file or a pipe
        expect(line).not.toMatch(/\b60s/);
        const unit = line.startsWith("eigendecomposition") ? "matrices" : line.startsWith("hnsw") ? "vectors" : "sequences";
        expect(line).toMatch(new RegExp(`^\\S+(?: \\S+)?\\s+[\\d,]+(?:/[\\d,]+)? ${unit}\\b`));
        if (/\/s/.test(line)) expect(line).toMatch(unit === "sequences" ? / tokens\/s / : new RegExp(` ${unit}/s `));
      }
      // Each phase ends on a line with everything done; ingest, whose total is unknown, with the count.
      expect(progress.filter((l) => l.startsWith("ingest")).at(-1)).toMatch(new RegExp(`^ingest\\s+${fixtureTrain("gpt2-tiny").length} sequences \\|`));
      for (const phase of phases.filter((p) => p !== "ingest")) expect(progress.filter((l) => l.startsWith(phase)).at(-1)).toMatch(/ (\d[\d,]*)\/\1 /);
    });

    it("queries with a table: a header and aligned columns", async () => {
      const args = ["query", "--index", index, "--prompt-tokens", "464,2068", "--completion-tokens", "7586", "--top-k", "5"];
      const json = await influence([...args, "--json"]);
      expect(json.code, json.stderr).toBe(0);
      const hits = JSON.parse(json.stdout).hits as Array<{ rank: number; id: string; score: number; scoredBy: string; approxScore: number }>;
      expect(hits.map((h) => h.scoredBy)).toEqual(hits.map(() => "sketch"));
      const shown = await influence(args);
      expect(shown.code, shown.stderr).toBe(0);
      const [header, ...rows] = shown.stdout.trimEnd().split("\n");
      expect(header.trim().split(/\s+/)).toEqual(["rank", "score", "tier", "approx", "id", "text"]);
      expect(rows.map((r) => r.trim().split(/\s+/).slice(0, 5))).toEqual(
        hits.map((h) => [String(h.rank), h.score.toExponential(3), h.scoredBy, h.approxScore.toExponential(3), h.id]),
      );
      // Ids start under their header; scores end under theirs.
      const idStart = header.indexOf(" id ") + 1;
      const scoreEnd = header.indexOf("score") + "score".length;
      for (const row of rows) expect([row[idStart - 1], row[idStart] !== " ", row[scoreEnd - 1] !== " ", row[scoreEnd]]).toEqual([" ", true, true, " "]);
    });

    it("serves until SIGTERM, then says it drains and closes", async () => {
      const server = await startServing(process.execPath, [INFLUENCE_BIN, "serve", "--index", index, "--port", "0", "--workers", "1"]);
      const health = await fetch(`${server.url}/healthz`);
      expect(health.status).toBe(200);
      // Its memory: the peak so far (the engine worker's thread included) and the estimate made at start.
      const { memory } = await health.json();
      expect(memory.peakBytes).toBeGreaterThanOrEqual(memory.residentBytes);
      expect(memory.budgetBytes).toBeGreaterThan(memory.estimateBytes);
      expect(Math.abs(memory.estimateBytes - memory.peakBytes) / memory.peakBytes).toBeLessThanOrEqual(0.25);
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      expect(metrics).toContain(`influence_memory_estimate_bytes ${memory.estimateBytes}`);
      expect(metrics).toMatch(/^influence_memory_peak_bytes \d+$/m);
      process.kill(server.child.pid as number, "SIGTERM");
      const code = await server.exited;
      expect(code).toBe(0);
      expect(server.log()).toMatch(/influence: SIGTERM received: draining running requests, then closing\ninfluence: closed\n/);
      await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
    });

    it("npm run demo stopped with SIGTERM stops its server too", async () => {
      const demo = await startServing("npm", ["run", "demo", "--", "--index", index, "--port", "0"]);
      expect((await fetch(`${demo.url}/healthz`)).status).toBe(200);
      process.kill(demo.child.pid as number, "SIGTERM"); // npm's own process, as a process manager would
      await demo.exited;
      expect(demo.log()).toMatch(/demo: SIGTERM received: draining running requests, then closing\ndemo: closed\n/);
      await expect(fetch(`${demo.url}/healthz`)).rejects.toThrow(); // no orphan still serving
    });
  });
});

describe.each(architectureFixtures)("influence fit, score, build, query and serve on %s", (name) => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    tmp = await tempDir();
  });
  afterAll(() => tmp.remove());

  it("reproduces the total, per-module and per-token scores (empirical Fisher)", async () => {
    const factors = path.join(tmp.dir, "factors");
    const corpus = fixturePath(name, "train.jsonl");
    const fit = await influence(["fit", "--model", fixturePath(name), "--corpus", corpus, "--out", factors, "--fisher", "empirical", "--no-progress"]);
    expect(fit.code, fit.stderr).toBe(0);
    const queries = fixturePath(name, "queries.jsonl");
    const args = [
      "score",
      "--model",
      fixturePath(name),
      "--factors",
      factors,
      "--train",
      corpus,
      "--queries",
      queries,
      "--per-module",
      "--per-token",
      "--json",
    ];
    const score = await influence([...args, "--no-progress"]);
    expect(score.code, score.stderr).toBe(0);
    const out = JSON.parse(score.stdout) as { scores: number[][]; moduleScores: Record<string, number[][]>; tokenScores: number[][][] };
    const expected = await fixtureExpected(name);
    expect(maxRelError(out.scores.flat(), expected("scores").data)).toBeLessThan(1e-3);
    // every MLP matrix of the reference, by its checkpoint name
    const { tensors } = await readSafetensorsHeader(fixturePath(name, "expected.safetensors"));
    const modules = [...tensors.keys()].filter((k) => k.startsWith("scores.")).map((k) => k.slice("scores.".length));
    expect(Object.keys(out.moduleScores).sort()).toEqual(modules.sort());
    for (const [module, scores] of Object.entries(out.moduleScores)) {
      expect(maxRelError(scores.flat(), expected(`scores.${module}`).data), module).toBeLessThan(1e-3);
    }
    const { data, shape } = expected("token_scores_query0");
    const padded = out.tokenScores[0].flatMap((seq) => Array.from({ length: shape[1] }, (_, t) => seq[t] ?? 0));
    expect(maxRelError(padded, data)).toBeLessThan(1e-3);
  });

  describe("on an index it built", () => {
    const index = () => path.join(tmp.dir, "index");
    const queries = fixtureQueries(name);
    beforeAll(async () => {
      const args = ["--corpus", fixturePath(name, "train.jsonl"), "--out", index(), "--fisher", "empirical", "--shard-size", "16", "--workers", "1"];
      const build = await influence(["build", "--model", fixturePath(name), ...args, "--no-progress"]);
      expect(build.code, build.stderr).toBe(0);
    });

    it("queries: the re-ranked top 10 of every query is the reference's", async () => {
      for (const [q, query] of queries.entries()) {
        const args = ["query", "--index", index(), "--prompt-tokens", query.prompt_tokens.join(","), "--completion-tokens", query.completion_tokens.join(",")];
        // every sequence a candidate: the re-ranking's exactness, not the search's recall, is under test
        const run = await influence([...args, "--top-k", "10", "--candidates", "48", "--rerank", "--json"]);
        expect(run.code, run.stderr).toBe(0);
        const { total } = await expectedQueryScores(q, name);
        expect(JSON.parse(run.stdout).hits.map((h: { id: string }) => h.id)).toEqual(topIds(total, 10, name));
      }
    });

    it("serves: one HTTP query answers the reference's top 10", async () => {
      const server = await startServing(process.execPath, [INFLUENCE_BIN, "serve", "--index", index(), "--port", "0", "--workers", "1"]);
      try {
        const query =
          "query Q($p: [Int!], $c: [Int!]) { influence(promptTokens: $p, completionTokens: $c, candidates: 48, rerank: true) { hits { sequence { id } } } }";
        const response = await gql(`${server.url}/graphql`, query, { variables: { p: queries[0].prompt_tokens, c: queries[0].completion_tokens } });
        expect(response.errors).toBeUndefined();
        const { total } = await expectedQueryScores(0, name);
        expect(response.data.influence.hits.map((h: { sequence: { id: string } }) => h.sequence.id)).toEqual(topIds(total, 10, name));
      } finally {
        server.child.kill("SIGTERM");
        await server.exited;
      }
    });
  });
});

/** Starts a serving command and resolves once it prints its URL, with its log so far and its exit. */
function startServing(command: string, args: string[]): Promise<{ child: ChildProcess; url: string; log: () => string; exited: Promise<number | null> }> {
  const child = spawn(command, args, { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"], env: CLI_ENV });
  let log = "";
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const read = (chunk: Buffer) => {
      log += chunk.toString();
      const m = /GraphQL\s+(http:\/\/\S+)\/graphql/.exec(log);
      if (m) resolve({ child, url: m[1], log: () => log, exited });
    };
    child.stdout?.on("data", read);
    child.stderr?.on("data", read);
    void exited.then((code) => reject(new Error(`${command} ${args.join(" ")} exited with ${code}:\n${log}`)));
  });
}
