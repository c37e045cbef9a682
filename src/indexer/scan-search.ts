/**
 * The first tier searched by reading every row, rounded to int8, instead of by HNSW. On a small
 * index this is both faster and closer to the float32 ranking: the demo's 6,000 rows of 2,048
 * coordinates are 12 MB in int8, scanned in about 1.2 ms (SimSIMD, one thread), where HNSW's 1,000
 * candidates cost about 6 ms and keep 963 of the first tier's true 1,000 best, the scan 993 (its
 * rounding swaps near ties; docs/research/index-faithfulness.md, section 11). HNSW's cost grows
 * with the log of the rows, a scan's with their number: past SCAN_MAX_VALUES the index is searched
 * by HNSW. The int8 copy is made when the index is opened (a quarter of the float32 rows'
 * memory); its scores only choose the candidates, which the sketch or the float32 rows then score.
 */
import type { CoordinateRange } from "../projection/vector-layout.js";
import { type Allocate, float32Array } from "../util/allocate.js";
import { type SearchHits, TopK } from "./exact-search.js";
import { quantizeInt8 } from "./int8.js";
import { type RowScorer, beginAllRows, beginRows, localScorer, rangesQuery, rowQuery } from "./row-scores.js";
import type { VectorFileRecord } from "./index-manifest.js";
import type { QuantizedVectorFile, VectorFile } from "./vector-file.js";

/**
 * The most coordinates (rows x dim) a first tier is scanned at: 64 M int8 values, about 6 ms a
 * scan on the machine of section 11, about what HNSW takes for 1,000 candidates.
 */
export const SCAN_MAX_VALUES = 64 * 2 ** 20;

/** Whether a first tier of `count` rows of `dim` coordinates is scanned rather than searched by HNSW. */
export const scansFirstTier = ({ count, dim }: Pick<VectorFileRecord, "count" | "dim">): boolean => count * dim <= SCAN_MAX_VALUES;

/** Bytes of the int8 copy a scanned first tier is held in (a scale and dim values per row); 0 for one searched by HNSW. */
export const scanCopyBytes = (record: Pick<VectorFileRecord, "count" | "dim">): number => (scansFirstTier(record) ? record.count * (4 + record.dim) : 0);

/** The rows of `file` rounded to int8, one scale per row, in memory from `allocate`. */
export function scanCopy(file: VectorFile, allocate: Allocate): QuantizedVectorFile {
  const { dim, count } = file;
  const rows = new Int8Array(allocate(count * dim));
  const scales = float32Array(allocate, count);
  for (let r = 0; r < count; r++) scales[r] = quantizeInt8(file.rows.subarray(r * dim, (r + 1) * dim), rows.subarray(r * dim, (r + 1) * dim));
  const { elementType: _float32, rows: _rows, ...meta } = file;
  return { ...meta, elementType: "int8", rows, scales };
}

/** A scan begun (its products running on the scorer's helper while the caller does other work); `topK` finishes it. */
export interface PendingScan {
  topK(k: number): SearchHits;
}

/**
 * Begins the scan of `copy` for the rows with the largest inner product with `query` over `ranges`
 * (a layer filter's blocks, or every coordinate), among the rows of `allowed` when given
 * (ordinals); scores are the int8 rows' (ties: lower ordinal first), by `scorer`.
 */
export function beginScan(
  copy: QuantizedVectorFile,
  query: Float32Array,
  ranges: readonly CoordinateRange[],
  allowed?: readonly number[],
  scorer: RowScorer = localScorer,
): PendingScan {
  // One stretch, one scale: a product per row (row-scores.ts).
  const stretch = rangesQuery(rowQuery(copy, query, scorer), ranges);
  const held = allowed?.filter((o) => o >= copy.firstOrdinal && o < copy.firstOrdinal + copy.count);
  const pending = held ? beginRows(stretch, held) : beginAllRows(stretch);
  return {
    topK: (k) => {
      const scores = pending.finish();
      const best = new TopK(Math.min(k, held?.length ?? copy.count));
      scores.forEach((score, i) => best.offer(score, held ? held[i] : copy.firstOrdinal + i));
      return best.sorted();
    },
  };
}
