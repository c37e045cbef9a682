/** The vector layout a projection produces: one block of kOut x kIn coordinates per MLP matrix. */
import type { VectorLayout } from "../indexer/vector-layout.js";
import type { Projection } from "./projection.js";

export function layoutOf(projection: Projection): VectorLayout {
  return {
    blocks: projection.modules.map((p) => ({ name: p.module.name, layer: p.module.layer, offset: p.offset, size: p.kOut * p.kIn, kOut: p.kOut, kIn: p.kIn })),
  };
}
