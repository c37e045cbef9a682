/** The loss on the LM head's logits: cross-entropy with true or sampled labels, and its gradient. */
import type { GraphBuilder, Value } from "../../runtime/graph.js";

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
