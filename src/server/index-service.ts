import type { Database } from "../db/index.js";
import type { IndexInfo, InfluenceEngine } from "../engine/types.js";
import { type BuildProgress, buildsProgress } from "../jobs/distributed/status.js";

export interface LayerModules {
  layer: number;
  modules: IndexInfo["modules"];
}

/** An index's info and the name it is served under. */
export type NamedIndexInfo = IndexInfo & { name: string };

/** What the index was built from and how (from the engine, which loaded it), and builds in its database. */
export class IndexService {
  constructor(
    private readonly name: string,
    private readonly engine: InfluenceEngine,
    private readonly db: Database,
  ) {}

  info(): NamedIndexInfo {
    return { name: this.name, ...this.engine.info() };
  }

  /** The index's layers in order, each with its MLP modules. */
  layers(): LayerModules[] {
    const { layers, modules } = this.engine.info();
    return [...layers].sort((a, b) => a - b).map((layer) => ({ layer, modules: modules.filter((m) => m.layer === layer) }));
  }

  /** Distributed builds planned in the index's database (none when it is the index's own PGlite). */
  builds(id?: number): Promise<BuildProgress[]> {
    return buildsProgress(this.db, id);
  }
}
