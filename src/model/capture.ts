/**
 * Which rows of a batch carry loss under one of the losses of LossSpec (model.ts), and with which
 * labels: what a model's capture pass (CausalLM.capture) and the trainer feed their graphs.
 */
import { InputError } from "../util/errors.js";
import type { Batch } from "./batch.js";
import type { LossSpec } from "./model.js";

/** Which positions carry loss: position t predicts token t+1. */
export function lossWeights(batch: Batch, spec: LossSpec): Float32Array {
  const w = new Float32Array(batch.size * batch.length);
  for (let b = 0; b < batch.size; b++) {
    const len = batch.lengths[b];
    let first = 0;
    if (spec.kind === "completion") {
      first = spec.promptLengths[b] - 1;
      if (first < 0 || first >= len - 1) {
        throw new InputError(`query ${b}: a prompt of ${spec.promptLengths[b]} tokens leaves no completion token in a sequence of ${len}`);
      }
    }
    const measured = spec.kind === "completion" ? spec.positions?.[b] : undefined;
    if (measured) {
      for (const i of measured) {
        if (!Number.isInteger(i) || i < 0 || first + i >= len - 1) {
          throw new InputError(`completion position ${i} is outside the completion (0..${len - 2 - first})`);
        }
        w[b * batch.length + first + i] = 1;
      }
      continue;
    }
    for (let t = first; t < len - 1; t++) w[b * batch.length + t] = 1;
  }
  return w;
}

/** The rows of the flattened batch that carry loss, ascending. */
export function rowsWithLoss(weights: Float32Array): Int32Array {
  return Int32Array.from(weights.keys()).filter((row) => weights[row] !== 0);
}

/** The next token of each loss row. */
export function trueLabels(batch: Batch, rows: Int32Array): Int32Array {
  return rows.map((row) => batch.ids[row + 1]);
}
