/** Index vectors of training sequences: their training-loss gradients, whitened and projected. */
import { DEFAULT_BATCH_TOKENS, batchTokenLimit } from "../model/batch-budget.js";
import type { CausalLM } from "../model/model.js";
import type { Projector } from "../projection/projector.js";
import { lengthSortedBatches } from "../util/batches.js";

/**
 * Vectors of the sequences in the order given by each projector (one capture serves them all),
 * [count x dim] each. Batches are formed from the list alone (by length), so the same list gives
 * bit-identical vectors however the work is scheduled.
 */
export async function sequenceVectors(
  model: CausalLM,
  projectors: readonly Projector[],
  sequences: ReadonlyArray<ArrayLike<number>>,
  batchTokens = DEFAULT_BATCH_TOKENS,
): Promise<Float32Array[]> {
  const outs = projectors.map((p) => new Float32Array(sequences.length * p.dim));
  for (const positions of lengthSortedBatches(
    sequences.map((s) => s.length),
    { maxTokens: batchTokenLimit(model.config, batchTokens) },
  )) {
    const capture = await model.capture(
      positions.map((i) => Array.from(sequences[i])),
      { kind: "next-token" },
    );
    for (const [p, projector] of projectors.entries()) {
      const { dim } = projector;
      const rows = await projector.vectors(capture);
      positions.forEach((i, b) => outs[p].set(rows.subarray(b * dim, (b + 1) * dim), i * dim));
    }
  }
  return outs;
}
