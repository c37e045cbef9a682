/**
 * A query's candidates ranked by the sketch in two passes (engine/sketch-ranking.ts), against
 * float64 brute force over the rows as written: the first pass's best are those of the coarse
 * estimate (a quarter of each block's rows, scaled), they come first with whole-sketch scores in
 * order, the rest follow with coarse scores, and every candidate appears once.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rankBySketch } from "../src/engine/sketch-ranking.js";
import { rowQuery } from "../src/indexer/row-scores.js";
import { type StoredVectors, readStoredVectors, writeVectorFile } from "../src/indexer/vector-file.js";
import { coarseSketch } from "../src/projection/sketch.js";
import type { VectorLayout } from "../src/projection/vector-layout.js";
import { normalGenerator } from "../src/util/random.js";
import { tempDir } from "../src/util/temp-dir.js";

// Two blocks, [8, 10] and [4, 25]: their coarse parts are the first 2 rows (20 values) and the first row (25), each times 4.
const LAYOUT: VectorLayout = {
  blocks: [
    { name: "h.0.mlp.c_fc", layer: 0, offset: 0, size: 80, kOut: 8, kIn: 10 },
    { name: "h.0.mlp.c_proj", layer: 0, offset: 80, size: 100, kOut: 4, kIn: 25 },
  ],
};
const COARSE_BY_HAND = [
  { from: 0, to: 20, scale: 4 },
  { from: 80, to: 105, scale: 4 },
];
const DIM = 180;
const COUNT = 200;

const normal = normalGenerator(3);
const rows = Float32Array.from({ length: COUNT * DIM }, () => normal());
const query = Float32Array.from({ length: DIM }, () => normal());

const dot = (r: number, from: number, to: number): number => {
  let sum = 0;
  for (let i = from; i < to; i++) sum += query[i] * rows[r * DIM + i];
  return sum;
};
const whole = (r: number): number => dot(r, 0, DIM);
const coarse = (r: number): number => COARSE_BY_HAND.reduce((sum, { from, to, scale }) => sum + scale * dot(r, from, to), 0);

describe("ranking candidates by the sketch in two passes", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let file: StoredVectors;
  const candidates = Array.from({ length: 120 }, (_, i) => (i * 37) % COUNT);

  beforeAll(async () => {
    tmp = await tempDir("sketch-ranking-");
    const target = path.join(tmp.dir, "sketch.vec");
    await writeVectorFile(target, { dim: DIM, firstOrdinal: 0, layout: LAYOUT, rows });
    file = await readStoredVectors(target);
  });
  afterAll(async () => tmp.remove());

  it("takes the coarse part as the leading quarter of every block's rows, scaled by 4", () => {
    expect(coarseSketch(LAYOUT, 0)).toEqual({
      ranges: COARSE_BY_HAND.map(({ from, to }) => ({ offset: from, size: to - from })),
      scales: COARSE_BY_HAND.map((c) => c.scale),
    });
  });

  it("keeps at least 4,096 coordinates a block, and has no coarse part when that keeps every row", () => {
    // These blocks are smaller than that: a coarse pass would score the whole sketch.
    expect(coarseSketch(LAYOUT)).toBeUndefined();
    const block = (kOut: number, kIn: number, offset = 0) => ({ name: `${kOut}x${kIn}`, layer: 0, offset, size: kOut * kIn, kOut, kIn });
    expect(coarseSketch({ blocks: [block(64, 64)] })).toBeUndefined();
    expect(coarseSketch({ blocks: [block(128, 128), block(90, 91, 16384)] })).toEqual({
      ranges: [
        { offset: 0, size: 32 * 128 },
        { offset: 16384, size: 46 * 91 },
      ],
      scales: [4, 90 / 46],
    });
  });

  it("re-scores the coarse pass's best by the whole sketch, first and in order, the rest after with coarse scores", () => {
    const refined = 30;
    const ranked = rankBySketch(rowQuery(file, query), coarseSketch(LAYOUT, 0), candidates, refined);
    expect(ranked.map((c) => c.ordinal).sort((a, b) => a - b)).toEqual([...candidates].sort((a, b) => a - b));
    const byCoarse = [...candidates].sort((a, b) => coarse(b) - coarse(a));
    expect(new Set(ranked.slice(0, refined).map((c) => c.ordinal))).toEqual(new Set(byCoarse.slice(0, refined)));
    ranked.forEach(({ ordinal, score }, i) => {
      const expected = i < refined ? whole(ordinal) : coarse(ordinal);
      expect(Math.abs(score - expected), `ordinal ${ordinal}`).toBeLessThan(1e-4 * Math.max(1, Math.abs(expected)));
      if (i > 0 && i !== refined) expect(score).toBeLessThanOrEqual(ranked[i - 1].score);
    });
  });

  it("scores every candidate by the whole sketch when they are no more than those it refines, or the sketch has no coarse part", () => {
    for (const ranked of [
      rankBySketch(rowQuery(file, query), coarseSketch(LAYOUT, 0), candidates, candidates.length),
      rankBySketch(rowQuery(file, query), undefined, candidates, 30),
    ]) {
      expect(ranked.map((c) => c.ordinal)).toEqual([...candidates].sort((a, b) => whole(b) - whole(a)));
      for (const { ordinal, score } of ranked) expect(Math.abs(score - whole(ordinal))).toBeLessThan(1e-4 * Math.max(1, Math.abs(whole(ordinal))));
    }
  });
});
