/**
 * Inner products of a query with stored rows of a vector file (the first tier's or the sketch's,
 * float32 or int8), by SimSIMD's vectorised kernels on the rows in place, shared memory or not:
 * nothing is gathered or copied. A query is prepared once for a file (rowQuery): cut at the
 * layout's blocks, and for int8 rows each block rounded to int8 with its own scale (indexer/int8.ts),
 * so that its products are exact integers and a block of small values keeps its precision beside a
 * block of large ones. Any coordinates can then be scored: whole rows, a layer's blocks, or the
 * sketch's coarse part.
 */
import { createRequire } from "node:module";
import { type CoordinateRange, rangesForLayers } from "../projection/vector-layout.js";
import { quantizeInt8 } from "./int8.js";
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

/** A stretch of the query within one block, in the element type of the file's rows, whose products are multiplied by `scale`. */
interface QueryPart {
  /** Where the stretch starts in a row. */
  offset: number;
  values: Float32Array | Int8Array;
  scale: number;
}

/** A query as a file's rows take it: parts covering its nonzero blocks, in coordinate order. */
export interface RowQuery {
  file: StoredVectors;
  parts: QueryPart[];
}

/**
 * Prepares `query` (the file's dim values) for the rows of `file`; blocks of zeros (layers left
 * out) are skipped. Float32 parts next to each other are joined: fewer calls, as many products.
 */
export function rowQuery(file: StoredVectors, query: Float32Array): RowQuery {
  if (query.length !== file.dim) throw new RangeError(`the query has ${query.length} values, the rows ${file.dim}`);
  const starts = [...new Set([0, ...file.layout.blocks.map((b) => b.offset), file.dim])].sort((a, b) => a - b);
  const parts: QueryPart[] = [];
  for (let i = 0; i + 1 < starts.length; i++) {
    for (let start = starts[i]; start < starts[i + 1]; start += INT8_PART_VALUES) {
      const end = Math.min(starts[i + 1], start + INT8_PART_VALUES);
      const values = query.subarray(start, end);
      if (file.elementType === "int8") {
        const rounded = new Int8Array(values.length);
        const scale = quantizeInt8(values, rounded);
        if (scale > 0) parts.push({ offset: start, values: rounded, scale });
        continue;
      }
      if (!values.some((v) => v !== 0)) continue;
      const last = parts.at(-1);
      if (last && last.offset + last.values.length === start) last.values = query.subarray(last.offset, end);
      else parts.push({ offset: start, values, scale: 1 });
    }
  }
  return { file, parts };
}

/** The query's parts restricted to `ranges` (sorted, disjoint), each range's products multiplied by `multipliers[i]` (default 1). */
function partsOver({ parts }: RowQuery, ranges: readonly CoordinateRange[], multipliers?: readonly number[]): QueryPart[] {
  const over: QueryPart[] = [];
  ranges.forEach(({ offset, size }, i) => {
    const multiplier = multipliers?.[i] ?? 1;
    for (const part of parts) {
      const from = Math.max(offset, part.offset);
      const to = Math.min(offset + size, part.offset + part.values.length);
      if (from < to) over.push({ offset: from, values: part.values.subarray(from - part.offset, to - part.offset), scale: part.scale * multiplier });
    }
  });
  return over;
}

/** The inner product of `parts` with row `row` (counted from the file's first row). */
function rowScore(file: StoredVectors, row: number, parts: readonly QueryPart[]): number {
  const base = row * file.dim;
  let sum = 0;
  for (const { offset, values, scale } of parts) sum += scale * inner(file.rows.subarray(base + offset, base + offset + values.length), values);
  return file.elementType === "int8" ? sum * file.scales[row] : sum;
}

/** The query's inner product with every row of its file, in ordinal order. */
export function scoreAllRows(query: RowQuery): Float32Array {
  return Float32Array.from({ length: query.file.count }, (_, row) => rowScore(query.file, row, query.parts));
}

/** The query's inner product with the rows of `ordinals`, in their order. */
export function scoreRows(query: RowQuery, ordinals: readonly number[]): Float32Array {
  return scoreRowRanges(query, [{ offset: 0, size: query.file.dim }], ordinals);
}

/**
 * The query's inner product with the rows of `ordinals` over some of their coordinates, `ranges`
 * (sorted, disjoint), each range's part multiplied by `multipliers[i]` (default 1).
 */
export function scoreRowRanges(
  query: RowQuery,
  ranges: readonly CoordinateRange[],
  ordinals: readonly number[],
  multipliers?: readonly number[],
): Float32Array {
  const { file } = query;
  const parts = partsOver(query, ranges, multipliers);
  return Float32Array.from(ordinals, (ordinal) => rowScore(file, ordinal - file.firstOrdinal, parts));
}

/** Per layer, the inner product restricted to that layer's blocks, of each row of `ordinals` ([row][layer]). */
export function layerScoresOfRows(query: RowQuery, ordinals: readonly number[], layers: readonly number[]): number[][] {
  const perLayer = layers.map((layer) => scoreRowRanges(query, rangesForLayers(query.file.layout, [layer]), ordinals));
  return ordinals.map((_, i) => perLayer.map((scores) => scores[i]));
}
