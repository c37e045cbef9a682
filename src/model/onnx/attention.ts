/**
 * Causal self-attention over heads, with grouped-query attention (key/value heads each serving a
 * group of query heads, Llama), and its backward pass. Query heads are grouped under their
 * key/value head as rows of one product instead of repeating keys and values:
 *
 *   q [B, H, T, D] -> [B, Hkv, G*T, D] (G = H / Hkv; query head h is key/value head h / G's, as in
 *   Hugging Face's repeat_kv);  scores = q k^T / sqrt(D) [B, Hkv, G*T, T];  y = softmax(scores) v
 *
 * so that the backward products dk = dscores^T q and dv = p^T dy sum over the group by themselves.
 */
import type { GraphBuilder, Value } from "../../runtime/graph.js";
import { transposeLast } from "./layers.js";

/** [B, T, H*D] -> [B, H, T, D] */
export function splitHeads(g: GraphBuilder, x: Value, heads: number, headDim: number): Value {
  return g.op("Transpose", [g.op("Reshape", [x, g.constant("int64", [0, 0, heads, headDim])])], { perm: [0, 2, 1, 3] });
}
/** [B, H, T, D] -> [B, T, H*D] */
export function mergeHeads(g: GraphBuilder, x: Value): Value {
  return g.op("Reshape", [g.op("Transpose", [x], { perm: [0, 2, 1, 3] }), g.constant("int64", [0, 0, -1])]);
}

/** [T, T] additive mask: 0 where a position may attend (itself and earlier), -1e9 elsewhere. */
export function causalBias(g: GraphBuilder, tokens: Value): Value {
  const square = g.op("Concat", [tokens, tokens], { axis: 0 });
  const lower = g.op("Trilu", [g.op("ConstantOfShape", [square], { value: { tensor: { type: "float32", value: 1 } } })], { upper: 0 });
  return g.op("Mul", [g.op("Sub", [lower, g.constant("float32", 1)]), g.constant("float32", 1e9)]);
}

export interface AttentionShape {
  /** Query heads H. */
  heads: number;
  /** Key/value heads Hkv, dividing H (H for plain multi-head attention). */
  kvHeads: number;
  headDim: number;
}
export interface AttentionSaved {
  /** Queries grouped under their key/value head, [B, Hkv, G*T, D] */
  q: Value;
  /** [B, Hkv, T, D] each */
  k: Value;
  v: Value;
  /** [B, Hkv, G*T, T] */
  probs: Value;
}

/** [B, H, T, D] <-> [B, Hkv, G*T, D]: the same memory, read by key/value head. */
function regroup(g: GraphBuilder, x: Value, heads: number, shape: AttentionShape): Value {
  return shape.heads === shape.kvHeads ? x : g.op("Reshape", [x, g.constant("int64", [0, heads, -1, shape.headDim])]);
}

/** softmax(q k^T / sqrt(D) + causal) v; q [B, H, T, D], k and v [B, Hkv, T, D]; y [B, T, H*D]. */
export function causalAttention(g: GraphBuilder, q: Value, k: Value, v: Value, shape: AttentionShape, bias: Value): { y: Value; saved: AttentionSaved } {
  const groups = shape.heads / shape.kvHeads;
  const grouped = regroup(g, q, shape.kvHeads, shape);
  // every query row of a group takes its position's mask row: [G*T, T]
  const mask = groups === 1 ? bias : g.op("Tile", [bias, g.constant("int64", [groups, 1])]);
  const scores = g.op("Mul", [g.op("MatMul", [grouped, transposeLast(g, k, 4)]), g.constant("float32", 1 / Math.sqrt(shape.headDim))]);
  const probs = g.op("Softmax", [g.op("Add", [scores, mask])], { axis: -1 });
  const y = regroup(g, g.op("MatMul", [probs, v]), shape.heads, shape);
  return { y: mergeHeads(g, y), saved: { q: grouped, k, v, probs } };
}

/** Gradients with respect to q [B, H, T, D], k and v [B, Hkv, T, D], given dL/dy [B, T, H*D]. */
export function causalAttentionBackward(g: GraphBuilder, dy: Value, s: AttentionSaved, shape: AttentionShape): { dq: Value; dk: Value; dv: Value } {
  const dyg = regroup(g, splitHeads(g, dy, shape.heads, shape.headDim), shape.kvHeads, shape);
  const dProbs = g.op("MatMul", [dyg, transposeLast(g, s.v, 4)]);
  const dv = g.op("MatMul", [transposeLast(g, s.probs, 4), dyg]);
  // softmax backward: ds = p (dp - sum(dp p)), then the 1/sqrt(D) scale
  const rowDot = g.op("ReduceSum", [g.op("Mul", [dProbs, s.probs]), g.constant("int64", [-1])], { keepdims: 1 });
  const dScores = g.op("Mul", [g.op("Mul", [s.probs, g.op("Sub", [dProbs, rowDot])]), g.constant("float32", 1 / Math.sqrt(shape.headDim))]);
  const dq = regroup(g, g.op("MatMul", [dScores, s.k]), shape.heads, shape);
  const dk = g.op("MatMul", [transposeLast(g, dScores, 4), s.q]);
  return { dq, dk, dv };
}
