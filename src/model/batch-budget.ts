/**
 * How many padded tokens one forward/backward batch may hold. A batch keeps every block's
 * activations for the backward pass and three vocabulary-wide tensors (logits, softmax, loss
 * gradient), and ONNX Runtime's arena keeps the largest batch's memory for the life of the
 * session: so batches of large models are cut to a memory budget whatever size was asked for
 * (memory-estimate.ts gives a command's budget from `--memory`). Small models are unaffected.
 */
import type { ModelConfig } from "./config.js";
import { lengthSortedBatches, SORT_WINDOW } from "../util/batches.js";

/** Padded tokens per batch unless a command asks for another size. */
export const DEFAULT_BATCH_TOKENS = 2048;

/**
 * Bytes of one batch at most, however much memory there is (GPT-2 small: about 530 tokens at its full context):
 * larger batches run no faster, and with this ceiling a fit's batches (and so its float sums) are
 * the same on every machine with room for them.
 */
export const MAX_BATCH_BYTES = 1.5 * 2 ** 30;

/**
 * Bytes a batch holds per padded token, in sequences of `length` tokens (each head's attention
 * scores, probabilities and their gradient grow with it; the full context when unknown). Measured
 * against ONNX Runtime's arena: 692 MiB for gpt2-tiny's 1,152 tokens (this gives 676), about
 * 1,040 MiB for GPT-2 small's 512 (1,050).
 */
export function batchBytesPerToken(cfg: ModelConfig, length = cfg.contextLength): number {
  const perBlock = 6 * cfg.nEmbd + 3 * cfg.nInner + 3 * cfg.nHead * length;
  return 4 * (3 * cfg.vocabSize + cfg.nLayer * perBlock);
}

/**
 * The requested batch size, capped so that a batch at the full context fits MAX_BATCH_BYTES (a
 * command's --memory budget cuts it further: memory-estimate.ts planMemory); a batch always takes
 * one sequence.
 */
export function batchTokenLimit(cfg: ModelConfig, requested = DEFAULT_BATCH_TOKENS): number {
  return Math.max(1, Math.min(requested, Math.floor(MAX_BATCH_BYTES / batchBytesPerToken(cfg))));
}

/**
 * Bytes of the largest batch that batchesOf makes of sequences of these lengths (in stream order)
 * under `maxTokens`: what a pass over them leaves in ONNX Runtime's arena.
 */
export function largestBatchBytes(cfg: ModelConfig, lengths: readonly number[], maxTokens: number): number {
  let largest = 0;
  for (let start = 0; start < lengths.length; start += SORT_WINDOW) {
    const window = lengths.slice(start, start + SORT_WINDOW);
    for (const batch of lengthSortedBatches(window, { maxTokens })) {
      const longest = Math.max(...batch.map((i) => window[i]));
      largest = Math.max(largest, batch.length * longest * batchBytesPerToken(cfg, longest));
    }
  }
  return largest;
}
