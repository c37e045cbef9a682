/** Per-sequence gradients G = sum_t g_t a_t^T, [out, in+1], from a batch capture. */
import { tf } from "../backend/backend.js";
import type { Batch } from "../model/batch.js";
import { type TensorCapture, captureTensors } from "./capture-tensors.js";
import type { CausalLM } from "../model/model.js";

/** Rows of sequence b in a flattened, padded batch. */
export function sequenceRows<T extends tf.Tensor2D>(x: T, batch: Batch, b: number): T {
  return tf.slice(x, [b * batch.length, 0], [batch.lengths[b], -1]);
}

/** G[b][module] for every sequence of the capture; the caller disposes the tensors. */
export function sequenceGradients(capture: TensorCapture): tf.Tensor2D[][] {
  const { batch } = capture;
  return Array.from({ length: batch.size }, (_, b) =>
    capture.modules.map((m) => tf.tidy(() => tf.matMul(tf.transpose(sequenceRows(m.g, batch, b)), sequenceRows(m.a, batch, b)))),
  );
}

export interface QueryTokens {
  promptTokens: readonly number[];
  completionTokens: readonly number[];
}

/**
 * Gradients of each query's measurement (the summed NLL of its completion tokens given the
 * prompt), G[query][module], with the query losses.
 */
export async function queryGradients(model: CausalLM, queries: readonly QueryTokens[]): Promise<{ gradients: tf.Tensor2D[][]; losses: Float64Array }> {
  const capture = await captureTensors(
    model,
    queries.map((q) => [...q.promptTokens, ...q.completionTokens]),
    { kind: "completion", promptLengths: queries.map((q) => q.promptTokens.length) },
  );
  try {
    return { gradients: sequenceGradients(capture), losses: capture.losses };
  } finally {
    capture.dispose();
  }
}
