import "reflect-metadata";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { openDatabase } from "../src/db/connect.js";
import { insertSequences, migrate, upsertCorpus, type Database } from "../src/db/index.js";
import { PoolDatabase } from "../src/db/pool-database.js";
import { type RunningServer, startServer } from "../src/http/app.js";
import type { Tokenizer } from "../src/tokenizer/tokenizer.js";
import { type PrivatePostgres, startPrivatePostgres } from "../support/db.js";
import { codes, gql, loadTestTokenizer, memoryLogger, testSequences } from "../support/server.js";
import { TEST_CORPUS, TEST_INDEX, TestDoubleEngine } from "../support/server-engine.js";

const SEQUENCE_COUNT = 12;
const SEQUENCE_QUERY = `{ sequence(id: "doc-1#512") { id ordinal } }`;
const INFLUENCE_QUERY = `{ influence(completion: " fox", topK: 2) { hits { sequence { id } } } }`;

let tokenizer: Tokenizer;

beforeAll(async () => {
  tokenizer = await loadTestTokenizer();
});

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe("server without its database", () => {
  let db: Database;
  let server: RunningServer;
  const logger = memoryLogger();

  beforeAll(async () => {
    db = new PoolDatabase(`postgres://postgres@127.0.0.1:${await closedPort()}/gone`, { onConnectionError: () => {} });
    server = await startServer({
      indexes: [{ name: TEST_INDEX, engine: new TestDoubleEngine({ sequences: SEQUENCE_COUNT }), db, tokenizer }],
      port: 0,
      logger,
    });
  });
  afterAll(async () => {
    await server?.close();
    await db?.close();
  });

  it("answers DATABASE_UNAVAILABLE (503) for queries that need it", async () => {
    for (const query of [SEQUENCE_QUERY, INFLUENCE_QUERY]) {
      const res = await gql(server.graphqlUrl, query);
      expect(res.status).toBe(503);
      expect(codes(res)).toEqual(["DATABASE_UNAVAILABLE"]);
      expect(res.errors?.[0].message).toMatch(/^the database is unavailable \(.*ECONNREFUSED.*\); retry when it is back$/);
    }
    // The query is logged after its answer: the failure to log it is reported then.
    await vi.waitFor(() => expect(logger.warnings.join("\n")).toMatch(/could not log a query: the database is unavailable/));
  });

  it("still answers what needs no database, and reports it on /healthz", async () => {
    expect((await gql(server.graphqlUrl, "{ layers { layer } }")).data.layers).toHaveLength(2);
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: "degraded", database: { ok: false, error: expect.stringMatching(/unavailable/) } });
  });
});

describe("server across a PostgreSQL restart", () => {
  let postgres: PrivatePostgres;
  let db: Database;
  let server: RunningServer;

  beforeAll(async () => {
    postgres = await startPrivatePostgres();
    db = await openDatabase({ url: postgres.url, onConnectionError: () => {} });
    await migrate(db);
    const corpus = await upsertCorpus(db, { name: TEST_CORPUS.name, sourcePath: TEST_CORPUS.path, fingerprint: TEST_CORPUS.fingerprint });
    await insertSequences(db, corpus.id, testSequences(tokenizer, SEQUENCE_COUNT));
    server = await startServer({
      indexes: [{ name: TEST_INDEX, engine: new TestDoubleEngine({ sequences: SEQUENCE_COUNT }), db, tokenizer }],
      port: 0,
      logger: memoryLogger(),
    });
  });
  afterAll(async () => {
    await server?.close();
    await db?.close();
    await postgres?.stop();
  });

  it("answers again once the database is back", async () => {
    // Several connections in the pool, all of which the restart breaks.
    const before = await Promise.all([SEQUENCE_QUERY, INFLUENCE_QUERY, SEQUENCE_QUERY].map((q) => gql(server.graphqlUrl, q)));
    expect(before.map((r) => r.errors)).toEqual([undefined, undefined, undefined]);

    await postgres.restart();

    const after = await gql(server.graphqlUrl, SEQUENCE_QUERY);
    expect(after.errors).toBeUndefined();
    expect(after.data.sequence).toEqual({ id: "doc-1#512", ordinal: 3 });
    expect((await gql(server.graphqlUrl, INFLUENCE_QUERY)).errors).toBeUndefined();
    expect(await (await fetch(`${server.url}/healthz`)).json()).toMatchObject({ status: "ok" });
  });
});
