/**
 * How many padded tokens one forward/backward batch may hold. A batch keeps every block's
 * activations for the backward pass and three vocabulary-wide tensors (logits, softmax, loss
 * gradient), so batches of large models are cut to a memory budget whatever size was asked for:
 * each of a build's workers holds one batch at a time beside its weights. Small models are
 * unaffected.
 */
import type { ModelConfig } from "./config.js";

/** Padded tokens per batch unless a command asks for another size. */
export const DEFAULT_BATCH_TOKENS = 2048;

/** Float32 tensors of one batch at most (GPT-2 small: about 860 tokens). */
const BATCH_BYTES = 1.5 * 2 ** 30;

/** Bytes a batch holds per padded token, counting attention probabilities at the full context. */
export function batchBytesPerToken(cfg: ModelConfig): number {
  const perBlock = 6 * cfg.nEmbd + 3 * cfg.nInner + cfg.nHead * cfg.contextLength;
  return 4 * (3 * cfg.vocabSize + cfg.nLayer * perBlock);
}

/** The requested batch size, capped by the memory budget (a batch always takes one sequence). */
export function batchTokenLimit(cfg: ModelConfig, requested = DEFAULT_BATCH_TOKENS): number {
  return Math.max(1, Math.min(requested, Math.floor(BATCH_BYTES / batchBytesPerToken(cfg))));
}
