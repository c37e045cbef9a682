import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Database, Queryable } from "./types.js";

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

const FILE_PATTERN = /^(\d{3,})_([a-z0-9_]+)\.sql$/;

/**
 * Key of the advisory lock that serialises migrations across processes. Transaction-scoped, so it
 * is released by COMMIT/ROLLBACK or a lost connection and can never be left behind.
 */
const MIGRATION_LOCK_KEY = 4_862_153_907;

const CREATE_LEDGER = `
  CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`;

/**
 * The repository's `migrations` folder: the nearest one above this module, so that the same code
 * finds it from src/db (tsx, vitest) and from dist/src/db (compiled).
 */
export function defaultMigrationsDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, "migrations");
    if (existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error("migrations folder not found above " + path.dirname(fileURLToPath(import.meta.url)));
    dir = parent;
  }
}

/** Reads `NNN_name.sql` files in version order; other files are an error, not silently skipped. */
export async function loadMigrations(dir: string = defaultMigrationsDir()): Promise<Migration[]> {
  const migrations: Migration[] = [];
  for (const file of await readdir(dir)) {
    const match = FILE_PATTERN.exec(file);
    if (!match) throw new Error(`${path.join(dir, file)}: migration file names must look like 001_name.sql`);
    const sql = await readFile(path.join(dir, file), "utf8");
    migrations.push({ version: Number(match[1]), name: file, sql, checksum: createHash("sha256").update(sql).digest("hex") });
  }
  migrations.sort((a, b) => a.version - b.version);
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i].version === migrations[i - 1].version) {
      throw new Error(`two migrations with version ${migrations[i].version}: ${migrations[i - 1].name}, ${migrations[i].name}`);
    }
  }
  return migrations;
}

/**
 * Applies the migrations not yet recorded in `schema_migrations`, in version order, each in its own
 * transaction under an advisory lock (two processes starting at once apply each migration once).
 * Refuses a database that has migrations this code does not know (it is newer) or whose applied
 * migration files were edited afterwards. Returns the names of the migrations it applied.
 */
export async function migrate(db: Database, migrations?: Migration[]): Promise<string[]> {
  const known = migrations ?? (await loadMigrations());
  await db.transaction(async (tx) => checkLedger(tx, known));
  const applied: string[] = [];
  for (const migration of known) {
    const didApply = await db.transaction(async (tx) => {
      await lockLedger(tx);
      const done = await tx.query("SELECT 1 FROM schema_migrations WHERE version = $1", [migration.version]);
      if (done.rowCount > 0) return false; // another process applied it while we waited
      try {
        await tx.query(migration.sql);
      } catch (err) {
        throw new Error(`migration ${migration.name} failed: ${(err as Error).message}`, { cause: err });
      }
      await tx.query("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", [migration.version, migration.name, migration.checksum]);
      return true;
    });
    if (didApply) applied.push(migration.name);
  }
  return applied;
}

async function lockLedger(tx: Queryable): Promise<void> {
  await tx.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK_KEY]);
  await tx.query(CREATE_LEDGER);
}

async function checkLedger(tx: Queryable, known: Migration[]): Promise<void> {
  await lockLedger(tx);
  const { rows } = await tx.query<{ version: number; name: string; checksum: string }>(
    "SELECT version, name, checksum FROM schema_migrations ORDER BY version",
  );
  const byVersion = new Map(known.map((m) => [m.version, m]));
  for (const row of rows) {
    const migration = byVersion.get(row.version);
    if (!migration) {
      throw new Error(`the database has migration ${row.name}, which this program does not know: it was migrated by a newer version`);
    }
    if (migration.checksum !== row.checksum) {
      throw new Error(`migration ${migration.name} was changed after it was applied to this database; add a new migration instead`);
    }
  }
}
