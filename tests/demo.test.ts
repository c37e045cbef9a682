/**
 * The README's demo queries, asked through the GraphQL API of a server on the demo index (built
 * here when `.demo/index` does not exist yet, as `npm run demo` builds it): the training sequences
 * that share the query's content rank in the top 10, with the default re-ranking.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startIndexServer } from "../src/http/open-index-server.js";
import { DEMO_INDEX, ensureDemoIndex } from "../scripts/demo-index.js";
import { DEMO_QUERIES } from "../scripts/demo-queries.js";
import { memoryLogger } from "../support/server.js";

/** The demo build takes about 4.5 minutes on an idle 2-core machine, longer beside other tests. */
const BUILD_TIMEOUT = 20 * 60_000;

const INFLUENCE = `query($prompt: String!, $completion: String!) {
  influence(prompt: $prompt, completion: $completion, topK: 10) { query { loss } hits { rank score sequence { id text } } }
}`;

interface Answer {
  data?: { influence: { query: { loss: number }; hits: Array<{ rank: number; score: number; sequence: { id: string; text: string } }> } };
  errors?: unknown[];
}

describe("the README's demo queries on the demo index", () => {
  let server: Awaited<ReturnType<typeof startIndexServer>>;

  beforeAll(async () => {
    await ensureDemoIndex(DEMO_INDEX);
    server = await startIndexServer({ indexes: [{ dir: DEMO_INDEX }], port: 0, workers: 2, maxQueue: 16, timeoutMs: 300_000, logger: memoryLogger() });
  }, BUILD_TIMEOUT);

  afterAll(async () => {
    await server?.close();
  });

  it.each(DEMO_QUERIES)(
    "$prompt|$completion → $expected",
    async (q) => {
      const res = await fetch(server.graphqlUrl, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: INFLUENCE, variables: { prompt: q.prompt, completion: q.completion } }),
      });
      const body = (await res.json()) as Answer;
      expect(body.errors).toBeUndefined();
      const hits = body.data!.influence.hits;
      expect(hits.map((h) => h.rank)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      const scores = hits.map((h) => h.score);
      expect(scores).toEqual([...scores].sort((a, b) => b - a));
      expect(hits.map((h) => h.sequence.id)).toEqual(expect.arrayContaining(q.expected));
      // The strongest supporters of a capital-city or instrument answer are positive influences.
      for (const id of q.expected) expect(hits.find((h) => h.sequence.id === id)!.score).toBeGreaterThan(0);
    },
    300_000,
  );
});
