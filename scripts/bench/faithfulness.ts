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
import { mkdir, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { IndexEngine } from "../../src/engine/index-engine.js";
import { checkInfluenceArgs } from "../../src/engine/query-validation.js";
import type { InfluenceRequest } from "../../src/engine/types.js";
import { indexPath, readIndexManifest } from "../../src/indexer/index-manifest.js";
import { readTokenStore } from "../../src/indexer/token-store.js";
import { runScore } from "../../src/jobs/score.js";
import { openModel } from "../../src/model/open-model.js";
import { writeJsonAtomic } from "../../src/util/atomic-write.js";
import { tempDir } from "../../src/util/temp-dir.js";
import { type Faithfulness, type ScoredSequences, aggregateFaithfulness, queryFaithfulness, topOrdinals } from "../../support/faithfulness.js";
import { median } from "../../support/percentile.js";
import type { BenchSection } from "../bench.js";
import { demoQueries } from "../bench-util.js";
import { DEMO_INDEX, ensureDemoIndex } from "../demo-index.js";

const QUERIES = 30;
const TOP_K = 10;
/** Exact top sequences per query checked against engine.exactScores, for this many queries. */
const CHECK = { queries: 3, sequences: 4, tolerance: 1e-4 } as const;

/**
 * A setting measured: the scores it gives for a query (the default top-10 request), for every
 * sequence it scored. Its latency is the time of `scores`. Adding a setting is adding a row.
 */
interface Row {
  name: string;
  scores(engine: IndexEngine, request: InfluenceRequest): Promise<ScoredSequences>;
}

const candidatesRow = (name: string, candidates?: number): Row => ({
  name,
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

const ROWS: Row[] = [
  candidatesRow("**default**: HNSW's 1,000 candidates re-scored by the sketch (`rerank: false`)"),
  candidatesRow("HNSW's 300 candidates re-scored by the sketch", 300),
  candidatesRow("HNSW's 2,000 candidates re-scored by the sketch", 2000),
  everySequenceRow("sketch scores of every sequence, brute force", "sketch"),
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
  return `| ${row.name} | ${f2(f.overlap.mean)} (${f.overlap.min}) | ${spearman} | ${f3(f.ratio.median)} [${f3(f.ratio.min)}, ${f3(f.ratio.max)}] | ${latencyMs.toFixed(0)} |`;
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
      for (const row of ROWS) {
        console.error(`faithfulness: ${row.name}`);
        measured.push(await measure(engine, row, requests, truth));
      }
      const perSequenceMinutes = (check.msPerScore * sequences * requests.length) / 60_000;
      return [
        `${requests.length} queries from documents held out of the demo model's training (as the HTTP section's), top ${TOP_K}, against ` +
          `exact EK-FAC scores of all ${sequences.toLocaleString("en")} indexed sequences (\`.demo/index\`: 16x16 PCA vectors per MLP matrix, a sketch of 32,768 floats). ` +
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
      ].join("\n");
    } finally {
      await engine.close();
    }
  },
};

export default section;
