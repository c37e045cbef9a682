/** What every architecture's ONNX graphs read, and what their capture pass hands back. */
import type { Value } from "../../runtime/graph.js";

export interface GraphInputs {
  /** Token ids, int64 [B, T], right-padded. */
  ids: Value;
  /** Rows of the flattened [B*T] batch that go through the LM head, int64 [R], ascending. */
  rows: Value;
  /** The graph input of a parameter, by its checkpoint name. */
  weight: (name: string) => Value;
}

export interface CaptureInputs extends GraphInputs {
  /** 1 on real tokens, 0 on padding, float [B, T]. */
  mask: Value;
}

/** The loss on the head's logits [R, V]: returns dL/dlogits [R, V]. */
export type CaptureHead = (logits: Value) => Value;

/**
 * Receives a tracked module's input x [B, T, in] (without the bias's 1: the engine appends it
 * where the module has a bias, and zeroes padding) and the loss's gradient with respect to its
 * output [B, T, out].
 */
export type EmitCapture = (module: string, x: Value, grad: Value) => void;
