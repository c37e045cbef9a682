/**
 * The EK-FAC products of a capture, as kernels on the compute engine (runtime/kernels.ts). A
 * module's captured rows are viewed as [B, T, in] and [B, T, out] (B sequences padded to T
 * tokens; padding rows are zero, so they add nothing to any sum below). With a_t the inputs and
 * g_t the output gradients of token t, a sequence's gradient is G = sum_t g_t a_t^T [out, in],
 * and its rotation into the eigenbases Q_S^T G Q_A = (g Q_S)^T (a Q_A) is formed from rotated
 * tokens, never from G: cheaper whenever a sequence is shorter than the layer is wide.
 */
import type { GraphBuilder, Value } from "../runtime/graph.js";
import { type HostTensor, runKernel } from "../runtime/kernels.js";
import type { GradientCapture } from "../model/model.js";
import { inputWidth } from "../model/model.js";

/** One module's captured tokens as [B, T, width] tensors. */
export type CapturedTokens = { a: HostTensor; g: HostTensor };

export function capturedTokens(capture: GradientCapture, m: number): CapturedTokens {
  const { batch, modules } = capture;
  const { module, a, g } = modules[m];
  return { a: { data: a, dims: [batch.size, batch.length, inputWidth(module)] }, g: { data: g, dims: [batch.size, batch.length, module.outFeatures] } };
}

/** The same tokens as rows of the flattened batch: [B T, width]. */
export function capturedRows(capture: GradientCapture, m: number): CapturedTokens {
  const { a, g } = capturedTokens(capture, m);
  const rows = (t: HostTensor): HostTensor => ({ data: t.data, dims: [t.dims[0] * t.dims[1], t.dims[2]] });
  return { a: rows(a), g: rows(g) };
}

/** A module's eigenbases, eigenvectors as columns: qA [in, in], qS [out, out]. */
export type Eigenbases = { qA: HostTensor; qS: HostTensor };

export function eigenbases(host: { qA: Float32Array; qS: Float32Array }, nIn: number, out: number): Eigenbases {
  return { qA: { data: host.qA, dims: [nIn, nIn] }, qS: { data: host.qS, dims: [out, out] } };
}

const swapLast = (g: GraphBuilder, x: Value) => g.op("Transpose", [x], { perm: [0, 2, 1] });
const sumFirst = (g: GraphBuilder, x: Value) => g.op("ReduceSum", [x, g.constant("int64", [0])], { keepdims: 0 });

/** Inputs a [B, T, in] and g [B, T, out]. */
function tokenInputs(g: GraphBuilder): { a: Value; grad: Value } {
  return { a: g.input("a", "float32", ["batch", "tokens", "in"]), grad: g.input("g", "float32", ["batch", "tokens", "out"]) };
}

interface BasisValues {
  qA: Value;
  qS: Value;
}
function basisInputs(g: GraphBuilder): BasisValues {
  return { qA: g.input("qA", "float32", ["in", "in"]), qS: g.input("qS", "float32", ["out", "out"]) };
}

/** (g Q_S)^T (a Q_A) per sequence, [B, out, in]. */
function rotatedGradients(g: GraphBuilder, { qA, qS }: BasisValues): Value {
  const { a, grad } = tokenInputs(g);
  return g.op("MatMul", [swapLast(g, g.op("MatMul", [grad, qS])), g.op("MatMul", [a, qA])]);
}

/** Q_S [X o inverse] Q_A^T for X [N, out, in] in the eigenbasis. */
function outOfEigenbasis(g: GraphBuilder, x: Value, { qA, qS }: BasisValues): Value {
  const scaled = g.op("Mul", [x, g.input("inverse", "float32", ["out", "in"])]);
  return g.op("MatMul", [g.op("MatMul", [qS, scaled]), g.op("Transpose", [qA], { perm: [1, 0] })]);
}

/** x^T x for x [rows, n]: a covariance's sum over tokens. */
export async function gram(x: HostTensor): Promise<Float32Array> {
  const [out] = await runKernel(
    "ekfac.gram",
    (g) => {
      const input = g.input("x", "float32", ["rows", "n"]);
      g.output(g.op("Gemm", [input, input], { transA: 1 }), "out", "float32", ["n", "n"]);
    },
    { x },
    ["out"],
  );
  return out;
}

/** sum over sequences of (Q_S^T G Q_A)^2, elementwise, [out, in]: Lambda's sum. */
export async function rotatedSquareSum(tokens: CapturedTokens, bases: Eigenbases): Promise<Float32Array> {
  const [out] = await runKernel(
    "ekfac.rotated-square-sum",
    (g) => {
      const rotated = rotatedGradients(g, basisInputs(g));
      g.output(sumFirst(g, g.op("Mul", [rotated, rotated])), "out", "float32", ["out", "in"]);
    },
    { ...tokens, ...bases },
    ["out"],
  );
  return out;
}

/** G per sequence, [B, out, in]. */
export async function sequenceGradients(tokens: CapturedTokens): Promise<Float32Array> {
  const [out] = await runKernel(
    "ekfac.sequence-gradients",
    (g) => {
      const { a, grad } = tokenInputs(g);
      g.output(g.op("MatMul", [swapLast(g, grad), a]), "out", "float32", ["batch", "out", "in"]);
    },
    tokens,
    ["out"],
  );
  return out;
}

/** (G_EKFAC + damping)^-1 V = Q_S [(Q_S^T V Q_A) o inverse] Q_A^T for V [N, out, in]. */
export async function precondition(v: HostTensor, bases: Eigenbases, inverse: HostTensor): Promise<Float32Array> {
  const [out] = await runKernel(
    "ekfac.precondition",
    (g) => {
      const x = g.input("v", "float32", ["n", "out", "in"]);
      const bases = basisInputs(g);
      const rotated = g.op("MatMul", [g.op("MatMul", [g.op("Transpose", [bases.qS], { perm: [1, 0] }), x]), bases.qA]);
      g.output(outOfEigenbasis(g, rotated, bases), "out", "float32", ["n", "out", "in"]);
    },
    { v, ...bases, inverse },
    ["out"],
  );
  return out;
}

/** (G_EKFAC + damping)^-1 G_b for every sequence b, [B, out, in], without forming G_b. */
export async function preconditionedGradients(tokens: CapturedTokens, bases: Eigenbases, inverse: HostTensor): Promise<Float32Array> {
  const [out] = await runKernel(
    "ekfac.preconditioned-gradients",
    (g) => {
      const bases = basisInputs(g);
      g.output(outOfEigenbasis(g, rotatedGradients(g, bases), bases), "out", "float32", ["batch", "out", "in"]);
    },
    { ...tokens, ...bases, inverse },
    ["out"],
  );
  return out;
}

/**
 * Sums over sequences of X X^T [out, out] and X^T X [in, in], X = W o (Q_S^T G Q_A) the whitened
 * rotated gradient (the projection's PCA moments).
 */
export async function whitenedMoments(tokens: CapturedTokens, bases: Eigenbases, scale: HostTensor): Promise<{ rows: Float32Array; cols: Float32Array }> {
  const [rows, cols] = await runKernel(
    "ekfac.whitened-moments",
    (g) => {
      const x = g.op("Mul", [rotatedGradients(g, basisInputs(g)), g.input("scale", "float32", ["out", "in"])]);
      g.output(sumFirst(g, g.op("MatMul", [x, swapLast(g, x)])), "rows", "float32", ["out", "out"]);
      g.output(sumFirst(g, g.op("MatMul", [swapLast(g, x), x])), "cols", "float32", ["in", "in"]);
    },
    { ...tokens, ...bases, scale },
    ["rows", "cols"],
  );
  return { rows, cols };
}

/** Token scores g_t^T M_q a_t of rows a [rows, in], g [rows, out] against M [Q, out, in]: [Q, rows]. */
export async function denseTokenScores(a: HostTensor, g: HostTensor, m: HostTensor): Promise<Float32Array> {
  const [out] = await runKernel(
    "ekfac.dense-token-scores",
    (b) => {
      const x = b.input("a", "float32", ["rows", "in"]);
      const grad = b.input("g", "float32", ["rows", "out"]);
      const queries = b.input("m", "float32", ["queries", "out", "in"]);
      // [Q, rows, in] = g M_q, then the dot product with a_t.
      const gm = b.op("MatMul", [grad, queries]);
      b.output(b.op("ReduceSum", [b.op("Mul", [gm, x]), b.constant("int64", [-1])], { keepdims: 0 }), "out", "float32", ["queries", "rows"]);
    },
    { a, g, m },
    ["out"],
  );
  return out;
}

/** Token scores against rank-r factors M_q = U_q V_q^T (u [Q, out, r], v [Q, in, r]): (U^T g_t) . (V^T a_t), [Q, rows]. */
export async function lowRankTokenScores(a: HostTensor, g: HostTensor, u: HostTensor, v: HostTensor): Promise<Float32Array> {
  const [out] = await runKernel(
    "ekfac.low-rank-token-scores",
    (b) => {
      const x = b.input("a", "float32", ["rows", "in"]);
      const grad = b.input("g", "float32", ["rows", "out"]);
      const left = b.op("MatMul", [grad, b.input("u", "float32", ["queries", "out", "rank"])]);
      const right = b.op("MatMul", [x, b.input("v", "float32", ["queries", "in", "rank"])]);
      b.output(b.op("ReduceSum", [b.op("Mul", [left, right]), b.constant("int64", [-1])], { keepdims: 0 }), "out", "float32", ["queries", "rows"]);
    },
    { a, g, u, v },
    ["out"],
  );
  return out;
}
