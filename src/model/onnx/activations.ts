/** The MLP activations with their backward passes: gelu_new (GPT-2), exact gelu (GPT-NeoX), SwiGLU (Llama). */
import type { GraphBuilder, Value } from "../../runtime/graph.js";

// gelu_new (GPT-2): 0.5 h (1 + tanh(z)), z = sqrt(2/pi) (h + 0.044715 h^3)
const GELU_SCALE = Math.sqrt(2 / Math.PI);
const GELU_CUBIC = 0.044715;
export interface GeluTanhSaved {
  h: Value;
  tanh: Value;
}
export function geluTanh(g: GraphBuilder, h: Value): { y: Value; saved: GeluTanhSaved } {
  const f = (x: number) => g.constant("float32", x);
  const h2 = g.op("Mul", [h, h]);
  const z = g.op("Mul", [f(GELU_SCALE), g.op("Mul", [h, g.op("Add", [f(1), g.op("Mul", [f(GELU_CUBIC), h2])])])]);
  const tanh = g.op("Tanh", [z]);
  const y = g.op("Mul", [g.op("Mul", [f(0.5), h]), g.op("Add", [f(1), tanh])]);
  return { y, saved: { h, tanh } };
}
/** dgelu/dh = 0.5 (1 + t) + 0.5 h (1 - t^2) sqrt(2/pi) (1 + 3 0.044715 h^2), t = tanh(z). */
export function geluTanhBackward(g: GraphBuilder, dy: Value, s: GeluTanhSaved): Value {
  const f = (x: number) => g.constant("float32", x);
  const dz = g.op("Mul", [f(GELU_SCALE), g.op("Add", [f(1), g.op("Mul", [f(3 * GELU_CUBIC), g.op("Mul", [s.h, s.h])])])]);
  const sech2 = g.op("Sub", [f(1), g.op("Mul", [s.tanh, s.tanh])]);
  const outer = g.op("Mul", [f(0.5), g.op("Add", [f(1), s.tanh])]);
  const inner = g.op("Mul", [g.op("Mul", [f(0.5), s.h]), g.op("Mul", [sech2, dz])]);
  return g.op("Mul", [dy, g.op("Add", [outer, inner])]);
}

export interface GeluErfSaved {
  h: Value;
  /** Phi(h) = 0.5 (1 + erf(h / sqrt 2)), the standard normal CDF. */
  cdf: Value;
}
/** Exact gelu (PyTorch's default, GPT-NeoX's "gelu"): h Phi(h). */
export function geluErf(g: GraphBuilder, h: Value): { y: Value; saved: GeluErfSaved } {
  const f = (x: number) => g.constant("float32", x);
  const cdf = g.op("Mul", [f(0.5), g.op("Add", [f(1), g.op("Erf", [g.op("Mul", [h, f(Math.SQRT1_2)])])])]);
  return { y: g.op("Mul", [h, cdf]), saved: { h, cdf } };
}
/** dgelu/dh = Phi(h) + h phi(h), phi(h) = exp(-h^2 / 2) / sqrt(2 pi). */
export function geluErfBackward(g: GraphBuilder, dy: Value, s: GeluErfSaved): Value {
  const f = (x: number) => g.constant("float32", x);
  const density = g.op("Mul", [f(1 / Math.sqrt(2 * Math.PI)), g.op("Exp", [g.op("Mul", [f(-0.5), g.op("Mul", [s.h, s.h])])])]);
  return g.op("Mul", [dy, g.op("Add", [s.cdf, g.op("Mul", [s.h, density])])]);
}

export interface SwigluSaved {
  gate: Value;
  up: Value;
  /** sigmoid(gate) */
  sigmoid: Value;
  /** silu(gate) = gate sigmoid(gate) */
  silu: Value;
}
/** Llama's MLP activation: silu(gate) * up, both [B, T, I]. */
export function swiglu(g: GraphBuilder, gate: Value, up: Value): { y: Value; saved: SwigluSaved } {
  const sigmoid = g.op("Sigmoid", [gate]);
  const silu = g.op("Mul", [gate, sigmoid]);
  return { y: g.op("Mul", [silu, up]), saved: { gate, up, sigmoid, silu } };
}
/** dL/dgate = dy up silu'(gate), silu'(x) = s (1 + x (1 - s)) with s = sigmoid(x); dL/dup = dy silu(gate). */
export function swigluBackward(g: GraphBuilder, dy: Value, s: SwigluSaved): { dgate: Value; dup: Value } {
  const one = g.constant("float32", 1);
  const dsilu = g.op("Mul", [s.sigmoid, g.op("Add", [one, g.op("Mul", [s.gate, g.op("Sub", [one, s.sigmoid])])])]);
  return { dgate: g.op("Mul", [g.op("Mul", [dy, s.up]), dsilu]), dup: g.op("Mul", [dy, s.silu]) };
}
