/**
 * GPT-2's training graphs: the summed next-token loss of a right-padded batch and, in the "train"
 * variant, its gradient with respect to every parameter, by a hand-written backward pass through
 * the building blocks beside it (the capture graph's activation backward, plus parameter gradients):
 *
 *   head:   logits = h wte^T on the loss rows;  dwte += dlogits^T h
 *   linear: dW = x^T dy, db = sum of dy's rows;  LayerNorm: dgain = sum dy xhat, dbias = sum dy
 *   input:  x = wte[ids] + wpe[0..T);  dwte += dx added into the rows of ids;  dwpe = sum over the batch of dx
 *
 * Inputs: ids [B, T], rows [R] (the flattened rows that predict a token), labels [R], scale []
 * (multiplies the gradients, not the loss), and the weights by checkpoint name (without
 * `transformer.`). Outputs: loss [R] (per row, unscaled) and `grad.<name>` for every parameter.
 */
import { GraphBuildError, GraphBuilder, type Value } from "../../runtime/graph.js";
import type { Gpt2Config } from "../config.js";
import { gpt2ParameterShapes } from "../gpt2-architecture.js";
import { transformer } from "./gpt2.js";
import { geluTanhBackward } from "./activations.js";
import { causalAttentionBackward, mergeHeads } from "./attention.js";
import { conv1dBackward, conv1dParameterGrads, embeddingBackward, gatherRows, scatterRows } from "./layers.js";
import { softmaxCrossEntropy } from "./loss.js";
import { layerNormParameterGrads, normBackward } from "./norms.js";

export type TrainingGraphVariant = "loss" | "train";

export function buildGpt2TrainingGraph(cfg: Gpt2Config, variant: TrainingGraphVariant): GraphBuilder {
  const g = new GraphBuilder(cfg.architecture, `training-${variant}`);
  const C = cfg.nEmbd;
  const ids = g.input("ids", "int64", ["batch", "tokens"]);
  const rows = g.input("rows", "int64", ["rows"]);
  const labels = g.input("labels", "int64", ["rows"]);
  const shapes = gpt2ParameterShapes(cfg);
  const weights = new Map([...shapes].map(([name, dims]) => [name, g.input(name, "float32", dims)]));
  const w = (name: string): Value => {
    const value = weights.get(name);
    if (value === undefined)
      throw new GraphBuildError(cfg.architecture, `training-${variant}`, undefined, `the model code reads parameter ${name}, which GPT-2 does not declare`);
    return value;
  };
  const { saved, lnF, attention } = transformer(g, cfg, { ids, rows, weight: w });

  // h [R, C]: the final LayerNorm's output on the loss rows; logits [R, V] through the tied head
  const h = gatherRows(g, lnF.y, rows, C);
  const logits = g.scope("lm_head", () => g.op("Gemm", [h, w("wte.weight")], { transB: 1 }));
  const { loss, dlogits: unscaled } = g.scope("loss", () => softmaxCrossEntropy(g, logits, () => labels));
  g.output(loss, "loss", "float32", ["rows"]);
  if (variant === "loss") return g;

  const grads = new Map<string, Value>();
  const scale = g.input("scale", "float32", []);
  const dlogits = g.op("Mul", [unscaled, scale]);
  const headGrad = g.scope("lm_head.backward", () => g.op("Gemm", [dlogits, h], { transA: 1 }));
  let dx = g.scope("ln_f.backward", () => {
    const dy = scatterRows(g, g.op("MatMul", [dlogits, w("wte.weight")]), rows, lnF.y, C);
    const { dgain, dbias } = layerNormParameterGrads(g, dy, lnF.saved, C);
    grads.set("ln_f.weight", dgain).set("ln_f.bias", dbias);
    return normBackward(g, dy, lnF.saved, w("ln_f.weight"));
  });
  for (let i = cfg.nLayer - 1; i >= 0; i--) {
    const name = (param: string) => `h.${i}.${param}`;
    const p = (param: string) => w(name(param));
    const s = saved[i];
    const linearGrads = (module: string, x: Value, dy: Value, inWidth: number, outWidth: number) => {
      const { dw, db } = conv1dParameterGrads(g, x, dy, inWidth, outWidth);
      grads.set(name(`${module}.weight`), dw).set(name(`${module}.bias`), db);
    };
    const normGrads = (norm: string, dy: Value, ns: typeof s.ln1) => {
      const { dgain, dbias } = layerNormParameterGrads(g, dy, ns, C);
      grads.set(name(`${norm}.weight`), dgain).set(name(`${norm}.bias`), dbias);
      return normBackward(g, dy, ns, p(`${norm}.weight`));
    };
    const dOut = dx;
    dx = g.scope(`h.${i}.backward`, () => {
      // x' = mid + mlp(ln_2(mid)): dL/dm = dL/dx'
      linearGrads("mlp.c_proj", s.act, dOut, cfg.nInner, C);
      const dh = geluTanhBackward(g, conv1dBackward(g, dOut, p("mlp.c_proj.weight")), s.gelu);
      linearGrads("mlp.c_fc", s.u, dh, C, cfg.nInner);
      const dMid = g.op("Add", [dOut, normGrads("ln_2", conv1dBackward(g, dh, p("mlp.c_fc.weight")), s.ln2)]);
      // mid = x + attn(ln_1(x))
      linearGrads("attn.c_proj", s.attnOut, dMid, C, C);
      const dAttn = causalAttentionBackward(g, conv1dBackward(g, dMid, p("attn.c_proj.weight")), s.attn, attention);
      const dqkv = g.op(
        "Concat",
        [dAttn.dq, dAttn.dk, dAttn.dv].map((d) => mergeHeads(g, d)),
        { axis: 2 },
      );
      linearGrads("attn.c_attn", s.ln1Out, dqkv, C, 3 * C);
      return g.op("Add", [dMid, normGrads("ln_1", conv1dBackward(g, dqkv, p("attn.c_attn.weight")), s.ln1)]);
    });
  }
  g.scope("embed.backward", () => {
    grads.set("wte.weight", g.op("Add", [headGrad, embeddingBackward(g, w("wte.weight"), ids, dx)]));
    const tokens = g.op("Squeeze", [g.op("Slice", [g.op("Shape", [ids]), g.constant("int64", [1]), g.constant("int64", [2])])]);
    const positions = g.op("Range", [g.constant("int64", 0), tokens, g.constant("int64", 1)]);
    const dPositions = g.op("ReduceSum", [dx, g.constant("int64", [0])], { keepdims: 0 });
    grads.set("wpe.weight", embeddingBackward(g, w("wpe.weight"), positions, dPositions));
  });
  for (const [name, dims] of shapes) g.output(grads.get(name) as Value, `grad.${name}`, "float32", dims);
  return g;
}
