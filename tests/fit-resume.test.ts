/**
 * `influence fit --resume`: a fit killed by SIGKILL in each phase (covariance pass,
 * eigendecompositions, Lambda pass) and resumed writes the same bytes as a fit never stopped; so
 * does a fit in groups of layers (under a --memory the whole fit exceeds), killed in its second
 * group or not, and so does `influence build` whose fit runs in groups, with the same vectors.
 * The kill is placed by watching the checkpoint folder for the first file of the phase; the fit
 * runs at the lowest priority so that this process, watching, is scheduled before it goes on.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { existsSync, watch } from "node:fs";
import { mkdir, readFile, readdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LayerGroup, layerGroups } from "../src/ekfac/layer-groups.js";
import { indexPath } from "../src/indexer/index-manifest.js";
import { checkpointDir } from "../src/jobs/fit-checkpoint.js";
import { type MemoryInputs, buildEstimate, fitEstimate, memoryInputs } from "../src/jobs/memory-plan.js";
import type { MemoryEstimate } from "../src/model/memory-estimate.js";
import { readSafetensorsHeader } from "../src/safetensors/read.js";
import { LOCK_FILE_NAME } from "../src/util/directory-lock.js";
import { tempDir } from "../src/util/temp-dir.js";
import { CLI_ENV, INFLUENCE_BIN, influence } from "../support/cli.js";
import { fixturePath, fixtureTrain } from "../support/fixtures.js";

const MODEL = fixturePath("gpt2-tiny");
const CORPUS = path.join(MODEL, "train.jsonl");
const SHARD_SIZE = 4;
const SEQUENCES = fixtureTrain("gpt2-tiny").length;
const SHARDS = Math.ceil(SEQUENCES / SHARD_SIZE);
/** Tracked matrices of the fixture: c_fc and c_proj of its 2 blocks. */
const MODULES = 4;
const FACTOR_FILES = ["covariance.safetensors", "eigendecomposition.safetensors", "lambda.safetensors"];

/** The fit's arguments (default Fisher: labels sampled with seed 0, so every shard's seeds matter). */
const fitArgs = (out: string, ...extra: string[]) => ["fit", "--model", MODEL, "--corpus", CORPUS, "--out", out, "--shard-size", String(SHARD_SIZE), ...extra];

/** Starts the fit (with `extra` arguments) and kills it with SIGKILL as soon as `trigger` appears in its checkpoint folder. */
const killedFit = (out: string, trigger: string, ...extra: string[]): Promise<void> =>
  killedRun(fitArgs(out, "--no-progress", ...extra), checkpointDir(out), trigger);

/**
 * Kills `influence ARGS` (argsOf(...extra), with `batch` and the `grouped` --memory) once its fit,
 * writing `folder`, is in the covariance pass of its second group of two; then checks that a
 * --resume in one group is refused without a change to `folder` (its message ending in
 * `refusalEnd`), and that a --resume in the same groups skips the first group and continues the
 * second after its saved shards. The caller checks the result.
 */
async function killAndResumeInGroups(
  folder: string,
  argsOf: (...extra: string[]) => string[],
  { batch, grouped, refusalEnd = "" }: { batch: string[]; grouped: string[]; refusalEnd?: string },
): Promise<void> {
  const checkpoints = checkpointDir(folder);
  await killedRun(argsOf("--no-progress", ...batch, ...grouped), checkpoints, "group-000001-covariance-shards.safetensors");
  const files = (await readdir(checkpoints)).filter((f) => !f.startsWith("."));
  // The first group's factors are kept, its progress files gone; the second group is in its covariance pass.
  expect(files.filter((f) => f.startsWith("group-")).sort()).toEqual(["group-000000.safetensors", "group-000001-covariance-shards.safetensors"]);
  const shards = Number((await readSafetensorsHeader(path.join(checkpoints, "group-000001-covariance-shards.safetensors"))).metadata.shards);
  expect(shards).toBeGreaterThan(0);

  const before = await snapshot(folder);
  const regrouped = await influence(argsOf("--resume", ...batch));
  expect(regrouped.code, regrouped.stderr).toBe(2);
  expect(regrouped.stderr).toMatch(
    new RegExp(
      "the unfinished fit there fits its layers in 2 groups of layers \\(0-0, 1-1\\) and this one would fit them in 1 group of layers \\(0-1\\): " +
        `resume it with the --memory it was started with${refusalEnd ? `, ${refusalEnd}` : ""}`,
    ),
  );
  expect(await snapshot(folder)).toEqual(before);

  const run = await influence(argsOf("--resume", ...batch, ...grouped));
  expect(run.code, run.stderr).toBe(0);
  // The first group is not fitted again; the second continues after its saved shards.
  expect(firstLine(run.stderr, "covariance 1/2")).toBeUndefined();
  expect(firstLine(run.stderr, "covariance 2/2")).toMatch(new RegExp(`^covariance 2/2\\s+${Math.min(shards * SHARD_SIZE, SEQUENCES)}/${SEQUENCES} sequences`));
}

/**
 * The arguments of a run in 2 groups of layers (one each): batches of the longest sequence (a
 * smaller budget cannot cut them further) and a --memory between `estimate`'s bytes in 2 groups
 * and all at once. Runs argsOf(oneGroup) with those batches and no --memory, all layers at once,
 * as the reference a grouped run must match.
 */
async function runInOneGroup(
  estimate: (inputs: MemoryInputs, batchTokens: number, groups?: readonly LayerGroup[]) => MemoryEstimate,
  argsOf: (out: string, ...extra: string[]) => string[],
  oneGroup: string,
): Promise<{ batchArgs: string[]; memoryArgs: string[] }> {
  const inputs = await memoryInputs(MODEL, CORPUS);
  const batchTokens = Math.max(...inputs.lengths);
  const grouped = estimate(inputs, batchTokens, layerGroups(inputs.modules, 2));
  expect(grouped.bytes).toBeLessThan(estimate(inputs, 1).bytes);
  const batchArgs = ["--batch-tokens", String(batchTokens)];
  const run = await influence(argsOf(oneGroup, "--no-progress", ...batchArgs));
  expect(run.code, run.stderr).toBe(0);
  expect(run.stderr).not.toMatch(/groups of layers/);
  return { batchArgs, memoryArgs: ["--memory", String(grouped.bytes)] };
}

/** Starts `influence ARGS` and kills it with SIGKILL as soon as `trigger` appears in `dir`. */
async function killedRun(args: string[], dir: string, trigger: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const child = spawn(process.execPath, [INFLUENCE_BIN, ...args], { env: CLI_ENV, stdio: "ignore" });
  os.setPriority(child.pid as number, 19);
  const watcher = watch(dir, (_, name) => {
    if (name === trigger && existsSync(path.join(dir, trigger))) child.kill("SIGKILL");
  });
  try {
    const [code, signal] = await once(child, "exit");
    expect({ code, signal }, `the run ended before ${trigger} appeared`).toEqual({ code: null, signal: "SIGKILL" });
  } finally {
    watcher.close();
  }
}

/** What a checkpoint holds: shards of each pass (absent: none) and eigenbases kept. */
async function checkpointState(out: string): Promise<{ covariance?: number; eigen: number; lambda?: number }> {
  const dir = checkpointDir(out);
  const files = await readdir(dir);
  const shards = async (kind: string) =>
    files.includes(`${kind}-shards.safetensors`)
      ? Number((await readSafetensorsHeader(path.join(dir, `${kind}-shards.safetensors`))).metadata.shards)
      : undefined;
  return { covariance: await shards("covariance"), eigen: files.filter((f) => /^eigen-\d{6}\.safetensors$/.test(f)).length, lambda: await shards("lambda") };
}

/** Every file of a folder (below it too) with the SHA-256 of its bytes; the lock a killed fit left is not data. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries.filter((e) => e.isFile() && e.name !== LOCK_FILE_NAME).map((e) => path.relative(dir, path.join(e.parentPath ?? e.path, e.name)));
  return Object.fromEntries(
    await Promise.all(
      files.sort().map(async (f) => [
        f,
        createHash("sha256")
          .update(await readFile(path.join(dir, f)))
          .digest("hex"),
      ]),
    ),
  );
}

/** The manifest without what differs between any two runs (when, how long, the memory peak reached; a build's fit records no memory). */
async function manifestOf(out: string): Promise<object> {
  const { createdAt, timings, memory, ...rest } = JSON.parse(await readFile(path.join(out, "manifest.json"), "utf8"));
  expect(Date.parse(createdAt)).not.toBeNaN();
  expect(Object.keys(timings).sort()).toEqual(["covarianceSeconds", "eigendecompositionSeconds", "lambdaSeconds"]);
  if (!memory) return rest;
  const { peakBytes, ...planned } = memory;
  expect(peakBytes).toBeGreaterThan(0);
  return { ...rest, memory: planned };
}

/** The first progress line of a phase on stderr (a pipe: plain lines). */
const firstLine = (stderr: string, phase: string) => stderr.split("\n").find((line) => line.startsWith(`${phase} `));

let tmp: Awaited<ReturnType<typeof tempDir>>;
let reference: string;
beforeAll(async () => {
  tmp = await tempDir("fit-resume-");
  reference = path.join(tmp.dir, "reference");
  const run = await influence(fitArgs(reference, "--no-progress"));
  expect(run.code, run.stderr).toBe(0);
});
afterAll(() => tmp.remove());

/**
 * The resumed fit's factors equal those of `of` byte for byte, and its checkpoint is gone. Their
 * manifests are equal too, but for the memory record when their budgets differ (`memory: false`).
 */
async function expectReferenceFactors(out: string, of = reference, memory = true): Promise<void> {
  for (const file of FACTOR_FILES) {
    expect((await readFile(path.join(out, file))).equals(await readFile(path.join(of, file))), file).toBe(true);
  }
  const manifest = async (dir: string) => {
    const m = (await manifestOf(dir)) as { memory?: object };
    if (!memory) m.memory = undefined;
    return m;
  };
  expect(await manifest(out)).toEqual(await manifest(of));
  expect(existsSync(checkpointDir(out))).toBe(false);
}

describe("influence fit --resume after SIGKILL", () => {
  it("leaves no checkpoint behind a completed fit", async () => {
    expect((await readdir(reference)).sort()).toEqual([...FACTOR_FILES, "manifest.json"].sort());
  });

  it("continues a fit killed in the covariance pass from its last finished shard", async () => {
    const out = path.join(tmp.dir, "covariance");
    await killedFit(out, "covariance-shards.safetensors");
    const state = await checkpointState(out);
    expect(state.covariance).toBeGreaterThan(0);
    expect(state.covariance).toBeLessThan(SHARDS);
    expect(state).toMatchObject({ eigen: 0, lambda: undefined });

    const run = await influence(fitArgs(out, "--resume"));
    expect(run.code, run.stderr).toBe(0);
    // The resumed pass starts after the shards it found, and runs the rest.
    expect(firstLine(run.stderr, "covariance")).toMatch(new RegExp(`^covariance\\s+${(state.covariance as number) * SHARD_SIZE}/${SEQUENCES} sequences`));
    await expectReferenceFactors(out);
  });

  it("continues a fit killed among the eigendecompositions from the first one not kept", async () => {
    const out = path.join(tmp.dir, "eigen");
    await killedFit(out, "eigen-000000.safetensors");
    const state = await checkpointState(out);
    expect(state.covariance).toBe(SHARDS);
    expect(state.eigen).toBeGreaterThan(0);
    expect(state.eigen).toBeLessThan(MODULES);
    expect(state.lambda).toBeUndefined();

    const run = await influence(fitArgs(out, "--resume"));
    expect(run.code, run.stderr).toBe(0);
    expect(firstLine(run.stderr, "covariance")).toBeUndefined();
    expect(firstLine(run.stderr, "eigendecomposition")).toMatch(
      new RegExp(`^eigendecomposition ${state.eigen}/${MODULES} matrices \\(\\d+%\\) \\| h\\.\\d\\.mlp\\.c_`),
    );
    await expectReferenceFactors(out);
  });

  it("continues a fit killed in the Lambda pass with the kept eigenbases", async () => {
    const out = path.join(tmp.dir, "lambda");
    await killedFit(out, "lambda-shards.safetensors");
    const state = await checkpointState(out);
    expect(state).toMatchObject({ covariance: SHARDS, eigen: MODULES });
    expect(state.lambda).toBeGreaterThan(0);
    expect(state.lambda).toBeLessThan(SHARDS);

    const run = await influence(fitArgs(out, "--resume"));
    expect(run.code, run.stderr).toBe(0);
    expect(firstLine(run.stderr, "covariance")).toBeUndefined();
    expect(firstLine(run.stderr, "eigendecomposition")).toMatch(new RegExp(`^eigendecomposition ${MODULES}/${MODULES} matrices`));
    expect(firstLine(run.stderr, "lambda")).toMatch(new RegExp(`^lambda\\s+${(state.lambda as number) * SHARD_SIZE}/${SEQUENCES} sequences`));
    await expectReferenceFactors(out);
  });
});

describe("an unfinished fit is never overwritten", () => {
  it("refuses a fit without --resume and a resume with other settings, changing nothing, then resumes", async () => {
    const out = path.join(tmp.dir, "refusals");
    await killedFit(out, "covariance-shards.safetensors");
    const before = await snapshot(out);
    const refusals: Array<[string[], RegExp]> = [
      [fitArgs(out), /holds an unfinished fit .*continue it with --resume, or fit into another folder \(nothing was changed\)/],
      [fitArgs(out, "--resume", "--seed", "1"), /the unfinished fit there has other settings \(seed: 0 vs 1\)/],
      [fitArgs(out, "--resume", "--fisher", "empirical"), /other settings \(fisher: "sampled" vs "empirical"\)/],
      [fitArgs(out, "--resume", "--damping", "0.01"), /other settings \(damping: \{"rule":"heuristic","factor":0.1\} vs \{"rule":"fixed","value":0.01\}\)/],
      [[...fitArgs(out, "--resume"), "--shard-size", "6"], /other settings \(shardSize: 4 vs 6\)/],
      [fitArgs(out, "--resume", "--max-sequences", "40"), /other settings \(corpusFingerprint: "[0-9a-f]+" vs "[0-9a-f]+"\)/],
      [fitArgs(out, "--resume", "--batch-tokens", "48"), /other settings \(batchTokens: \d+ vs 48\)/],
      [
        ["fit", "--model", fixturePath("pythia-tiny"), "--corpus", CORPUS, "--out", out, "--shard-size", "4", "--resume"],
        /other settings \(modelFingerprint: /,
      ],
    ];
    for (const [args, message] of refusals) {
      const run = await influence(args);
      expect(run.code, run.stderr).toBe(2);
      expect(run.stderr).toMatch(message);
      expect(await snapshot(out)).toEqual(before);
    }
    const run = await influence(fitArgs(out, "--resume", "--no-progress"));
    expect(run.code, run.stderr).toBe(0);
    await expectReferenceFactors(out);
  });

  it("refuses --resume where no fit was left unfinished", async () => {
    const out = path.join(tmp.dir, "empty");
    const run = await influence(fitArgs(out, "--resume"));
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`${out}: no unfinished fit to resume (start one without --resume)`);
  });
});

describe("a complete fit is never overwritten", () => {
  it("refuses a fit into its folder, with or without --resume, changing nothing", async () => {
    const before = await snapshot(reference);
    for (const args of [fitArgs(reference), fitArgs(reference, "--resume"), fitArgs(reference, "--seed", "1")]) {
      const run = await influence(args);
      expect(run.code, run.stderr).toBe(2);
      expect(run.stderr).toContain(`${reference} already holds a complete fit; fit into a new folder (nothing was changed)`);
      expect(await snapshot(reference)).toEqual(before);
    }
  });
});

describe("a fit in groups of layers", () => {
  /** The batches and --memory of a fit in 2 groups, and a fit of all layers at once with those batches (runInOneGroup). */
  let batchArgs: string[];
  let memoryArgs: string[];
  let oneGroup: string;
  beforeAll(async () => {
    oneGroup = path.join(tmp.dir, "one-group");
    ({ batchArgs, memoryArgs } = await runInOneGroup((inputs, tokens, groups) => fitEstimate(inputs, tokens, SHARD_SIZE, groups), fitArgs, oneGroup));
  });

  it("fits its 2 layers one after another when all at once exceeds --memory, with the bytes of a fit of all at once", async () => {
    const out = path.join(tmp.dir, "grouped");
    const run = await influence(fitArgs(out, ...batchArgs, ...memoryArgs));
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(
      /all layers at once would need about [\d.]+ MiB, more than --memory [\d.]+ MiB allows: fitting 2 groups of layers one after another, each with its own covariance pass, eigendecompositions and Lambda pass: layer 0 \([\d.]+ MiB\), layer 1 \([\d.]+ MiB\)/,
    );
    // Each group's passes and decompositions, in order, for its own modules.
    const phases = run.stderr.split("\n").filter((l) => /^(covariance|eigendecomposition|lambda) \d\/2/.test(l));
    expect([...new Set(phases.map((l) => l.split(/\s+/).slice(0, 2).join(" ")))]).toEqual([
      "covariance 1/2",
      "eigendecomposition 1/2",
      "lambda 1/2",
      "covariance 2/2",
      "eigendecomposition 2/2",
      "lambda 2/2",
    ]);
    expect(firstLine(run.stderr, "eigendecomposition 2/2")).toMatch(/^eigendecomposition 2\/2 0\/2 matrices \(0%\) \| h\.1\.mlp\.c_fc/);
    expect(firstLine(run.stderr, "covariance 1/2")).toMatch(/\| layer 0 \|/);
    const { memory } = JSON.parse(await readFile(path.join(out, "manifest.json"), "utf8"));
    expect(memory.estimatePhase).toMatch(/ of layer [01]$/);
    expect(memory.estimateBytes).toBeLessThanOrEqual(Number(memoryArgs[1]));
    await expectReferenceFactors(out, oneGroup, false);
  });

  it("continues a grouped fit killed in its second group, and refuses to resume it in other groups", async () => {
    const out = path.join(tmp.dir, "grouped-killed");
    await killAndResumeInGroups(out, (...extra) => fitArgs(out, ...extra), {
      batch: batchArgs,
      grouped: memoryArgs,
      refusalEnd: "or fit into another folder \\(nothing was changed\\)",
    });
    await expectReferenceFactors(out, oneGroup, false);
  });
});

describe("a build whose fit runs in groups of layers", () => {
  const WORKERS = 2;
  /** The build's arguments: its fit's shards and the default sampled Fisher as the fits' above. */
  const buildArgs = (out: string, ...extra: string[]) => [
    "build",
    "--model",
    MODEL,
    "--corpus",
    CORPUS,
    "--out",
    out,
    "--shard-size",
    String(SHARD_SIZE),
    "--workers",
    String(WORKERS),
    ...extra,
  ];
  /** The batches and --memory of a build whose fit runs in 2 groups, and a build fitting all layers at once with those batches (runInOneGroup). */
  let batchArgs: string[];
  let memoryArgs: string[];
  let oneGroup: string;
  beforeAll(async () => {
    const settings = { workers: WORKERS, shardSize: SHARD_SIZE, embeddedDatabase: true };
    oneGroup = path.join(tmp.dir, "build-one-group");
    ({ batchArgs, memoryArgs } = await runInOneGroup((inputs, tokens, groups) => buildEstimate(inputs, settings, tokens, groups), buildArgs, oneGroup));
  });

  /** The build in `out` is complete, with the factors (checkpoint gone) and the vectors of the one-group build. */
  async function expectOneGroupIndex(out: string): Promise<void> {
    await expectReferenceFactors(indexPath(out, "factors"), indexPath(oneGroup, "factors"), false);
    const index = async (dir: string) => JSON.parse(await readFile(indexPath(dir, "manifest"), "utf8"));
    const [built, reference] = [await index(out), await index(oneGroup)];
    expect(built.vectors).toEqual(reference.vectors);
    expect(built.sketch).toEqual(reference.sketch);
  }

  it("fits its 2 layers one after another on the workers when all at once exceeds --memory, with the factors and vectors of a one-group build", async () => {
    const out = path.join(tmp.dir, "build-grouped");
    const run = await influence(buildArgs(out, ...batchArgs, ...memoryArgs));
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(
      /all layers at once would need about [\d.]+ [MG]iB, more than --memory [\d.]+ [MG]iB allows: fitting 2 groups of layers one after another, each with its own covariance pass, eigendecompositions and Lambda pass: layer 0 \([\d.]+ [MG]iB\), layer 1 \([\d.]+ [MG]iB\)/,
    );
    expect(firstLine(run.stderr, "covariance 1/2")).toMatch(/\| layer 0 \|/);
    expect(firstLine(run.stderr, "eigendecomposition 2/2")).toMatch(/^eigendecomposition 2\/2 0\/2 matrices \(0%\) \| h\.1\.mlp\.c_fc/);
    const { memory } = JSON.parse(await readFile(indexPath(out, "manifest"), "utf8")).build;
    expect(memory.estimatePhase).toMatch(/ of layer [01]$/);
    expect(memory.estimateBytes).toBeLessThanOrEqual(Number(memoryArgs[1]));
    await expectOneGroupIndex(out);
  });

  it("continues a build killed in its fit's second group, and refuses to resume it in other groups", async () => {
    const out = path.join(tmp.dir, "build-grouped-killed");
    await killAndResumeInGroups(indexPath(out, "factors"), (...extra) => buildArgs(out, ...extra), { batch: batchArgs, grouped: memoryArgs });
    await expectOneGroupIndex(out);
  });
});
