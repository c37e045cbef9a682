/** Per-sequence gradients G = sum_t g_t a_t^T, [out, in+1], from a batch capture. */
import type { CausalLM, GradientCapture } from "../model/model.js";
import { splitMatrices } from "./factors.js";
import { capturedTokens, sequenceGradients as sequenceGradientProduct } from "./products.js";

/** G[b][module] for every sequence of the capture, row-major [out, in+1]. */
export async function sequenceGradients(capture: GradientCapture): Promise<Float32Array[][]> {
  const perModule: Float32Array[][] = [];
  for (let m = 0; m < capture.modules.length; m++) perModule.push(splitMatrices(await sequenceGradientProduct(capturedTokens(capture, m)), capture.batch.size));
  return Array.from({ length: capture.batch.size }, (_, b) => perModule.map((module) => module[b]));
}

export interface QueryTokens {
  promptTokens: readonly number[];
  completionTokens: readonly number[];
}

/**
 * Gradients of each query's measurement (the summed NLL of its completion tokens given the
 * prompt), G[query][module], with the query losses.
 */
export async function queryGradients(model: CausalLM, queries: readonly QueryTokens[]): Promise<{ gradients: Float32Array[][]; losses: Float64Array }> {
  const capture = await model.capture(
    queries.map((q) => [...q.promptTokens, ...q.completionTokens]),
    { kind: "completion", promptLengths: queries.map((q) => q.promptTokens.length) },
  );
  return { gradients: await sequenceGradients(capture), losses: capture.losses };
}
