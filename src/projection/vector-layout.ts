/**
 * Which coordinates of a projected gradient vector belong to which weight matrix ("block"), and
 * the masks that restrict an inner product to some transformer layers.
 */
import type { Projection } from "./projection.js";

/** One weight matrix's slice of the vector: coordinates [offset, offset + size). */
export interface LayoutBlock {
  name: string;
  layer: number;
  offset: number;
  size: number;
  kOut: number;
  kIn: number;
}

export interface VectorLayout {
  blocks: LayoutBlock[];
}

/** How a file stores vectors' values: float32, or int8 with one float32 scale per vector (indexer/vector-file.ts). */
export type ElementType = "float32" | "int8";

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
  }
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
