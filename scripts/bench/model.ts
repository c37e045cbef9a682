/**
 * Forward and forward+capture throughput of every architecture on the engine (ONNX Runtime, CPU),
 * against ONNX Runtime's own MatMul rate: GPT-2 small, and Pythia-160M and Qwen2.5-0.5B as their
 * config.json on the hub describes them, with random weights, one sequence each; and GPT-2 small
 * on PyTorch (Debian's python3-torch, a comparison only) in the same run. The previous engine,
 * tfjs's wasm backend, is gone: its figures are the last ones measured (issue 14), quoted. Tokens,
 * threads and timed runs: INFLUENCE_BENCH_TOKENS (512), INFLUENCE_BENCH_THREADS (2),
 * INFLUENCE_BENCH_REPEATS (3).
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import ort from "onnxruntime-node";
import { makeBatch } from "../../src/model/batch.js";
import { type ModelConfig, parseConfig } from "../../src/model/config.js";
import { OnnxCausalLM } from "../../src/model/onnx/causal-lm.js";
import type { BenchSection } from "../bench.js";
import { REPO_ROOT } from "../../support/fixtures.js";
import { GPT2_SMALL, onnxMatMulRate, randomWeights, timeItAsync } from "../bench-util.js";
import { median } from "../../support/percentile.js";

/** The hub's config.json of EleutherAI/pythia-160m (the keys this project reads). */
const PYTHIA_160M = {
  architectures: ["GPTNeoXForCausalLM"],
  model_type: "gpt_neox",
  hidden_act: "gelu",
  hidden_size: 768,
  intermediate_size: 3072,
  layer_norm_eps: 1e-5,
  max_position_embeddings: 2048,
  num_attention_heads: 12,
  num_hidden_layers: 12,
  rotary_emb_base: 10000,
  rotary_pct: 0.25,
  tie_word_embeddings: false,
  use_parallel_residual: true,
  vocab_size: 50304,
};

/** The hub's config.json of Qwen/Qwen2.5-0.5B (the keys this project reads). */
const QWEN25_05B = {
  architectures: ["Qwen2ForCausalLM"],
  model_type: "qwen2",
  hidden_act: "silu",
  hidden_size: 896,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

/**
 * FLOPs (2 per multiply-add, counted from the shapes) of the forward pass with logits of all T
 * positions, and of the capture pass: forward with logits of the T - 1 loss positions, then
 * activation gradients (no weight gradients) down to the lowest MLP's output matrix.
 */
function flops(cfg: ModelConfig, T: number): { forward: number; capture: number } {
  const [C, I, V] = [cfg.nEmbd, cfg.nInner, cfg.vocabSize];
  const [q, kv] = cfg.architecture === "llama" ? [cfg.nHead * cfg.headDim, cfg.nKvHead * cfg.headDim] : [C, C];
  // q and output projections, k and v, and the MLP matrices (SwiGLU has three)
  const projections = 2 * C * q + 2 * C * kv + (cfg.architecture === "llama" ? 3 : 2) * C * I;
  // q k^T and p v over every head, at T keys (the causal half is computed too)
  const attention = 2 * T * q;
  const blocks = T * cfg.nLayer * (projections + attention);
  const backward = T * ((cfg.nLayer - 1) * (projections + 2 * attention) + C * I) + (T - 1) * C * V;
  return { forward: 2 * (blocks + T * C * V), capture: 2 * (blocks + (T - 1) * C * V + backward) };
}

/** GPT-2 small on PyTorch through scripts/bench/torch-gpt2.py, or why not. */
function torchRow(tokens: number, threads: number): string {
  const script = path.join(REPO_ROOT, "scripts", "bench", "torch-gpt2.py");
  const probe = spawnSync("/usr/bin/python3", ["-c", "import torch"], { encoding: "utf8" });
  if (probe.status !== 0) return "| GPT-2 small on PyTorch | 124M | not installed | | not installed | |";
  const run = spawnSync("/usr/bin/python3", [script, String(tokens), String(threads), "3"], { encoding: "utf8" });
  if (run.status !== 0) throw new Error(`${script} failed: ${run.stderr}`);
  const out = JSON.parse(run.stdout) as { torch: string; matmul_gflops: number; forward_tokens_per_s: number; capture_tokens_per_s: number };
  return (
    `| GPT-2 small on PyTorch ${out.torch}, ${threads} threads (its BLAS: matMul 1024³ at ${out.matmul_gflops.toFixed(0)} GFLOP/s) | 124M | ` +
    `${out.forward_tokens_per_s.toFixed(0)} | | ${out.capture_tokens_per_s.toFixed(0)} | |`
  );
}

interface Row {
  name: string;
  parameters: number;
  forwardSeconds: number;
  captureSeconds: number;
  flops: { forward: number; capture: number };
}

async function measure(name: string, cfg: ModelConfig, tokens: number, threads: number, repeats: number): Promise<Row> {
  const weights = randomWeights(cfg);
  const parameters = [...weights.values()].reduce((n, w) => n + w.length, 0);
  const model = new OnnxCausalLM(cfg, weights, { device: "cpu", threads });
  const sequence = Array.from({ length: tokens }, (_, t) => (t * 7919) % cfg.vocabSize);
  const batch = makeBatch([sequence], cfg.contextLength, cfg.vocabSize);
  try {
    const forwardSeconds = median(await timeItAsync(() => model.logits(batch), repeats));
    const captureSeconds = median(await timeItAsync(() => model.capture([sequence], { kind: "next-token" }), repeats));
    return { name, parameters, forwardSeconds, captureSeconds, flops: flops(cfg, tokens) };
  } finally {
    await model.release();
  }
}

const section: BenchSection = {
  title: "Model: forward and forward+capture per architecture, beside PyTorch",
  async run() {
    const tokens = Number(process.env.INFLUENCE_BENCH_TOKENS ?? 512);
    const threads = Number(process.env.INFLUENCE_BENCH_THREADS ?? 2);
    const repeats = Number(process.env.INFLUENCE_BENCH_REPEATS ?? 3);
    const rates = [await onnxMatMulRate(1024, threads), await onnxMatMulRate(3072, threads)];
    const rate = Math.max(...rates);
    const models: Array<[string, ModelConfig]> = [
      ["GPT-2 small", GPT2_SMALL],
      ["Pythia-160M-shaped (GPT-NeoX)", parseConfig("pythia-160m config.json", PYTHIA_160M)],
      ["Qwen2.5-0.5B-shaped (Qwen2: grouped-query attention, SwiGLU, tied head)", parseConfig("Qwen2.5-0.5B config.json", QWEN25_05B)],
    ];
    const rows: Row[] = [];
    for (const [name, cfg] of models) rows.push(await measure(name, cfg, tokens, threads, repeats));
    const torch = torchRow(tokens, threads);
    const percent = (gflops: number) => `${gflops.toFixed(1)} (${((100 * gflops) / rate).toFixed(0)}%)`;
    return [
      `Random weights, one sequence of ${tokens} tokens, ONNX Runtime ${ort.env.versions.node} (CPU), ${threads} threads. Forward: logits of every position. Forward+capture: the summed next-token loss, its gradient and the backward pass with the per-token inputs and output gradients of every MLP matrix, down to the lowest MLP (PyTorch: autograd with weights frozen, which runs down to the embedding). FLOPs are counted analytically from the shapes (2 per multiply-add, attention over the full square).`,
      "",
      `ONNX Runtime MatMul, ${threads} threads: ${rates[0].toFixed(0)} GFLOP/s at 1024³, ${rates[1].toFixed(0)} GFLOP/s at 3072³ (the percentages are of the higher).`,
      "",
      "| model | parameters | forward tokens/s | forward GFLOP/s (% of MatMul) | forward+capture tokens/s | forward+capture GFLOP/s (% of MatMul) |",
      "| --- | ---: | ---: | ---: | ---: | ---: |",
      ...rows.map(
        (r) =>
          `| ${r.name} | ${(r.parameters / 1e6).toFixed(0)}M | ${(tokens / r.forwardSeconds).toFixed(0)} | ${percent(r.flops.forward / r.forwardSeconds / 1e9)} | ${(tokens / r.captureSeconds).toFixed(0)} | ${percent(r.flops.capture / r.captureSeconds / 1e9)} |`,
      ),
      torch,
      "| GPT-2 small on tfjs 4.22 wasm, the previous engine (last measured 2026-12-04, not re-run) | 124M | 104 | | 50 | |",
    ].join("\n");
  },
};

export default section;
