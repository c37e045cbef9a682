/**
 * The memory estimate against the peak reached: `influence fit` run as a child process (nice 10) on
 * the fixture models and on a GPT-2-small-shaped model with random weights (4 sequences of 512
 * random tokens; its fit is dominated by 24 float64 eigendecompositions at n = 3,072), each
 * reporting its estimate and its peak (VmHWM) in the factors manifest; then the estimates alone
 * for TinyLlama-1.1B- and Pythia-1B-shaped fits of 8 sequences of 512 tokens (the hub's configs,
 * their checkpoints as shipped: bfloat16 and float16), not run.
 */
import { cp } from "node:fs/promises";
import path from "node:path";
import { buildEstimate, fitEstimate } from "../../src/jobs/memory-plan.js";
import { DEFAULT_BATCH_TOKENS, batchTokenLimit } from "../../src/model/batch-budget.js";
import { type MemoryEstimate, mergedParts } from "../../src/model/memory-estimate.js";
import { initGpt2Weights } from "../../src/training/init.js";
import { saveHfGpt2 } from "../../src/training/save.js";
import { formatBytes } from "../../src/util/memory.js";
import { tempDir } from "../../src/util/temp-dir.js";
import { fixturePath } from "../../support/fixtures.js";
import type { BenchSection } from "../bench.js";
import { GPT2_SMALL, type MeasuredFit, PYTHIA_1B, TINYLLAMA_1B, estimateCells, measuredFit, shapeMemoryInputs, writeRandomCorpus } from "../bench-util.js";

function measuredRow(name: string, m: MeasuredFit): string {
  return `| ${name} | ${estimateCells(m)} | ${m.estimatePhase} | ${m.seconds.toFixed(0)} |`;
}

function estimateRow(name: string, what: string, e: MemoryEstimate): string {
  const parts = mergedParts(e.parts)
    .slice(0, 4)
    .map((p) => `${p.what} ${formatBytes(p.bytes)}`)
    .join(", ");
  return `| ${name} | ${what} | ${formatBytes(e.bytes)} | ${e.phase}: ${parts} |`;
}

const section: BenchSection = {
  title: "Memory: estimated and reached peaks",
  async run() {
    const tmp = await tempDir();
    try {
      const rows = [
        "`influence fit --fisher empirical` as a child process; peak = the process's VmHWM at the end of the fit (worker threads included), estimate = what the",
        "command computed before loading the model (`--memory` left at the machine's memory).",
        "",
        "| model | estimate | peak | estimate − peak | peak phase (estimated) | s |",
        "| --- | ---: | ---: | ---: | --- | ---: |",
      ];
      for (const model of ["gpt2-tiny", "pythia-tiny", "llama-tiny"]) {
        const m = await measuredFit(fixturePath(model), fixturePath(model, "train.jsonl"), path.join(tmp.dir, model));
        console.error(`memory ${model}: estimate ${formatBytes(m.estimateBytes)}, peak ${formatBytes(m.peakBytes)}`);
        rows.push(measuredRow(`${model} fixture (48 x 24 tokens)`, m));
      }
      const gpt2 = path.join(tmp.dir, "gpt2-small");
      await saveHfGpt2(gpt2, GPT2_SMALL, initGpt2Weights(GPT2_SMALL, 1), 50256);
      for (const f of ["vocab.json", "merges.txt"]) await cp(fixturePath("gpt2-tiny", f), path.join(gpt2, f));
      const corpus = path.join(tmp.dir, "gpt2-corpus.jsonl");
      await writeRandomCorpus(corpus, 4, 512, GPT2_SMALL.vocabSize);
      const m = await measuredFit(gpt2, corpus, path.join(tmp.dir, "gpt2-small-factors"));
      console.error(`memory gpt2-small: estimate ${formatBytes(m.estimateBytes)}, peak ${formatBytes(m.peakBytes)}`);
      rows.push(measuredRow("GPT-2 small shape, random weights (4 x 512 tokens)", m));

      rows.push(
        "",
        "Estimates only (not run): fits of 8 sequences of 512 tokens, and builds with 2 workers, with the default batch size.",
        "",
        "| config | command | estimate | peak phase: biggest parts |",
        "| --- | --- | ---: | --- |",
      );
      for (const [name, raw, bytes] of [
        ["TinyLlama-1.1B (bfloat16 checkpoint)", TINYLLAMA_1B, 2],
        ["Pythia-1B (float16 checkpoint)", PYTHIA_1B, 2],
      ] as const) {
        const inputs = shapeMemoryInputs(raw, bytes, 8, 512);
        const tokens = batchTokenLimit(inputs.config, DEFAULT_BATCH_TOKENS);
        rows.push(
          estimateRow(name, "fit", fitEstimate(inputs, tokens)),
          estimateRow(name, "build, 2 workers", buildEstimate(inputs, { workers: 2, shardSize: 512, embeddedDatabase: true }, tokens)),
        );
      }
      return rows.join("\n");
    } finally {
      await tmp.remove();
    }
  },
};

export default section;
