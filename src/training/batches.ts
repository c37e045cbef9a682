/** Training batches: every sequence once per epoch, in an order fixed by the seed. */
import { hashSeed, shuffle, uniformGenerator } from "../util/random.js";

/**
 * The batches of one epoch as lists of sequence indices. Sequences are shuffled, then sorted by
 * length (stably, so equal lengths stay shuffled) and cut into batches of at most `batchTokens`
 * padded tokens: similar lengths share a batch, so little compute goes to padding. The batches
 * are then shuffled. Their number and sizes are the same in every epoch.
 */
export function epochBatches(lengths: readonly number[], batchTokens: number, seed: number, epoch: number): number[][] {
  const uniform = uniformGenerator(hashSeed(seed, epoch));
  const order = shuffle([...lengths.keys()], uniform).sort((a, b) => lengths[a] - lengths[b]);
  const batches: number[][] = [];
  let batch: number[] = [];
  for (const index of order) {
    // Ascending lengths: the newcomer is the longest, so it sets the padded length.
    if (batch.length > 0 && (batch.length + 1) * lengths[index] > batchTokens) {
      batches.push(batch);
      batch = [];
    }
    batch.push(index);
  }
  if (batch.length) batches.push(batch);
  return shuffle(batches, uniform);
}
