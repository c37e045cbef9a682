/** The unigram baseline: the loss of a model that predicts every token from its overall frequency alone. */

/** Entropy in nats of the predicted tokens (all but the first of each sequence, as the LM loss counts them). */
export function unigramEntropy(sequences: Iterable<readonly number[]>): number {
  const counts = new Map<number, number>();
  let total = 0;
  for (const tokens of sequences) {
    for (let t = 1; t < tokens.length; t++) counts.set(tokens[t], (counts.get(tokens[t]) ?? 0) + 1);
    total += Math.max(0, tokens.length - 1);
  }
  let entropy = 0;
  for (const count of counts.values()) entropy -= (count / total) * Math.log(count / total);
  return entropy;
}
