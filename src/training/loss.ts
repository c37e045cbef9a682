/** The causal language-modelling loss the trainer minimises: the capture pass's "next-token" loss. */
import type { Batch } from "../model/batch.js";
import { lossWeights, rowsWithLoss, trueLabels } from "../model/capture.js";

/**
 * Row r of a right-padded batch predicts ids[r + 1]; the last real row and padding predict
 * nothing. The rows that predict (ascending), their labels, and their count.
 */
export function nextTokenTargets(batch: Batch): { rows: Int32Array; labels: Int32Array; count: number } {
  const rows = rowsWithLoss(lossWeights(batch, { kind: "next-token" }));
  return { rows, labels: trueLabels(batch, rows), count: rows.length };
}
