/**
 * Inner products of a query with stored rows of a vector file (the first tier's or the sketch's),
 * on the compute engine: a few dozen milliseconds for a thousand 32,768-float rows, where a
 * JavaScript loop takes several times as long.
 */
import { matMul } from "../runtime/kernels.js";
import { type VectorLayout, rangesForLayers } from "../projection/vector-layout.js";
import type { VectorFile } from "./vector-file.js";

/** Row of `ordinal`, a view into the file's rows. */
export function rowOf(file: VectorFile, ordinal: number): Float32Array {
  const { dim, firstOrdinal, rows } = file;
  return rows.subarray((ordinal - firstOrdinal) * dim, (ordinal - firstOrdinal + 1) * dim);
}

/**
 * Rows are gathered into blocks of about this many bytes: a query's memory stays small whatever its
 * candidates, and a block is still in cache when the product reads it (1,000 demo sketches, one
 * thread, on a busy machine: 17-24 ms in blocks of 4 MB, 22-55 ms in blocks of 16 MB).
 */
const GATHER_BYTES = 4 << 20;

/** Whole rows in a block of about GATHER_BYTES (at least one). */
const blockRowsOf = (dim: number): number => Math.max(1, Math.floor(GATHER_BYTES / (dim * 4)));

/**
 * The query's inner product with every row, in ordinal order, one product per block of rows. The
 * compute engine reads ordinary memory only (runtime/kernels.ts): rows in shared memory (those of
 * an index served by several workers) are copied into one block, reused, the rest read in place.
 */
export async function scoreAllRows(file: VectorFile, query: Float32Array): Promise<Float32Array> {
  const { dim, count, rows } = file;
  const blockRows = blockRowsOf(dim);
  const copy = rows.buffer instanceof SharedArrayBuffer ? new Float32Array(Math.min(blockRows, count) * dim) : undefined;
  const scores = new Float32Array(count);
  for (let start = 0; start < count; start += blockRows) {
    const end = Math.min(count, start + blockRows);
    let block = rows.subarray(start * dim, end * dim);
    if (copy) {
      copy.set(block);
      block = copy.subarray(0, block.length);
    }
    scores.set(await matMul({ data: block, dims: [end - start, dim] }, { data: query, dims: [dim, 1] }), start);
  }
  return scores;
}

/** The query's inner product with the rows of `ordinals`, in their order (gathered block by block, one product per block). */
export async function scoreRows(file: VectorFile, query: Float32Array, ordinals: readonly number[]): Promise<Float32Array> {
  const { dim } = file;
  const blockRows = blockRowsOf(dim);
  const gathered = new Float32Array(Math.min(blockRows, ordinals.length) * dim);
  const scores = new Float32Array(ordinals.length);
  for (let start = 0; start < ordinals.length; start += blockRows) {
    const block = ordinals.slice(start, start + blockRows);
    block.forEach((ordinal, i) => gathered.set(rowOf(file, ordinal), i * dim));
    scores.set(await matMul({ data: gathered.subarray(0, block.length * dim), dims: [block.length, dim] }, { data: query, dims: [dim, 1] }), start);
  }
  return scores;
}

/** Per layer, the inner product restricted to that layer's blocks, of each row of `ordinals`. */
export function layerScoresOfRows(
  file: VectorFile & { layout: VectorLayout },
  query: Float32Array,
  ordinals: readonly number[],
  layers: readonly number[],
): number[][] {
  const ranges = layers.map((layer) => rangesForLayers(file.layout, [layer]));
  return ordinals.map((ordinal) => {
    const row = rowOf(file, ordinal);
    return ranges.map((layerRanges) => {
      let score = 0;
      for (const r of layerRanges) for (let i = r.offset; i < r.offset + r.size; i++) score += query[i] * row[i];
      return score;
    });
  });
}
