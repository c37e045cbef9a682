import { type Database, getCorpus } from "../db/index.js";
import type { IndexInfo } from "../engine/types.js";

/**
 * The database id of the corpus the engine's index was built from, looked up on first use and
 * then kept: the server may start while the database is still down.
 */
export class CorpusRef {
  #id: Promise<number> | undefined;

  constructor(
    private readonly db: Database,
    private readonly corpus: IndexInfo["corpus"],
  ) {}

  id(): Promise<number> {
    this.#id ??= this.#lookUp().catch((err: unknown) => {
      this.#id = undefined; // retry on the next request
      throw err;
    });
    return this.#id;
  }

  async #lookUp(): Promise<number> {
    const { name, fingerprint } = this.corpus;
    const found = await getCorpus(this.db, name);
    if (!found) throw new Error(`corpus "${name}" of the index is not in the database at ${this.db.location}`);
    // Another corpus under the same name would attach the wrong texts to the index's ordinals.
    if (found.fingerprint !== fingerprint) {
      throw new Error(`corpus "${name}" in the database at ${this.db.location} has fingerprint ${found.fingerprint}, the index was built from ${fingerprint}`);
    }
    return found.id;
  }
}
