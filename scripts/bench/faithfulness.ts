/**
 * Faithfulness of the index's fast answers to exact EK-FAC scores on the demo index (issue 15):
 * for 30 held-out queries, the exact score of every indexed sequence is the ground truth; each
 * setting (a row) is measured by its top-10 overlap with the exact top 10, its Spearman over all
 * sequences, its ratio of approximate to exact score over the exact top 10, and its latency.
 *
 * The ground truth is `influence score`'s path (jobs/score.ts): every training sequence is
 * captured once and scored against all queries at once, instead of one pass per sequence and
 * query (engine.exactScores). It is checked against engine.exactScores on a few sequences, and
 * cached under the index folder keyed by the vectors' checksum and the queries.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { cp, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { IndexEngine } from "../../src/engine/index-engine.js";
import { checkInfluenceArgs } from "../../src/engine/query-validation.js";
import type { InfluenceRequest } from "../../src/engine/types.js";
import { type IndexManifest, indexPath, readIndexManifest } from "../../src/indexer/index-manifest.js";
import { defaultCandidates } from "../../src/indexer/query-limits.js";
import { readTokenStore } from "../../src/indexer/token-store.js";
import { runBuild } from "../../src/jobs/build.js";
import { runScore } from "../../src/jobs/score.js";
import { inputWidth } from "../../src/model/model.js";
import { modelTokenizer, openModel } from "../../src/model/open-model.js";
import { type SketchSettings, resolveSketch, sketchDims, sketchPrecision } from "../../src/projection/sketch.js";
import type { ElementType } from "../../src/projection/vector-layout.js";
import { writeJsonAtomic } from "../../src/util/atomic-write.js";
import { tempDir } from "../../src/util/temp-dir.js";
import { type Faithfulness, type ScoredSequences, aggregateFaithfulness, queryFaithfulness, topOrdinals } from "../../support/faithfulness.js";
import { median } from "../../support/percentile.js";
import type { BenchSection } from "../bench.js";
import { demoQueries, openHnswEngine, sketchText } from "../bench-util.js";
import { DEMO_BUILD, DEMO_INDEX, ensureDemoIndex } from "../demo-index.js";

const QUERIES = 30;
const TOP_K = 10;
/** A row of the sketch-size table: coordinates per sequence (0 for none), how they are stored, the whitening scale's terms. */
type SketchSetting = Pick<SketchSettings, "floats" | "rank"> & { precision: ElementType };

/** The demo model's MLP matrices, out x in+1. */
async function demoShapes(): Promise<{ out: number; in: number }[]> {
  const { model } = await modelTokenizer(DEMO_BUILD.modelDir);
  return model.modules.map((m) => ({ out: m.outFeatures, in: inputWidth(m) }));
}

/** The demo build's own sketch (the demo index, measured by the main table): the default request resolved for the demo model. */
function demoSketch(shapes: ReadonlyArray<{ out: number; in: number }>): SketchSetting {
  const request = DEMO_BUILD.parameters.sketch;
  if (!request) throw new Error("the demo build has no sketch");
  const { floats, rank, precision } = resolveSketch(request, shapes);
  return { floats, rank, precision: sketchPrecision({ precision }) };
}

/**
 * The sketch-size table's rows: none; int8 budgets up to 128 x 128 a matrix (the default before
 * signs); the same in float32 and as signs; signs of whole matrices (a random rotation of each) at
 * scale rank 4; and the demo's own, signs of whole matrices at rank 2.
 */
function sketchSettings(shapes: ReadonlyArray<{ out: number; in: number }>): SketchSetting[] {
  const whole = demoSketch(shapes).floats;
  const stored = (floats: number, precision: ElementType, rank = 4): SketchSetting => ({ floats, precision, rank });
  return [
    stored(0, "int8"),
    ...[8192, 32_768, 65_536, 131_072].map((floats) => stored(floats, "int8")),
    stored(131_072, "float32"),
    stored(131_072, "sign"),
    stored(whole, "sign", 4),
    demoSketch(shapes),
  ];
}
const sameSetting = (a: SketchSetting, b: SketchSetting): boolean => a.floats === b.floats && a.precision === b.precision && a.rank === b.rank;
const settingName = (s: SketchSetting): string => (s.floats === 0 ? "none" : `${s.floats} ${s.precision} rank ${s.rank}`);
/** Exact top sequences per query checked against engine.exactScores, for this many queries. */
const CHECK = { queries: 3, sequences: 4, tolerance: 1e-4 } as const;

/**
 * A setting measured: the scores it gives for a query (the default top-10 request), for every
 * sequence it scored. Its latency is the time of `scores`, unless `untimed` (a setting computed
 * the long way round, for its answers only). Adding a setting is adding a row.
 */
interface Row {
  name: string;
  untimed?: boolean;
  /** Asked of the engine searching HNSW rather than scanning the first tier (the demo's is scanned). */
  hnsw?: true;
  scores(engine: IndexEngine, request: InfluenceRequest): Promise<ScoredSequences>;
}

const candidatesRow = (name: string, candidates?: number, hnsw?: true): Row => ({
  name,
  ...(hnsw ? { hnsw } : {}),
  async scores(engine, request) {
    const found = await engine.candidates({ ...request, ...(candidates ? { candidates } : {}) });
    return new Map(found.candidates.map((c) => [c.ordinal, c.approxScore]));
  },
});
const everySequenceRow = (name: string, tier: "sketch" | "projected"): Row => ({
  name,
  async scores(engine, request) {
    const { scores } = await engine.approximateScores(request, tier);
    return new Map(Array.from(scores, (s, ordinal) => [ordinal, s]));
  },
});

const DEFAULT_ROW = candidatesRow(
  "**default**: the first tier's 1,000 best by its int8 scan, re-scored by the sketch, all by its leading quarter of rows, the best 100 by " +
    "the whole (`rerank: false`)",
);
const SKETCH_ROW = everySequenceRow("sketch scores of every sequence, brute force", "sketch");

const ROWS: Row[] = [
  DEFAULT_ROW,
  candidatesRow("HNSW's 1,000 candidates (as an index above the scan's size is searched) re-scored by the sketch", undefined, true),
  candidatesRow("the first tier's 300 best re-scored by the sketch", 300),
  candidatesRow("the first tier's 2,000 best re-scored by the sketch", 2000),
  {
    name: "the first tier's 1,000 best all re-scored by the whole sketch (one pass; from the brute-force scores, so untimed)",
    untimed: true,
    async scores(engine, request) {
      const [{ candidates }, { scores }] = [await engine.candidates(request), await engine.approximateScores(request, "sketch")];
      return new Map(candidates.map((c) => [c.ordinal, scores[c.ordinal]]));
    },
  },
  SKETCH_ROW,
  everySequenceRow("first tier only: projected (16x16 PCA) scores of every sequence, brute force", "projected"),
  {
    name: "`rerank: true`: the sketch's best 30 re-scored exactly (top-10 query)",
    async scores(engine, request) {
      const { hits } = await engine.influence({ ...request, rerank: true });
      return new Map(hits.map((h) => [h.ordinal, h.score]));
    },
  },
];

interface GroundTruth {
  /** [query][ordinal] exact EK-FAC scores. */
  scores: number[][];
  /** Seconds it took to compute (when it was computed). */
  seconds: number;
  cached: boolean;
}

/** Exact scores of every indexed sequence against every query, by `influence score`'s batched path; cached under the index. */
async function groundTruth(indexDir: string, requests: readonly InfluenceRequest[]): Promise<GroundTruth> {
  const manifest = await readIndexManifest(indexDir);
  const queries = requests.map((r) => ({ prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens }));
  const key = createHash("sha256")
    .update(JSON.stringify({ vectors: manifest.vectors.checksum, queries }))
    .digest("hex")
    .slice(0, 16);
  const file = path.join(indexDir, "bench", `faithfulness-exact-${key}.json`);
  if (existsSync(file)) {
    const cached = JSON.parse(await readFile(file, "utf8")) as { seconds: number; scores: number[][] };
    return { ...cached, cached: true };
  }
  const started = performance.now();
  const store = await readTokenStore(indexPath(indexDir, "tokens"));
  const opened = await openModel(manifest.model.path);
  const scratch = await tempDir("faithfulness-");
  try {
    const queriesFile = path.join(scratch.dir, "queries.jsonl");
    await writeFile(queriesFile, queries.map((q, i) => JSON.stringify({ id: `q${i}`, ...q })).join("\n"));
    const sequences = Array.from({ length: store.count }, (_, ordinal) => ({ id: String(ordinal), tokens: Array.from(store.tokens(ordinal)) }));
    const out = await runScore({
      opened,
      factorsDir: indexPath(indexDir, "factors"),
      train: { sequences },
      queriesFile,
      method: "ekfac",
      perModule: false,
      perToken: false,
    });
    const truth = { seconds: (performance.now() - started) / 1000, scores: out.scores };
    await mkdir(path.dirname(file), { recursive: true });
    await writeJsonAtomic(file, { vectorsChecksum: manifest.vectors.checksum, queries, ...truth });
    return { ...truth, cached: false };
  } finally {
    await scratch.remove();
    await opened.model.release();
  }
}

/** Largest relative difference of the ground truth from engine.exactScores over a few queries' exact top sequences, and ms per exact score. */
async function checkGroundTruth(
  engine: IndexEngine,
  requests: readonly InfluenceRequest[],
  truth: GroundTruth,
): Promise<{ relative: number; msPerScore: number }> {
  let relative = 0;
  let scored = 0;
  await engine.exactScores({ ...requests[0], tokenScores: false }, [0]); // warm-up: the first pass compiles kernels
  const started = performance.now();
  for (let q = 0; q < CHECK.queries; q++) {
    const ordinals = topOrdinals(
      truth.scores[q].map((s, o) => [o, s] as const),
      CHECK.sequences,
    );
    for (const e of await engine.exactScores({ ...requests[q], tokenScores: false }, ordinals)) {
      relative = Math.max(relative, Math.abs(truth.scores[q][e.ordinal] - e.score) / Math.abs(e.score));
      scored++;
    }
  }
  return { relative, msPerScore: (performance.now() - started) / scored };
}

interface Measured {
  row: Row;
  faithfulness: Faithfulness;
  latencyMs: number;
}

async function measure(engine: IndexEngine, row: Row, requests: readonly InfluenceRequest[], truth: GroundTruth): Promise<Measured> {
  await row.scores(engine, requests[0]); // warm-up: the first query compiles kernels
  const perQuery = [];
  const times: number[] = [];
  for (const [q, request] of requests.entries()) {
    const t0 = performance.now();
    const approx = await row.scores(engine, request);
    times.push(performance.now() - t0);
    perQuery.push(queryFaithfulness(truth.scores[q], approx, TOP_K));
  }
  return { row, faithfulness: aggregateFaithfulness(perQuery), latencyMs: median(times) };
}

const f2 = (x: number) => x.toFixed(2);
const f3 = (x: number) => x.toFixed(3);

function tableRow({ row, faithfulness: f, latencyMs }: Measured): string {
  const spearman = f.spearman ? `${f3(f.spearman.median)} (${f3(f.spearman.min)})` : "-";
  const ms = row.untimed ? "-" : latencyMs.toFixed(0);
  return `| ${row.name} | ${f2(f.overlap.mean)} (${f.overlap.min}) | ${spearman} | ${f3(f.ratio.median)} [${f3(f.ratio.min)}, ${f3(f.ratio.max)}] | ${ms} |`;
}

/** One sketch budget: the index it gives the demo, and its default query and sketch measured against the ground truth. */
interface SketchSize {
  setting: SketchSetting;
  /** Distinct per-matrix dims, as "kOut x kIn". */
  dims: string[];
  bytesPerSequence: { vectors: number; sketch: number };
  sketchFileBytes: number;
  /** The build's phase seconds; the demo index's from its own build, the others' from this run. */
  phaseSeconds: Record<string, number>;
  /** 1-minute load average when its build started (undefined: the demo index, built before this run). */
  buildLoad?: number;
  defaultQuery: Measured;
  sketch?: Measured;
}

async function footprint(dir: string, manifest: IndexManifest): Promise<Pick<SketchSize, "bytesPerSequence" | "sketchFileBytes">> {
  const size = async (file: string) => (existsSync(file) ? (await stat(file)).size : 0);
  const [vectors, sketch] = [await size(indexPath(dir, "vectors")), await size(indexPath(dir, "sketch"))];
  const perSequence = (bytes: number) => Math.round(bytes / manifest.vectors.count);
  return { bytesPerSequence: { vectors: perSequence(vectors), sketch: perSequence(sketch) }, sketchFileBytes: sketch };
}

/** Per matrix of the demo model, the sketch dims a budget gives (sketch.ts's own rule). */
function demoSketchDims(shapes: ReadonlyArray<{ out: number; in: number }>, floats: number): string[] {
  if (floats === 0) return [];
  return [...new Set(sketchDims(shapes, floats).map((d) => `${d.kOut}x${d.kIn}`))];
}

/**
 * The demo build with another sketch budget, in a temporary folder holding a copy of the demo's
 * EK-FAC fit (the build reuses a matching fit: its factors phase only checks it), measured by the
 * default query and the sketch of every sequence, then removed.
 */
async function measureSketchVariant(
  setting: SketchSetting,
  shapes: ReadonlyArray<{ out: number; in: number }>,
  demo: IndexManifest,
  requests: readonly InfluenceRequest[],
  truth: GroundTruth,
): Promise<SketchSize> {
  const { floats } = setting;
  const scratch = await tempDir(`faithfulness-sketch-${floats}-${setting.precision}-${setting.rank}-`);
  try {
    await cp(indexPath(DEMO_INDEX, "factors"), indexPath(scratch.dir, "factors"), { recursive: true });
    const [buildLoad] = os.loadavg();
    const manifest = await runBuild({
      ...DEMO_BUILD,
      parameters: { ...DEMO_BUILD.parameters, sketch: floats > 0 ? { ...setting, seed: DEMO_BUILD.parameters.seed } : null },
      outDir: scratch.dir,
      resume: false,
      log: (m) => console.error(`faithfulness: sketch ${settingName(setting)}: ${m}`),
    });
    // The ground truth is the demo index's, keyed by its first tier, which the sketch must leave alone.
    if (manifest.vectors.checksum !== demo.vectors.checksum) {
      throw new Error(
        `the index built with a sketch of ${settingName(setting)} has other first-tier vectors than ${DEMO_INDEX} (checksum ${manifest.vectors.checksum})`,
      );
    }
    const engine = await IndexEngine.open(scratch.dir);
    try {
      const defaultQuery = await measure(engine, DEFAULT_ROW, requests, truth);
      const sketch = floats > 0 ? await measure(engine, SKETCH_ROW, requests, truth) : undefined;
      return {
        setting,
        dims: demoSketchDims(shapes, floats),
        ...(await footprint(scratch.dir, manifest)),
        phaseSeconds: manifest.build.phaseSeconds,
        buildLoad,
        defaultQuery,
        sketch,
      };
    } finally {
      await engine.close();
    }
  } finally {
    await scratch.remove();
  }
}

const thousands = (n: number) => n.toLocaleString("en");
const seconds = (s: number | undefined) => (s === undefined ? "-" : s.toFixed(0));

function sketchSizeRow(size: SketchSize, isDefault: boolean): string {
  const { setting, bytesPerSequence: b, phaseSeconds: t, defaultQuery: q, sketch } = size;
  const { floats } = setting;
  const name = floats === 0 ? "0 (no sketch)" : isDefault ? `**${thousands(floats)}** (default: \`.demo/index\`)` : thousands(floats);
  const f = q.faithfulness;
  return [
    name,
    floats === 0 ? "-" : isDefault ? `**${setting.precision}**` : setting.precision,
    floats === 0 ? "-" : isDefault ? `**${setting.rank}**` : String(setting.rank),
    size.dims.join(", ") || "-",
    `${thousands(b.vectors + b.sketch)} (${thousands(b.vectors)} + ${thousands(b.sketch)})`,
    floats === 0 ? "-" : `${(size.sketchFileBytes / 1e6).toFixed(0)} MB`,
    `${seconds(t.projection)} / ${seconds(t.vectors)} / ${seconds(t.hnsw)}${isDefault ? " †" : ""}`,
    size.buildLoad === undefined ? "-" : size.buildLoad.toFixed(1),
    `${f2(f.overlap.mean)} (${f.overlap.min})`,
    `${f3(f.ratio.median)} [${f3(f.ratio.min)}, ${f3(f.ratio.max)}]`,
    q.latencyMs.toFixed(0),
    sketch?.faithfulness.spearman ? f3(sketch.faithfulness.spearman.median) : "-",
  ].join(" | ");
}

/** The sketch-size table: every setting of SKETCH_SETTINGS, the demo's own from the main table's measurements. */
async function sketchSizeTable(
  demo: IndexManifest,
  measured: readonly Measured[],
  requests: readonly InfluenceRequest[],
  truth: GroundTruth,
): Promise<string[]> {
  const [load] = os.loadavg();
  const shapes = await demoShapes();
  const chosen = demoSketch(shapes);
  const built = demo.parameters.sketch;
  if (!built || !sameSetting({ ...built, precision: sketchPrecision(built) }, chosen)) {
    throw new Error(
      `${DEMO_INDEX} was built with a sketch of ${built ? settingName({ ...built, precision: sketchPrecision(built) }) : "none"}, not the default ${settingName(chosen)}`,
    );
  }
  const sizes: SketchSize[] = [];
  for (const setting of sketchSettings(shapes)) {
    console.error(`faithfulness: sketch ${settingName(setting)}`);
    if (!sameSetting(setting, chosen)) {
      sizes.push(await measureSketchVariant(setting, shapes, demo, requests, truth));
      continue;
    }
    const ofRow = (row: Row) => measured.find((m) => m.row === row) as Measured;
    sizes.push({
      setting,
      dims: demoSketchDims(shapes, setting.floats),
      ...(await footprint(DEMO_INDEX, demo)),
      phaseSeconds: demo.build.phaseSeconds,
      defaultQuery: ofRow(DEFAULT_ROW),
      sketch: ofRow(SKETCH_ROW),
    });
  }
  const variants = sizes.filter((s) => s.buildLoad !== undefined);
  const factorsSeconds = Math.max(...variants.map((s) => s.phaseSeconds.factors ?? 0));
  return [
    "### Sketch size",
    "",
    `The demo index built again with other sketches (a budget of coordinates per sequence, shared evenly by the 8 MLP matrices, stored in ` +
      `int8, float32 or signs), each in a temporary ` +
      `folder holding a copy of the demo's EK-FAC fit, which the build reuses (its factors phase took at most ${factorsSeconds.toFixed(1)} s), ` +
      `and removed after its measurements; the first tier (16x16 PCA) and so the ground truth are the same for all. ` +
      `scale rank: terms of the sketch's low-rank whitening scale. ` +
      `Load average at the start of this table: ${load.toFixed(1)}; the build phases ran on 2 workers.`,
    "",
    "- stored: int8 (a float32 scale and a byte per coordinate), float32 (4 bytes per coordinate) or sign (a float32 factor and a bit per " +
      'coordinate, scored as f sum_j y_j sign(x_j): README, "Two tiers"). bytes per sequence: the vector file\'s ' +
      "(float32) and the sketch file's sizes over the 6,000 sequences. The server holds the sketch in memory (a copy per engine worker where that fits `--memory`).",
    `- build s: the seconds of the phases that change with the sketch (projection: PCA and the sketch's projection; vectors: both tiers of every sequence; hnsw: merging the shards and the graphs). ` +
      `† from the demo index's own build (${seconds(demo.build.seconds)} s in all, the EK-FAC fit ${seconds(demo.build.phaseSeconds.factors)} s of it), not this run. load: at the build's start.`,
    `- default query: \`candidates()\` with the engine's defaults, top 10 (the first tier's ${thousands(defaultCandidates(TOP_K, true))} best, by its int8 scan, re-scored by the sketch; ` +
      `without a sketch the first tier's own ranking of its ${thousands(defaultCandidates(TOP_K, false))}); overlap, ratio and ms as above.`,
    "- sketch Spearman: the sketch's scores of every sequence against the exact ones, median over queries.",
    "",
    "| sketch coordinates | stored | scale rank | dims per matrix | bytes per sequence (vectors + sketch) | sketch file | build s: projection / vectors / hnsw | load | default top-10 overlap | default ratio | default ms | sketch Spearman |",
    "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...sizes.map((s) => `| ${sketchSizeRow(s, sameSetting(s.setting, chosen))} |`),
    "",
    whyDefault(demo, sizes, chosen),
  ];
}

/** Why the default sketch is the default, from the table's numbers: faithfulness, latency and memory of the others, build time. */
function whyDefault(demo: IndexManifest, sizes: readonly SketchSize[], chosen: SketchSetting): string {
  const find = (wanted: (s: SketchSetting) => boolean) => {
    const found = sizes.find((s) => wanted(s.setting));
    if (!found) throw new Error("the sketch-size table lacks a setting its summary compares");
    return found;
  };
  const int8 = sizes.filter((s) => s.setting.floats > 0 && s.setting.precision === "int8").sort((a, b) => a.setting.floats - b.setting.floats);
  const largestInt8 = int8[int8.length - 1];
  const none = find((s) => s.floats === 0);
  const mine = find((s) => sameSetting(s, chosen));
  const float32 = find((s) => s.precision === "float32");
  const fewSigns = find((s) => s.precision === "sign" && s.floats < chosen.floats);
  const otherRank = find((s) => s.precision === "sign" && s.floats === chosen.floats && s.rank !== chosen.rank);
  const sketchPhases = (s: SketchSize) => (s.phaseSeconds.projection ?? 0) + (s.phaseSeconds.vectors ?? 0) + (s.phaseSeconds.hnsw ?? 0);
  const mb = (s: SketchSize) => `${(s.sketchFileBytes / 1e6).toFixed(0)} MB`;
  const ms = (s: SketchSize) => `${s.defaultQuery.latencyMs.toFixed(0)} ms`;
  const overlap = (s: SketchSize) => f2(s.defaultQuery.faithfulness.overlap.mean);
  const ratio = (s: SketchSize) => f3(s.defaultQuery.faithfulness.ratio.median);
  const spearman = (s: SketchSize) => (s.sketch?.faithfulness.spearman ? f3(s.sketch.faithfulness.spearman.median) : "-");
  const n = (s: SketchSize) => `${thousands(s.setting.floats)} ${s.setting.precision}${s.setting.precision === "sign" ? ` at rank ${s.setting.rank}` : ""}`;
  const summary = (s: SketchSize) => `${n(s)}: overlap ${overlap(s)}, Spearman ${spearman(s)}, ${ms(s)}, ${mb(s)}`;
  return (
    `Why ${n(mine)} is the default: the build's \`--sketch-precision auto\` keeps the demo's matrices whole (a budget of ${thousands(chosen.floats)} ` +
    `coordinates, more than the ${thousands(largestInt8.setting.floats)} bytes a sequence hold as int8) as signs of a random rotation of each ` +
    `matrix, and they rank every sequence as the exact scores do (Spearman ${spearman(mine)}, ratio ${ratio(mine)}, top-10 overlap ` +
    `${overlap(mine)}) in ${mb(mine)}, where the best int8 sketch of the budget reaches ${spearman(largestInt8)} in ${mb(largestInt8)} ` +
    `(${summary(largestInt8)}). Smaller int8 budgets rank worse still: ${int8
      .slice(0, -1)
      .reverse()
      .map(summary)
      .join("; ")}; no sketch, overlap ${overlap(none)}. float32 holds no more than int8 (${summary(float32)}): int8's rounding is far ` +
    `below a sketch's own error. Signs of a sketch as large as the int8 one (${summary(fewSigns)}) carry that error too: a byte of ` +
    `signs ranks as about five int8 coordinates, but only a whole matrix's rotation is exact. Scale rank ${otherRank.setting.rank} ` +
    `(${summary(otherRank)}) pays for whatever it adds in the query: its projection through whole matrices is a matrix product per ` +
    `term (${ms(otherRank)} against ${ms(mine)}). The cost of signs is the query: ${ms(mine)} against ${ms(largestInt8)}, within the 50 ms a served ` +
    `query may take (HTTP section). The demo build with the default took ${seconds(demo.build.seconds)} s on 2 cores ` +
    `(${seconds(demo.build.phaseSeconds.factors)} s of it the EK-FAC fit, ${seconds(sketchPhases(mine))} s the phases that depend on the ` +
    `sketch, against ${seconds(sketchPhases(largestInt8))} s for ${n(largestInt8)} in this run), within \`npm run demo\`'s 5 minutes.`
  );
}

const section: BenchSection = {
  title: "Faithfulness: the index's scores against exact EK-FAC on the demo index",
  async run() {
    const [load] = os.loadavg();
    await ensureDemoIndex(DEMO_INDEX, { log: (m) => console.error(m) });
    const engine = await IndexEngine.open(DEMO_INDEX);
    try {
      const requests = (await demoQueries(QUERIES)).map((q) => checkInfluenceArgs({ ...q, topK: TOP_K }, engine.tokenizer, engine.info(), false));
      console.error(`faithfulness: exact scores of every sequence for ${requests.length} queries`);
      const truth = await groundTruth(DEMO_INDEX, requests);
      const check = await checkGroundTruth(engine, requests, truth);
      if (!(check.relative < CHECK.tolerance)) {
        throw new Error(`the batched exact scores differ from engine.exactScores by ${check.relative.toExponential(2)} (relative), above ${CHECK.tolerance}`);
      }
      const sequences = truth.scores[0].length;
      const measured: Measured[] = [];
      const byHnsw = await openHnswEngine(DEMO_INDEX);
      for (const row of ROWS) {
        console.error(`faithfulness: ${row.name}`);
        measured.push(await measure(row.hnsw ? byHnsw : engine, row, requests, truth));
      }
      await byHnsw.close();
      const perSequenceMinutes = (check.msPerScore * sequences * requests.length) / 60_000;
      const demo = await readIndexManifest(DEMO_INDEX);
      const sketchSizes = await sketchSizeTable(demo, measured, requests, truth);
      return [
        `${requests.length} queries from documents held out of the demo model's training (as the HTTP section's), top ${TOP_K}, against ` +
          `exact EK-FAC scores of all ${sequences.toLocaleString("en")} indexed sequences (\`.demo/index\`: 16x16 PCA vectors per MLP matrix, ${sketchText(demo)}). ` +
          `Load average at the start: ${load.toFixed(1)} (the machine is shared; times scale with it).`,
        "",
        `Ground truth: every sequence captured once (forward and backward, batched) and scored against all ${requests.length} queries ` +
          `at once, \`influence score\`'s path (jobs/score.ts), in ${truth.seconds.toFixed(0)} s${truth.cached ? " (when computed; cached under the index since)" : ""}; ` +
          `one pass per sequence and query (\`exactScores\`: ${check.msPerScore.toFixed(1)} ms per sequence in this run, ${CHECK.sequences} per call, ` +
          `the query's gradient included) would take ${perSequenceMinutes.toFixed(0)} min. ` +
          `Checked against \`exactScores\` on the exact top ${CHECK.sequences} of ${CHECK.queries} queries: largest relative difference ` +
          `${check.relative.toExponential(1)} (float32 roundings of batched passes).`,
        "",
        `- top-10 overlap: sequences of the setting's top 10 that are in the exact top 10; mean over queries (worst query).`,
        "- Spearman: rank correlation with the exact scores over every indexed sequence; median over queries (worst). Only for settings " +
          "that score every sequence (-: the setting scores only its candidates).",
        "- ratio: per query, the median over the exact top 10 of the setting's score / the exact score, a sequence the setting gave no " +
          "score (not among its candidates) counting as 0; median over queries [min, max]. 1 is faithful in value; the re-ranked row " +
          "shows exact scores, so its ratio is 1 wherever the exact top 10 were among the sketch's best 30.",
        "- ms: median latency of the setting's call on the engine in process (no HTTP), one query at a time.",
        "",
        "| setting | top-10 overlap | Spearman | ratio | ms |",
        "| --- | ---: | ---: | ---: | ---: |",
        ...measured.map(tableRow),
        "",
        ...sketchSizes,
      ].join("\n");
    } finally {
      await engine.close();
    }
  },
};

export default section;
