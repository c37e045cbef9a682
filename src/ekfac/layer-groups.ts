/**
 * Groups of consecutive layers for a fit that does not fit in memory all at once: each group runs
 * its own covariance pass, eigendecompositions and Lambda pass for its layers' modules only, so
 * that only one group's factors are in memory at a time. A module's factors depend on its own
 * captures alone, so a grouped fit gives the bits of a fit of all layers at once.
 */
import type { TrackedModule } from "../model/model.js";

/** Layers firstLayer..lastLayer, and their modules: [first, first + count) of the model's list. */
export interface LayerGroup {
  firstLayer: number;
  lastLayer: number;
  first: number;
  count: number;
}

/** "layers 7-13", or "layer 21". */
export const groupLayers = (g: LayerGroup): string => (g.firstLayer === g.lastLayer ? `layer ${g.firstLayer}` : `layers ${g.firstLayer}-${g.lastLayer}`);

/** The group's modules. */
export const groupModules = (modules: readonly TrackedModule[], g: LayerGroup): TrackedModule[] => modules.slice(g.first, g.first + g.count);

/**
 * The modules' layers in `groups` groups of consecutive layers, as even as can be (the first
 * groups one layer larger when the layers do not divide evenly). The modules must be in layer
 * order, as every architecture lists them.
 */
export function layerGroups(modules: readonly TrackedModule[], groups: number): LayerGroup[] {
  const layers = [...new Set(modules.map((m) => m.layer))];
  if (modules.some((m, i) => i > 0 && m.layer < modules[i - 1].layer)) throw new Error("the tracked modules are not in layer order");
  if (!Number.isInteger(groups) || groups < 1 || groups > layers.length) throw new RangeError(`cannot cut ${layers.length} layers into ${groups} groups`);
  const out: LayerGroup[] = [];
  let next = 0;
  for (let g = 0; g < groups; g++) {
    const size = Math.floor(layers.length / groups) + (g < layers.length % groups ? 1 : 0);
    const [firstLayer, lastLayer] = [layers[next], layers[next + size - 1]];
    next += size;
    const first = modules.findIndex((m) => m.layer === firstLayer);
    const end = modules.findLastIndex((m) => m.layer === lastLayer) + 1;
    out.push({ firstLayer, lastLayer, first, count: end - first });
  }
  return out;
}

/** "7-13": the group's layers as a fit's checkpoint records them. */
export const groupRange = (g: LayerGroup): string => `${g.firstLayer}-${g.lastLayer}`;
