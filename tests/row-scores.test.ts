/**
 * Inner products of a query with a vector file's rows against float64 brute force over the rows
 * as written: exact to float32 rounding for float32 files; for int8 files within the rounding of
 * rows and query, half a step per coordinate of each: the row's (its scale) times the query's
 * values, plus the query's (its block's scale, max |q| / 127 over the block) times the row's
 * stored values. Rows read in place and rows in shared memory (as `influence serve` may hold them)
 * score alike.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { layerScoresOfRows, rangesQuery, rowQuery, scoreAllRows, scoreRows } from "../src/indexer/row-scores.js";
import { type StoredVectors, readStoredVectors, writeVectorFile } from "../src/indexer/vector-file.js";
import type { ElementType, VectorLayout } from "../src/projection/vector-layout.js";
import { sharedMemory } from "../src/util/allocate.js";
import { normalGenerator } from "../src/util/random.js";
import { tempDir } from "../src/util/temp-dir.js";

const DIM = 300;
const COUNT = 40;
const FIRST_ORDINAL = 100;
const LAYOUT: VectorLayout = {
  blocks: [
    { name: "h.0.mlp.c_fc", layer: 0, offset: 0, size: 100, kOut: 10, kIn: 10 },
    { name: "h.1.mlp.c_fc", layer: 1, offset: 100, size: 200, kOut: 10, kIn: 20 },
  ],
};
const LAYER_RANGES = [
  [0, 100],
  [100, 300],
] as const;

const normal = normalGenerator(7);
// Rows of very different sizes, as sequences of different lengths give.
const rows = Float32Array.from({ length: COUNT * DIM }, (_, i) => normal() * 10 ** ((Math.floor(i / DIM) % 5) - 2));
// The second block's query values a thousandth of the first's: rounded with the first's step, they would all be lost.
const query = Float32Array.from({ length: DIM }, (_, i) => normal() * (i < 100 ? 1 : 1e-3));

/** Float64 inner product of the query with row `r` as written, over coordinates [from, to). */
function exact(r: number, from = 0, to = DIM): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum += query[i] * rows[r * DIM + i];
  return sum;
}

/** Float32 rounding of a sum of products over row `r`'s [from, to): 1e-5 of the sum of their sizes. */
function rounding(r: number, from = 0, to = DIM): number {
  let magnitude = 0;
  for (let i = from; i < to; i++) magnitude += Math.abs(query[i] * rows[r * DIM + i]);
  return 1e-5 * magnitude;
}

/** The query's int8 step in each block: max |q| / 127 over the block, however little of it is summed. */
const queryScales = LAYOUT.blocks.map(({ offset, size }) => Math.fround(Math.max(...query.subarray(offset, offset + size).map(Math.abs)) / 127));

/** The largest error the file's element type allows for row `r` over [from, to): rounding, and for int8 half a step of row and query per coordinate. */
function allowed(file: StoredVectors, r: number, from = 0, to = DIM): number {
  if (file.elementType !== "int8") return rounding(r, from, to);
  const rowScale = file.scales[r];
  let bound = rounding(r, from, to);
  LAYOUT.blocks.forEach(({ offset, size }, b) => {
    for (let i = Math.max(from, offset); i < Math.min(to, offset + size); i++) {
      // The stored row value is within half a step of the written one.
      bound += (rowScale / 2) * Math.abs(query[i]) + (queryScales[b] / 2) * (Math.abs(rows[r * DIM + i]) + rowScale / 2);
    }
  });
  return bound;
}

/** Two rows' scores by layer ([row][layer]) and whole, from one prepared query. */
function splitByLayer(file: StoredVectors): { picked: number[]; byLayer: number[][]; whole: Float32Array } {
  const picked = [3, 31];
  const prepared = rowQuery(file, query);
  const ordinals = picked.map((r) => FIRST_ORDINAL + r);
  return { picked, byLayer: layerScoresOfRows(prepared, ordinals, [0, 1]), whole: scoreRows(prepared, ordinals) };
}

describe.each(["float32", "int8"] as const)("scores of %s rows against float64 brute force", (elementType: ElementType) => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let file: StoredVectors;
  let shared: StoredVectors;

  beforeAll(async () => {
    tmp = await tempDir("row-scores-");
    const target = path.join(tmp.dir, `${elementType}.vec`);
    await writeVectorFile(target, { dim: DIM, firstOrdinal: FIRST_ORDINAL, layout: LAYOUT, rows, elementType });
    file = await readStoredVectors(target);
    shared = await readStoredVectors(target, { allocate: sharedMemory });
    expect(file.elementType ?? "float32").toBe(elementType);
  });
  afterAll(async () => tmp.remove());

  it("scores every row, read in place or from shared memory", () => {
    for (const source of [file, shared]) {
      const scores = scoreAllRows(rowQuery(source, query));
      expect(scores.length).toBe(COUNT);
      for (let r = 0; r < COUNT; r++) expect(Math.abs(scores[r] - exact(r)), `row ${r}`).toBeLessThanOrEqual(allowed(source, r));
    }
  });

  it("scores chosen rows in the order asked, repeats included, read in place or from shared memory", () => {
    const picked = [5, 39, 0, 17, 5, 22];
    for (const source of [file, shared]) {
      const scores = scoreRows(
        rowQuery(source, query),
        picked.map((r) => FIRST_ORDINAL + r),
      );
      picked.forEach((r, i) => expect(Math.abs(scores[i] - exact(r)), `row ${r}`).toBeLessThanOrEqual(allowed(source, r)));
    }
  });

  it("scores a query masked to one layer (zeros elsewhere) over that layer alone", () => {
    const masked = new Float32Array(DIM);
    masked.set(query.subarray(100), 100);
    const scores = scoreAllRows(rowQuery(file, masked));
    for (let r = 0; r < COUNT; r++) expect(Math.abs(scores[r] - exact(r, 100, DIM)), `row ${r}`).toBeLessThanOrEqual(allowed(file, r, 100, DIM));
  });

  it("splits a row's score by layer, the parts summing to the whole", () => {
    const { picked, byLayer, whole } = splitByLayer(file);
    picked.forEach((r, i) => {
      LAYER_RANGES.forEach(([from, to], layer) =>
        expect(Math.abs(byLayer[i][layer] - exact(r, from, to)), `row ${r} layer ${layer}`).toBeLessThanOrEqual(allowed(file, r, from, to)),
      );
      // Both from the same stored values: they differ by float32 rounding only.
      expect(Math.abs(byLayer[i][0] + byLayer[i][1] - whole[i]), `row ${r}`).toBeLessThanOrEqual(2 * rounding(r));
    });
  });
});

/**
 * Sign rows: a query stretch of joined blocks is rounded with one scale to 5-bit integers q
 * (indexer/sign-bits.ts), and a row scores f_r x scale x sum_j q_j sign(x_j), an exact integer sum:
 * brute force from the rows as written gives the same to float32 rounding. The layout's second
 * block starts at coordinate 100, inside a byte of signs.
 */
describe("scores of sign rows against their brute-force sums", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let file: StoredVectors;
  let shared: StoredVectors;

  beforeAll(async () => {
    tmp = await tempDir("row-scores-sign-");
    const target = path.join(tmp.dir, "sign.vec");
    await writeVectorFile(target, { dim: DIM, firstOrdinal: FIRST_ORDINAL, layout: LAYOUT, rows, elementType: "sign" });
    file = await readStoredVectors(target);
    shared = await readStoredVectors(target, { allocate: sharedMemory });
    expect(file.elementType).toBe("sign");
  });
  afterAll(async () => tmp.remove());

  /**
   * f_r x scale x sum_j q_j sign(x_j) over [from, to), the query rounded over the stretch
   * [stretchFrom, stretchTo) it was prepared with; and the float32 rounding a score may differ by.
   */
  function signScore(r: number, values: Float32Array, stretchFrom: number, stretchTo: number, from = stretchFrom, to = stretchTo) {
    const row = Array.from(rows.subarray(r * DIM, (r + 1) * DIM));
    const factor = Math.fround(row.reduce((a, v) => a + v * v, 0) / row.reduce((a, v) => a + Math.abs(v), 0));
    const scale = Math.fround(Math.max(...Array.from(values.subarray(stretchFrom, stretchTo), Math.abs)) / 15);
    let sum = 0;
    let size = 0;
    for (let j = from; j < to; j++) {
      const q = Math.max(-15, Math.min(15, Math.floor(values[j] / scale + 0.5)));
      sum += q * (row[j] > 0 ? 1 : -1);
      size += Math.abs(q);
    }
    return { score: factor * scale * sum, rounding: 1e-6 * factor * scale * size };
  }
  const near = (actual: number, { score, rounding }: { score: number; rounding: number }) => Math.abs(actual - score) <= rounding;

  it("scores every row and chosen rows, read in place or from shared memory", () => {
    const picked = [5, 39, 0, 17, 5, 22];
    for (const source of [file, shared]) {
      const all = scoreAllRows(rowQuery(source, query));
      for (let r = 0; r < COUNT; r++) expect(near(all[r], signScore(r, query, 0, DIM)), `row ${r}`).toBe(true);
      const some = scoreRows(
        rowQuery(source, query),
        picked.map((r) => FIRST_ORDINAL + r),
      );
      picked.forEach((r, i) => expect(some[i], `row ${r}`).toBe(all[r]));
    }
  });

  it("scores a query masked to one layer over it alone, and splits a score by layer, the parts summing to the whole", () => {
    const masked = new Float32Array(DIM);
    masked.set(query.subarray(100), 100);
    const alone = scoreAllRows(rowQuery(file, masked));
    for (let r = 0; r < COUNT; r++) expect(near(alone[r], signScore(r, masked, 100, DIM)), `row ${r}`).toBe(true);
    const { picked, byLayer } = splitByLayer(file);
    picked.forEach((r, i) => {
      LAYER_RANGES.forEach(([from, to], layer) => expect(near(byLayer[i][layer], signScore(r, query, 0, DIM, from, to)), `row ${r} layer ${layer}`).toBe(true));
      expect(near(byLayer[i][0] + byLayer[i][1], signScore(r, query, 0, DIM)), `row ${r}`).toBe(true);
    });
  });

  it("scores a first pass's ranges by the query's signs alone: f_r g sum_j sign(y_j) sign(x_j), g = |y|^2 / |y|_1 of the multiplied stretch", () => {
    const ranges = [
      { offset: 3, size: 90 },
      { offset: 93, size: 40 },
    ];
    const multipliers = [2, 2];
    const scores = scoreAllRows(rangesQuery(rowQuery(file, query), ranges, multipliers, true));
    const stretch = Array.from(query.subarray(3, 133), (v) => 2 * v);
    const g = Math.fround(stretch.reduce((a, v) => a + v * v, 0) / stretch.reduce((a, v) => a + Math.abs(v), 0));
    for (let r = 0; r < COUNT; r++) {
      const row = Array.from(rows.subarray(r * DIM, (r + 1) * DIM));
      const f = Math.fround(row.reduce((a, v) => a + v * v, 0) / row.reduce((a, v) => a + Math.abs(v), 0));
      const agreement = stretch.reduce((a, v, i) => a + (v > 0 ? 1 : -1) * (row[3 + i] > 0 ? 1 : -1), 0);
      expect(Math.abs(scores[r] - f * g * agreement), `row ${r}`).toBeLessThanOrEqual(1e-6 * f * g * stretch.length);
    }
  });
});

describe("int8 products over a long block", () => {
  it("stay exact past 2^31 / 127^2 coordinates, where one int32 sum of products would overflow", async () => {
    // Rows and query all ones: every value stored as 127 with scale 1/127, every product 127^2.
    const dim = 140_000;
    const tmp = await tempDir("row-scores-long-");
    try {
      const target = path.join(tmp.dir, "long.vec");
      const layout: VectorLayout = { blocks: [{ name: "h.0.mlp.c_fc", layer: 0, offset: 0, size: dim, kOut: 350, kIn: 400 }] };
      await writeVectorFile(target, { dim, firstOrdinal: 0, layout, rows: new Float32Array(2 * dim).fill(1), elementType: "int8" });
      const scores = scoreAllRows(rowQuery(await readStoredVectors(target), new Float32Array(dim).fill(1)));
      for (const score of scores) expect(Math.abs(score - dim)).toBeLessThanOrEqual(1e-5 * dim);
    } finally {
      await tmp.remove();
    }
  });
});
