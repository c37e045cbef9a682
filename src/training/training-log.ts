/** What a training run records, written as training-log.json beside the model. */

export interface LogEntry {
  /** Optimizer steps done. */
  step: number;
  /** Fractional epochs done. */
  epoch: number;
  /** Real (unpadded) tokens trained on so far. */
  tokens: number;
  lr: number;
  /** Mean loss per predicted token (nats) over the steps since the previous entry; absent at step 0. */
  trainLoss?: number;
  /** Mean global gradient norm (before clipping) over those steps. */
  gradNorm?: number;
  /** Mean loss per predicted token on the held-out documents, when evaluated at this step. */
  validLoss?: number;
  /** Training wall time so far, without evaluations. */
  seconds: number;
}

export interface TrainingLog {
  /** Free-form facts about the run: model, corpus, split, hyperparameters, throughput. */
  run: Record<string, unknown>;
  /** Entropy (nats per token) of the training tokens' unigram distribution: the loss of a model that ignores context. */
  unigramEntropy: number;
  entries: LogEntry[];
}
