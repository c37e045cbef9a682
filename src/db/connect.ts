import path from "node:path";
import { InputError } from "../util/errors.js";
import { PgliteDatabase } from "./pglite-database.js";
import { PoolDatabase, type PoolOptions } from "./pool-database.js";
import type { Database } from "./types.js";

export interface OpenDatabaseOptions extends PoolOptions {
  /** postgres:// or postgresql:// URL of a PostgreSQL server (15 or newer). */
  url?: string;
  /** Directory of the embedded PGlite database, e.g. `<index>/db`; created if missing. */
  dataDir?: string;
}

/**
 * Opens the database: a PostgreSQL server when `url` is given, otherwise PGlite in `dataDir`, locked
 * against a second process. Give exactly one of the two. Run `migrate` before use.
 */
export async function openDatabase(opts: OpenDatabaseOptions): Promise<Database> {
  const { url, dataDir, ...poolOptions } = opts;
  if (url !== undefined && dataDir !== undefined) throw new InputError("give either a database URL or a data directory, not both");
  if (url !== undefined) return openPool(url, poolOptions);
  if (dataDir === undefined || dataDir === "") throw new InputError("no database: give a PostgreSQL URL or a PGlite data directory");
  return PgliteDatabase.open(path.resolve(dataDir));
}

async function openPool(url: string, options: PoolOptions): Promise<Database> {
  if (!/^postgres(ql)?:\/\//.test(url)) throw new InputError("database URL must start with postgres:// or postgresql://");
  const db = new PoolDatabase(url, options);
  try {
    await db.query("SELECT 1"); // fail here, naming the server, rather than on first use
  } catch (err) {
    await db.close();
    throw new Error(`cannot connect to PostgreSQL at ${db.location}: ${(err as Error).message}`, { cause: err });
  }
  return db;
}
