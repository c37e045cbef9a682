/**
 * Rotary position embedding (rotate-half layout, as Hugging Face's GPT-NeoX and Llama apply it) on
 * the first `dims` features of every head, and its backward pass: the rotation's transpose, the
 * same rotation by minus the angle.
 *
 *   x = [x1 | x2 | rest] (x1, x2: dims/2 features each);  angle[t, i] = t inv_freq[i]
 *   y = [x1 cos - x2 sin | x2 cos + x1 sin | rest]
 */
import type { GraphBuilder, Value } from "../../runtime/graph.js";

/** cos and sin of every position's angles, [T, dims/2] float32, and -sin for the backward pass. */
export interface RotaryTables {
  dims: number;
  cos: Value;
  sin: Value;
  negSin: Value;
}

/**
 * The tables for `tokens` positions ([1] int64) and the inverse frequencies (inverseFrequencies in
 * ../rope.ts). Angles and their cos and sin are computed in float64: t inv_freq reaches thousands
 * of radians in a long context, where float32 rounds the angle by a thousandth.
 */
export function rotaryTables(g: GraphBuilder, tokens: Value, inverseFrequencies: Float64Array): RotaryTables {
  const positions = g.op("Cast", [g.op("Range", [g.constant("int64", 0), g.op("Squeeze", [tokens]), g.constant("int64", 1)])], { to: 11 /* DOUBLE */ });
  const angles = g.op("Mul", [g.op("Unsqueeze", [positions, g.constant("int64", [1])]), g.constant("float64", Array.from(inverseFrequencies))]);
  const float = (x: Value) => g.op("Cast", [x], { to: 1 /* FLOAT */ });
  const sin = float(g.op("Sin", [angles]));
  return { dims: 2 * inverseFrequencies.length, cos: float(g.op("Cos", [angles])), sin, negSin: g.op("Neg", [sin]) };
}

/** x [B, H, T, D] with its first dims features rotated by (cos, sin). */
function rotate(g: GraphBuilder, x: Value, dims: number, headDim: number, cos: Value, sin: Value): Value {
  const sizes = dims < headDim ? [dims / 2, dims / 2, headDim - dims] : [dims / 2, dims / 2];
  const [x1, x2, ...rest] = g.node("Split", [x, g.constant("int64", sizes)], { axis: -1 }, sizes.length);
  const y1 = g.op("Sub", [g.op("Mul", [x1, cos]), g.op("Mul", [x2, sin])]);
  const y2 = g.op("Add", [g.op("Mul", [x2, cos]), g.op("Mul", [x1, sin])]);
  return g.op("Concat", [y1, y2, ...rest], { axis: -1 });
}

/** The rotary embedding of queries or keys [B, H, T, D]. */
export function rotary(g: GraphBuilder, x: Value, t: RotaryTables, headDim: number): Value {
  return rotate(g, x, t.dims, headDim, t.cos, t.sin);
}
/** dL/dx of rotary(x), given dL/dy [B, H, T, D]. */
export function rotaryBackward(g: GraphBuilder, dy: Value, t: RotaryTables, headDim: number): Value {
  return rotate(g, dy, t.dims, headDim, t.cos, t.negSin);
}
