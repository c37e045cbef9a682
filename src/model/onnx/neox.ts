/**
 * GPT-NeoX (Hugging Face GPTNeoXForCausalLM, the Pythia models) as ONNX graphs, forward and
 * capture. The capture graph runs the loss and a hand-written backward pass down to the lowest
 * MLP, and returns for every MLP matrix what EK-FAC needs:
 *
 *   attention: [q | k | v] of each head = ln1(x) Wqkv^T + b;  q, k rotated on their first rotaryDims features
 *   mlp:       u = ln2(y);  h = u W1^T + b1;  act = gelu(h) (exact);  m = act W2^T + b2
 *   parallel residual:   x' = x + attn(ln1(x)) + mlp(ln2(x))
 *   sequential residual: mid = x + attn(ln1(x));  x' = mid + mlp(ln2(mid))
 *   dense_h_to_4h: a = u, g = dL/dh;  dense_4h_to_h: a = act, g = dL/dm
 *
 * Weights are graph inputs named as in the checkpoint (without `gpt_neox.`), nn.Linear layout [out, in].
 */
import type { GraphBuilder, Value } from "../../runtime/graph.js";
import type { NeoxConfig } from "../config.js";
import { inverseFrequencies } from "../rope.js";
import { type GeluErfSaved, geluErf, geluErfBackward } from "./activations.js";
import { type AttentionSaved, causalAttention, causalAttentionBackward, causalBias, mergeHeads, splitHeads } from "./attention.js";
import type { CaptureHead, CaptureInputs, EmitCapture, GraphInputs } from "./graph-inputs.js";
import { headBackward, lmHead } from "./head.js";
import { linear, linearBackward, tokenCount } from "./layers.js";
import { layerNorm, type NormSaved, normBackward } from "./norms.js";
import { rotary, rotaryBackward, rotaryTables } from "./rotary.js";

interface LayerSaved {
  ln1: NormSaved;
  attn: AttentionSaved;
  ln2: NormSaved;
  gelu: GeluErfSaved;
  /** ln2's output: the input of dense_h_to_4h, [B, T, C] */
  u: Value;
  /** gelu's output: the input of dense_4h_to_h, [B, T, I] */
  act: Value;
}

/** The GPT-NeoX forward pass to the final LayerNorm's output [B, T, C], with what backward needs. */
function transformer(g: GraphBuilder, cfg: NeoxConfig, inputs: GraphInputs) {
  const w = inputs.weight;
  const C = cfg.nEmbd;
  const D = C / cfg.nHead;
  const attention = { heads: cfg.nHead, kvHeads: cfg.nHead, headDim: D };
  const tokens = tokenCount(g, inputs.ids);
  const bias = g.scope("causal_mask", () => causalBias(g, tokens));
  const rope = g.scope("rotary", () => rotaryTables(g, tokens, inverseFrequencies(cfg.rotaryDims, cfg.rotaryBase, cfg.ropeScaling)));
  // x [B, T, C]
  let x = g.scope("embed_in", () => g.op("Gather", [w("embed_in.weight"), inputs.ids], { axis: 0 }));
  const saved: LayerSaved[] = [];
  for (let i = 0; i < cfg.nLayer; i++) {
    const p = (name: string) => w(`layers.${i}.${name}`);
    const attnBias = (name: string) => (cfg.attentionBias ? p(`${name}.bias`) : undefined);
    const input = x;
    x = g.scope(`layers.${i}`, () => {
      const ln1 = layerNorm(g, input, p("input_layernorm.weight"), p("input_layernorm.bias"), cfg.layerNormEps);
      const attn = g.scope("attention", () => {
        // qkv [B, T, 3C] -> [B, H, T, 3D], each head's [q | k | v] -> q, k, v [B, H, T, D]
        const qkv = linear(g, ln1.y, p("attention.query_key_value.weight"), attnBias("attention.query_key_value"));
        const [q, k, v] = g.node("Split", [splitHeads(g, qkv, cfg.nHead, 3 * D)], { axis: -1 }, 3);
        const { y, saved } = causalAttention(g, rotary(g, q, rope, D), rotary(g, k, rope, D), v, attention, bias);
        return { y: linear(g, y, p("attention.dense.weight"), attnBias("attention.dense")), saved };
      });
      const mid = g.op("Add", [input, attn.y]);
      const ln2 = layerNorm(g, cfg.parallelResidual ? input : mid, p("post_attention_layernorm.weight"), p("post_attention_layernorm.bias"), cfg.layerNormEps);
      const { y: act, saved: gelu } = g.scope("mlp", () => geluErf(g, linear(g, ln2.y, p("mlp.dense_h_to_4h.weight"), p("mlp.dense_h_to_4h.bias"))));
      saved.push({ ln1: ln1.saved, attn: attn.saved, ln2: ln2.saved, gelu, u: ln2.y, act });
      // x' = x + attn + act W2^T + b2
      return g.op("Add", [mid, linear(g, act, p("mlp.dense_4h_to_h.weight"), p("mlp.dense_4h_to_h.bias"))]);
    });
  }
  const final = g.scope("final_layer_norm", () => layerNorm(g, x, w("final_layer_norm.weight"), w("final_layer_norm.bias"), cfg.layerNormEps));
  const headWeight = w(cfg.tieWordEmbeddings ? "embed_in.weight" : "embed_out.weight");
  return { w, saved, final, headWeight, attention, rope };
}

/** logits [R, V] of the chosen rows of the flattened batch. */
export function neoxForward(g: GraphBuilder, cfg: NeoxConfig, inputs: GraphInputs): Value {
  const { final, headWeight } = transformer(g, cfg, inputs);
  return lmHead(g, final.y, inputs.rows, headWeight, cfg.nEmbd);
}

/**
 * The capture pass: forward, the head's loss (`head` returns dL/dlogits [R, V] from the logits),
 * then dL/dx from the top layer down; `emit` receives each MLP matrix's input and output gradient.
 */
export function neoxCapture(g: GraphBuilder, cfg: NeoxConfig, inputs: CaptureInputs, head: CaptureHead, emit: EmitCapture): void {
  const { w, saved, final, headWeight, attention, rope } = transformer(g, cfg, inputs);
  const D = attention.headDim;
  let dx = headBackward(g, { ...final, gain: w("final_layer_norm.weight") }, inputs.rows, headWeight, cfg.nEmbd, head);
  for (let i = cfg.nLayer - 1; i >= 0; i--) {
    const p = (name: string) => w(`layers.${i}.${name}`);
    const s = saved[i];
    const dOut = dx;
    dx = g.scope(`layers.${i}.backward`, () => {
      // m = act W2^T + b2 feeds the residual directly: dL/dm = dL/dx'
      const dh = geluErfBackward(g, linearBackward(g, dOut, p("mlp.dense_4h_to_h.weight")), s.gelu);
      emit(`layers.${i}.mlp.dense_h_to_4h`, s.u, dh);
      emit(`layers.${i}.mlp.dense_4h_to_h`, s.act, dOut);
      if (i === 0) return dOut; // nothing below the lowest MLP is tracked
      // dL/d(the MLP's input): into x itself (parallel) or into mid = x + attn (sequential)
      const dMlpIn = normBackward(g, linearBackward(g, dh, p("mlp.dense_h_to_4h.weight")), s.ln2, p("post_attention_layernorm.weight"));
      const dMid = cfg.parallelResidual ? dOut : g.op("Add", [dOut, dMlpIn]);
      const dAttn = causalAttentionBackward(g, linearBackward(g, dMid, p("attention.dense.weight")), s.attn, attention);
      // [B, H, T, 3D] of each head's [dq | dk | dv] -> dqkv [B, T, 3C]
      const dqkv = mergeHeads(g, g.op("Concat", [rotaryBackward(g, dAttn.dq, rope, D), rotaryBackward(g, dAttn.dk, rope, D), dAttn.dv], { axis: -1 }));
      const dAttnIn = normBackward(g, linearBackward(g, dqkv, p("attention.query_key_value.weight")), s.ln1, p("input_layernorm.weight"));
      const dIn = g.op("Add", [dMid, dAttnIn]);
      return cfg.parallelResidual ? g.op("Add", [dIn, dMlpIn]) : dIn;
    });
  }
}
