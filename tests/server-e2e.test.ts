/**
 * `influence serve` as users run it: a separate process over a real index of gpt2-tiny (empirical
 * Fisher) whose sequences live in a PostgreSQL server, queried over HTTP.
 */
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveEstimate } from "../src/engine/serve-memory.js";
import { runBuild } from "../src/jobs/build.js";
import { startPrivatePostgres, type PrivatePostgres } from "../support/db.js";
import { expectedQueryScores, fixtureBuildJob, topIds } from "../support/fixture-index.js";
import { REPO_ROOT, fixturePath, fixtureQueries, fixtureTrain } from "../support/fixtures.js";
import { codes, gql } from "../support/server.js";
import { tempDir } from "../src/util/temp-dir.js";

const queries = fixtureQueries("gpt2-tiny");
const trainIds = fixtureTrain("gpt2-tiny").map((s) => s.id);

/** Starts `influence serve` (2 workers, `extra` arguments) and resolves with its GraphQL URL and what it printed once it listens. */
function serve(indexDir: string, ...extra: string[]): Promise<{ child: ChildProcess; url: string; log: string }> {
  const child = spawn(process.execPath, [path.join(REPO_ROOT, "bin/influence.js"), "serve", "--index", indexDir, "--port", "0", "--workers", "2", ...extra], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  return new Promise((resolve, reject) => {
    let log = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      log += chunk.toString();
      const m = /GraphQL\s+(http:\/\/\S+)/.exec(log);
      if (m) resolve({ child, url: m[1], log });
    });
    child.once("exit", (code) => reject(new Error(`influence serve exited with ${code}:\n${log}`)));
  });
}

const INFLUENCE = `query Q($p: [Int!], $c: [Int!], $layers: [Int!], $topK: Int) {
  influence(promptTokens: $p, completionTokens: $c, layers: $layers, topK: $topK, candidates: 48, rerank: true) {
    hits { rank score approxScore sequence { id } layerScores { layer score } tokenScores { position score } }
  }
}`;

describe("influence serve over HTTP", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let postgres: PrivatePostgres;
  let indexDir: string;
  let server: { child: ChildProcess; url: string; log: string };

  const ask = (q: number, variables: Record<string, unknown> = {}) =>
    gql(server.url, INFLUENCE, { variables: { p: queries[q].prompt_tokens, c: queries[q].completion_tokens, ...variables } });

  beforeAll(async () => {
    tmp = await tempDir();
    postgres = await startPrivatePostgres();
    indexDir = path.join(tmp.dir, "index");
    await runBuild(fixtureBuildJob(fixturePath("gpt2-tiny"), indexDir, { databaseUrl: postgres.url }));
    server = await serve(indexDir);
  });
  afterAll(async () => {
    server?.child.kill("SIGTERM");
    await postgres?.stop();
    await tmp?.remove();
  });

  it("answers with the exact top-10, scores within 1e-3, and token scores that sum to each score", async () => {
    for (let q = 0; q < queries.length; q++) {
      const { total } = await expectedQueryScores(q);
      const response = await ask(q);
      expect(response.errors).toBeUndefined();
      const hits = response.data.influence.hits as Array<{ score: number; sequence: { id: string }; tokenScores: Array<{ score: number }> }>;
      expect(
        hits.map((h) => h.sequence.id),
        `query ${q}`,
      ).toEqual(topIds(total, 10));
      const scale = Math.max(...total.map(Math.abs));
      for (const h of hits) {
        expect(Math.abs(h.score - total[trainIds.indexOf(h.sequence.id)]) / scale).toBeLessThan(1e-3);
        const tokenSum = h.tokenScores.reduce((s, t) => s + t.score, 0);
        expect(Math.abs(tokenSum - h.score) / Math.abs(h.score)).toBeLessThan(1e-9);
      }
    }
  });

  it("holds a copy of the index arrays per worker when the budget allows, else shares one, with the same answers", async () => {
    expect(server.log).not.toMatch(/share one copy/);
    const shared = await serveEstimate([indexDir], 2, "shared", postgres.url);
    const perWorker = await serveEstimate([indexDir], 2, "per-worker", postgres.url);
    const tight = await serve(indexDir, "--memory", String(Math.floor((shared.bytes + perWorker.bytes) / 2)));
    try {
      expect(tight.log).toMatch(
        /a copy of each index's factors and vectors per worker would need about [\d.]+ MiB, more than --memory [\d.]+ MiB allows: the workers share one copy/,
      );
      for (const q of [0, 1]) {
        const [own, one] = [await ask(q), await gql(tight.url, INFLUENCE, { variables: { p: queries[q].prompt_tokens, c: queries[q].completion_tokens } })];
        expect(one.errors).toBeUndefined();
        expect(one.data).toEqual(own.data);
      }
    } finally {
      tight.child.kill("SIGTERM");
    }
  });

  it("restricts scores to block 1 with layers: [1]", async () => {
    for (let q = 0; q < queries.length; q++) {
      const { block1 } = await expectedQueryScores(q);
      const response = await ask(q, { layers: [1] });
      const hits = response.data.influence.hits as Array<{ score: number; sequence: { id: string }; layerScores: Array<{ layer: number }> }>;
      expect(
        hits.map((h) => h.sequence.id),
        `query ${q}`,
      ).toEqual(topIds(block1, 10));
      const scale = Math.max(...block1.map(Math.abs));
      for (const h of hits) {
        expect(Math.abs(h.score - block1[trainIds.indexOf(h.sequence.id)]) / scale).toBeLessThan(1e-3);
        expect(h.layerScores.map((l) => l.layer)).toEqual([1]);
      }
    }
  });

  it("refuses bad arguments with BAD_USER_INPUT", async () => {
    const cases = [
      `{ influence(prompt: "The cat") { hits { rank } } }`,
      `{ influence(prompt: "The cat", completion: " sat", topK: 0) { hits { rank } } }`,
      `{ influence(prompt: "The cat", completion: " sat", topK: 1001) { hits { rank } } }`,
      `{ influence(prompt: "The cat", completion: " sat", layers: [7]) { hits { rank } } }`,
      `{ influence(prompt: "${"word ".repeat(80)}", completion: " sat") { hits { rank } } }`,
      `{ influence(prompt: "The cat", completion: " sat", promptTokens: [1], completionTokens: [2]) { hits { rank } } }`,
    ];
    for (const query of cases) expect(codes(await gql(server.url, query)), query).toEqual(["BAD_USER_INPUT"]);
  });

  it("refuses oversized bodies and over-deep queries", async () => {
    const big = await fetch(server.url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: `{ index { fisher } } #${"x".repeat(200_000)}` }),
    });
    expect(big.status).toBe(413);
    const nested = (depth: number): string => (depth === 0 ? "name" : `ofType { ${nested(depth - 1)} }`);
    const deep = `{ __type(name: "Query") { fields { type { ${nested(20)} } } } }`;
    expect(codes(await gql(server.url, deep))).toEqual(["QUERY_TOO_DEEP"]);
  });

  it("survives a PostgreSQL restart and answers again once it is back", async () => {
    await postgres.restart();
    // The first query may meet a connection the restart cut: it must fail cleanly, not hang or crash.
    const first = await ask(0);
    if (first.errors) expect(codes(first)).toEqual(["DATABASE_UNAVAILABLE"]);
    const again = await ask(0);
    expect(again.errors).toBeUndefined();
    expect(again.data.influence.hits).toHaveLength(10);
    expect(server.child.exitCode).toBeNull();
  });
});
