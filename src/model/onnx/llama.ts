/**
 * The Llama family (Hugging Face LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM) as ONNX
 * graphs, forward and capture. The capture graph runs the loss and a hand-written backward pass
 * down to the lowest MLP, and returns for every MLP matrix what EK-FAC needs:
 *
 *   attention: q, k, v = n1(x) Wq^T (+ bq), ...;  q, k rotated;  grouped-query attention;  mid = x + o_proj(.)
 *   mlp:       u = n2(mid);  gate = u Wg^T;  up = u Wu^T;  m = silu(gate) up;  x' = mid + m Wd^T
 *   gate_proj: a = u, g = dL/dgate;  up_proj: a = u, g = dL/dup;  down_proj: a = m, g = dL/dx'
 *
 * n1, n2 are RMSNorms. Weights are graph inputs named as in the checkpoint (without `model.`),
 * nn.Linear layout [out, in].
 */
import type { GraphBuilder, Value } from "../../runtime/graph.js";
import type { LlamaConfig } from "../config.js";
import { inverseFrequencies } from "../rope.js";
import { type SwigluSaved, swiglu, swigluBackward } from "./activations.js";
import { type AttentionSaved, causalAttention, causalAttentionBackward, causalBias, mergeHeads, splitHeads } from "./attention.js";
import type { CaptureHead, CaptureInputs, EmitCapture, GraphInputs } from "./graph-inputs.js";
import { headBackward, lmHead } from "./head.js";
import { linear, linearBackward, tokenCount } from "./layers.js";
import { type NormSaved, normBackward, rmsNorm } from "./norms.js";
import { rotary, rotaryBackward, rotaryTables } from "./rotary.js";

interface LayerSaved {
  n1: NormSaved;
  attn: AttentionSaved;
  n2: NormSaved;
  glu: SwigluSaved;
  /** n2's output: the input of gate_proj and up_proj, [B, T, C] */
  u: Value;
  /** silu(gate) up: the input of down_proj, [B, T, I] */
  m: Value;
}

/** The forward pass to the final RMSNorm's output [B, T, C], with what backward needs. */
function transformer(g: GraphBuilder, cfg: LlamaConfig, inputs: GraphInputs) {
  const w = inputs.weight;
  const D = cfg.headDim;
  const attention = { heads: cfg.nHead, kvHeads: cfg.nKvHead, headDim: D };
  const tokens = tokenCount(g, inputs.ids);
  const bias = g.scope("causal_mask", () => causalBias(g, tokens));
  const rope = g.scope("rotary", () => rotaryTables(g, tokens, inverseFrequencies(D, cfg.ropeTheta, cfg.ropeScaling)));
  // x [B, T, C]
  let x = g.scope("embed_tokens", () => g.op("Gather", [w("embed_tokens.weight"), inputs.ids], { axis: 0 }));
  const saved: LayerSaved[] = [];
  for (let i = 0; i < cfg.nLayer; i++) {
    const p = (name: string) => w(`layers.${i}.${name}`);
    const projection = (name: string, from: Value, bias: boolean) => linear(g, from, p(`${name}.weight`), bias ? p(`${name}.bias`) : undefined);
    const input = x;
    x = g.scope(`layers.${i}`, () => {
      const n1 = rmsNorm(g, input, p("input_layernorm.weight"), cfg.rmsNormEps);
      const attn = g.scope("self_attn", () => {
        // q [B, H, T, D];  k, v [B, Hkv, T, D]
        const q = splitHeads(g, projection("self_attn.q_proj", n1.y, cfg.qkvBias), cfg.nHead, D);
        const k = splitHeads(g, projection("self_attn.k_proj", n1.y, cfg.qkvBias), cfg.nKvHead, D);
        const v = splitHeads(g, projection("self_attn.v_proj", n1.y, cfg.qkvBias), cfg.nKvHead, D);
        const { y, saved } = causalAttention(g, rotary(g, q, rope, D), rotary(g, k, rope, D), v, attention, bias);
        return { y: projection("self_attn.o_proj", y, cfg.outputBias), saved };
      });
      const mid = g.op("Add", [input, attn.y]);
      const n2 = rmsNorm(g, mid, p("post_attention_layernorm.weight"), cfg.rmsNormEps);
      const { y: m, saved: glu } = g.scope("mlp", () => swiglu(g, projection("mlp.gate_proj", n2.y, false), projection("mlp.up_proj", n2.y, false)));
      saved.push({ n1: n1.saved, attn: attn.saved, n2: n2.saved, glu, u: n2.y, m });
      // x' = mid + m Wd^T
      return g.op("Add", [mid, projection("mlp.down_proj", m, false)]);
    });
  }
  const final = g.scope("norm", () => rmsNorm(g, x, w("norm.weight"), cfg.rmsNormEps));
  const headWeight = w(cfg.tieWordEmbeddings ? "embed_tokens.weight" : "lm_head.weight");
  return { w, saved, final, headWeight, attention, rope };
}

/** logits [R, V] of the chosen rows of the flattened batch. */
export function llamaForward(g: GraphBuilder, cfg: LlamaConfig, inputs: GraphInputs): Value {
  const { final, headWeight } = transformer(g, cfg, inputs);
  return lmHead(g, final.y, inputs.rows, headWeight, cfg.nEmbd);
}

/**
 * The capture pass: forward, the head's loss (`head` returns dL/dlogits [R, V] from the logits),
 * then dL/dx from the top layer down; `emit` receives each MLP matrix's input and output gradient.
 */
export function llamaCapture(g: GraphBuilder, cfg: LlamaConfig, inputs: CaptureInputs, head: CaptureHead, emit: EmitCapture): void {
  const { w, saved, final, headWeight, attention, rope } = transformer(g, cfg, inputs);
  const D = attention.headDim;
  let dx = headBackward(g, { ...final, gain: w("norm.weight") }, inputs.rows, headWeight, cfg.nEmbd, head);
  for (let i = cfg.nLayer - 1; i >= 0; i--) {
    const p = (name: string) => w(`layers.${i}.${name}`);
    const s = saved[i];
    const dOut = dx;
    dx = g.scope(`layers.${i}.backward`, () => {
      // down_proj's output feeds the residual directly: its gradient is dL/dx'
      emit(`layers.${i}.mlp.down_proj`, s.m, dOut);
      const { dgate, dup } = swigluBackward(g, linearBackward(g, dOut, p("mlp.down_proj.weight")), s.glu);
      emit(`layers.${i}.mlp.gate_proj`, s.u, dgate);
      emit(`layers.${i}.mlp.up_proj`, s.u, dup);
      if (i === 0) return dOut; // nothing below the lowest MLP is tracked
      const du = g.op("Add", [linearBackward(g, dgate, p("mlp.gate_proj.weight")), linearBackward(g, dup, p("mlp.up_proj.weight"))]);
      const dMid = g.op("Add", [dOut, normBackward(g, du, s.n2, p("post_attention_layernorm.weight"))]);
      const dAttn = causalAttentionBackward(g, linearBackward(g, dMid, p("self_attn.o_proj.weight")), s.attn, attention);
      // back through the rotations and the projections: dn1 = dq Wq + dk Wk + dv Wv
      const dq = mergeHeads(g, rotaryBackward(g, dAttn.dq, rope, D));
      const dk = mergeHeads(g, rotaryBackward(g, dAttn.dk, rope, D));
      const dn1 = g.op("Sum", [
        linearBackward(g, dq, p("self_attn.q_proj.weight")),
        linearBackward(g, dk, p("self_attn.k_proj.weight")),
        linearBackward(g, mergeHeads(g, dAttn.dv), p("self_attn.v_proj.weight")),
      ]);
      return g.op("Add", [dMid, normBackward(g, dn1, s.n1, p("input_layernorm.weight"))]);
    });
  }
}
