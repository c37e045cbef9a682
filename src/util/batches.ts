/** Groups sequences into batches bounded by a padded-token budget and a count. */

export interface BatchLimits {
  maxTokens: number;
  maxItems?: number;
}

/** Whether a batch of `count` sequences, the longest `longest` tokens, can take one of `next`. */
function fits(count: number, longest: number, next: number, { maxTokens, maxItems = Infinity }: BatchLimits): boolean {
  return count === 0 || ((count + 1) * Math.max(longest, next) <= maxTokens && count < maxItems);
}

export async function* batchesOf<T extends { tokens: ArrayLike<number> }>(items: AsyncIterable<T> | Iterable<T>, limits: BatchLimits): AsyncGenerator<T[]> {
  let batch: T[] = [];
  let longest = 0;
  for await (const item of items) {
    if (!fits(batch.length, longest, item.tokens.length, limits)) {
      yield batch;
      batch = [];
      longest = 0;
    }
    batch.push(item);
    longest = Math.max(longest, item.tokens.length);
  }
  if (batch.length) yield batch;
}

/** [start, end) ranges of consecutive sequences forming batches, for lists already in memory. */
export function* batchRanges(lengths: readonly number[], limits: BatchLimits): Generator<[number, number]> {
  let start = 0;
  let longest = 0;
  for (let i = 0; i < lengths.length; i++) {
    if (!fits(i - start, longest, lengths[i], limits)) {
      yield [start, i];
      start = i;
      longest = 0;
    }
    longest = Math.max(longest, lengths[i]);
  }
  if (start < lengths.length) yield [start, lengths.length];
}
