/**
 * The paper's first finding (Figures 6-7): EK-FAC is about as accurate as iterative solvers and
 * far faster. This measures agreement with an exact solve and cost per query, not which scores
 * predict retraining: that comparison is the `lds` section (influence evaluate). Scores of EK-FAC, LiSSA and the plain gradient dot product are compared with
 * conjugate gradients on the exact Fisher, on the trained demo model; and the sampled Fisher is
 * compared with the empirical one on the gpt2-tiny fixture.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { readCorpus } from "../../src/corpus/corpus.js";
import type { FisherMode } from "../../src/ekfac/artifacts.js";
import { DEFAULT_ITERATIVE, type ScoreMethod } from "../../src/ekfac/methods.js";
import { runFit } from "../../src/jobs/fit.js";
import { openModel } from "../../src/model/open-model.js";
import { runScore } from "../../src/jobs/score.js";
import { pearson, spearman } from "../../src/stats/correlation.js";
import type { BenchSection } from "../bench.js";
import { REPO_ROOT, fixturesDir } from "../../support/fixtures.js";
import { tempDir } from "../../src/util/temp-dir.js";

/** Sequences of the demo corpus used to fit and to score: all fit the CG solver's memory. */
const FIT_SEQUENCES = 256;
const QUERIES = [
  { id: "paris", prompt: "Paris, City of Light, French capital (noun): the capital and largest city of", completion: " France" },
  { id: "dog", prompt: "dog, domestic dog (noun): a member of the genus", completion: " Canis" },
  { id: "coffee", prompt: "coffee (noun): a beverage consisting of an infusion of ground", completion: " coffee beans" },
  { id: "doctor", prompt: "doctor (noun): a licensed medical", completion: " practitioner" },
  { id: "teacher", prompt: "teacher (noun): a person whose occupation is", completion: " teaching" },
];
const heuristic = { rule: "heuristic" as const, factor: 0.1 };

async function firstDocuments(file: string, count: number, out: string): Promise<void> {
  const lines: string[] = [];
  for await (const doc of readCorpus(file)) {
    lines.push(JSON.stringify(doc.text === undefined ? { id: doc.id, tokens: doc.tokens } : { id: doc.id, text: doc.text }));
    if (lines.length === count) break;
  }
  await writeFile(out, `${lines.join("\n")}\n`);
}

async function methodTable(dir: string): Promise<string[]> {
  const opened = await openModel(path.join(REPO_ROOT, "demo/model"));
  const corpus = path.join(dir, "fit.jsonl");
  await firstDocuments(path.join(REPO_ROOT, "demo/corpus.jsonl.gz"), FIT_SEQUENCES, corpus);
  const queries = path.join(dir, "queries.jsonl");
  await writeFile(queries, `${QUERIES.map((q) => JSON.stringify(q)).join("\n")}\n`);
  const factors = path.join(dir, "factors");
  const t0 = performance.now();
  await runFit({ opened, corpusFile: corpus, outDir: factors, fisher: "sampled", damping: heuristic, seed: 0 });
  const fitSeconds = (performance.now() - t0) / 1000;
  const results = new Map<ScoreMethod, { scores: number[][]; seconds: number }>();
  for (const method of ["cg", "ekfac", "lissa", "identity"] as const) {
    const t = performance.now();
    const out = await runScore({
      opened,
      factorsDir: factors,
      train: { file: corpus },
      queriesFile: queries,
      method,
      perModule: false,
      perToken: false,
      iterative: DEFAULT_ITERATIVE,
    });
    results.set(method, { scores: out.scores, seconds: (performance.now() - t) / 1000 });
  }
  await opened.model.release();
  const reference = results.get("cg")!.scores;
  const rows = [...results].map(([method, r]) => {
    const p = r.scores.map((s, q) => pearson(s, reference[q]));
    const sp = r.scores.map((s, q) => spearman(s, reference[q]));
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    return `| ${method} | ${mean(p).toFixed(3)} (${Math.min(...p).toFixed(3)}) | ${mean(sp).toFixed(3)} | ${(r.seconds / QUERIES.length).toFixed(2)} |`;
  });
  return [
    `Demo model (GPT-2, 4 blocks x 128, trained by scripts/train-demo.ts), EK-FAC fitted with the sampled Fisher on the first ${FIT_SEQUENCES} ` +
      `sequences of the demo corpus in ${fitSeconds.toFixed(1)} s (counted once, not per query). ${QUERIES.length} factual queries; each method ` +
      `scores the same ${FIT_SEQUENCES} sequences. cg: conjugate gradients on (F + damping) x = q with exact Fisher-vector products over all ` +
      `fitting sequences and all MLP parameters jointly (tolerance ${DEFAULT_ITERATIVE.cg.tolerance}), the reference. lissa: ` +
      `${DEFAULT_ITERATIVE.lissa.iterations} steps with ${DEFAULT_ITERATIVE.lissa.batchSize}-sequence products. Seconds per query include ` +
      `collecting the fitting gradients for cg and lissa, and scoring.`,
    "",
    "| method | Pearson with cg, mean (min) | Spearman with cg, mean | seconds per query |",
    "| --- | ---: | ---: | ---: |",
    ...rows,
  ];
}

async function fisherComparison(dir: string): Promise<string> {
  const model = path.join(fixturesDir(), "gpt2-tiny");
  const opened = await openModel(model);
  const scoresBy = new Map<FisherMode, number[][]>();
  for (const fisher of ["empirical", "sampled"] as const) {
    const out = path.join(dir, `tiny-${fisher}`);
    await runFit({ opened, corpusFile: path.join(model, "train.jsonl"), outDir: out, fisher, damping: heuristic, seed: 0 });
    const scored = await runScore({
      opened,
      factorsDir: out,
      train: { file: path.join(model, "train.jsonl") },
      queriesFile: path.join(model, "queries.jsonl"),
      method: "ekfac",
      perModule: false,
      perToken: false,
    });
    scoresBy.set(fisher, scored.scores);
  }
  await opened.model.release();
  const p = scoresBy.get("sampled")!.map((s, q) => pearson(s, scoresBy.get("empirical")![q]));
  return (
    `Sampled against empirical Fisher on gpt2-tiny (same seed 0, 48 sequences, 4 queries): Pearson of the EK-FAC scores per query ` +
    `${p.map((x) => x.toFixed(3)).join(", ")}.`
  );
}

const section: BenchSection = {
  title: "Solver agreement: EK-FAC, LiSSA and gradient dot product against CG (the methods comparison is `lds`)",
  async run() {
    const tmp = await tempDir();
    try {
      return [...(await methodTable(tmp.dir)), "", await fisherComparison(tmp.dir)].join("\n");
    } finally {
      await tmp.remove();
    }
  },
};

export default section;
