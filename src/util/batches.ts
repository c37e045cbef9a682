/** Groups a stream into batches bounded by a token budget and a count. */
export async function* batchesOf<T extends { tokens: readonly number[] }>(
  items: AsyncIterable<T> | Iterable<T>,
  { maxTokens, maxItems = Infinity }: { maxTokens: number; maxItems?: number },
): AsyncGenerator<T[]> {
  let batch: T[] = [];
  let longest = 0;
  for await (const item of items) {
    // Padded size of the batch if this item joined it.
    const padded = (batch.length + 1) * Math.max(longest, item.tokens.length);
    if (batch.length > 0 && (padded > maxTokens || batch.length >= maxItems)) {
      yield batch;
      batch = [];
      longest = 0;
    }
    batch.push(item);
    longest = Math.max(longest, item.tokens.length);
  }
  if (batch.length) yield batch;
}
