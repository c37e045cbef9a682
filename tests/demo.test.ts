/**
 * The README's demo queries, asked through the GraphQL API of a server on the demo index (built
 * here when `.demo/index` does not exist yet, as `npm run demo` builds it): the training sequences
 * that share the query's content rank in the top 10, with the default re-ranking. Then the server
 * of `npm run demo -- --compare` (the small model's index built as `.demo/index-small` when missing)
 * compares the two models on the same questions.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IndexEngine } from "../src/engine/index-engine.js";
import { checkInfluenceArgs } from "../src/engine/query-validation.js";
import { startIndexServer } from "../src/http/open-index-server.js";
import { readIndexManifest } from "../src/indexer/index-manifest.js";
import { inputWidth } from "../src/model/model.js";
import { modelTokenizer } from "../src/model/open-model.js";
import { resolveSketch } from "../src/projection/sketch.js";
import { DEMO_BUILD, DEMO_INDEX, DEMO_MODEL, DEMO_SMALL_INDEX, DEMO_SMALL_MODEL, ensureDemoIndex, serveDemo } from "../scripts/demo-index.js";
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

describe("the demo index's engine with its scoring helper thread", () => {
  it(
    "answers as it does alone: the same hits, scores and distribution to the bit",
    async () => {
      await ensureDemoIndex(DEMO_INDEX);
      // One engine splits its rows with its helper (its 6,000 rows are over the split's minimum); the other, told no core is idle, never does.
      const [helped, alone] = [await IndexEngine.open(DEMO_INDEX), await IndexEngine.open(DEMO_INDEX, {}, undefined, { spareCore: () => false })];
      try {
        for (const q of DEMO_QUERIES) {
          const request = { ...checkInfluenceArgs(q, helped.tokenizer, helped.info(), false), allowedOrdinals: undefined };
          const [a, b] = [await helped.influence(request), await alone.influence(request)];
          expect(a.hits.map((h) => h.scoredBy)).toEqual(Array(10).fill("sketch"));
          expect(a.hits).toEqual(b.hits);
          expect((await helped.approximateScores(request)).scores).toEqual((await alone.approximateScores(request)).scores);
          // The server's path (its scan begun before the sketch's projection), among every other sequence and in one layer.
          const restricted = { ...request, layers: [1], allowedOrdinals: Array.from({ length: 3000 }, (_, i) => 2 * i) };
          const [c, d] = [await helped.candidates(restricted), await alone.candidates(restricted)];
          expect(c.candidates.length).toBeGreaterThanOrEqual(100);
          expect(c.candidates.every((h) => h.ordinal % 2 === 0)).toBe(true);
          expect(c.candidates).toEqual(d.candidates);
        }
      } finally {
        await helped.close();
        await alone.close();
      }
    },
    BUILD_TIMEOUT,
  );
});

const COMPARE = `query($prompt: String!, $completion: String!) {
  compareInfluence(indexes: ["index", "index-small"], prompt: $prompt, completion: $completion, topK: 10) {
    results { index query { promptTokens completionTokens } hits { score tokenOverlap sequence { id tokens } } }
    overlaps { indexes idsMatch count ids }
  }
}`;
const INFLUENCE_OF = `query($index: String!, $prompt: String!, $completion: String!) {
  influence(index: $index, prompt: $prompt, completion: $completion, topK: 10) { hits { score sequence { id } } }
}`;

interface Compared {
  index: string;
  query: { promptTokens: number[]; completionTokens: number[] };
  hits: Array<{ score: number; tokenOverlap: number; sequence: { id: string; tokens: number[] } }>;
}

describe("npm run demo -- --compare: the demo model's index beside the small model's", () => {
  let server: Awaited<ReturnType<typeof serveDemo>>;
  const ask = async <T>(query: string, variables: Record<string, string>): Promise<T> => {
    const res = await fetch(server.graphqlUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query, variables }) });
    const body = (await res.json()) as { data: T; errors?: unknown[] };
    expect(body.errors).toBeUndefined();
    return body.data;
  };

  beforeAll(async () => {
    await ensureDemoIndex(DEMO_INDEX);
    await ensureDemoIndex(DEMO_SMALL_INDEX, { modelDir: DEMO_SMALL_MODEL });
    server = await serveDemo([DEMO_INDEX, DEMO_SMALL_INDEX], { host: "127.0.0.1", port: 0, logger: memoryLogger() });
  }, BUILD_TIMEOUT);

  afterAll(async () => {
    await server?.close();
  });

  it("indexes the same corpus slice with the same settings, each with its own model", async () => {
    const [big, small] = await Promise.all([readIndexManifest(DEMO_INDEX), readIndexManifest(DEMO_SMALL_INDEX)]);
    expect([big.model.path, small.model.path]).toEqual([DEMO_MODEL, DEMO_SMALL_MODEL]);
    const { modelFingerprint: bigModel, sketch: bigSketch, ...bigSettings } = big.parameters;
    const { modelFingerprint: smallModel, sketch: smallSketch, ...smallSettings } = small.parameters;
    expect(smallSettings).toEqual(bigSettings);
    // The same sketch request, resolved for each model's matrices (both keep them whole, as signs).
    const request = DEMO_BUILD.parameters.sketch;
    if (!request) throw new Error("the demo build asks for a sketch");
    const shapes = async (dir: string) => (await modelTokenizer(dir)).model.modules.map((m) => ({ out: m.outFeatures, in: inputWidth(m) }));
    expect(bigSketch).toEqual(resolveSketch(request, await shapes(DEMO_MODEL)));
    expect(smallSketch).toEqual(resolveSketch(request, await shapes(DEMO_SMALL_MODEL)));
    expect([bigSketch?.precision, smallSketch?.precision]).toEqual(["sign", "sign"]);
    expect(smallModel).not.toBe(bigModel);
    expect(small.corpus).toEqual(big.corpus);
    expect(small.corpus.sequences).toBe(big.parameters.maxSequences);
  });

  it.each(DEMO_QUERIES)(
    "$prompt|$completion: each model's own hits, on the same query tokens, and their overlap",
    async (q) => {
      const question = { prompt: q.prompt, completion: q.completion };
      const { compareInfluence } = await ask<{ compareInfluence: { results: Compared[]; overlaps: Array<Record<string, unknown>> } }>(COMPARE, question);
      const [big, small] = compareInfluence.results;
      expect([big.index, small.index]).toEqual(["index", "index-small"]);
      // One tokenizer: both models saw the same query tokens, so the token overlaps count the same tokens.
      expect(small.query).toEqual(big.query);
      const queryTokens = new Set([...big.query.promptTokens, ...big.query.completionTokens]);
      for (const result of [big, small]) {
        const own = await ask<{ influence: { hits: Array<{ score: number; sequence: { id: string } }> } }>(INFLUENCE_OF, { index: result.index, ...question });
        expect(result.hits.map((h) => h.sequence.id)).toEqual(own.influence.hits.map((h) => h.sequence.id));
        result.hits.forEach((hit, i) => expect(hit.score).toBeCloseTo(own.influence.hits[i].score, 6));
        for (const hit of result.hits) {
          const distinct = [...new Set(hit.sequence.tokens)];
          expect(hit.tokenOverlap).toBeCloseTo(distinct.filter((t) => queryTokens.has(t)).length / distinct.length, 12);
        }
      }
      const [first, second] = [big, small].map((r) => r.hits.map((h) => h.sequence.id));
      const common = first.filter((id) => second.includes(id));
      expect(compareInfluence.overlaps).toEqual([
        { indexes: ["index", "index-small"], idsMatch: common.length === 0 ? null : true, count: common.length, ids: common },
      ]);
    },
    300_000,
  );
});
