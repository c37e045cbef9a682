import { mkdir } from "node:fs/promises";
import { PGlite } from "@electric-sql/pglite";
import { createPgConfig } from "@electric-sql/pglite/node-postgres";
import pg from "pg";
import { type DirectoryLock, lockDirectory } from "../util/directory-lock.js";
import { SESSION_TIME_ZONE, typeParsers } from "./pg-types.js";
import { runQuery, TransactionScope } from "./transaction.js";
import type { Database, Queryable, QueryRows, StatementOptions } from "./types.js";

/**
 * Resident memory an embedded database (PGlite's WebAssembly PostgreSQL) adds to its process, for
 * memory estimates: created and migrated in a new folder (its initdb), as a build does, and opened
 * where it exists, as serve does (measured with an index's tables: 720 and 250 MiB).
 */
export const PGLITE_RESIDENT_BYTES = { created: 720 * 2 ** 20, opened: 250 * 2 ** 20 };

/**
 * Embedded PostgreSQL (PGlite) behind the same pg.Client that talks to a server, so results go
 * through the same type parsers. It is one long-lived pg.Client, not a pg.Pool: pg.Pool discards a
 * client after any failed query and makes a new one, and PGlite's node-postgres adapter shares one
 * connection object between them, so the replacement client received the old one's late messages
 * ("Connection terminated unexpectedly", then rows of the wrong query). PGlite has a single session
 * anyway; a mutex gives a transaction that session to itself.
 */
export class PgliteDatabase implements Database {
  readonly kind = "pglite" as const;
  readonly #lite: PGlite;
  readonly #client: pg.Client;
  readonly #lock: DirectoryLock;
  readonly #scope = new TransactionScope();
  #tail: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly location: string,
    lite: PGlite,
    client: pg.Client,
    lock: DirectoryLock,
  ) {
    this.#lite = lite;
    this.#client = client;
    this.#lock = lock;
  }

  /**
   * Opens the PGlite data directory (an absolute path; created and initialised if missing) after
   * taking its lock file: two processes on one directory silently lose committed rows.
   */
  static async open(dataDir: string): Promise<PgliteDatabase> {
    await mkdir(dataDir, { recursive: true });
    const lock = await lockDirectory(dataDir);
    let lite: PGlite;
    try {
      lite = await PGlite.create({ dataDir });
    } catch (err) {
      await lock.release();
      throw err;
    }
    try {
      const client = new pg.Client({ ...createPgConfig(lite), types: typeParsers });
      // The adapter reports failures of the embedded engine as `error` events; an unhandled one
      // would crash the process, while the pending query is rejected anyway.
      client.on("error", () => {});
      await client.connect();
      await client.query(`SET TimeZone TO '${SESSION_TIME_ZONE}'`);
      return new PgliteDatabase(dataDir, lite, client, lock);
    } catch (err) {
      await lite.close();
      await lock.release();
      throw err;
    }
  }

  async query<R extends object = Record<string, unknown>>(text: string, params?: readonly unknown[], options?: StatementOptions): Promise<QueryRows<R>> {
    this.#scope.assertOutside();
    return this.#exclusive(() => runQuery<R>(this.#client, text, params, options));
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    this.#scope.assertOutside();
    return this.#exclusive(() => this.#scope.run(this.#client, fn));
  }

  async close(): Promise<void> {
    await this.#exclusive(async () => {
      try {
        await this.#client.end();
        await this.#lite.close();
      } finally {
        await this.#lock.release();
      }
    });
  }

  /** Runs `task` after every earlier one has settled. */
  #exclusive<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(task);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}
