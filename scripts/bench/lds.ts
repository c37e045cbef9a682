/**
 * The methods comparison: the linear datamodeling score (LDS) of each scoring method on the demo's
 * evaluation setting (demo/lds/, made by scripts/make-lds-setting.ts), by `influence evaluate`'s
 * job: the demo model fine-tuned on the whole setting corpus and on SUBSETS random halves of it.
 */
import os from "node:os";
import path from "node:path";
import { DEFAULT_BUILD_PARAMETERS } from "../../src/jobs/build.js";
import { type MethodResult, type MethodSpec, runEvaluate } from "../../src/jobs/evaluate/evaluate.js";
import { bootstrapMean } from "../../src/stats/lds.js";
import { REPO_ROOT } from "../../support/fixtures.js";
import type { BenchSection } from "../bench.js";

/** 50 fine-tunings (the low end of TRAK's 50 to 100) of 134 sequences x 3 epochs, a few seconds each on 2 quiet cores. */
const SUBSETS = 50;
const SETTINGS = {
  subsets: SUBSETS,
  fraction: 0.5,
  seed: 0,
  schedule: { epochs: 3, batchTokens: 1024, lr: 1e-3, warmupRatio: 0.1, floorRatio: 0.1 },
};
const METHODS: MethodSpec[] = [
  { method: "ekfac", fisher: "sampled" },
  { method: "ekfac", fisher: "empirical" },
  { method: "index", fisher: "sampled" },
  { method: "identity", fisher: null },
  { method: "lissa", fisher: "sampled" },
];

const interval = (low: number, high: number) => `[${low.toFixed(3)}, ${high.toFixed(3)}]`;

/** The mean over queries of ekfac's LDS minus identity's, with a paired bootstrap interval. */
function pairedDifference(a: MethodResult, b: MethodResult): string {
  const d = bootstrapMean(a.perQuery.map((x, q) => x - b.perQuery[q]));
  return `${d.mean.toFixed(3)} ${interval(d.low, d.high)}`;
}

const section: BenchSection = {
  title: "Influence methods: linear datamodeling score (LDS) on the demo",
  async run() {
    const t0 = performance.now();
    const report = await runEvaluate({
      modelDir: path.join(REPO_ROOT, "demo/model"),
      corpusFile: path.join(REPO_ROOT, "demo/lds/corpus.jsonl"),
      queriesFile: path.join(REPO_ROOT, "demo/lds/queries.jsonl"),
      settings: SETTINGS,
      methods: METHODS,
      runtime: { threads: os.availableParallelism() },
      onProgress: (e) => {
        if (e.phase === "subset fine-tunings") console.error(`lds: ${e.done}/${e.total} fine-tunings, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
      },
      log: (message) => console.error(`lds: ${message}`),
    });
    const minutes = (performance.now() - t0) / 60_000;
    const { projection } = DEFAULT_BUILD_PARAMETERS;
    const { corpus, settings } = report;
    const identity = report.methods.find((m) => m.method === "identity") as MethodResult;
    const rows = report.methods.map(
      (m) =>
        `| ${m.label} | ${m.lds.toFixed(3)} | ${interval(m.low, m.high)} | ${m === identity ? "" : pairedDifference(m, identity)} | ` +
        `${m.perQuery.filter((x) => x > 0).length}/${m.perQuery.length} |`,
    );
    return [
      `Demo model (GPT-2, 4 blocks x 128, demo/model) fine-tuned on the demo's evaluation setting (demo/lds/: ${corpus.sequences} sequences ` +
        `of trained-on documents of the demo corpus, 6 related to each of ${report.queries.length} held-out queries and the rest random; ` +
        `scripts/make-lds-setting.ts) and on ${settings.subsets} seeded random halves of it (${corpus.subsetSize} sequences), each from the ` +
        `same weights with the same schedule: ${settings.schedule.epochs} epochs, ${settings.schedule.batchTokens}-token batches, peak ` +
        `learning rate ${settings.schedule.lr}, AdamW. Scores are computed on the model fine-tuned on the whole setting corpus (factors ` +
        `fitted there, heuristic damping). LDS: the mean over queries of Spearman's correlation, across the ${settings.subsets} subsets, ` +
        `between the subset's summed scores and minus the query's loss after fine-tuning on it (1: the summed scores rank the subsets ` +
        `exactly as their losses do; 0: no relation). Intervals: ${report.interval.how}, ${report.interval.level * 100}%. The ` +
        `difference from identity is paired by query (bootstrap of the per-query differences). The index row is the index's own ` +
        `projected scores (what a served query ranks by before any exact re-scoring): an index of the setting corpus built by ` +
        `\`influence build\` with its defaults (sampled Fisher, ${projection.kOut}x${projection.kIn} ${projection.basis.toUpperCase()} projection per matrix) on the same fine-tuned model, every ` +
        `sequence's projected score read from its vectors. Total ${minutes.toFixed(1)} min (${settings.subsets + 1} fine-tunings, 2 fits, ` +
        `1 index build, ${report.methods.length} scorings).`,
      "",
      "| method | LDS | 95% interval | minus identity's, paired (95% interval) | queries with LDS > 0 |",
      "| --- | ---: | ---: | ---: | ---: |",
      ...rows,
    ].join("\n");
  },
};

export default section;
