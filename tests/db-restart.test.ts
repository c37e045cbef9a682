import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../src/db/connect.js";
import type { Database } from "../src/db/types.js";
import { startPrivatePostgres, type PrivatePostgres } from "../support/db.js";

/** Start time of the server: changes when it restarts. */
async function startTime(db: Database): Promise<number> {
  const { rows } = await db.query<{ t: Date }>("SELECT pg_postmaster_start_time() AS t");
  return rows[0].t.getTime();
}

describe("pg.Pool across a PostgreSQL restart", () => {
  let server: PrivatePostgres;
  let db: Database;
  const connectionErrors: Error[] = [];

  beforeAll(async () => {
    server = await startPrivatePostgres();
    db = await openDatabase({ url: server.url, max: 3, onConnectionError: (err) => connectionErrors.push(err) });
  });
  afterAll(async () => {
    await db?.close();
    await server?.stop();
  });

  it("drops the broken idle connections without crashing, and the next query works", async () => {
    // Three concurrent queries leave three idle connections in the pool.
    await Promise.all([1, 2, 3].map(() => db.query("SELECT pg_sleep(0.05)")));
    const before = await startTime(db);
    connectionErrors.length = 0;

    await server.restart();

    // Each idle connection was terminated by the shutdown; the pool reported it instead of crashing.
    expect(connectionErrors.length).toBeGreaterThan(0);
    expect(connectionErrors.every((e) => /terminat/i.test(e.message))).toBe(true);
    expect(await startTime(db)).toBeGreaterThan(before);
    expect((await db.query<{ n: number }>("SELECT 41 + 1 AS n")).rows).toEqual([{ n: 42 }]);
  });

  it("fails a transaction cut by a restart, then recovers", async () => {
    const before = await startTime(db);
    await expect(
      db.transaction(async (tx) => {
        await tx.query("SELECT 1");
        await server.restart(); // the checked-out connection dies while no statement is running
        await tx.query("SELECT 2");
      }),
    ).rejects.toThrow(/terminat|Connection/i);
    expect(await startTime(db)).toBeGreaterThan(before);
    expect(await db.transaction(async (tx) => (await tx.query<{ ok: boolean }>("SELECT true AS ok")).rows[0].ok)).toBe(true);
  });
});
