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

/** The query's inner product with every row, in ordinal order. */
export function scoreAllRows(file: VectorFile, query: Float32Array): Promise<Float32Array> {
  return matMul({ data: file.rows, dims: [file.count, file.dim] }, { data: query, dims: [file.dim, 1] });
}

/**
 * Rows are gathered into blocks of about this many bytes: a query's memory stays small whatever its
 * candidates, and a block is still in cache when the product reads it (1,000 demo sketches, one
 * thread, on a busy machine: 17-24 ms in blocks of 4 MB, 22-55 ms in blocks of 16 MB).
 */
const GATHER_BYTES = 4 << 20;

/** The query's inner product with the rows of `ordinals`, in their order (gathered block by block, one product per block). */
export async function scoreRows(file: VectorFile, query: Float32Array, ordinals: readonly number[]): Promise<Float32Array> {
  const { dim } = file;
  const blockRows = Math.max(1, Math.floor(GATHER_BYTES / (dim * 4)));
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
