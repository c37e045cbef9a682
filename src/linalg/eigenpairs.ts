/** The result type of the eigensolvers and its ordering. */

export interface Eigh {
  /** Eigenvalues, ascending. */
  values: Float64Array;
  /** Row-major n×n; column j is the unit eigenvector of values[j]. */
  vectors: Float64Array;
}

/** Eigenvalues ascending, with the columns of `vectors` permuted to match, in a fresh plain array. */
export function sortByValue(values: Float64Array, vectors: Float64Array, n: number): Eigh {
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => values[i] - values[j]);
  const out = new Float64Array(n * n);
  for (let r = 0; r < n; r++) {
    const off = r * n;
    for (let j = 0; j < n; j++) out[off + j] = vectors[off + order[j]];
  }
  return { values: Float64Array.from(order, (i) => values[i]), vectors: out };
}
