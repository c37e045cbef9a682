import { describe, expect, it } from "vitest";
import { aggregateFaithfulness, queryFaithfulness, topOrdinals } from "../support/faithfulness.js";
import { median } from "../support/percentile.js";

// A seeded generator: distinct scores, so that ranks have no ties.
let state = 11;
const next = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;

describe("faithfulness of approximate scores to exact ones", () => {
  // Exact scores of ordinals 0..5, best first.
  const exact = [5, 4, 3, 2, 1, 0.5];

  it("compares a setting that scored only its candidates: overlap and ratios by hand, no Spearman", () => {
    // Its top 4: 4, 2, 0, 5; the exact top 4: 0, 1, 2, 3. Common: 0 and 2.
    const approx = new Map([
      [0, 2.5],
      [2, 3],
      [4, 10],
      [5, 0.1],
    ]);
    // Ratios over the exact top 4: 2.5/5, none for 1 (0), 3/3, none for 3 (0); median of 0, 0, 0.5, 1.
    expect(queryFaithfulness(exact, approx, 4)).toEqual({ overlap: 2, spearman: null, ratio: 0.25 });
  });

  it("gives Spearman over all sequences when the setting scored them all", () => {
    // Ordinals 2 and 3 swapped in rank: sum of squared rank differences 2, 1 - 6 * 2 / (6 * 35).
    const approx = new Map([5, 4, 2, 3, 1, 0.5].map((s, o) => [o, 2 * s]));
    const q = queryFaithfulness(exact, approx, 3);
    // Its top 3: 0, 1, 3; the exact top 3: 0, 1, 2.
    expect(q.overlap).toBe(2);
    expect(q.spearman).toBeCloseTo(1 - 12 / 210, 12);
    // Ratios 2, 2, 4/3 over ordinals 0, 1, 2.
    expect(q.ratio).toBe(2);
  });

  it("agrees with brute force on random scores", () => {
    const n = 300;
    const k = 10;
    for (let trial = 0; trial < 5; trial++) {
      const ex = Array.from({ length: n }, () => next() + 0.01);
      const ap = ex.map((x) => x + 0.3 * (next() - 0.5));
      const q = queryFaithfulness(ex, new Map(ap.map((s, o) => [o, s])), k);
      const bestOf = (xs: number[]) => new Set([...xs.keys()].sort((a, b) => xs[b] - xs[a]).slice(0, k));
      const exTop = bestOf(ex);
      expect(q.overlap).toBe([...bestOf(ap)].filter((o) => exTop.has(o)).length);
      // Spearman of distinct values: 1 - 6 sum d^2 / (n (n^2 - 1)), ranks by counting.
      const rank = (xs: number[], i: number) => xs.filter((x) => x < xs[i]).length;
      const d2 = ex.reduce((s, _, i) => s + (rank(ex, i) - rank(ap, i)) ** 2, 0);
      expect(q.spearman).toBeCloseTo(1 - (6 * d2) / (n * (n * n - 1)), 10);
      expect(q.ratio).toBeCloseTo(median([...exTop].map((o) => ap[o] / ex[o])), 12);
    }
  });

  it("ranks equal scores by ascending ordinal", () => {
    expect(
      topOrdinals(
        [
          [7, 1],
          [3, 2],
          [5, 1],
          [1, 1],
        ],
        3,
      ),
    ).toEqual([3, 1, 5]);
  });

  it("refuses ordinals outside the sequences, a bad k, and a non-positive exact top-k score", () => {
    expect(() => queryFaithfulness(exact, new Map([[6, 1]]), 3)).toThrow("a score for ordinal 6, outside the 6 sequences 0..5");
    expect(() => queryFaithfulness(exact, new Map(), 7)).toThrow("top k must be an integer from 1 to the 6 sequences, got 7");
    expect(() => queryFaithfulness([1, 0, -1], new Map(), 2)).toThrow("the exact score of sequence 1, in the exact top 2, is 0");
  });

  it("aggregates over queries: overlap mean and min, Spearman median and min, ratio median and range", () => {
    const all = aggregateFaithfulness([
      { overlap: 10, spearman: 0.9, ratio: 1.1 },
      { overlap: 7, spearman: 0.5, ratio: 0.7 },
      { overlap: 8, spearman: 0.8, ratio: 1 },
      { overlap: 9, spearman: 0.95, ratio: 1.3 },
    ]);
    expect(all).toEqual({
      overlap: { mean: 8.5, min: 7 },
      spearman: { median: expect.closeTo(0.85, 12), min: 0.5 },
      ratio: { median: 1.05, min: 0.7, max: 1.3 },
    });
    expect(aggregateFaithfulness([{ overlap: 3, spearman: null, ratio: 0.5 }]).spearman).toBeNull();
    expect(() => aggregateFaithfulness([])).toThrow("faithfulness of no queries");
  });
});
