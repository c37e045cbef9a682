/**
 * Closing an index server while its engine still computes a query: the request has already been
 * answered (TIMEOUT) but its worker thread is inside an ONNX Runtime run, and a thread terminated
 * there aborts the whole process. Close waits for the run, then releases the index.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startIndexServer } from "../src/http/open-index-server.js";
import { CANDIDATES } from "../src/indexer/query-limits.js";
import { runBuild } from "../src/jobs/build.js";
import { tempDir } from "../src/util/temp-dir.js";
import { fixtureBuildJob } from "../support/fixture-index.js";
import { fixturePath, fixtureQueries, fixtureTrain } from "../support/fixtures.js";
import { codes, gql, memoryLogger } from "../support/server.js";

const QUERY = `query($p: [Int!], $c: [Int!], $n: Int) {
  influence(promptTokens: $p, completionTokens: $c, topK: 10, candidates: $n) { hits { sequence { id } score } }
}`;
const [query] = fixtureQueries("gpt2-tiny");
const variables = { p: query.prompt_tokens, c: query.completion_tokens, n: Math.min(CANDIDATES.max, fixtureTrain("gpt2-tiny").length) };

let tmp: Awaited<ReturnType<typeof tempDir>>;
let indexDir: string;
beforeAll(async () => {
  tmp = await tempDir();
  indexDir = path.join(tmp.dir, "index");
  await runBuild(fixtureBuildJob(fixturePath("gpt2-tiny"), indexDir));
}, 300_000);
afterAll(() => tmp.remove());

describe("closing a server while a query runs", () => {
  it("waits for the engine's run instead of aborting the process, and leaves the index to open again", async () => {
    // A 1 ms limit: the request is answered TIMEOUT at once while its worker goes on re-ranking every sequence.
    const hurried = await startIndexServer({ indexes: [{ dir: indexDir }], port: 0, workers: 1, maxQueue: 4, timeoutMs: 1, logger: memoryLogger() });
    const refused = await gql(hurried.graphqlUrl, QUERY, { variables });
    expect(codes(refused)).toEqual(["TIMEOUT"]);
    const engine = (await (await fetch(`${hurried.url}/healthz`)).json()).engine;
    expect(engine).toMatchObject({ busy: 1 });
    await hurried.close();

    // The index opens again (its embedded database released) and answers the same query in full.
    const server = await startIndexServer({ indexes: [{ dir: indexDir }], port: 0, workers: 1, maxQueue: 4, timeoutMs: 120_000, logger: memoryLogger() });
    try {
      const answered = await gql(server.graphqlUrl, QUERY, { variables });
      expect(answered.errors).toBeUndefined();
      expect(answered.data.influence.hits).toHaveLength(10);
    } finally {
      await server.close();
    }
  }, 300_000);
});
