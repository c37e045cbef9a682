/**
 * Transformer building blocks as ONNX subgraphs, with hand-written backward passes: activation
 * gradients (capture and training graphs) and parameter gradients (training graphs). Shared by
 * every architecture.
 * Shapes: B sequences, T tokens, C model width, H heads of D features, R loss rows, V vocabulary.
 */
import type { GraphBuilder, Value } from "../../runtime/graph.js";

/** The last two axes swapped, for [.., T, D] and [.., H, T, T] tensors. */
export function transposeLast(g: GraphBuilder, x: Value, rank: number): Value {
  const perm = Array.from({ length: rank }, (_, i) => i);
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
  return g.op("Transpose", [x], { perm });
}

/** y = x W + b with W in Conv1D layout [in, out]. */
export function linear(g: GraphBuilder, x: Value, w: Value, b: Value): Value {
  return g.op("Add", [g.op("MatMul", [x, w]), b]);
}
/** dL/dx = dL/dy W^T of a Conv1D-layout linear map. */
export function linearBackward(g: GraphBuilder, dy: Value, w: Value): Value {
  return g.op("MatMul", [dy, g.op("Transpose", [w], { perm: [1, 0] })]);
}
/** [.., width] -> [rows, width] */
function flatRows(g: GraphBuilder, x: Value, width: number): Value {
  return g.op("Reshape", [x, g.constant("int64", [-1, width])]);
}
/** Parameter gradients of y = x W + b over every position: dW = x^T dy [in, out], db = sum of dy's rows [out]. */
export function linearParameterGrads(g: GraphBuilder, x: Value, dy: Value, inWidth: number, outWidth: number): { dw: Value; db: Value } {
  const dyRows = flatRows(g, dy, outWidth);
  return {
    dw: g.op("Gemm", [flatRows(g, x, inWidth), dyRows], { transA: 1 }),
    db: g.op("ReduceSum", [dyRows, g.constant("int64", [0])], { keepdims: 0 }),
  };
}

export interface NormSaved {
  x: Value;
  /** [B, T, 1] */
  mean: Value;
  /** 1 / sqrt(var + eps), [B, T, 1] */
  rstd: Value;
}
/** LayerNorm over the last axis: (x - mean) rstd gain + bias. */
export function layerNorm(g: GraphBuilder, x: Value, gain: Value, bias: Value, eps: number): { y: Value; saved: NormSaved } {
  const [y, mean, rstd] = g.node("LayerNormalization", [x, gain, bias], { axis: -1, epsilon: eps }, 3);
  return { y, saved: { x, mean, rstd } };
}
/** xhat = (x - mean) rstd, the normalised input before gain and bias. */
function normalised(g: GraphBuilder, s: NormSaved): Value {
  return g.op("Mul", [g.op("Sub", [s.x, s.mean]), s.rstd]);
}
/** dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), with dxhat = dy gain. */
export function layerNormBackward(g: GraphBuilder, dy: Value, s: NormSaved, gain: Value): Value {
  const meanLast = (v: Value) => g.op("ReduceMean", [v], { axes: [-1], keepdims: 1 });
  const xhat = normalised(g, s);
  const dxhat = g.op("Mul", [dy, gain]);
  const centred = g.op("Sub", [dxhat, meanLast(dxhat)]);
  const projected = g.op("Mul", [xhat, meanLast(g.op("Mul", [dxhat, xhat]))]);
  return g.op("Mul", [s.rstd, g.op("Sub", [centred, projected])]);
}

/** LayerNorm's parameter gradients over every position: dgain = sum of dy xhat, dbias = sum of dy. */
export function layerNormParameterGrads(g: GraphBuilder, dy: Value, s: NormSaved, width: number): { dgain: Value; dbias: Value } {
  const sumRows = (v: Value) => g.op("ReduceSum", [flatRows(g, v, width), g.constant("int64", [0])], { keepdims: 0 });
  return { dgain: sumRows(g.op("Mul", [dy, normalised(g, s)])), dbias: sumRows(dy) };
}

// gelu_new (GPT-2): 0.5 h (1 + tanh(z)), z = sqrt(2/pi) (h + 0.044715 h^3)
const GELU_SCALE = Math.sqrt(2 / Math.PI);
const GELU_CUBIC = 0.044715;
export interface GeluSaved {
  h: Value;
  tanh: Value;
}
export function geluTanh(g: GraphBuilder, h: Value): { y: Value; saved: GeluSaved } {
  const f = (x: number) => g.constant("float32", x);
  const h2 = g.op("Mul", [h, h]);
  const z = g.op("Mul", [f(GELU_SCALE), g.op("Mul", [h, g.op("Add", [f(1), g.op("Mul", [f(GELU_CUBIC), h2])])])]);
  const tanh = g.op("Tanh", [z]);
  const y = g.op("Mul", [g.op("Mul", [f(0.5), h]), g.op("Add", [f(1), tanh])]);
  return { y, saved: { h, tanh } };
}
/** dgelu/dh = 0.5 (1 + t) + 0.5 h (1 - t^2) sqrt(2/pi) (1 + 3 0.044715 h^2), t = tanh(z). */
export function geluTanhBackward(g: GraphBuilder, dy: Value, s: GeluSaved): Value {
  const f = (x: number) => g.constant("float32", x);
  const dz = g.op("Mul", [f(GELU_SCALE), g.op("Add", [f(1), g.op("Mul", [f(3 * GELU_CUBIC), g.op("Mul", [s.h, s.h])])])]);
  const sech2 = g.op("Sub", [f(1), g.op("Mul", [s.tanh, s.tanh])]);
  const outer = g.op("Mul", [f(0.5), g.op("Add", [f(1), s.tanh])]);
  const inner = g.op("Mul", [g.op("Mul", [f(0.5), s.h]), g.op("Mul", [sech2, dz])]);
  return g.op("Mul", [dy, g.op("Add", [outer, inner])]);
}

/** [B, T, H*D] -> [B, H, T, D] */
function splitHeads(g: GraphBuilder, x: Value, heads: number, headDim: number): Value {
  return g.op("Transpose", [g.op("Reshape", [x, g.constant("int64", [0, 0, heads, headDim])])], { perm: [0, 2, 1, 3] });
}
/** [B, H, T, D] -> [B, T, H*D] */
function mergeHeads(g: GraphBuilder, x: Value): Value {
  return g.op("Reshape", [g.op("Transpose", [x], { perm: [0, 2, 1, 3] }), g.constant("int64", [0, 0, -1])]);
}

/** [T, T] additive mask: 0 where a position may attend (itself and earlier), -1e9 elsewhere. */
export function causalBias(g: GraphBuilder, tokens: Value): Value {
  const square = g.op("Concat", [tokens, tokens], { axis: 0 });
  const lower = g.op("Trilu", [g.op("ConstantOfShape", [square], { value: { tensor: { type: "float32", value: 1 } } })], { upper: 0 });
  return g.op("Mul", [g.op("Sub", [lower, g.constant("float32", 1)]), g.constant("float32", 1e9)]);
}

export interface AttentionSaved {
  /** [B, H, T, D] each */
  q: Value;
  k: Value;
  v: Value;
  /** [B, H, T, T] */
  probs: Value;
}
export interface AttentionShape {
  heads: number;
  headDim: number;
}
/** softmax(q k^T / sqrt(D) + causal) v over all heads; q, k, v: [B, T, H*D], y: [B, T, H*D]. */
export function causalAttention(g: GraphBuilder, qIn: Value, kIn: Value, vIn: Value, shape: AttentionShape, bias: Value): { y: Value; saved: AttentionSaved } {
  const [q, k, v] = [qIn, kIn, vIn].map((x) => splitHeads(g, x, shape.heads, shape.headDim));
  const scores = g.op("Mul", [g.op("MatMul", [q, transposeLast(g, k, 4)]), g.constant("float32", 1 / Math.sqrt(shape.headDim))]);
  const probs = g.op("Softmax", [g.op("Add", [scores, bias])], { axis: -1 });
  return { y: mergeHeads(g, g.op("MatMul", [probs, v])), saved: { q, k, v, probs } };
}
/** Gradients with respect to q, k and v ([B, T, H*D] each), given dL/dy [B, T, H*D]. */
export function causalAttentionBackward(g: GraphBuilder, dy: Value, s: AttentionSaved, shape: AttentionShape): { dq: Value; dk: Value; dv: Value } {
  const dyh = splitHeads(g, dy, shape.heads, shape.headDim);
  const dProbs = g.op("MatMul", [dyh, transposeLast(g, s.v, 4)]);
  const dv = g.op("MatMul", [transposeLast(g, s.probs, 4), dyh]);
  // softmax backward: ds = p (dp - sum(dp p)), then the 1/sqrt(D) scale
  const rowDot = g.op("ReduceSum", [g.op("Mul", [dProbs, s.probs]), g.constant("int64", [-1])], { keepdims: 1 });
  const dScores = g.op("Mul", [g.op("Mul", [s.probs, g.op("Sub", [dProbs, rowDot])]), g.constant("float32", 1 / Math.sqrt(shape.headDim))]);
  const dq = g.op("MatMul", [dScores, s.k]);
  const dk = g.op("MatMul", [transposeLast(g, dScores, 4), s.q]);
  return { dq: mergeHeads(g, dq), dk: mergeHeads(g, dk), dv: mergeHeads(g, dv) };
}

/** The rows (indices into the flattened [B*T, C] hidden states) that go through the LM head. */
export function gatherRows(g: GraphBuilder, hidden: Value, rows: Value, width: number): Value {
  return g.op("Gather", [flatRows(g, hidden, width), rows], { axis: 0 });
}
/**
 * The gradient of an embedding table [N, C] looked up at `indices` [..] (Gather on axis 0), given
 * dL/d(looked-up rows) [.., C]: each row's gradient added into its index's row (repeats add up).
 */
export function embeddingBackward(g: GraphBuilder, table: Value, indices: Value, dRows: Value): Value {
  const zeros = g.op("ConstantOfShape", [g.op("Shape", [table])], { value: { tensor: { type: "float32", value: 0 } } });
  return g.op("ScatterND", [zeros, g.op("Unsqueeze", [indices, g.constant("int64", [-1])]), dRows], { reduction: "add" });
}
/** The [R, C] gradient of the gathered rows placed at their rows of a zero tensor shaped as `hidden`. */
export function scatterRows(g: GraphBuilder, dRows: Value, rows: Value, hidden: Value, width: number): Value {
  const flatShape = g.op("Shape", [flatRows(g, hidden, width)]);
  const zeros = g.op("ConstantOfShape", [flatShape], { value: { tensor: { type: "float32", value: 0 } } });
  const indices = g.op("Unsqueeze", [rows, g.constant("int64", [1])]);
  return g.op("Reshape", [g.op("ScatterND", [zeros, indices, dRows]), g.op("Shape", [hidden])]);
}

/**
 * Labels drawn by inverse-CDF sampling from the softmax rows p [R, V], one uniform u [R] (float64)
 * per row: the first v whose cumulative probability exceeds u * sum(p), or V - 1. Sums run in
 * float64 and in vocabulary order, as the host sampler's do, so both draw the same labels.
 */
export function sampleLabels(g: GraphBuilder, p: Value, uniforms: Value, vocab: number): Value {
  const cdf = g.op("CumSum", [g.op("Cast", [p], { to: 11 /* DOUBLE */ }), g.constant("int64", 1)]);
  const total = g.op("Slice", [cdf, g.constant("int64", [vocab - 1]), g.constant("int64", [vocab]), g.constant("int64", [1])]);
  const target = g.op("Mul", [g.op("Unsqueeze", [uniforms, g.constant("int64", [1])]), total]);
  const below = g.op("Cast", [g.op("LessOrEqual", [cdf, target])], { to: 7 /* INT64 */ });
  const count = g.op("ReduceSum", [below, g.constant("int64", [1])], { keepdims: 0 });
  return g.op("Min", [count, g.constant("int64", vocab - 1)]);
}

/**
 * The LM head's loss on R rows with labels [R]: per-row loss -log softmax(logits)[label] =
 * logsumexp - logit[label] (stable however small the probability), and dL/dlogits = p - onehot.
 * `labels` may be a function of p (sampled labels).
 */
export function softmaxCrossEntropy(g: GraphBuilder, logits: Value, labelsOf: (p: Value) => Value): { loss: Value; dlogits: Value; labels: Value } {
  const max = g.op("ReduceMax", [logits], { axes: [1], keepdims: 1 });
  const exp = g.op("Exp", [g.op("Sub", [logits, max])]);
  const sum = g.op("ReduceSum", [exp, g.constant("int64", [1])], { keepdims: 1 });
  const p = g.op("Div", [exp, sum]);
  const labels = labelsOf(p);
  const column = g.op("Unsqueeze", [labels, g.constant("int64", [1])]);
  const logsumexp = g.op("Add", [max, g.op("Log", [sum])]);
  const loss = g.op("Squeeze", [g.op("Sub", [logsumexp, g.op("GatherElements", [logits, column], { axis: 1 })]), g.constant("int64", [1])]);
  const pLabel = g.op("GatherElements", [p, column], { axis: 1 });
  const dlogits = g.op("ScatterElements", [p, column, g.op("Sub", [pLabel, g.constant("float32", 1)])], { axis: 1 });
  return { loss, dlogits, labels };
}

/** A module's EK-FAC input: x with a trailing 1 for the bias, zero on padding ([B, T, in + 1]). */
export function withBiasColumn(g: GraphBuilder, x: Value, mask: Value): Value {
  const padded = g.op("Pad", [x, g.constant("int64", [0, 0, 0, 0, 0, 1]), g.constant("float32", 1)]);
  return g.op("Mul", [padded, g.op("Unsqueeze", [mask, g.constant("int64", [2])])]);
}
