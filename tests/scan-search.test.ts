/**
 * The first tier scanned in int8 (indexer/scan-search.ts) against brute force written out here:
 * rows rounded with one scale each, the query over the searched coordinates with one scale, integer
 * inner products times both scales, the k largest (ties: lower ordinal first). The copy's rounding
 * is checked against the float32 rows; which indexes are scanned, and what their copy costs,
 * against SCAN_MAX_VALUES.
 */
import { describe, expect, it } from "vitest";
import { SCAN_MAX_VALUES, beginScan, scanCopy, scanCopyBytes, scansFirstTier } from "../src/indexer/scan-search.js";
import type { VectorFile } from "../src/indexer/vector-file.js";
import type { CoordinateRange, VectorLayout } from "../src/projection/vector-layout.js";
import { ordinaryMemory, sharedMemory } from "../src/util/allocate.js";
import { normalGenerator } from "../src/util/random.js";

const DIM = 96;
const COUNT = 500;
const FIRST_ORDINAL = 1000;
const LAYOUT: VectorLayout = {
  blocks: [
    { name: "h.0.mlp.c_fc", layer: 0, offset: 0, size: 32, kOut: 4, kIn: 8 },
    { name: "h.0.mlp.c_proj", layer: 0, offset: 32, size: 32, kOut: 8, kIn: 4 },
    { name: "h.1.mlp.c_fc", layer: 1, offset: 64, size: 32, kOut: 4, kIn: 8 },
  ],
};
const ALL: CoordinateRange[] = [{ offset: 0, size: DIM }];
const LAYER_1: CoordinateRange[] = [{ offset: 64, size: 32 }];

const normal = normalGenerator(11);
// Rows of different sizes, as sequences of different lengths give.
const file: VectorFile = {
  dim: DIM,
  count: COUNT,
  firstOrdinal: FIRST_ORDINAL,
  layout: LAYOUT,
  checksum: "0".repeat(64),
  rows: Float32Array.from({ length: COUNT * DIM }, (_, i) => normal() * (1 + (Math.floor(i / DIM) % 7))),
};
const query = Float32Array.from({ length: DIM }, () => normal());

/** Rounding to int8 with one scale, written out: round(x / s), s = max |x| / 127 in float32. */
function rounded(values: ArrayLike<number>): { ints: number[]; scale: number } {
  const scale = Math.fround(Math.max(...Array.from(values, Math.abs)) / 127);
  return { ints: Array.from(values, (x) => Math.round(x / scale) || 0), scale };
}

/** The k best rows of `file` (of `ordinals`) by brute force on rows and query rounded to int8, over one stretch of coordinates. */
function bruteForce({ offset, size }: CoordinateRange, k: number, ordinals = Array.from({ length: COUNT }, (_, r) => FIRST_ORDINAL + r)) {
  const q = rounded(query.subarray(offset, offset + size));
  const scored = ordinals.map((ordinal) => {
    const r = rounded(file.rows.subarray((ordinal - FIRST_ORDINAL) * DIM, (ordinal - FIRST_ORDINAL + 1) * DIM));
    let dot = 0;
    for (let i = 0; i < size; i++) dot += q.ints[i] * r.ints[offset + i];
    return { ordinal, score: dot * q.scale * r.scale };
  });
  return scored.sort((a, b) => b.score - a.score || a.ordinal - b.ordinal).slice(0, k);
}

describe("the first tier scanned in int8", () => {
  const copy = scanCopy(file, ordinaryMemory);

  it("holds every row rounded with its own scale, within half a step of the float32 value", () => {
    expect(copy).toMatchObject({ elementType: "int8", dim: DIM, count: COUNT, firstOrdinal: FIRST_ORDINAL, layout: LAYOUT });
    for (let r = 0; r < COUNT; r++) {
      const { ints, scale } = rounded(file.rows.subarray(r * DIM, (r + 1) * DIM));
      expect(copy.scales[r]).toBe(scale);
      expect(Array.from(copy.rows.subarray(r * DIM, (r + 1) * DIM))).toEqual(ints);
      for (let i = 0; i < DIM; i++) expect(Math.abs(copy.rows[r * DIM + i] * scale - file.rows[r * DIM + i])).toBeLessThanOrEqual(scale / 2 + 1e-6 * scale);
    }
    const shared = scanCopy(file, sharedMemory);
    expect(shared.rows.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(shared.scales.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(Array.from(shared.rows)).toEqual(Array.from(copy.rows));
  });

  it("finds the k best rows of brute force over every coordinate, with their scores", () => {
    for (const k of [1, 10, 100, COUNT]) {
      const found = beginScan(copy, query, ALL).topK(k);
      const expected = bruteForce(ALL[0], k);
      expect(found.labels).toEqual(expected.map((e) => e.ordinal));
      found.scores.forEach((s, i) => expect(s).toBeCloseTo(expected[i].score, 4));
    }
  });

  it("over a layer's coordinates alone, and among allowed ordinals alone", () => {
    expect(beginScan(copy, query, LAYER_1).topK(20).labels).toEqual(bruteForce(LAYER_1[0], 20).map((e) => e.ordinal));
    const allowed = Array.from({ length: 60 }, (_, i) => FIRST_ORDINAL + 7 * i);
    const found = beginScan(copy, query, ALL, allowed).topK(10);
    expect(found.labels).toEqual(bruteForce(ALL[0], 10, allowed).map((e) => e.ordinal));
    // Fewer allowed than asked: every one, ranked; ordinals the file does not hold are none of them.
    expect(
      beginScan(copy, query, ALL, [FIRST_ORDINAL + 3, 5, FIRST_ORDINAL + COUNT, FIRST_ORDINAL + 1])
        .topK(10)
        .labels.sort(),
    ).toEqual([FIRST_ORDINAL + 1, FIRST_ORDINAL + 3]);
  });

  it("is chosen for a first tier of at most SCAN_MAX_VALUES coordinates, and costs a scale and a byte per coordinate", () => {
    expect(scansFirstTier({ count: SCAN_MAX_VALUES / 2048, dim: 2048 })).toBe(true);
    expect(scansFirstTier({ count: SCAN_MAX_VALUES / 2048 + 1, dim: 2048 })).toBe(false);
    expect(scanCopyBytes({ count: 6000, dim: 2048 })).toBe(6000 * (4 + 2048));
    expect(scanCopyBytes({ count: SCAN_MAX_VALUES, dim: 2 })).toBe(0);
  });
});
