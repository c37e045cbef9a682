/**
 * Inner products of a query with stored rows of a vector file (the first tier's or the sketch's,
 * float32, int8 or signs), by SimSIMD's vectorised kernels on the rows in place, shared memory or
 * not: nothing is gathered or copied. A query is prepared once for a file (rowQuery): cut at the
 * layout's blocks, and for int8 rows each block rounded to int8 with its own scale (indexer/int8.ts),
 * so that its products are exact integers and a block of small values keeps its precision beside a
 * block of large ones; for sign rows each stretch of blocks rounded to a few bits, as bit planes
 * (indexer/sign-bits.ts: the rounding is far below what signs resolve). Any coordinates can then be
 * scored: whole rows, a layer's blocks, or the sketch's coarse part.
 */
import { createRequire } from "node:module";
import { type CoordinateRange, rangesForLayers } from "../projection/vector-layout.js";
import { quantizeInt8 } from "./int8.js";
import { planesOver, signsPlane, stretchProduct } from "./sign-bits.js";
import { signBytes, signPlanes } from "./sign-kernels.js";
import type { StoredVectors } from "./vector-file.js";

/**
 * SimSIMD's CommonJS build: its ES module build looks for its binary by walking a stack trace,
 * which in the engine's worker threads (tsx's hooks registered through its API) never returns.
 */
const { inner } = createRequire(import.meta.url)("simsimd") as typeof import("simsimd");

/**
 * The most values of a query part: int8 products summed in int32 stay exact below
 * 2^31 / 127^2 = 133,143 values.
 */
const INT8_PART_VALUES = 1 << 17;

/**
 * A stretch of the query (within one block, but for float32 and sign rows), in the element type
 * of the file's rows, whose products are multiplied by `scale`: float32 or int8 values, or for
 * sign rows the bit planes of its rounded values (sign-bits.ts signPlanes).
 */
export interface QueryPart {
  /** Where the stretch starts in a row. */
  offset: number;
  values: Float32Array | Int8Array | Uint8Array;
  scale: number;
  /** Coordinates the stretch covers, where its values are not one per coordinate (sign planes: of its rounded values, or of its signs alone). */
  size?: number;
}

/** Products begun by a scorer: `finish` returns them, scoring on this thread whatever rows are left. */
export interface PendingScores {
  finish(): Float32Array;
}

/**
 * Who computes a query's products with many rows: this thread alone (localScorer), or this thread
 * and a helper thread (scoring-helper.ts). `begin` starts the products with `count` rows, and its
 * `finish` returns out[i] = the product with row `rows[i]` (counted from the file's first row; row i
 * when `rows` is absent). Between the two the caller may do other work (a helper scores meanwhile),
 * but not ask the same scorer for more.
 */
export interface RowScorer {
  begin(file: StoredVectors, parts: readonly QueryPart[], rows: Int32Array | undefined, count: number): PendingScores;
}

/** A query as a file's rows take it: parts covering its nonzero blocks (or the ranges it was restricted to), in coordinate order. */
export interface RowQuery {
  file: StoredVectors;
  /** The query as given, every coordinate. */
  values: Float32Array;
  parts: QueryPart[];
  /** Scores its rows; the queries made from it (rangesQuery, a layer's) keep it. */
  scorer: RowScorer;
}

/**
 * Prepares `query` (the file's dim values) for the rows of `file`; blocks of zeros (layers left
 * out) are skipped. Float32 and sign parts next to each other are joined: fewer calls, as many
 * products (a sign stretch is rounded with one scale: a sum over it errs by its largest block's
 * rounding, far below the signs' own error).
 */
export function rowQuery(file: StoredVectors, query: Float32Array, scorer: RowScorer = localScorer): RowQuery {
  if (query.length !== file.dim) throw new RangeError(`the query has ${query.length} values, the rows ${file.dim}`);
  const starts = [...new Set([0, ...file.layout.blocks.map((b) => b.offset), file.dim])].sort((a, b) => a - b);
  const parts: QueryPart[] = [];
  for (let i = 0; i + 1 < starts.length; i++) {
    const [start, end] = [starts[i], starts[i + 1]];
    if (file.elementType === "int8") {
      parts.push(...int8Parts(query.subarray(start, end), start));
      continue;
    }
    if (!query.subarray(start, end).some((v) => v !== 0)) continue;
    const last = parts.at(-1);
    if (last && last.offset + last.values.length === start) last.values = query.subarray(last.offset, end);
    else parts.push({ offset: start, values: query.subarray(start, end), scale: 1 });
  }
  return { file, values: query, parts: file.elementType === "sign" ? parts.flatMap((p) => signPart(p.values as Float32Array, p.offset)) : parts, scorer };
}

/**
 * The query restricted to `ranges` (sorted, disjoint), each range's values times `multipliers[i]`,
 * ranges that meet made one part, ranges of zeros left out. Against int8 rows such a part is rounded with one scale: a
 * stretch of many blocks then costs one product per row (the sketch's coarse part, stored first),
 * where rowQuery keeps a scale per block (a layer's score needs its blocks' own precision; a sum
 * over all of them errs by the largest block's rounding either way). A `firstPass`, which only picks
 * candidates for a finer pass, meets sign rows with the query's signs alone (sign-bits.ts signsPlane:
 * one popcount a row instead of six).
 */
export function rangesQuery(query: RowQuery, ranges: readonly CoordinateRange[], multipliers?: readonly number[], firstPass = false): RowQuery {
  // Ranges of zeros (layers left out) are left out, and break a stretch: its products would add nothing.
  const kept = ranges.map(({ offset, size }) => query.values.subarray(offset, offset + size).some((v) => v !== 0));
  const parts: QueryPart[] = [];
  for (let first = 0; first < ranges.length; ) {
    if (!kept[first]) {
      first++;
      continue;
    }
    let last = first;
    while (last + 1 < ranges.length && kept[last + 1] && ranges[last].offset + ranges[last].size === ranges[last + 1].offset) last++;
    const start = ranges[first].offset;
    const values = new Float32Array(ranges[last].offset + ranges[last].size - start);
    for (let r = first; r <= last; r++) {
      const { offset, size } = ranges[r];
      const multiplier = multipliers?.[r] ?? 1;
      for (let i = 0; i < size; i++) values[offset - start + i] = query.values[offset + i] * multiplier;
    }
    if (query.file.elementType === "int8") parts.push(...int8Parts(values, start));
    else if (query.file.elementType === "sign") parts.push(...(firstPass ? signsPart(values, start) : signPart(values, start)));
    else parts.push({ offset: start, values, scale: 1 });
    first = last + 1;
  }
  return { ...query, parts };
}

/** A stretch of query values starting at `offset`, rounded to int8 in parts an int32 sum holds, each with its own scale; none for zeros. */
function int8Parts(values: Float32Array, offset: number): QueryPart[] {
  const parts: QueryPart[] = [];
  for (let start = 0; start < values.length; start += INT8_PART_VALUES) {
    const stretch = values.subarray(start, start + INT8_PART_VALUES);
    const rounded = new Int8Array(stretch.length);
    const scale = quantizeInt8(stretch, rounded);
    if (scale > 0) parts.push({ offset: offset + start, values: rounded, scale });
  }
  return parts;
}

/** A stretch of query values starting at `offset` as sign rows take it: its bit planes (none for zeros). */
function signPart(values: Float32Array, offset: number): QueryPart[] {
  const rounded = signPlanes(values, offset);
  return rounded ? [{ offset, values: rounded.planes, scale: rounded.scale, size: values.length }] : [];
}

/** A stretch of query values starting at `offset` as its signs alone (none for zeros). */
function signsPart(values: Float32Array, offset: number): QueryPart[] {
  const signs = signsPlane(values, offset);
  return signs ? [{ offset, values: signs.plane, scale: signs.factor, size: values.length }] : [];
}

/** The query's parts restricted to `ranges` (sorted, disjoint), each keeping its scale. */
function partsOver({ file, parts }: RowQuery, ranges: readonly CoordinateRange[]): QueryPart[] {
  const over: QueryPart[] = [];
  for (const { offset, size } of ranges) {
    for (const part of parts) {
      const from = Math.max(offset, part.offset);
      const to = Math.min(offset + size, part.offset + (part.size ?? part.values.length));
      if (from >= to) continue;
      over.push(
        file.elementType === "sign"
          ? { offset: from, values: planesOver(part.values as Uint8Array, part.offset, from, to), scale: part.scale, size: to - from }
          : { offset: from, values: part.values.subarray(from - part.offset, to - part.offset), scale: part.scale },
      );
    }
  }
  return over;
}

/** The inner product of `parts` with row `row` (counted from the file's first row). */
function rowScore(file: StoredVectors, row: number, parts: readonly QueryPart[]): number {
  let sum = 0;
  if (file.elementType === "sign") {
    const bytes = signBytes(file.dim);
    const bits = file.rows.subarray(row * bytes, (row + 1) * bytes);
    for (const { offset, values, scale, size } of parts) sum += scale * stretchProduct(bits, offset, size ?? 0, values as Uint8Array);
    return sum * file.scales[row];
  }
  const base = row * file.dim;
  for (const { offset, values, scale } of parts) sum += scale * inner(file.rows.subarray(base + offset, base + offset + values.length), values as Float32Array);
  return file.elementType === "int8" ? sum * file.scales[row] : sum;
}

/** out[i] for i in [from, to), as a RowScorer's `finish` returns it: what each thread of a scorer computes of its share. */
export function scoreRowsInto(
  file: StoredVectors,
  parts: readonly QueryPart[],
  rows: Int32Array | undefined,
  out: Float32Array,
  from: number,
  to: number,
): void {
  for (let i = from; i < to; i++) out[i] = rowScore(file, rows ? rows[i] : i, parts);
}

/** Every product on this thread, when finished. */
export const localScorer: RowScorer = {
  begin: (file, parts, rows, count) => ({
    finish: () => {
      const out = new Float32Array(count);
      scoreRowsInto(file, parts, rows, out, 0, count);
      return out;
    },
  }),
};

/** Begins the query's inner product with every row of its file, in ordinal order. */
export const beginAllRows = (query: RowQuery): PendingScores => query.scorer.begin(query.file, query.parts, undefined, query.file.count);

/** The query's inner product with every row of its file, in ordinal order. */
export const scoreAllRows = (query: RowQuery): Float32Array => beginAllRows(query).finish();

/** Begins the query's inner product with the rows of `ordinals`, in their order. */
export function beginRows(query: RowQuery, ordinals: readonly number[]): PendingScores {
  const { file, parts } = query;
  const rows = Int32Array.from(ordinals, (ordinal) => ordinal - file.firstOrdinal);
  return query.scorer.begin(file, parts, rows, rows.length);
}

/** The query's inner product with the rows of `ordinals`, in their order. */
export const scoreRows = (query: RowQuery, ordinals: readonly number[]): Float32Array => beginRows(query, ordinals).finish();

/** Per layer, the inner product restricted to that layer's blocks, of each row of `ordinals` ([row][layer]). */
export function layerScoresOfRows(query: RowQuery, ordinals: readonly number[], layers: readonly number[]): number[][] {
  const perLayer = layers.map((layer) => scoreRows({ ...query, parts: partsOver(query, rangesForLayers(query.file.layout, [layer])) }, ordinals));
  return ordinals.map((_, i) => perLayer.map((scores) => scores[i]));
}
