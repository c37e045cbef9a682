/**
 * A query's candidates ranked by the sketch in two passes (engine/sketch-ranking.ts), against
 * float64 brute force over the rows as written: the first pass's best are those of the coarse
 * estimate (a quarter of each block's rows, scaled), they come first with whole-sketch scores in
 * order, the rest follow with coarse scores, and every candidate appears once.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rankBySketch } from "../src/engine/sketch-ranking.js";
import { layerScoresOfRows, rangesQuery, rowQuery, scoreRows } from "../src/indexer/row-scores.js";
import { type StoredVectors, readStoredVectors, writeVectorFile } from "../src/indexer/vector-file.js";
import { coarseFirstLayout, coarseSketch } from "../src/projection/sketch.js";
import { layoutMoves, moveCoordinates, type VectorLayout } from "../src/projection/vector-layout.js";
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

describe("a sketch stored coarse part first (coarseFirstLayout)", () => {
  const STORED = coarseFirstLayout(LAYOUT, 0);
  const moves = layoutMoves(LAYOUT, STORED);
  const storedRows = rows.slice();
  moveCoordinates(storedRows, DIM, moves);
  const storedQuery = query.slice();
  moveCoordinates(storedQuery, DIM, moves);
  const candidates = Array.from({ length: 120 }, (_, i) => (i * 37) % COUNT);
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let spread: StoredVectors;
  let stored: StoredVectors;
  let storedInt8: StoredVectors;

  beforeAll(async () => {
    tmp = await tempDir("coarse-first-");
    const write = async (name: string, layout: VectorLayout, values: Float32Array, elementType: "float32" | "int8") => {
      await writeVectorFile(path.join(tmp.dir, name), { dim: DIM, firstOrdinal: 0, layout, rows: values, elementType });
      return readStoredVectors(path.join(tmp.dir, name));
    };
    spread = await write("spread.vec", LAYOUT, rows, "float32");
    stored = await write("stored.vec", STORED, storedRows, "float32");
    storedInt8 = await write("stored-int8.vec", STORED, storedRows, "int8");
  });
  afterAll(async () => tmp.remove());

  it("stores every block's coarse rows first, then the rest of each block's, and moves vectors there and back", () => {
    expect(STORED.blocks).toEqual([
      { name: "h.0.mlp.c_fc", layer: 0, offset: 0, size: 20, kOut: 2, kIn: 10, firstRow: 0, matrixRows: 8 },
      { name: "h.0.mlp.c_proj", layer: 0, offset: 20, size: 25, kOut: 1, kIn: 25, firstRow: 0, matrixRows: 4 },
      { name: "h.0.mlp.c_fc", layer: 0, offset: 45, size: 60, kOut: 6, kIn: 10, firstRow: 2, matrixRows: 8 },
      { name: "h.0.mlp.c_proj", layer: 0, offset: 105, size: 75, kOut: 3, kIn: 25, firstRow: 1, matrixRows: 4 },
    ]);
    expect(Array.from(storedQuery.subarray(0, 45))).toEqual([...query.subarray(0, 20), ...query.subarray(80, 105)]);
    expect(Array.from(storedQuery.subarray(45))).toEqual([...query.subarray(20, 80), ...query.subarray(105)]);
    const back = storedQuery.slice();
    moveCoordinates(back, DIM, layoutMoves(STORED, LAYOUT));
    expect(back).toEqual(query);
    expect(layoutMoves(LAYOUT, LAYOUT)).toEqual([]);
    // Too small for a coarse part at the default minimum: kept as it is.
    expect(coarseFirstLayout(LAYOUT)).toBe(LAYOUT);
  });

  it("takes its leading stretch as the coarse part, scaled by 4, in one part of the query", () => {
    const coarsePart = coarseSketch(STORED);
    expect(coarsePart).toEqual({
      ranges: [
        { offset: 0, size: 20 },
        { offset: 20, size: 25 },
      ],
      scales: [4, 4],
    });
    if (!coarsePart) throw new Error("no coarse part");
    expect(rangesQuery(rowQuery(stored, storedQuery), coarsePart.ranges, coarsePart.scales).parts).toHaveLength(1);
    expect(rangesQuery(rowQuery(storedInt8, storedQuery), coarsePart.ranges, coarsePart.scales).parts).toHaveLength(1);
    // A block the query leaves out (a layer filter's zeros) is not read: the stretch is the other's.
    const masked = storedQuery.slice();
    masked.fill(0, 0, 20);
    masked.fill(0, 45, 105);
    for (const file of [stored, storedInt8]) {
      const parts = rangesQuery(rowQuery(file, masked), coarsePart.ranges, coarsePart.scales).parts;
      expect(parts.map((p) => [p.offset, p.values.length])).toEqual([[20, 25]]);
    }
    // Stored in the projection's order, the same coarse part is two stretches.
    const spreadPart = coarseSketch(LAYOUT, 0);
    if (!spreadPart) throw new Error("no coarse part");
    expect(rangesQuery(rowQuery(spread, query), spreadPart.ranges, spreadPart.scales).parts).toHaveLength(2);
  });

  it("ranks candidates, and scores them by layer, as the same sketch stored in the projection's order", () => {
    const ranked = rankBySketch(rowQuery(stored, storedQuery), coarseSketch(STORED), candidates, 30);
    const expected = rankBySketch(rowQuery(spread, query), coarseSketch(LAYOUT, 0), candidates, 30);
    expect(ranked.map((c) => c.ordinal)).toEqual(expected.map((c) => c.ordinal));
    ranked.forEach(({ score }, i) => expect(Math.abs(score - expected[i].score)).toBeLessThan(1e-4 * Math.max(1, Math.abs(score))));
    const hits = ranked.slice(0, 10).map((c) => c.ordinal);
    const byLayer = layerScoresOfRows(rowQuery(stored, storedQuery), hits, [0]);
    layerScoresOfRows(rowQuery(spread, query), hits, [0]).forEach(([score], i) => expect(byLayer[i][0]).toBeCloseTo(score, 4));
  });

  it("against int8 rows, scores the first pass within the rounding of its rows and of its one stretch of query", () => {
    const coarsePart = coarseSketch(STORED);
    const file8 = storedInt8;
    if (!coarsePart || file8.elementType !== "int8") throw new Error("an int8 file with a coarse part expected");
    const scores = scoreRows(rangesQuery(rowQuery(file8, storedQuery), coarsePart.ranges, coarsePart.scales), candidates);
    // The stretch's query values (times 4) and every row are rounded to steps of max |x| / 127.
    const stretch = Array.from(storedQuery.subarray(0, 45), (x) => 4 * x);
    const queryStep = Math.max(...stretch.map(Math.abs)) / 127;
    candidates.forEach((ordinal, i) => {
      const row = storedRows.subarray(ordinal * DIM, (ordinal + 1) * DIM);
      const rowStep = file8.scales[ordinal];
      let bound = 0;
      for (let c = 0; c < 45; c++) bound += (Math.abs(stretch[c]) * rowStep) / 2 + (Math.abs(row[c]) * queryStep) / 2 + (rowStep * queryStep) / 4;
      expect(Math.abs(scores[i] - coarse(ordinal)), `ordinal ${ordinal}`).toBeLessThanOrEqual(bound * 1.0001 + 1e-6);
    });
  });
});
