import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import pg from "pg";
import { openDatabase } from "../src/db/connect.js";
import type { Database } from "../src/db/types.js";
import { tempDir } from "../src/util/temp-dir.js";

/** Server on which the tests create (and drop) their own databases. */
export const PG_ADMIN_URL = process.env.INFLUENCE_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** A new temporary directory (removed by the test that made it, or left for the OS). */
export async function makeTempDir(prefix: string): Promise<string> {
  return (await tempDir(`${prefix}-`)).dir;
}

/** A new, uniquely named database on the test server; `drop` removes it (closing leftover sessions). */
export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `influence_test_${randomBytes(6).toString("hex")}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

export interface TestBackend {
  name: "pglite" | "postgres";
  /** A fresh, empty database and the function that closes and deletes it. */
  open(): Promise<{ db: Database; cleanup(): Promise<void> }>;
}

export const backends: TestBackend[] = [
  {
    name: "pglite",
    async open() {
      const dir = await makeTempDir("influence-pglite");
      const db = await openDatabase({ dataDir: path.join(dir, "db") });
      return {
        db,
        async cleanup() {
          await db.close();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: "postgres",
    async open() {
      const target = await createTestDatabase();
      const db = await openDatabase({ url: target.url });
      return {
        db,
        async cleanup() {
          await db.close();
          await target.drop();
        },
      };
    },
  },
];

/** `db` with a count of the statements sent through it (including those inside transactions). */
export function countingDatabase(db: Database): { db: Database; statements(): number } {
  let statements = 0;
  const counted: Database = {
    kind: db.kind,
    location: db.location,
    query(text, params, options) {
      statements++;
      return db.query(text, params, options);
    },
    transaction(fn) {
      return db.transaction((tx) =>
        fn({
          query(text, params, options) {
            statements++;
            return tx.query(text, params, options);
          },
        }),
      );
    },
    close: () => db.close(),
  };
  return { db: counted, statements: () => statements };
}

export interface PrivatePostgres {
  url: string;
  /** `pg_ctl restart -m fast`: sessions are terminated, the server is back when this resolves. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A throw-away PostgreSQL server of our own (initdb in a temp dir, free port), for tests that restart
 * the server: restarting the shared one would break whoever else is using it.
 */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bindir = (await run("pg_config", ["--bindir"])).trim();
  const dir = await makeTempDir("influence-pgserver");
  const data = path.join(dir, "data");
  // PostgreSQL refuses to run as root: then run its tools as the postgres user.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) await run("chown", ["postgres:", dir]);
  const pgTool = (tool: string, args: string[]) =>
    asRoot ? run("runuser", ["-u", "postgres", "--", path.join(bindir, tool), ...args]) : run(path.join(bindir, tool), args);
  const port = await freePort();
  await pgTool("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]);
  const serverOptions = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
  const pgCtl = (action: string, extra: string[] = []) =>
    pgTool("pg_ctl", [action, "-D", data, "-l", path.join(dir, "server.log"), "-o", serverOptions, "-w", ...extra]);
  await pgCtl("start");
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    restart: async () => void (await pgCtl("restart", ["-m", "fast"])),
    stop: async () => {
      await pgCtl("stop", ["-m", "immediate"]).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, (err, stdout, stderr) => (err ? reject(new Error(`${command} ${args.join(" ")}: ${stderr || err.message}`)) : resolve(stdout)));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
