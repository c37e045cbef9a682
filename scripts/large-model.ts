/**
 * A GPT-2-shaped model beyond the 4 GiB heap of the previous engine (tfjs's wasm backend): 1.3B parameters (n_embd 2048, 24 layers, 16 heads;
 * 5.3 GB of float32 weights, random) through one forward and one capture pass on ONNX Runtime.
 * Prints the times and the peak resident memory. Usage: tsx scripts/large-model.ts [tokens=128]
 */
import { makeBatch } from "../src/model/batch.js";
import type { Gpt2Config } from "../src/model/config.js";
import { OnnxCausalLM } from "../src/model/onnx/causal-lm.js";
import { initGpt2Weights } from "../src/training/init.js";

const tokens = Number(process.argv[2] ?? 128);
const cfg: Gpt2Config = { architecture: "gpt2", vocabSize: 50257, contextLength: 1024, nEmbd: 2048, nLayer: 24, nHead: 16, nInner: 8192, layerNormEps: 1e-5 };
const seconds = (t0: number) => ((performance.now() - t0) / 1000).toFixed(1);

let t0 = performance.now();
const weights = initGpt2Weights(cfg, 1);
const count = [...weights.values()].reduce((s, w) => s + w.length, 0);
console.log(`${(count / 1e9).toFixed(2)}B parameters, ${((4 * count) / 2 ** 30).toFixed(2)} GiB float32, initialised in ${seconds(t0)} s`);

const model = new OnnxCausalLM(cfg, weights);
const sequence = Array.from({ length: tokens }, (_, t) => (t * 7919) % cfg.vocabSize);
t0 = performance.now();
const logits = await model.logits(makeBatch([sequence], cfg.contextLength, cfg.vocabSize));
console.log(`forward, 1 x ${tokens} tokens (with session creation): ${seconds(t0)} s, logits finite: ${logits.every(Number.isFinite)}`);
t0 = performance.now();
const capture = await model.capture([sequence], { kind: "next-token" });
const gradNorm = Math.sqrt(capture.modules[0].g.reduce((s, x) => s + x * x, 0));
console.log(
  `forward + capture (with session creation): ${seconds(t0)} s, loss ${capture.losses[0].toFixed(2)}, |g| of ${capture.modules[0].module.name} ${gradNorm.toExponential(3)}`,
);
t0 = performance.now();
await model.capture([sequence], { kind: "next-token" });
console.log(`forward + capture again (session reused): ${seconds(t0)} s`);
console.log(`peak RSS ${(process.resourceUsage().maxRSS / 2 ** 20).toFixed(2)} GiB`);
await model.release();
