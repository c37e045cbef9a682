import "reflect-metadata";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "../src/db/index.js";
import { type RunningServer, startServer } from "../src/http/app.js";
import { PooledEngine } from "../src/engine/pooled-engine.js";
import { WorkerPool } from "../src/workers/worker-pool.js";
import type { Tokenizer } from "../src/tokenizer/tokenizer.js";
import { spawnTsWorker } from "../src/workers/spawn-worker.js";
import { codes, gql, loadTestTokenizer, memoryLogger, openSeededDatabase, testSequences } from "../support/server.js";
import { TEST_INDEX, type TestDoubleOptions } from "../support/server-engine.js";

const SEQUENCE_COUNT = 30;
const ENGINE_WORKER = new URL("./fixtures/server-engine-worker.ts", import.meta.url);
const QUERY = `{ influence(completion: " fox", topK: 3) { hits { rank sequence { id } } } }`;

let tokenizer: Tokenizer;
let database: { db: Database; cleanup(): Promise<void> };
const closers: Array<() => Promise<void>> = [];

/** A server whose engine (the test double, CPU-busy for `busyMs` per query) runs in a pool of worker threads. */
async function pooledServer(
  pool: { maxQueue: number; timeoutMs: number },
  engine: Omit<TestDoubleOptions, "sequences">,
): Promise<{ server: RunningServer; pool: WorkerPool }> {
  const workers = new WorkerPool({ size: 1, ...pool, spawn: () => spawnTsWorker(ENGINE_WORKER, { sequences: SEQUENCE_COUNT, ...engine }) });
  closers.push(() => workers.close());
  const server = await startServer({
    indexes: [{ name: TEST_INDEX, engine: await PooledEngine.open(workers), enginePool: workers, db: database.db, tokenizer }],
    port: 0,
    logger: memoryLogger(),
  });
  closers.push(() => server.close());
  return { server, pool: workers };
}

beforeAll(async () => {
  tokenizer = await loadTestTokenizer();
  database = await openSeededDatabase(testSequences(tokenizer, SEQUENCE_COUNT));
});

afterAll(async () => {
  for (const close of closers.reverse()) await close();
  await database?.cleanup();
});

describe("server with the engine in worker threads", () => {
  it("answers SERVER_BUSY (503) when the engine's queue is full, while /healthz and /metrics stay responsive", async () => {
    const { server, pool } = await pooledServer({ maxQueue: 1, timeoutMs: 20_000 }, { busyMs: 3_000 });
    const running = gql(server.graphqlUrl, QUERY);
    const queued = gql(server.graphqlUrl, QUERY);
    await expect.poll(() => pool.metrics()).toMatchObject({ busy: 1, queued: 1 });

    const refused = await gql(server.graphqlUrl, QUERY);
    expect(refused.status).toBe(503);
    expect(codes(refused)).toEqual(["SERVER_BUSY"]);
    expect(refused.errors?.[0].message).toMatch(/the engine is busy \(1 running, 1 waiting\); retry shortly/);

    // The engine's work holds its worker thread, not the server's event loop: /healthz answers
    // while the running query is still being computed.
    let runningAnswered = false;
    void running.then(() => (runningAnswered = true));
    const health = await fetch(`${server.url}/healthz`);
    expect(runningAnswered).toBe(false);
    expect(await health.json()).toMatchObject({ status: "ok", database: { ok: true }, engine: { size: 1, workers: 1, busy: 1, queued: 1, maxQueue: 1 } });
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/^influence_engine_queue_depth\{index="test-index"\} 1$/m);
    expect(metrics).toMatch(/^influence_engine_busy_workers\{index="test-index"\} 1$/m);
    expect(metrics).toMatch(/^influence_engine_workers\{index="test-index"\} 1$/m);
    expect(metrics).toMatch(/^influence_graphql_requests_total\{operation="influence",outcome="SERVER_BUSY"\} 1$/m);

    for (const res of await Promise.all([running, queued])) {
      expect(res.errors).toBeUndefined();
      expect(res.data.influence.hits).toHaveLength(3);
    }
    expect(pool.metrics()).toMatchObject({ busy: 0, queued: 0 });
  });

  it("answers TIMEOUT (504) when the engine takes longer than the pool timeout, and logs it", async () => {
    const { server } = await pooledServer({ maxQueue: 4, timeoutMs: 400 }, { busyMs: 3_000 });
    const res = await gql(server.graphqlUrl, QUERY);
    expect(res.status).toBe(504);
    expect(codes(res)).toEqual(["TIMEOUT"]);
    expect(res.errors?.[0].message).toBe("the engine did not answer within 400 ms");
    const log = await gql(server.graphqlUrl, `{ recentQueries(limit: 1) { error } }`);
    expect(log.data.recentQueries[0].error).toBe("TIMEOUT: the engine did not answer within 400 ms");
  });
});
