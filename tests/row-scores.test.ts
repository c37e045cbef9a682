/**
 * Inner products of a query with a vector file's rows, on the compute engine, against float64
 * brute force over the rows as written: exact to float32 rounding for float32 files; for int8
 * files within the rounding the format allows, half a step (the row's scale) per coordinate, so
 * |error| <= scale / 2 x sum |q_i| over the coordinates summed. Rows read in place and rows in
 * shared memory (as `influence serve` may hold them) score alike.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { layerScoresOfRows, scoreAllRows, scoreRows } from "../src/indexer/row-scores.js";
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
const query = Float32Array.from({ length: DIM }, () => normal());

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

/** The largest error the file's element type allows for row `r` over [from, to): rounding, and for int8 half a step per coordinate. */
function allowed(file: StoredVectors, r: number, from = 0, to = DIM): number {
  if (file.elementType !== "int8") return rounding(r, from, to);
  let queryMass = 0;
  for (let i = from; i < to; i++) queryMass += Math.abs(query[i]);
  return rounding(r, from, to) + (file.scales[r] / 2) * queryMass;
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

  it("scores every row, read in place or from shared memory", async () => {
    for (const source of [file, shared]) {
      const scores = await scoreAllRows(source, query);
      expect(scores.length).toBe(COUNT);
      for (let r = 0; r < COUNT; r++) expect(Math.abs(scores[r] - exact(r)), `row ${r}`).toBeLessThanOrEqual(allowed(source, r));
    }
  });

  it("scores chosen rows in the order asked, repeats included, read in place or from shared memory", async () => {
    const picked = [5, 39, 0, 17, 5, 22];
    for (const source of [file, shared]) {
      const scores = await scoreRows(
        source,
        query,
        picked.map((r) => FIRST_ORDINAL + r),
      );
      picked.forEach((r, i) => expect(Math.abs(scores[i] - exact(r)), `row ${r}`).toBeLessThanOrEqual(allowed(source, r)));
    }
  });

  it("splits a row's score by layer, the parts summing to the whole", async () => {
    const picked = [3, 31];
    const byLayer = await layerScoresOfRows(
      file,
      query,
      picked.map((r) => FIRST_ORDINAL + r),
      [0, 1],
    );
    const whole = await scoreRows(
      file,
      query,
      picked.map((r) => FIRST_ORDINAL + r),
    );
    picked.forEach((r, i) => {
      LAYER_RANGES.forEach(([from, to], layer) =>
        expect(Math.abs(byLayer[i][layer] - exact(r, from, to)), `row ${r} layer ${layer}`).toBeLessThanOrEqual(allowed(file, r, from, to)),
      );
      // Both from the same stored values: they differ by float32 rounding only.
      expect(Math.abs(byLayer[i][0] + byLayer[i][1] - whole[i]), `row ${r}`).toBeLessThanOrEqual(2 * rounding(r));
    });
  });
});
