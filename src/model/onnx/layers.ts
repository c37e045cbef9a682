/**
 * Transformer building blocks as ONNX subgraphs, with hand-written backward passes: linear maps in
 * both weight layouts, rows of the flattened batch, embeddings and the inputs a tracked module
 * hands to EK-FAC. Norms, activations, attention, rotary embedding, the LM head and the loss live
 * beside this file; every architecture builds on them.
 * Shapes: B sequences, T tokens, C model width, H heads of D features, R loss rows, V vocabulary.
 */
import type { GraphBuilder, Value } from "../../runtime/graph.js";

/** The last two axes swapped, for [.., T, D] and [.., H, T, T] tensors. */
export function transposeLast(g: GraphBuilder, x: Value, rank: number): Value {
  const perm = Array.from({ length: rank }, (_, i) => i);
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
  return g.op("Transpose", [x], { perm });
}

/** y = x W + b with W in Conv1D layout [in, out] (GPT-2). */
export function conv1d(g: GraphBuilder, x: Value, w: Value, b: Value): Value {
  return g.op("Add", [g.op("MatMul", [x, w]), b]);
}
/** dL/dx = dL/dy W^T of a Conv1D map. */
export function conv1dBackward(g: GraphBuilder, dy: Value, w: Value): Value {
  return g.op("MatMul", [dy, g.op("Transpose", [w], { perm: [1, 0] })]);
}
/** y = x W^T (+ b) with W in nn.Linear layout [out, in] (GPT-NeoX, Llama). */
export function linear(g: GraphBuilder, x: Value, w: Value, b?: Value): Value {
  const y = g.op("MatMul", [x, g.op("Transpose", [w], { perm: [1, 0] })]);
  return b === undefined ? y : g.op("Add", [y, b]);
}
/** dL/dx = dL/dy W of an nn.Linear map. */
export function linearBackward(g: GraphBuilder, dy: Value, w: Value): Value {
  return g.op("MatMul", [dy, w]);
}

/** [.., width] -> [rows, width] */
export function flatRows(g: GraphBuilder, x: Value, width: number): Value {
  return g.op("Reshape", [x, g.constant("int64", [-1, width])]);
}
/** Parameter gradients of a Conv1D map over every position: dW = x^T dy [in, out], db = sum of dy's rows [out]. */
export function conv1dParameterGrads(g: GraphBuilder, x: Value, dy: Value, inWidth: number, outWidth: number): { dw: Value; db: Value } {
  const dyRows = flatRows(g, dy, outWidth);
  return {
    dw: g.op("Gemm", [flatRows(g, x, inWidth), dyRows], { transA: 1 }),
    db: g.op("ReduceSum", [dyRows, g.constant("int64", [0])], { keepdims: 0 }),
  };
}

/** The rows (indices into the flattened [B*T, C] hidden states) that go through the LM head. */
export function gatherRows(g: GraphBuilder, hidden: Value, rows: Value, width: number): Value {
  return g.op("Gather", [flatRows(g, hidden, width), rows], { axis: 0 });
}
/** The [R, C] gradient of the gathered rows placed at their rows of a zero tensor shaped as `hidden`. */
export function scatterRows(g: GraphBuilder, dRows: Value, rows: Value, hidden: Value, width: number): Value {
  const flatShape = g.op("Shape", [flatRows(g, hidden, width)]);
  const zeros = g.op("ConstantOfShape", [flatShape], { value: { tensor: { type: "float32", value: 0 } } });
  const indices = g.op("Unsqueeze", [rows, g.constant("int64", [1])]);
  return g.op("Reshape", [g.op("ScatterND", [zeros, indices, dRows]), g.op("Shape", [hidden])]);
}
/**
 * The gradient of an embedding table [N, C] looked up at `indices` [..] (Gather on axis 0), given
 * dL/d(looked-up rows) [.., C]: each row's gradient added into its index's row (repeats add up).
 */
export function embeddingBackward(g: GraphBuilder, table: Value, indices: Value, dRows: Value): Value {
  const zeros = g.op("ConstantOfShape", [g.op("Shape", [table])], { value: { tensor: { type: "float32", value: 0 } } });
  return g.op("ScatterND", [zeros, g.op("Unsqueeze", [indices, g.constant("int64", [-1])]), dRows], { reduction: "add" });
}

/** The sequence length T of ids [B, T], as a [1] int64 tensor. */
export function tokenCount(g: GraphBuilder, ids: Value): Value {
  return g.op("Slice", [g.op("Shape", [ids]), g.constant("int64", [1]), g.constant("int64", [2])]);
}

/** A tracked module's EK-FAC input: x, with a trailing 1 where the module has a bias, zero on padding ([B, T, in (+1)]). */
export function moduleInput(g: GraphBuilder, x: Value, mask: Value, bias: boolean): Value {
  const input = bias ? g.op("Pad", [x, g.constant("int64", [0, 0, 0, 0, 0, 1]), g.constant("float32", 1)]) : x;
  return g.op("Mul", [input, g.op("Unsqueeze", [mask, g.constant("int64", [2])])]);
}
