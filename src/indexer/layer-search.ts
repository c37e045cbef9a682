/**
 * Layer-restricted search: the inner product over the coordinates of some transformer layers.
 *
 * Masking the query (zeroing the other layers) and searching the full-vector graph works when the
 * kept coordinates are a large share of the vector, but the graph's neighbourhoods are those of
 * whole vectors, and recall drops as the share shrinks and the corpus grows. Measured on 256-dim
 * clustered vectors with 8 layers (a shared plus a per-layer cluster component; M 16,
 * efConstruction 200), recall@10 of the masked query on the full index at ef 100 / 200 / 400:
 * one layer, 20k vectors: 0.86 / 0.94 / 0.97 (5k: 0.93 / 0.98 / 1.00); two layers, 20k: 0.92 /
 * 0.98 / 0.99; four layers, 20k: 1.00 at ef 100. An index built on one layer's coordinates reached
 * 0.998 at ef 100 (20k). Merging per-layer candidates for a multi-layer query did not work (recall
 * 0.4-0.8 with 10-40 candidates per layer): the top of a sum is not in the tops of its terms.
 *
 * So: a restriction that some index covers exactly (a per-layer index) uses that index; any other
 * searches the full index with the masked query and ef multiplied by dim / (kept coordinates):
 * at 20k that gave 0.997 (one layer, ef 800), 0.991 (two, ef 400), 0.999 (four, ef 200).
 */
import { existsSync } from "node:fs";
import {
  buildHnsw,
  openHnsw,
  type HnswBuildOptions,
  type HnswIndex,
  type HnswSidecar,
  type HnswSource,
  type OpenHnswOptions,
  type SearchOptions,
} from "./hnsw-index.js";
import type { SearchHits } from "./exact-search.js";
import { maskQuery, rangesForLayers, type CoordinateRange, type VectorLayout } from "../projection/vector-layout.js";

/** Where the per-layer index of `layer` lives, beside the full index at `path`. */
export const layerIndexPath = (path: string, layer: number): string => `${path}.layer-${layer}`;

/** The transformer layers of a vector layout, ascending: each has its own index. */
export const layersOf = (layout: VectorLayout): number[] => [...new Set(layout.blocks.map((b) => b.layer))].sort((a, b) => a - b);
const rangesKey = (ranges: readonly CoordinateRange[]): string => ranges.map((r) => `${r.offset}+${r.size}`).join(",");

/** Builds the index of one layer's coordinates, beside the full index at `path` (each build keeps a core busy). */
export function buildLayerIndex(
  path: string,
  source: HnswSource,
  layout: VectorLayout,
  layer: number,
  options: Omit<HnswBuildOptions, "coordinates"> = {},
): Promise<HnswSidecar> {
  return buildHnsw(layerIndexPath(path, layer), source, { ...options, coordinates: rangesForLayers(layout, [layer]) });
}

export interface LayerSearchOptions extends SearchOptions {
  /** Restrict the inner product to these layers; all when absent. */
  layers?: readonly number[];
}

/** How a restricted query is answered; see the module comment. */
export interface SearchPlan {
  index: HnswIndex;
  /** The query to give it (masked when the full index answers a restriction). */
  query: Float32Array;
  ef: number;
}

/** The full index plus any per-layer indexes, choosing between them per query. */
export class IndexSet {
  private readonly dedicated = new Map<string, HnswIndex>();

  constructor(
    readonly full: HnswIndex,
    private readonly layout: VectorLayout,
    layerIndexes: readonly HnswIndex[] = [],
  ) {
    for (const index of layerIndexes) this.dedicated.set(rangesKey(index.info.coordinates), index);
  }

  plan(query: Float32Array, options: LayerSearchOptions = {}): SearchPlan {
    const ef = options.ef ?? this.full.ef;
    if (!options.layers) return { index: this.full, query, ef };
    const ranges = rangesForLayers(this.layout, options.layers);
    const kept = ranges.reduce((sum, r) => sum + r.size, 0);
    if (kept === 0) throw new RangeError(`the vector layout has none of the layers ${options.layers.join(", ")}`);
    const dedicated = this.dedicated.get(rangesKey(ranges));
    if (dedicated) return { index: dedicated, query, ef: options.ef ?? dedicated.ef };
    const dim = this.full.info.dim;
    // Candidate lists longer than the index are no use.
    const scaledEf = Math.min(Math.ceil((ef * dim) / kept), Math.max(ef, this.full.info.count));
    return { index: this.full, query: kept === dim ? query : maskQuery(query, ranges), ef: scaledEf };
  }

  /** Top k by the inner product over the chosen layers' coordinates. */
  search(query: Float32Array, k: number, options: LayerSearchOptions = {}): SearchHits {
    const plan = this.plan(query, options);
    return plan.index.search(plan.query, k, { ef: plan.ef, filter: options.filter });
  }
}

/** Opens the full index at `path` and every per-layer index found beside it. */
export async function openIndexSet(path: string, options: OpenHnswOptions & { layout: VectorLayout }): Promise<IndexSet> {
  const full = await openHnsw(path, options);
  const layerIndexes: HnswIndex[] = [];
  for (const layer of layersOf(options.layout)) {
    const layerPath = layerIndexPath(path, layer);
    if (existsSync(`${layerPath}.json`)) layerIndexes.push(await openHnsw(layerPath, options));
  }
  return new IndexSet(full, options.layout, layerIndexes);
}
