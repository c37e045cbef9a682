import type { Database } from "../db/index.js";
import { checkIndexNames } from "./index-names.js";
import type { IndexService } from "./index-service.js";
import type { InfluenceService } from "./influence-service.js";
import { ServerError } from "./errors.js";
import type { SequenceService } from "./sequence-service.js";

/** One served index: its services, over its own engine and database. */
export interface ServedIndex {
  name: string;
  influence: InfluenceService;
  sequences: SequenceService;
  info: IndexService;
  /** The index's database (connection failures turned into DATABASE_UNAVAILABLE), for /healthz. */
  db: Database;
}

/** The indexes one server serves, by name; the first is the default of every query that names none. */
export class IndexRegistry {
  readonly #byName: ReadonlyMap<string, ServedIndex>;

  constructor(readonly all: readonly ServedIndex[]) {
    checkIndexNames(all.map((index) => index.name));
    this.#byName = new Map(all.map((index) => [index.name, index]));
  }

  get default(): ServedIndex {
    return this.all[0];
  }

  /** The index called `name`, the default when absent; UNKNOWN_INDEX, naming the served ones, when there is none. */
  get(name?: string | null): ServedIndex {
    if (name == null) return this.default;
    const index = this.#byName.get(name);
    if (!index) {
      const served = this.all.map((i) => JSON.stringify(i.name)).join(", ");
      throw new ServerError("UNKNOWN_INDEX", `no index is named ${JSON.stringify(name)}; this server serves ${served}`);
    }
    return index;
  }
}
