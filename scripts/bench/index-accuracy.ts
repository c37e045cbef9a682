/**
 * How well the index's projected scores rank sequences, against the fixture's exact EK-FAC
 * scores (empirical Fisher), for several projection sizes and both bases.
 */
import { readFileSync } from "node:fs";
import { fitEkfac, serialPasses } from "../../src/ekfac/fit.js";
import { loadModel } from "../../src/model/load.js";
import { WhitenedMomentAccumulator } from "../../src/projection/pca.js";
import { buildProjection } from "../../src/projection/projection.js";
import { Projector } from "../../src/projection/projector.js";
import { readSafetensors, tensorAsFloat64 } from "../../src/safetensors/read.js";
import { pearson, spearman } from "../../src/stats/correlation.js";
import type { BenchSection } from "../bench.js";
import { fixturesDir } from "../../support/fixtures.js";

const DIMS = [16, 32, 48, 64, 96];
const RANKS = [4, 8];

async function rows(name: string): Promise<string[]> {
  const dir = `${fixturesDir()}/${name}`;
  const model = await loadModel(dir);
  const train = readFileSync(`${dir}/train.jsonl`, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l).tokens as number[]);
  const queries = readFileSync(`${dir}/queries.jsonl`, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { prompt_tokens: number[]; completion_tokens: number[] });
  const exact = tensorAsFloat64(await readSafetensors(`${dir}/expected.safetensors`), "scores");
  const sequences = async function* () {
    yield* train.map((tokens, ordinal) => ({ ordinal, tokens }));
  };
  const passes = serialPasses(model, sequences, train.length, { fisher: "empirical", seed: 0 });
  const fit = await fitEkfac(model.modules, passes, { damping: { rule: "heuristic", factor: 0.1 } });
  const accumulator = new WhitenedMomentAccumulator(fit.factors);
  const trainCapture = await model.capture(train, { kind: "next-token" });
  await accumulator.add(trainCapture);
  const moments = accumulator.finish();
  const queryCapture = await model.capture(
    queries.map((q) => [...q.prompt_tokens, ...q.completion_tokens]),
    { kind: "completion", promptLengths: queries.map((q) => q.prompt_tokens.length) },
  );
  const out: string[] = [];
  for (const basis of ["pca", "random"] as const) {
    for (const rank of RANKS) {
      for (const k of DIMS) {
        const projector = new Projector(await buildProjection(fit.factors, { kOut: k, kIn: k, rank, seed: 0, basis }, basis === "pca" ? moments : undefined));
        const vt = await projector.vectors(trainCapture);
        const vq = await projector.vectors(queryCapture);
        const D = projector.dim;
        const n = train.length;
        const sp: number[] = [];
        const pe: number[] = [];
        queries.forEach((_, q) => {
          const approx = Array.from({ length: n }, (_, i) => {
            let s = 0;
            for (let d = 0; d < D; d++) s += vq[q * D + d] * vt[i * D + d];
            return s;
          });
          const reference = Array.from(exact.subarray(q * n, (q + 1) * n));
          sp.push(spearman(approx, reference));
          pe.push(pearson(approx, reference));
        });
        const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
        out.push(
          `| ${name} | ${basis} | ${rank} | ${k}x${k} | ${D} | ${Math.min(...sp).toFixed(3)} | ${mean(sp).toFixed(3)} | ${Math.min(...pe).toFixed(3)} |`,
        );
      }
    }
  }
  await model.release();
  return out;
}

const section: BenchSection = {
  title: "Index accuracy: projected scores against exact EK-FAC",
  async run() {
    const table = [...(await rows("gpt2-tiny")), ...(await rows("gpt2-tiny-legacy"))];
    return [
      "Per query, Spearman and Pearson correlation between the index's approximate scores (inner products of projected, whitened vectors) and the " +
        "fixture's exact EK-FAC scores over all training sequences (48 for gpt2-tiny, 16 for the legacy fixture); min and mean over the queries. " +
        "`dims` is requested per MLP matrix and capped at the matrix's own size (the fixture's matrices are 128x33 and 32x129). `rank` is the " +
        "number of terms of the low-rank whitening scale. The default build uses pca, rank 4, 64x64.",
      "",
      "| fixture | basis | rank | dims | vector size | Spearman min | Spearman mean | Pearson min |",
      "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: |",
      ...table,
    ].join("\n");
  },
};

export default section;
