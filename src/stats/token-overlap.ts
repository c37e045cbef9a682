/**
 * The share of a training sequence's distinct tokens that also occur in the query (prompt or
 * completion): 1 when every token of the sequence is one of the query's, 0 when none is. The
 * paper's measure of how literal an influential sequence is; abstract ones share few tokens.
 * 0 for an empty sequence.
 */
export function tokenOverlap(sequence: readonly number[], query: readonly number[]): number {
  const distinct = new Set(sequence);
  if (distinct.size === 0) return 0;
  const inQuery = new Set(query);
  let shared = 0;
  for (const token of distinct) if (inQuery.has(token)) shared++;
  return shared / distinct.size;
}
