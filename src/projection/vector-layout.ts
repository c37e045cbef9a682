/**
 * Which coordinates of a projected gradient vector belong to which weight matrix ("block"), and
 * the masks that restrict an inner product to some transformer layers.
 */
import type { Projection } from "./projection.js";

/**
 * One weight matrix's slice of the vector, coordinates [offset, offset + size): its projected
 * gradient [kOut, kIn] row-major, or, in a piece (`firstRow` and `matrixRows` given), rows
 * [firstRow, firstRow + kOut) of the matrix's [matrixRows, kIn] (a sketch stored coarse part first).
 */
export interface LayoutBlock {
  name: string;
  layer: number;
  offset: number;
  size: number;
  kOut: number;
  kIn: number;
  firstRow?: number;
  matrixRows?: number;
}

export interface VectorLayout {
  blocks: LayoutBlock[];
}

/**
 * How a file stores vectors' values: float32, int8 with one float32 scale per vector, or signs (a
 * bit per value) with one float32 factor per vector (indexer/vector-file.ts).
 */
export type ElementType = "float32" | "int8" | "sign";

/** The layout a projection produces: one block of kOut x kIn coordinates per MLP matrix. */
export function layoutOf(projection: Projection): VectorLayout {
  return {
    blocks: projection.modules.map((p) => ({ name: p.module.name, layer: p.module.layer, offset: p.offset, size: p.kOut * p.kIn, kOut: p.kOut, kIn: p.kIn })),
  };
}

/** A contiguous coordinate range [offset, offset + size). */
export interface CoordinateRange {
  offset: number;
  size: number;
}

/** What is wrong with `layout` as the layout of `dim`-dimensional vectors, or undefined if nothing. */
export function layoutProblem(layout: unknown, dim: number): string | undefined {
  const blocks = (layout as VectorLayout | null)?.blocks;
  if (!Array.isArray(blocks)) return "layout has no blocks array";
  for (const [i, b] of blocks.entries()) {
    if (typeof b?.name !== "string") return `layout block ${i} has no name`;
    for (const key of ["layer", "offset", "size", "kOut", "kIn"] as const) {
      if (!Number.isSafeInteger(b[key]) || b[key] < 0) return `layout block ${b.name} has an invalid ${key} (${b[key]})`;
    }
    if (b.size === 0) return `layout block ${b.name} is empty`;
    const piece = pieceProblem(b);
    if (piece) return `layout block ${b.name} ${piece}`;
  }
  const rowsProblem = matrixRowsProblem(blocks);
  if (rowsProblem) return rowsProblem;
  // The blocks must tile [0, dim): sorted by offset, each starts where the previous one ends.
  let end = 0;
  for (const b of [...blocks].sort((x, y) => x.offset - y.offset)) {
    if (b.offset !== end) {
      return b.offset < end ? `layout block ${b.name} overlaps the previous block` : `layout leaves coordinates ${end}..${b.offset - 1} uncovered`;
    }
    end = b.offset + b.size;
  }
  if (end !== dim) return `layout blocks cover ${end} coordinates, but vectors have ${dim}`;
  return undefined;
}

/** Whether some block of `layout` is a piece of its matrix (a sketch stored coarse part first). */
export const hasPieces = (layout: VectorLayout): boolean => layout.blocks.some((b) => b.firstRow !== undefined);

/** What is wrong with a block's piece fields (both or neither; rows within the matrix; kOut x kIn values), or undefined. */
function pieceProblem(b: LayoutBlock): string | undefined {
  if (b.firstRow === undefined && b.matrixRows === undefined) return undefined;
  const { firstRow, matrixRows } = b;
  if (!Number.isSafeInteger(firstRow) || !Number.isSafeInteger(matrixRows) || (firstRow as number) < 0)
    return `is a piece without a valid firstRow and matrixRows (${firstRow}, ${matrixRows})`;
  if ((firstRow as number) + b.kOut > (matrixRows as number))
    return `holds rows ${firstRow}..${(firstRow as number) + b.kOut - 1} of a matrix of ${matrixRows}`;
  if (b.size !== b.kOut * b.kIn) return `holds ${b.size} coordinates, not ${b.kOut} x ${b.kIn}`;
  return undefined;
}

/** The pieces of one matrix must hold each of its rows once, all of the same width and layer. */
function matrixRowsProblem(blocks: readonly LayoutBlock[]): string | undefined {
  const byName = new Map<string, LayoutBlock[]>();
  for (const b of blocks) byName.set(b.name, [...(byName.get(b.name) ?? []), b]);
  for (const [name, parts] of byName) {
    if (parts.length === 1 && parts[0].firstRow === undefined) continue;
    if (parts.some((p) => p.firstRow === undefined)) return `layout block ${name} appears more than once`;
    const [{ matrixRows, kIn, layer }] = parts;
    if (parts.some((p) => p.matrixRows !== matrixRows || p.kIn !== kIn || p.layer !== layer))
      return `the pieces of layout block ${name} disagree on their matrix`;
    let row = 0;
    for (const p of [...parts].sort((x, y) => (x.firstRow as number) - (y.firstRow as number))) {
      if (p.firstRow !== row) return `the pieces of layout block ${name} do not hold rows 0..${(matrixRows as number) - 1} once each`;
      row += p.kOut;
    }
    if (row !== matrixRows) return `the pieces of layout block ${name} do not hold rows 0..${(matrixRows as number) - 1} once each`;
  }
  return undefined;
}

/** A stretch of values copied from one layout's coordinates to another's. */
export interface CoordinateMove {
  from: number;
  to: number;
  size: number;
}

/**
 * How to carry a vector of layout `from` into layout `to` (the same matrices, rows placed
 * differently: a projection's vector into a sketch stored coarse part first), as copies of
 * contiguous stretches; empty when the two place every row alike.
 */
export function layoutMoves(from: VectorLayout, to: VectorLayout): CoordinateMove[] {
  // Where each row of each matrix starts in `from`, and the matrix's row width.
  const rowStart = new Map<string, { kIn: number; starts: number[] }>();
  for (const b of from.blocks) {
    const matrix = rowStart.get(b.name) ?? { kIn: b.kIn, starts: [] };
    for (let r = 0; r < b.kOut; r++) matrix.starts[(b.firstRow ?? 0) + r] = b.offset + r * b.kIn;
    rowStart.set(b.name, matrix);
  }
  const moves: CoordinateMove[] = [];
  for (const b of [...to.blocks].sort((x, y) => x.offset - y.offset)) {
    const matrix = rowStart.get(b.name);
    if (matrix?.kIn !== b.kIn)
      throw new RangeError(`layout block ${b.name}: ${matrix ? `rows of ${matrix.kIn}, not ${b.kIn}` : "no such matrix"} in the layout it is moved from`);
    const { starts } = matrix;
    for (let r = 0; r < b.kOut; r++) {
      const from = starts[(b.firstRow ?? 0) + r];
      if (from === undefined) throw new RangeError(`layout block ${b.name}: row ${(b.firstRow ?? 0) + r} is not in the layout it is moved from`);
      const to = b.offset + r * b.kIn;
      const last = moves.at(-1);
      if (last && last.from + last.size === from && last.to + last.size === to) last.size += b.kIn;
      else moves.push({ from, to, size: b.kIn });
    }
  }
  return moves.length === 1 && moves[0].from === moves[0].to ? [] : moves;
}

/** Carries `values` (rows of `dim` coordinates, one or many) by `moves` (layoutMoves), in place, a row at a time. */
export function moveCoordinates(values: Float32Array, dim: number, moves: readonly CoordinateMove[]): void {
  if (moves.length === 0) return;
  const row = new Float32Array(dim);
  for (let base = 0; base < values.length; base += dim) {
    row.set(values.subarray(base, base + dim));
    for (const { from, to, size } of moves) values.set(row.subarray(from, from + size), base + to);
  }
}

/** What is wrong with `ranges` as sorted, disjoint, non-empty ranges within [0, dim), or undefined. */
export function rangesProblem(ranges: readonly CoordinateRange[], dim: number): string | undefined {
  if (ranges.length === 0) return "no coordinate ranges";
  let end = 0;
  for (const { offset, size } of ranges) {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(size) || size < 1 || offset < end) {
      return `coordinate range ${offset}+${size} is empty, unsorted or overlapping`;
    }
    end = offset + size;
  }
  return end > dim ? `coordinate ranges reach ${end}, beyond dimension ${dim}` : undefined;
}

/** Sorted, merged coordinate ranges of the blocks of the given layers. */
export function rangesForLayers(layout: VectorLayout, layers: Iterable<number>): CoordinateRange[] {
  const wanted = new Set(layers);
  const ranges: CoordinateRange[] = [];
  const blocks = layout.blocks.filter((b) => wanted.has(b.layer)).sort((x, y) => x.offset - y.offset);
  for (const b of blocks) {
    const last = ranges.at(-1);
    if (last && last.offset + last.size === b.offset) last.size += b.size;
    else ranges.push({ offset: b.offset, size: b.size });
  }
  return ranges;
}

/**
 * The query with every coordinate outside `ranges` set to zero: its inner product with a vector is
 * then the inner product restricted to those coordinates.
 */
export function maskQuery(query: Float32Array, ranges: readonly CoordinateRange[]): Float32Array {
  const masked = new Float32Array(query.length);
  for (const r of ranges) masked.set(query.subarray(r.offset, r.offset + r.size), r.offset);
  return masked;
}
