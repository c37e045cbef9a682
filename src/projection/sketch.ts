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

export interface SketchSettings {
  /** Floats per sequence, over all matrices. */
  floats: number;
  /** Terms of the low-rank whitening scale. */
  rank: number;
  seed: number;
}

/** The default budget: 64 x 64 per matrix on a 4-layer model (8 matrices); 128 KB per sequence in float32. */
export const DEFAULT_SKETCH_FLOATS = 32_768;

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
