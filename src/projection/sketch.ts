/**
 * The index's second tier: a finer, unbiased sketch of every sequence's whitened gradient that
 * re-scores the vector search's candidates. The first tier's PCA basis ranks well for its size but
 * keeps only the energy of its top directions, and EK-FAC whitening spreads that energy nearly
 * evenly over tens of thousands of directions per matrix (docs/research/index-faithfulness.md), so
 * its scores run far below the exact ones. A random Kronecker projection scaled by sqrt(n/k)
 * (random-projection.ts) is unbiased instead: its inner products are the exact ones in expectation,
 * and exactly when it keeps a matrix whole.
 *
 * The sketch is sized by a budget of floats per sequence, shared evenly by the matrices; a matrix
 * that fits its share is kept whole, and the rest get near-square k_out x k_in within it.
 */
import type { ModuleFactors } from "../ekfac/factors.js";
import { inputWidth } from "../model/model.js";
import { hashSeed } from "../util/random.js";
import { type ModuleDims, type Projection, buildProjection } from "./projection.js";
import { type CoordinateRange, type ElementType, hasPieces, type LayoutBlock, type VectorLayout } from "./vector-layout.js";

export interface SketchSettings {
  /** Coordinates per sequence, over all matrices (named when every sketch was float32). */
  floats: number;
  /** How the sketches are stored; float32 when absent (indexes built before int8 sketches). */
  precision?: ElementType;
  /** Terms of the low-rank whitening scale. */
  rank: number;
  seed: number;
}

/** How sketches of these settings are stored: as they say, or float32 (indexes built before int8 sketches say nothing; none: no sketch). */
export const sketchPrecision = (settings?: Pick<SketchSettings, "precision"> | null): ElementType => settings?.precision ?? "float32";

/** The default budget: 128 KB per sequence (128 x 128 int8 coordinates per matrix on a 4-layer model). */
export const DEFAULT_SKETCH_FLOATS = 131_072;

/** What a build asks for; resolveSketch turns it into the settings the index records. */
export interface SketchRequest {
  /** Coordinates per sequence; with precision "auto", the bytes per sequence the sketch may take. */
  floats: number;
  /**
   * "auto": int8 when the whole gradient fits the budget (a rotation of it: the products exact but
   * for int8's rounding), signs of up to SIGNS_PER_BYTE times as many coordinates otherwise.
   */
  precision: ElementType | "auto";
  /** Terms of the whitening scale; by the precision when absent (SKETCH_SCALE_RANK). */
  rank?: number;
  seed: number;
}

/** A byte holds one int8 coordinate or eight signs. */
const SIGNS_PER_BYTE = 8;

/**
 * The whitening scale's terms when a build names none. Signs keep whole matrices, whose query
 * projection costs a matrix product per term: rank 2 halves rank 4's (29.9 against 40.9 ms a served
 * demo query) and ranks as well (Spearman 0.938 against 0.945), where rank 1 biases the scores
 * (median ratio 1.29; docs/research/index-faithfulness.md, section 14).
 */
const SKETCH_SCALE_RANK: Record<ElementType, number> = { float32: 4, int8: 4, sign: 2 };

/**
 * The sketch a request gives a model of these matrices (out x in+1). On the demo, signs of whole
 * matrices (66 KB a sequence) rank all sequences as exact scores do with Spearman 0.94, against
 * 0.81 for 128 x 128 int8 coordinates per matrix (128 KB; index-faithfulness.md, section 14).
 */
export function resolveSketch(request: SketchRequest, shapes: ReadonlyArray<{ out: number; in: number }>): SketchSettings {
  // sketchDims shares a budget evenly: it keeps every matrix whole from this many coordinates.
  const whole = shapes.length * Math.max(...shapes.map((s) => s.out * s.in));
  const precision = request.precision !== "auto" ? request.precision : whole <= request.floats ? "int8" : "sign";
  const floats = request.precision === "auto" && precision === "sign" ? Math.min(whole, SIGNS_PER_BYTE * request.floats) : request.floats;
  return { floats, precision, rank: request.rank ?? SKETCH_SCALE_RANK[precision], seed: request.seed };
}

/** Per matrix (out x in+1), the dims the budget gives it. */
export function sketchDims(shapes: ReadonlyArray<{ out: number; in: number }>, floats: number): ModuleDims[] {
  const share = Math.floor(floats / shapes.length);
  if (share < 1) throw new RangeError(`a sketch of ${floats} floats leaves no coordinate to each of ${shapes.length} matrices`);
  return shapes.map(({ out, in: nIn }) => {
    if (out * nIn <= share) return { kOut: out, kIn: nIn };
    const k = Math.floor(Math.sqrt(share));
    // A side narrower than k gives its spare to the other side.
    const kOut = Math.min(out, Math.max(k, Math.floor(share / nIn)));
    return { kOut, kIn: Math.min(nIn, Math.floor(share / kOut)) };
  });
}

/** Separates the sketch's random stream from a random first tier built with the same seed. */
const SKETCH_STREAM = 2;

/** The sketch's projection: random and unbiased, dims by sketchDims; its settings name the largest block. */
export async function buildSketch(factors: readonly ModuleFactors[], settings: SketchSettings): Promise<Projection> {
  const dims = sketchDims(
    factors.map((f) => ({ out: f.module.outFeatures, in: inputWidth(f.module) })),
    settings.floats,
  );
  const widest = (key: keyof ModuleDims) => Math.max(...dims.map((d) => d[key]));
  return buildProjection(
    factors,
    { kOut: widest("kOut"), kIn: widest("kIn"), rank: settings.rank, seed: hashSeed(settings.seed, SKETCH_STREAM), basis: "random" },
    undefined,
    dims,
  );
}

/**
 * A first pass (coarseSketch) keeps the leading quarter of every block's rows, but not fewer than
 * this many coordinates a block: on the demo, 32 x 128 a block loses nothing to one pass over
 * whole rows, 16 x 128 and 16 x 64 lose 0.16 and 0.24 of the top-10 overlap.
 */
const COARSE_SHARE = 4;
const COARSE_MIN_COORDINATES = 4096;

/** A coarser sketch inside a sketch: some of every block's coordinates, each block's scaled to stay unbiased. */
export interface CoarseSketch {
  /** Sorted, disjoint coordinate ranges of the sketch, one per block. */
  ranges: CoordinateRange[];
  /** Per range, what inner products over it are multiplied by. */
  scales: number[];
}

/**
 * The leading quarter of the kOut rows of every block (a block is [kOut, kIn], row-major; at least
 * COARSE_MIN_COORDINATES of it): those rows are a sketch of the matrix by the leading rows of its
 * random orthonormal left projection, so inner products over them, times kOut / rows, are unbiased
 * estimates too, from a quarter of the bytes. Undefined when that keeps every row of every block
 * (`minCoordinates` other than the default: for tests of small layouts). In a sketch stored coarse
 * part first (coarseFirstLayout), the pieces that hold each matrix's first rows, as stored: one
 * stretch from 0 (`minCoordinates` is then the build's, not this call's). A query re-scores its
 * many candidates by this, then the best by the whole sketch: on the demo (128 x 128 blocks), the
 * whole sketch over the best 100 of 1,000 by 32 x 128 answers as well as over all 1,000 (8.23 of
 * the exact top 10 over 30 queries; docs/research/index-faithfulness.md, section 8).
 */
export function coarseSketch(layout: VectorLayout, minCoordinates = COARSE_MIN_COORDINATES): CoarseSketch | undefined {
  const blocks = [...layout.blocks].sort((a, b) => a.offset - b.offset);
  // Stored coarse part first (coarseFirstLayout): the leading pieces are the coarse part, in place.
  if (hasPieces(layout)) {
    const leading = blocks.filter((b) => (b.firstRow ?? 0) === 0);
    return { ranges: leading.map((b) => ({ offset: b.offset, size: b.size })), scales: leading.map((b) => (b.matrixRows ?? b.kOut) / b.kOut) };
  }
  const rows = coarseRows(blocks, minCoordinates);
  if (blocks.every((b, i) => rows[i] === b.kOut)) return undefined;
  return {
    ranges: blocks.map((b, i) => ({ offset: b.offset, size: rows[i] * b.kIn })),
    scales: blocks.map((b, i) => b.kOut / rows[i]),
  };
}

/** Per block, the leading rows of the coarse part (coarseSketch). */
function coarseRows(blocks: readonly LayoutBlock[], minCoordinates: number): number[] {
  return blocks.map((b) => Math.min(b.kOut, Math.max(Math.ceil(b.kOut / COARSE_SHARE), Math.ceil(minCoordinates / b.kIn))));
}

/**
 * How a sketch of `layout` (a projection's: whole blocks) is stored: every block's coarse rows
 * first, one block after another, then the rest of every block's rows, so that a query's first
 * pass reads one stretch of each candidate's row (a quarter of it) instead of a stretch per block:
 * 1,000 rows of the demo's sketch in 2.8 ms against 6.8 (one inner product per row, not eight;
 * docs/research/index-faithfulness.md, section 10). A layout without a coarse part is kept.
 */
export function coarseFirstLayout(layout: VectorLayout, minCoordinates = COARSE_MIN_COORDINATES): VectorLayout {
  const blocks = [...layout.blocks].sort((a, b) => a.offset - b.offset);
  const rows = coarseRows(blocks, minCoordinates);
  if (blocks.every((b, i) => rows[i] === b.kOut)) return layout;
  const pieces: LayoutBlock[] = [];
  let offset = 0;
  const place = (b: LayoutBlock, firstRow: number, kOut: number) => {
    pieces.push({ name: b.name, layer: b.layer, offset, size: kOut * b.kIn, kOut, kIn: b.kIn, firstRow, matrixRows: b.kOut });
    offset += kOut * b.kIn;
  };
  blocks.forEach((b, i) => place(b, 0, rows[i]));
  blocks.forEach((b, i) => rows[i] < b.kOut && place(b, rows[i], b.kOut - rows[i]));
  return { blocks: pieces };
}
