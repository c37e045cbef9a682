/** Brute-force maximum-inner-product search: the ground truth the HNSW index is measured against. */

export interface SearchHits {
  /** Ordinals, best first. */
  labels: number[];
  /** Inner products with the query, descending. */
  scores: number[];
}

export interface ExactSearchOptions {
  /** Only labels for which this returns true are candidates. */
  filter?: (label: number) => boolean;
  /** Label of row 0 (labels are `firstOrdinal + row`). Default 0. */
  firstOrdinal?: number;
}

/**
 * The k rows with the largest inner product with `query` (ties: lower label first). Sums in
 * float64; zero query coordinates (a masked query) are skipped by scanning only nonzero runs.
 */
export function exactTopK(
  vectors: Float32Array,
  dim: number,
  query: Float32Array | readonly number[],
  k: number,
  options: ExactSearchOptions = {},
): SearchHits {
  if (query.length !== dim) throw new RangeError(`query has ${query.length} coordinates, vectors have ${dim}`);
  const { filter, firstOrdinal = 0 } = options;
  const count = Math.floor(vectors.length / dim);
  const q = Float64Array.from(query);
  const runs = nonzeroRuns(q);
  const heap = new TopK(Math.min(k, count));
  for (let row = 0; row < count; row++) {
    const label = firstOrdinal + row;
    if (filter && !filter(label)) continue;
    const base = row * dim;
    let dot = 0;
    for (let r = 0; r < runs.length; r += 2) {
      for (let j = runs[r], end = runs[r + 1]; j < end; j++) dot += q[j] * vectors[base + j];
    }
    heap.offer(dot, label);
  }
  return heap.sorted();
}

/** [start, end) pairs of the runs of nonzero coordinates. */
function nonzeroRuns(q: Float64Array): number[] {
  const runs: number[] = [];
  for (let j = 0; j < q.length; j++) {
    if (q[j] === 0) continue;
    const start = j;
    while (j < q.length && q[j] !== 0) j++;
    runs.push(start, j);
  }
  return runs;
}

/** The k best (score, label) pairs seen: a binary min-heap on score (worst at the root). */
export class TopK {
  private readonly scores: Float64Array;
  private readonly labels: Float64Array;
  private size = 0;

  constructor(private readonly k: number) {
    this.scores = new Float64Array(k);
    this.labels = new Float64Array(k);
  }

  /** a ranks below b: lower score, or equal score and higher label. */
  private worse(a: number, b: number): boolean {
    return this.scores[a] < this.scores[b] || (this.scores[a] === this.scores[b] && this.labels[a] > this.labels[b]);
  }

  offer(score: number, label: number): void {
    if (this.k === 0) return;
    if (this.size < this.k) {
      this.scores[this.size] = score;
      this.labels[this.size] = label;
      this.siftUp(this.size++);
    } else if (score > this.scores[0] || (score === this.scores[0] && label < this.labels[0])) {
      this.scores[0] = score;
      this.labels[0] = label;
      this.siftDown(0);
    }
  }

  /** Best first; empties the heap (its worst is taken off the top, last place first). */
  sorted(): SearchHits {
    const n = this.size;
    const labels = new Array<number>(n);
    const scores = new Array<number>(n);
    for (let at = n - 1; at >= 0; at--) {
      labels[at] = this.labels[0];
      scores[at] = this.scores[0];
      this.size--;
      this.scores[0] = this.scores[this.size];
      this.labels[0] = this.labels[this.size];
      this.siftDown(0);
    }
    return { labels, scores };
  }

  private swap(a: number, b: number): void {
    const score = this.scores[a];
    this.scores[a] = this.scores[b];
    this.scores[b] = score;
    const label = this.labels[a];
    this.labels[a] = this.labels[b];
    this.labels[b] = label;
  }

  private siftUp(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.worse(i, parent)) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private siftDown(i: number): void {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let worst = i;
      if (l < this.size && this.worse(l, worst)) worst = l;
      if (r < this.size && this.worse(r, worst)) worst = r;
      if (worst === i) return;
      this.swap(i, worst);
      i = worst;
    }
  }
}
