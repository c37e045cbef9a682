/**
 * EK-FAC fits of billion-parameter shapes: `influence fit` (nice 10, child process) of 8 random
 * sequences of 512 tokens on TinyLlama-1.1B- and Pythia-1B-shaped models with random weights
 * (the hub's configs, weights saved as the hub ships them: bfloat16 and float16), with the time of
 * each phase and the estimated and reached peak memory from the fit's manifest.
 * INFLUENCE_BENCH_LAYERS keeps only the first N layers of each (every matrix keeps its width, so
 * each layer costs what it costs at full depth), INFLUENCE_BENCH_MEMORY is the fit's --memory
 * (16G: the machine is shared). The models are written to a temporary folder and removed.
 */
import path from "node:path";
import { formatBytes } from "../../src/util/memory.js";
import { tempDir } from "../../src/util/temp-dir.js";
import type { BenchSection } from "../bench.js";
import { type MeasuredFit, PYTHIA_1B, TINYLLAMA_1B, measuredFit, saveRandomModel, writeRandomCorpus } from "../bench-util.js";

function row(name: string, layers: number, m: MeasuredFit): string {
  const { covarianceSeconds: c, eigendecompositionSeconds: e, lambdaSeconds: l } = m.timings;
  const error = (100 * (m.estimateBytes - m.peakBytes)) / m.peakBytes;
  return (
    `| ${name} | ${layers} | ${c.toFixed(0)} | ${e.toFixed(0)} | ${l.toFixed(0)} | ${m.seconds.toFixed(0)} | ` +
    `${formatBytes(m.estimateBytes)} | ${formatBytes(m.peakBytes)} | ${error >= 0 ? "+" : ""}${error.toFixed(0)}% | ${m.estimatePhase} |`
  );
}

const section: BenchSection = {
  title: "Fits of 1B-parameter shapes: time per phase and peak memory",
  async run() {
    const memory = process.env.INFLUENCE_BENCH_MEMORY ?? "16G";
    const tmp = await tempDir();
    try {
      const rows = [
        `\`influence fit --fisher empirical --memory ${memory}\` at nice 10 on 8 sequences of 512 random tokens; random weights; seconds per phase`,
        "from the manifest's timings, total = wall clock of the command (loading and saving included); peak = VmHWM of the process.",
        "",
        "| shape | layers | covariance pass s | eigendecompositions s | Lambda pass s | total s | estimate | peak | estimate − peak | peak phase (estimated) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
      ];
      for (const [name, raw, dtype] of [
        ["TinyLlama-1.1B (Llama, bfloat16 checkpoint)", TINYLLAMA_1B, "BF16"],
        ["Pythia-1B (GPT-NeoX, float16 checkpoint)", PYTHIA_1B, "F16"],
      ] as const) {
        const layers = Number(process.env.INFLUENCE_BENCH_LAYERS ?? raw.num_hidden_layers);
        const dir = path.join(tmp.dir, name.split(" ")[0]);
        const cfg = await saveRandomModel(path.join(dir, "model"), { ...raw, num_hidden_layers: layers }, dtype);
        const corpus = path.join(dir, "corpus.jsonl");
        await writeRandomCorpus(corpus, 8, 512, cfg.vocabSize);
        const m = await measuredFit(path.join(dir, "model"), corpus, path.join(dir, "factors"), ["--memory", memory]);
        console.error(`fit-1b ${name}, ${layers} layers: ${JSON.stringify(m)}`);
        rows.push(row(name, layers, m));
      }
      return rows.join("\n");
    } finally {
      await tmp.remove();
    }
  },
};

export default section;
