/**
 * The same GPT-2 small (random weights, one sequence) on the engine, ONNX Runtime (CPU), and on
 * PyTorch (Debian's python3-torch, a comparison only), side by side in one run, with ONNX
 * Runtime's own MatMul rate. The previous engine, tfjs's wasm backend, is gone: its figures are
 * the last ones measured (issue 14), quoted, not re-run. Tokens and threads:
 * INFLUENCE_BENCH_TOKENS (512), INFLUENCE_BENCH_THREADS (2).
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import ort from "onnxruntime-node";
import { makeBatch } from "../../src/model/batch.js";
import { OnnxCausalLM } from "../../src/model/onnx/causal-lm.js";
import { initGpt2Weights } from "../../src/training/init.js";
import type { BenchSection } from "../bench.js";
import { REPO_ROOT } from "../../support/fixtures.js";
import { GPT2_SMALL, median, onnxMatMulRate, timeItAsync } from "./util.js";

interface EngineRow {
  engine: string;
  forward: string;
  capture: string;
}

function torchRow(tokens: number, threads: number): EngineRow {
  const script = path.join(REPO_ROOT, "scripts", "bench", "torch-gpt2.py");
  const probe = spawnSync("/usr/bin/python3", ["-c", "import torch"], { encoding: "utf8" });
  if (probe.status !== 0) return { engine: "PyTorch", forward: "not installed", capture: "not installed" };
  const run = spawnSync("/usr/bin/python3", [script, String(tokens), String(threads), "3"], { encoding: "utf8" });
  if (run.status !== 0) throw new Error(`${script} failed: ${run.stderr}`);
  const out = JSON.parse(run.stdout) as { torch: string; matmul_gflops: number; forward_tokens_per_s: number; capture_tokens_per_s: number };
  return {
    engine: `PyTorch ${out.torch}, ${threads} threads (its BLAS: matMul 1024³ at ${out.matmul_gflops.toFixed(0)} GFLOP/s)`,
    forward: out.forward_tokens_per_s.toFixed(0),
    capture: out.capture_tokens_per_s.toFixed(0),
  };
}

const section: BenchSection = {
  title: "Engines: ONNX Runtime (the engine) and PyTorch on GPT-2 small",
  async run() {
    const tokens = Number(process.env.INFLUENCE_BENCH_TOKENS ?? 512);
    const threads = Number(process.env.INFLUENCE_BENCH_THREADS ?? 2);
    const weights = initGpt2Weights(GPT2_SMALL, 1);
    const sequence = Array.from({ length: tokens }, (_, t) => (t * 7919) % GPT2_SMALL.vocabSize);
    const rows: EngineRow[] = [{ engine: "tfjs 4.22 wasm, the previous engine (last measured, 512 tokens; not re-run)", forward: "104", capture: "50" }];

    const onnx = new OnnxCausalLM(GPT2_SMALL, weights, { device: "cpu", threads });
    const batch = makeBatch([sequence], GPT2_SMALL.contextLength, GPT2_SMALL.vocabSize);
    const forward = median(await timeItAsync(() => onnx.logits(batch), 3));
    const capture = median(await timeItAsync(() => onnx.capture([sequence], { kind: "next-token" }), 3));
    await onnx.release();
    rows.push({
      engine: `ONNX Runtime ${ort.env.versions.node} (CPU), ${threads} threads`,
      forward: (tokens / forward).toFixed(0),
      capture: (tokens / capture).toFixed(0),
    });

    rows.push(torchRow(tokens, threads));
    const rates = [await onnxMatMulRate(1024, threads), await onnxMatMulRate(3072, threads)];
    return [
      `GPT-2 small (124M parameters, random weights), one sequence of ${tokens} tokens. Forward: logits of every position. Forward+capture: the summed next-token loss, its gradient and the backward pass with the per-token inputs and output gradients of every MLP matrix (PyTorch: autograd with weights frozen, which runs down to the embedding rather than stopping at the lowest MLP).`,
      "",
      `ONNX Runtime MatMul, ${threads} threads: ${rates[0].toFixed(0)} GFLOP/s at 1024³, ${rates[1].toFixed(0)} GFLOP/s at 3072³.`,
      "",
      "| engine | forward tokens/s | forward+capture tokens/s |",
      "| --- | ---: | ---: |",
      ...rows.map((r) => `| ${r.engine} | ${r.forward} | ${r.capture} |`),
    ].join("\n");
  },
};

export default section;
