/**
 * LayerNorm (GPT-2, GPT-NeoX) and RMSNorm (Llama) over the last axis, with one backward pass for
 * both: RMSNorm is LayerNorm without the centring.
 */
import type { GraphBuilder, Value } from "../../runtime/graph.js";
import { flatRows } from "./layers.js";

export interface NormSaved {
  /** The input, [B, T, C]. */
  x: Value;
  /** [B, T, 1]; LayerNorm only (RMSNorm does not centre). */
  mean?: Value;
  /** 1 / sqrt(var + eps) (LayerNorm), 1 / sqrt(mean(x^2) + eps) (RMSNorm), [B, T, 1]. */
  rstd: Value;
}

/** LayerNorm: (x - mean) rstd gain + bias. */
export function layerNorm(g: GraphBuilder, x: Value, gain: Value, bias: Value, eps: number): { y: Value; saved: NormSaved } {
  const [y, mean, rstd] = g.node("LayerNormalization", [x, gain, bias], { axis: -1, epsilon: eps }, 3);
  return { y, saved: { x, mean, rstd } };
}
/** RMSNorm: x / sqrt(mean(x^2) + eps) gain. */
export function rmsNorm(g: GraphBuilder, x: Value, gain: Value, eps: number): { y: Value; saved: NormSaved } {
  const meanSquare = g.op("ReduceMean", [g.op("Mul", [x, x])], { axes: [-1], keepdims: 1 });
  const rstd = g.op("Reciprocal", [g.op("Sqrt", [g.op("Add", [meanSquare, g.constant("float32", eps)])])]);
  return { y: g.op("Mul", [g.op("Mul", [x, rstd]), gain]), saved: { x, rstd } };
}

/** xhat = (x - mean) rstd (LayerNorm) or x rstd (RMSNorm), the normalised input before gain and bias. */
function normalised(g: GraphBuilder, s: NormSaved): Value {
  return g.op("Mul", [s.mean === undefined ? s.x : g.op("Sub", [s.x, s.mean]), s.rstd]);
}
/**
 * dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) with dxhat = dy gain; RMSNorm's has no
 * mean(dxhat) term, as it does not centre.
 */
export function normBackward(g: GraphBuilder, dy: Value, s: NormSaved, gain: Value): Value {
  const meanLast = (v: Value) => g.op("ReduceMean", [v], { axes: [-1], keepdims: 1 });
  const xhat = normalised(g, s);
  const dxhat = g.op("Mul", [dy, gain]);
  const centred = s.mean === undefined ? dxhat : g.op("Sub", [dxhat, meanLast(dxhat)]);
  const projected = g.op("Mul", [xhat, meanLast(g.op("Mul", [dxhat, xhat]))]);
  return g.op("Mul", [s.rstd, g.op("Sub", [centred, projected])]);
}

/** LayerNorm's parameter gradients over every position: dgain = sum of dy xhat, dbias = sum of dy. */
export function layerNormParameterGrads(g: GraphBuilder, dy: Value, s: NormSaved, width: number): { dgain: Value; dbias: Value } {
  const sumRows = (v: Value) => g.op("ReduceSum", [flatRows(g, v, width), g.constant("int64", [0])], { keepdims: 0 });
  return { dgain: sumRows(g.op("Mul", [dy, normalised(g, s)])), dbias: sumRows(dy) };
}
