/**
 * Inner products of a query with stored rows of a vector file (the first tier's or the sketch's,
 * float32 or int8), on the compute engine: a few dozen milliseconds for a thousand 32,768-float
 * rows, where a JavaScript loop takes several times as long.
 */
import { int8MatMul, matMul } from "../runtime/kernels.js";
import { type CoordinateRange, rangesForLayers, valuesOfRanges } from "../projection/vector-layout.js";
import type { StoredVectors } from "./vector-file.js";

type Values = Float32Array | Int8Array;

/** What a row's stored values are multiplied by: its scale in an int8 file, else 1. */
const scaleOf = (file: StoredVectors, ordinal: number): number => (file.elementType === "int8" ? file.scales[ordinal - file.firstOrdinal] : 1);

/** An array for `length` values of the file's element type. */
const valuesLike = (file: StoredVectors, length: number): Values => (file.elementType === "int8" ? new Int8Array(length) : new Float32Array(length));

/**
 * Rows are gathered into blocks of about this many bytes (as float32, which an int8 block becomes
 * inside the product): a query's memory stays small whatever its candidates, and a block is still
 * in cache when the product reads it (1,000 demo sketches, one thread, on a busy machine: 17-24 ms
 * in blocks of 4 MB, 22-55 ms in blocks of 16 MB; 1,000 int8 rows of 32,768, quiet: 11.4 ms in
 * blocks of 4 MB as float32, 12.6 ms in 2 MB, 14.6 ms in 16 MB).
 */
const GATHER_BYTES = 4 << 20;

/** Whole rows in a block of about GATHER_BYTES (at least one). */
const blockRowsOf = (dim: number): number => Math.max(1, Math.floor(GATHER_BYTES / (dim * 4)));

/** The query's inner products with the rows of `block` (stored values of the file's rows `ordinals`, `query.length` each), scaled. */
async function blockScores(file: StoredVectors, block: Values, ordinals: ArrayLike<number>, query: Float32Array): Promise<Float32Array> {
  const n = ordinals.length;
  const dims = [n, query.length];
  const b = { data: query, dims: [query.length, 1] };
  if (block instanceof Float32Array) return matMul({ data: block, dims }, b);
  const products = await int8MatMul({ data: block, dims }, b);
  for (let i = 0; i < n; i++) products[i] *= scaleOf(file, ordinals[i]);
  return products;
}

/**
 * The query's inner product with every row, in ordinal order, one product per block of rows. The
 * compute engine reads ordinary memory only (runtime/kernels.ts): rows in shared memory (those of
 * an index served by several workers) are copied into one block, reused, the rest read in place.
 */
export async function scoreAllRows(file: StoredVectors, query: Float32Array): Promise<Float32Array> {
  const { dim, count, rows, firstOrdinal } = file;
  const blockRows = blockRowsOf(dim);
  const copy = rows.buffer instanceof SharedArrayBuffer ? valuesLike(file, Math.min(blockRows, count) * dim) : undefined;
  const scores = new Float32Array(count);
  for (let start = 0; start < count; start += blockRows) {
    const end = Math.min(count, start + blockRows);
    let block = rows.subarray(start * dim, end * dim);
    if (copy) {
      copy.set(block);
      block = copy.subarray(0, block.length);
    }
    const ordinals = Array.from({ length: end - start }, (_, i) => firstOrdinal + start + i);
    scores.set(await blockScores(file, block, ordinals, query), start);
  }
  return scores;
}

/** The query's inner product with the rows of `ordinals`, in their order (gathered block by block, one product per block). */
export function scoreRows(file: StoredVectors, query: Float32Array, ordinals: readonly number[]): Promise<Float32Array> {
  return scoreRowRanges(file, [{ offset: 0, size: file.dim }], query, ordinals);
}

/**
 * The query's inner product with the rows of `ordinals` over some of their coordinates, `ranges`
 * (sorted, disjoint), whose values `query` holds back to back: each row's ranges are gathered into
 * one compact row, block by block, one product per block.
 */
export async function scoreRowRanges(
  file: StoredVectors,
  ranges: readonly CoordinateRange[],
  query: Float32Array,
  ordinals: readonly number[],
): Promise<Float32Array> {
  const width = query.length;
  if (ranges.reduce((sum, r) => sum + r.size, 0) !== width) throw new RangeError(`the query has ${width} values, the ranges other sizes`);
  const blockRows = blockRowsOf(width);
  const gathered = valuesLike(file, Math.min(blockRows, ordinals.length) * width);
  // Copied as bytes between two views made once: a typed-array view per range and row costs more than its copy.
  const { rows, dim, firstOrdinal } = file;
  const bytes = rows.BYTES_PER_ELEMENT;
  const source = Buffer.from(rows.buffer, rows.byteOffset, rows.byteLength);
  const target = Buffer.from(gathered.buffer, gathered.byteOffset, gathered.byteLength);
  const scores = new Float32Array(ordinals.length);
  for (let start = 0; start < ordinals.length; start += blockRows) {
    const block = ordinals.slice(start, start + blockRows);
    block.forEach((ordinal, i) => {
      const row = (ordinal - firstOrdinal) * dim;
      let at = i * width;
      for (const { offset, size } of ranges) {
        source.copy(target, at * bytes, (row + offset) * bytes, (row + offset + size) * bytes);
        at += size;
      }
    });
    scores.set(await blockScores(file, gathered.subarray(0, block.length * width), block, query), start);
  }
  return scores;
}

/** Per layer, the inner product restricted to that layer's blocks, of each row of `ordinals` ([row][layer]; one product per layer). */
export async function layerScoresOfRows(file: StoredVectors, query: Float32Array, ordinals: readonly number[], layers: readonly number[]): Promise<number[][]> {
  const perLayer: Float32Array[] = [];
  for (const layer of layers) {
    const ranges = rangesForLayers(file.layout, [layer]);
    perLayer.push(await scoreRowRanges(file, ranges, valuesOfRanges(query, ranges), ordinals));
  }
  return ordinals.map((_, i) => perLayer.map((scores) => scores[i]));
}
