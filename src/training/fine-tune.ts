/**
 * Fine-tuning a GPT-2 on a set of sequences: the demo trainer's loop (seeded epoch batches, AdamW,
 * warmup then cosine decay) without its logging and checkpoints. Deterministic given its inputs.
 */
import { makeBatch } from "../model/batch.js";
import type { ModelConfig } from "../model/config.js";
import type { RuntimeOptions } from "../runtime/session.js";
import type { ProgressListener } from "../util/progress.js";
import { type AdamWOptions, DEFAULT_ADAMW } from "./adamw.js";
import { epochBatches } from "./batches.js";
import { learningRate, type ScheduleOptions } from "./schedule.js";
import { Gpt2Trainer } from "./trainer.js";

export interface FineTuneSchedule {
  epochs: number;
  /** Padded tokens per batch. */
  batchTokens: number;
  /** Peak learning rate. */
  lr: number;
  /** Linear warmup over this fraction of the steps, then cosine decay to floorRatio x lr. */
  warmupRatio: number;
  floorRatio: number;
  /** Seed of the batch order. */
  seed: number;
  adamw?: AdamWOptions;
}

/** Optimizer steps of a fine-tuning on sequences of these lengths, and its learning-rate schedule. */
export function fineTuneSteps(lengths: readonly number[], schedule: FineTuneSchedule): { stepsPerEpoch: number; rates: ScheduleOptions } {
  const stepsPerEpoch = epochBatches(lengths, schedule.batchTokens, schedule.seed, 0).length;
  const totalSteps = schedule.epochs * stepsPerEpoch;
  return {
    stepsPerEpoch,
    rates: { peak: schedule.lr, warmupSteps: Math.max(1, Math.round(schedule.warmupRatio * totalSteps)), totalSteps, floorRatio: schedule.floorRatio },
  };
}

/** The weights after `schedule.epochs` passes over `sequences` from `weights` (which are not changed). */
export async function fineTune(
  config: ModelConfig,
  weights: ReadonlyMap<string, Float32Array>,
  sequences: readonly (readonly number[])[],
  schedule: FineTuneSchedule,
  runtime: RuntimeOptions = {},
  onProgress?: ProgressListener,
): Promise<Map<string, Float32Array>> {
  const trainer = new Gpt2Trainer(config, weights, schedule.adamw ?? DEFAULT_ADAMW, runtime);
  try {
    const lengths = sequences.map((s) => s.length);
    const { stepsPerEpoch, rates } = fineTuneSteps(lengths, schedule);
    let tokens = 0;
    for (let epoch = 0; epoch < schedule.epochs; epoch++) {
      for (const [b, batch] of epochBatches(lengths, schedule.batchTokens, schedule.seed, epoch).entries()) {
        const step = epoch * stepsPerEpoch + b;
        const result = await trainer.step(
          makeBatch(
            batch.map((i) => sequences[i]),
            config.contextLength,
            config.vocabSize,
          ),
          learningRate(step, rates),
        );
        tokens += result.tokens;
        onProgress?.({ phase: "fine-tuning", done: step + 1, total: rates.totalSteps, unit: "steps", tokens });
      }
    }
    return trainer.weights();
  } finally {
    await trainer.release();
  }
}
