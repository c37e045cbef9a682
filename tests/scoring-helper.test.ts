/**
 * The scoring helper thread against this thread alone: the same products to the bit (each row is
 * scored by the same function, whichever thread takes it), for float32, int8 and sign files, every row
 * or a list of ordinals (unordered, repeated), whole queries or restricted to ranges, in calls the
 * helper took rows of (it wakes late, so a call may end before it joins: calls are repeated until
 * it has); a call begun, then finished after other work (the helper scores meanwhile); files it was
 * not given, files outside shared memory, a call made while another is begun and a closed helper
 * are scored by the caller alone.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { beginAllRows, beginRows, localScorer, rangesQuery, rowQuery, scoreAllRows, scoreRows } from "../src/indexer/row-scores.js";
import { ScoringHelper } from "../src/indexer/scoring-helper.js";
import { type StoredVectors, readStoredVectors, writeVectorFile } from "../src/indexer/vector-file.js";
import type { VectorLayout } from "../src/projection/vector-layout.js";
import { ordinaryMemory, sharedMemory } from "../src/util/allocate.js";
import { normalGenerator } from "../src/util/random.js";
import { tempDir } from "../src/util/temp-dir.js";

// Enough rows that the helper, waking about half a millisecond late, still finds some left.
const DIM = 1024;
const COUNT = 4000;
const FIRST_ORDINAL = 7;
const LAYOUT: VectorLayout = {
  blocks: [
    { name: "h.0.mlp.c_fc", layer: 0, offset: 0, size: 256, kOut: 16, kIn: 16 },
    { name: "h.0.mlp.c_proj", layer: 0, offset: 256, size: 256, kOut: 16, kIn: 16 },
    { name: "h.1.mlp.c_fc", layer: 1, offset: 512, size: 512, kOut: 16, kIn: 32 },
  ],
};

const normal = normalGenerator(11);
const rows = Float32Array.from({ length: COUNT * DIM }, () => normal());
const query = Float32Array.from({ length: DIM }, () => normal());
// Unordered, repeated, enough to be split (64 or more).
const ordinals = Array.from({ length: 3000 }, (_, i) => FIRST_ORDINAL + ((i * 37) % COUNT));

type Scorer = Parameters<typeof rowQuery>[2];

/** The ways the engine scores many rows: every row or a list of ordinals, by the whole query or a range of it with a multiplier, or a first pass's. */
const WAYS: Array<(file: StoredVectors, scorer: Scorer) => Float32Array> = [
  (file, scorer) => scoreAllRows(rowQuery(file, query, scorer)),
  (file, scorer) => scoreRows(rowQuery(file, query, scorer), ordinals),
  (file, scorer) => scoreAllRows(rangesQuery(rowQuery(file, query, scorer), [{ offset: 128, size: 768 }], [0.5])),
  (file, scorer) => scoreRows(rangesQuery(rowQuery(file, query, scorer), [{ offset: 128, size: 768 }], [0.5]), ordinals),
  // A first pass (sign rows: the query's signs alone), over a range that starts and ends inside bytes.
  (file, scorer) => scoreRows(rangesQuery(rowQuery(file, query, scorer), [{ offset: 131, size: 765 }], [0.5], true), ordinals),
];

const scoresOf = (file: StoredVectors, scorer: Scorer): Float32Array[] => WAYS.map((way) => way(file, scorer));

/** Each way by the helper, called until the helper took rows of it, against this thread alone. */
function helpedAgainstAlone(file: StoredVectors, helper: ScoringHelper): void {
  for (const way of WAYS) {
    const alone = way(file, localScorer);
    let tries = 0;
    do {
      expect(way(file, helper)).toEqual(alone);
    } while (helper.lastHelperRows === 0 && ++tries < 200);
    expect(helper.lastHelperRows).toBeGreaterThan(0);
  }
}

describe("the scoring helper thread", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const files: Record<"float32" | "int8" | "sign", StoredVectors> = {} as never;
  let helper: ScoringHelper;

  beforeAll(async () => {
    tmp = await tempDir("scoring-helper-");
    for (const elementType of ["float32", "int8", "sign"] as const) {
      const target = path.join(tmp.dir, `${elementType}.vec`);
      await writeVectorFile(target, { dim: DIM, firstOrdinal: FIRST_ORDINAL, layout: LAYOUT, rows, elementType });
      files[elementType] = await readStoredVectors(target, { allocate: sharedMemory });
    }
    helper = (await ScoringHelper.start([files.float32, files.int8, files.sign])) as ScoringHelper;
    expect(helper.working).toBe(true);
  });

  afterAll(async () => {
    await helper?.close();
    await tmp?.remove();
  });

  it.each(["float32", "int8", "sign"] as const)("scores %s rows as this thread alone does, to the bit", (elementType) => {
    helpedAgainstAlone(files[elementType], helper);
    // Real products, every row its own: equal answers are not two arrays of zeros.
    expect(new Set(scoreAllRows(rowQuery(files[elementType], query, localScorer))).size).toBe(COUNT);
    // Too few rows to split: the caller alone.
    expect(scoreRows(rowQuery(files[elementType], query, helper), ordinals.slice(0, 5))).toEqual(
      scoreRows(rowQuery(files[elementType], query), ordinals.slice(0, 5)),
    );
    expect(helper.lastHelperRows).toBe(0);
    expect(helper.working).toBe(true);
  });

  it("scores a call begun before other work, and finishes it once however often asked", () => {
    const file = files.int8;
    const alone = scoreAllRows(rowQuery(file, query, localScorer));
    // Other work on this thread (the engine projects the sketch here): 50 ms, about a hundred times
    // the helper's scan, repeated in case a loaded machine kept it from finishing.
    const asleep = new Int32Array(new SharedArrayBuffer(4));
    let pending: ReturnType<typeof beginAllRows>;
    let scores: Float32Array;
    let tries = 0;
    do {
      pending = beginAllRows(rowQuery(file, query, helper));
      Atomics.wait(asleep, 0, 0, 50);
      scores = pending.finish();
      expect(scores).toEqual(alone);
    } while (helper.lastHelperRows < COUNT && ++tries < 20);
    expect(helper.lastHelperRows).toBe(COUNT);
    expect(pending.finish()).toBe(scores);
  });

  it("scores a call made while another is begun on this thread alone, then takes calls again", () => {
    const file = files.float32;
    const first = beginAllRows(rowQuery(file, query, helper));
    const second = beginRows(rowQuery(file, query, helper), ordinals);
    expect(second.finish()).toEqual(scoreRows(rowQuery(file, query, localScorer), ordinals));
    expect(helper.lastHelperRows).toBe(0);
    expect(first.finish()).toEqual(scoreAllRows(rowQuery(file, query, localScorer)));
    helpedAgainstAlone(file, helper);
  });

  it("leaves files it was not given, and files outside shared memory, to this thread", async () => {
    const target = path.join(tmp.dir, "float32.vec");
    const other = await readStoredVectors(target, { allocate: sharedMemory });
    expect(scoresOf(other, helper)).toEqual(scoresOf(other, localScorer));
    expect(helper.lastHelperRows).toBe(0);
    expect(await ScoringHelper.start([await readStoredVectors(target, { allocate: ordinaryMemory })])).toBeUndefined();
  });

  it("scores alone once closed", async () => {
    const second = (await ScoringHelper.start([files.int8])) as ScoringHelper;
    helpedAgainstAlone(files.int8, second);
    const alone = scoresOf(files.int8, localScorer);
    await second.close();
    expect(second.working).toBe(false);
    expect(scoresOf(files.int8, second)).toEqual(alone);
  });
});
