/**
 * Sums accumulated over some sequences, in float64, and how many items they cover: what an
 * accumulator in one worker thread hands to the main thread, which adds them up. Sums of
 * partial sums equal the sum over all sequences up to float64 rounding, whatever the split.
 */
export interface PartialSums {
  sums: Float64Array[];
  /** Tokens or sequences, as the accumulator counts them. */
  count: number;
}

export function emptySums(sizes: readonly number[]): PartialSums {
  return { sums: sizes.map((n) => new Float64Array(n)), count: 0 };
}

/**
 * into += from. While `into` holds nothing (count 0, its arrays zeros as emptySums made them,
 * never written, so never resident), it takes from's arrays instead, each value turned into
 * 0 + x in place (the bits adding it to zeros gives, -0 included): a pass's total and the sums of
 * its first shard are then not both in memory. `from` is spent either way.
 */
export function addSums(into: PartialSums, from: PartialSums): void {
  if (from.sums.length !== into.sums.length) throw new Error(`cannot add ${from.sums.length} sums to ${into.sums.length}`);
  const adopt = into.count === 0;
  from.sums.forEach((s, i) => {
    const target = into.sums[i];
    if (s.length !== target.length) throw new Error(`sum ${i} has ${s.length} values, expected ${target.length}`);
    if (adopt) {
      for (let j = 0; j < s.length; j++) s[j] = 0 + s[j];
      into.sums[i] = s;
    } else for (let j = 0; j < s.length; j++) target[j] += s[j];
  });
  into.count += from.count;
}

/** acc += x for a float32 download. */
export function addInto(acc: Float64Array, x: Float32Array): void {
  for (let i = 0; i < acc.length; i++) acc[i] += x[i];
}
