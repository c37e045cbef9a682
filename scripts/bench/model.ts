/**
 * Forward and backward throughput with per-token capture, against the backend's own matMul rate:
 * the fixture model and a randomly initialised GPT-2 small (124M parameters) at 512 tokens.
 */
import { download, tf } from "../../src/backend/backend.js";
import { makeBatch } from "../../src/model/batch.js";
import { captureGradients } from "../../src/model/capture.js";
import type { Gpt2Config } from "../../src/model/config.js";
import { Gpt2, gpt2Params } from "../../src/model/gpt2.js";
import { loadModel } from "../../src/model/load.js";
import type { CausalLM } from "../../src/model/model.js";
import { initGpt2Weights } from "../../src/training/init.js";
import type { BenchSection } from "../bench.js";
import { median, timeIt } from "./util.js";
import { fixturesDir } from "../../support/fixtures.js";

/** Best-of matMul rate for an [m, k] x [k, n] product in the fast (untransposed) layout. */
function matMulRate(m: number, k: number, n: number): number {
  const a = tf.randomNormal([m, k]);
  const b = tf.randomNormal([k, n]);
  const seconds = median(timeIt(() => download(tf.matMul(a, b)), 5));
  tf.dispose([a, b]);
  return (2 * m * k * n) / seconds / 1e9;
}

/** Multiply-adds of the forward pass and of the capture backward pass, for T tokens per sequence. */
function flops(cfg: Gpt2Config, T: number, sequences: number): { forward: number; backward: number } {
  const C = cfg.nEmbd;
  const linear = 4 * C * C + 2 * C * cfg.nInner; // qkv, attention output, c_fc, c_proj
  const head = C * cfg.vocabSize;
  const attention = 2 * T * C; // q k^T and p v, per token
  const forward = T * (cfg.nLayer * (linear + attention) + head);
  // Backward: activation gradients only (no weight gradients), and it stops at the lowest MLP.
  const backward = T * ((cfg.nLayer - 1) * (linear + 2 * attention) + C * cfg.nInner + head);
  return { forward: 2 * forward * sequences, backward: 2 * backward * sequences };
}

interface Row {
  name: string;
  tokens: number;
  forwardSeconds: number;
  totalSeconds: number;
  flops: { forward: number; backward: number };
}

export function measure(name: string, model: CausalLM, sequences: number[][], repeats: number): Row {
  const batch = makeBatch(sequences, model.config.contextLength, model.config.vocabSize);
  const forwardSeconds = median(
    timeIt(() => {
      const pass = model.forward(batch);
      download(pass.logits);
      pass.dispose();
    }, repeats),
  );
  const totalSeconds = median(
    timeIt(() => {
      const capture = captureGradients(model, sequences, { kind: "next-token" });
      capture.modules.forEach((m) => m.g.dataSync());
      capture.dispose();
    }, repeats),
  );
  const tokens = sequences.reduce((s, x) => s + x.length, 0);
  return { name, tokens, forwardSeconds, totalSeconds, flops: flops(model.config, batch.length, sequences.length) };
}

const section: BenchSection = {
  title: "Model: forward and backward with capture",
  async run() {
    const rate1024 = matMulRate(1024, 1024, 1024);
    const rateMlp = matMulRate(512, 768, 3072);
    const rate = Math.max(rate1024, rateMlp);

    const tiny = await loadModel(`${fixturesDir()}/gpt2-tiny`);
    const tinySequences = Array.from({ length: 48 }, (_, b) => Array.from({ length: 24 }, (_, t) => (b * 131 + t * 7919) % tiny.config.vocabSize));
    const rows = [measure("gpt2-tiny fixture (2 x 32, 48 sequences x 24 tokens)", tiny, tinySequences, 5)];
    tiny.dispose();

    const cfg: Gpt2Config = {
      architecture: "gpt2",
      vocabSize: 50257,
      contextLength: 1024,
      nEmbd: 768,
      nLayer: 12,
      nHead: 12,
      nInner: 3072,
      layerNormEps: 1e-5,
    };
    const weights = initGpt2Weights(cfg, 1);
    const small = new Gpt2(
      cfg,
      gpt2Params(cfg, (name) => weights.get(name) as Float32Array),
    );
    weights.clear();
    const sequence = Array.from({ length: 512 }, (_, t) => (t * 7919) % cfg.vocabSize);
    rows.push(measure("GPT-2 small, random init (124M, 1 sequence x 512 tokens)", small, [sequence], 3));
    small.dispose();

    const table = rows.map((r) => {
      const gflopsTotal = (r.flops.forward + r.flops.backward) / r.totalSeconds / 1e9;
      const backwardSeconds = r.totalSeconds - r.forwardSeconds;
      const gflopsBackward = r.flops.backward / backwardSeconds / 1e9;
      return (
        `| ${r.name} | ${(r.tokens / r.forwardSeconds).toFixed(0)} | ${(r.tokens / r.totalSeconds).toFixed(0)} | ${gflopsTotal.toFixed(1)} ` +
        `(${((100 * gflopsTotal) / rate).toFixed(0)}%) | ${gflopsBackward.toFixed(1)} (${((100 * gflopsBackward) / rate).toFixed(0)}%) |`
      );
    });
    return [
      `Backend matMul rate: ${rate1024.toFixed(1)} GFLOP/s for 1024x1024x1024, ${rateMlp.toFixed(1)} GFLOP/s for 512x768x3072 (the reference below ` +
        `is the higher).`,
      "",
      "Forward+backward = forward pass, loss gradient and the capture backward pass (activation gradients down to the lowest MLP, per-token inputs " +
        "and output gradients of every MLP matrix). FLOPs are counted analytically from the shapes (2 per multiply-add).",
      "",
      "| model | forward tokens/s | forward+backward tokens/s | forward+backward GFLOP/s (% of matMul) | backward GFLOP/s (% of matMul) |",
      "| --- | ---: | ---: | ---: | ---: |",
      ...table,
    ].join("\n");
  },
};

export default section;
