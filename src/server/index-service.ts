import type { IndexInfo, InfluenceEngine } from "../engine/types.js";

export interface LayerModules {
  layer: number;
  modules: IndexInfo["modules"];
}

/** What the index was built from and how (from the engine, which loaded it). */
export class IndexService {
  constructor(private readonly engine: InfluenceEngine) {}

  info(): IndexInfo {
    return this.engine.info();
  }

  /** The index's layers in order, each with its MLP modules. */
  layers(): LayerModules[] {
    const { layers, modules } = this.engine.info();
    return [...layers].sort((a, b) => a - b).map((layer) => ({ layer, modules: modules.filter((m) => m.layer === layer) }));
  }
}
