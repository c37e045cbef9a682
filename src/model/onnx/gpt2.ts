/**
 * GPT-2 (Hugging Face GPT2LMHeadModel: pre-LayerNorm blocks, gelu_new, tied LM head) as ONNX
 * graphs, forward and capture. The capture graph runs the loss and a hand-written backward pass
 * down to the lowest MLP, and returns for every MLP matrix what EK-FAC needs:
 *
 *   block:  u = LN2(x);  h = u Wfc + bfc;  act = gelu(h);  m = act Wproj + bproj;  x' = x + m
 *   c_fc:   a = u,   g = dL/dh
 *   c_proj: a = act, g = dL/dm
 *
 * Weights are graph inputs named as in the checkpoint (without `transformer.`), Conv1D layout [in, out].
 */
import type { GraphBuilder, Value } from "../../runtime/graph.js";
import type { Gpt2Config } from "../config.js";
import { type GeluTanhSaved, geluTanh, geluTanhBackward } from "./activations.js";
import { type AttentionSaved, causalAttention, causalAttentionBackward, causalBias, mergeHeads, splitHeads } from "./attention.js";
import type { CaptureHead, CaptureInputs, EmitCapture, GraphInputs } from "./graph-inputs.js";
import { headBackward, lmHead } from "./head.js";
import { conv1d, conv1dBackward, tokenCount } from "./layers.js";
import { layerNorm, type NormSaved, normBackward } from "./norms.js";

export interface BlockSaved {
  ln1: NormSaved;
  attn: AttentionSaved;
  ln2: NormSaved;
  gelu: GeluTanhSaved;
  /** LN2 output: the input of c_fc, [B, T, C] */
  u: Value;
  /** gelu output: the input of c_proj, [B, T, 4C] */
  act: Value;
  /** LN1 output: the input of attn.c_attn, [B, T, C] */
  ln1Out: Value;
  /** attention output: the input of attn.c_proj, [B, T, C] */
  attnOut: Value;
}

/** The GPT-2 forward pass to the final LayerNorm's output [B, T, C], with what backward needs. */
export function transformer(g: GraphBuilder, cfg: Gpt2Config, inputs: GraphInputs) {
  const w = inputs.weight;
  const C = cfg.nEmbd;
  const attention = { heads: cfg.nHead, kvHeads: cfg.nHead, headDim: C / cfg.nHead };
  const tokens = tokenCount(g, inputs.ids);
  const bias = g.scope("causal_mask", () => causalBias(g, tokens));
  // x [B, T, C] = token embedding + position embedding
  let x = g.scope("embed", () => {
    const positions = g.op("Range", [g.constant("int64", 0), g.op("Squeeze", [tokens]), g.constant("int64", 1)]);
    return g.op("Add", [g.op("Gather", [w("wte.weight"), inputs.ids], { axis: 0 }), g.op("Gather", [w("wpe.weight"), positions], { axis: 0 })]);
  });
  const saved: BlockSaved[] = [];
  for (let i = 0; i < cfg.nLayer; i++) {
    const p = (name: string) => w(`h.${i}.${name}`);
    const input = x;
    x = g.scope(`h.${i}`, () => {
      const ln1 = layerNorm(g, input, p("ln_1.weight"), p("ln_1.bias"), cfg.layerNormEps);
      const attn = g.scope("attn", () => {
        // qkv [B, T, 3C] -> q, k, v [B, H, T, D]
        const qkv = g.node("Split", [conv1d(g, ln1.y, p("attn.c_attn.weight"), p("attn.c_attn.bias"))], { axis: 2 }, 3);
        const [q, k, v] = qkv.map((part) => splitHeads(g, part, attention.heads, attention.headDim));
        return causalAttention(g, q, k, v, attention, bias);
      });
      const mid = g.op("Add", [input, conv1d(g, attn.y, p("attn.c_proj.weight"), p("attn.c_proj.bias"))]);
      const ln2 = layerNorm(g, mid, p("ln_2.weight"), p("ln_2.bias"), cfg.layerNormEps);
      const { y: act, saved: gelu } = g.scope("mlp", () => geluTanh(g, conv1d(g, ln2.y, p("mlp.c_fc.weight"), p("mlp.c_fc.bias"))));
      saved.push({ ln1: ln1.saved, attn: attn.saved, ln2: ln2.saved, gelu, u: ln2.y, act, ln1Out: ln1.y, attnOut: attn.y });
      // x' = mid + act Wproj + bproj
      return g.op("Add", [mid, conv1d(g, act, p("mlp.c_proj.weight"), p("mlp.c_proj.bias"))]);
    });
  }
  const lnF = g.scope("ln_f", () => layerNorm(g, x, w("ln_f.weight"), w("ln_f.bias"), cfg.layerNormEps));
  return { w, saved, lnF, attention };
}

/** logits [R, V] of the chosen rows of the flattened batch (tied head: h wte^T). */
export function gpt2Forward(g: GraphBuilder, cfg: Gpt2Config, inputs: GraphInputs): Value {
  const { w, lnF } = transformer(g, cfg, inputs);
  return lmHead(g, lnF.y, inputs.rows, w("wte.weight"), cfg.nEmbd);
}

/**
 * The capture pass: forward, the head's loss (`head` returns dL/dlogits [R, V] from the logits),
 * then dL/dx from the top block down; `emit` receives each MLP matrix's input [B, T, in] and
 * output gradient [B, T, out], from the top block down.
 */
export function gpt2Capture(g: GraphBuilder, cfg: Gpt2Config, inputs: CaptureInputs, head: CaptureHead, emit: EmitCapture): void {
  const { w, saved, lnF, attention } = transformer(g, cfg, inputs);
  let dx = headBackward(g, { ...lnF, gain: w("ln_f.weight") }, inputs.rows, w("wte.weight"), cfg.nEmbd, head);
  for (let i = cfg.nLayer - 1; i >= 0; i--) {
    const p = (name: string) => w(`h.${i}.${name}`);
    const s = saved[i];
    const dOut = dx;
    dx = g.scope(`h.${i}.backward`, () => {
      // m = act Wproj + b feeds the residual directly: dL/dm = dL/dx'
      const dh = geluTanhBackward(g, conv1dBackward(g, dOut, p("mlp.c_proj.weight")), s.gelu);
      emit(`h.${i}.mlp.c_fc`, s.u, dh);
      emit(`h.${i}.mlp.c_proj`, s.act, dOut);
      if (i === 0) return dOut; // nothing below the lowest MLP is tracked
      const dMid = g.op("Add", [dOut, normBackward(g, conv1dBackward(g, dh, p("mlp.c_fc.weight")), s.ln2, p("ln_2.weight"))]);
      const dAttn = causalAttentionBackward(g, conv1dBackward(g, dMid, p("attn.c_proj.weight")), s.attn, attention);
      const dqkv = g.op(
        "Concat",
        [dAttn.dq, dAttn.dk, dAttn.dv].map((d) => mergeHeads(g, d)),
        { axis: 2 },
      );
      return g.op("Add", [dMid, normBackward(g, conv1dBackward(g, dqkv, p("attn.c_attn.weight")), s.ln1, p("ln_1.weight"))]);
    });
  }
}
