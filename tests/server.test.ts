import "reflect-metadata";
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { getIntrospectionQuery } from "graphql";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type Database, type NewSequence, recentQueries } from "../src/db/index.js";
import { type IndexBackend, type RunningServer, type ServerOptions, startServer } from "../src/http/app.js";
import { MAX_BRACKET_NESTING } from "../src/http/nesting-limit.js";
import { IdsOnlyTokenizer } from "../src/tokenizer/ids-only.js";
import type { Tokenizer } from "../src/tokenizer/tokenizer.js";
import { InputError } from "../src/util/errors.js";
import { makeTempDir } from "../support/db.js";
import { codes, gql, loadTestTokenizer, memoryLogger, openSeededDatabase, recordingDatabase, testSequences } from "../support/server.js";
import { TEST_CONTEXT_LENGTH, TEST_INDEX, TestDoubleEngine } from "../support/server-engine.js";

const SEQUENCE_COUNT = 60;

/** influence with every argument as a variable; absent variables leave the schema defaults. */
function influenceQuery(selection: string): string {
  return `query Influence($prompt: String, $completion: String, $promptTokens: [Int!], $completionTokens: [Int!], $topK: Int,
      $layers: [Int!], $completionPositions: [Int!], $containsToken: String, $candidates: Int, $rerank: Boolean) {
    influence(prompt: $prompt, completion: $completion, promptTokens: $promptTokens, completionTokens: $completionTokens, topK: $topK,
      layers: $layers, completionPositions: $completionPositions, containsToken: $containsToken, candidates: $candidates, rerank: $rerank) ${selection}
  }`;
}

const HITS = influenceQuery("{ hits { rank ordinal score sequence { id text } } }");

let tokenizer: Tokenizer;
let sequences: NewSequence[];
let database: { db: Database; cleanup(): Promise<void> };
let recorded: ReturnType<typeof recordingDatabase>;
let engine: TestDoubleEngine;
let logger: ReturnType<typeof memoryLogger>;
const servers: RunningServer[] = [];
let server: RunningServer;

/** Another server on the same engine and database, with different options (`index`: of the one index it serves). */
async function serverWith(options: Partial<ServerOptions>, index: Partial<IndexBackend> = {}): Promise<RunningServer> {
  const started = await startServer({ indexes: [{ name: TEST_INDEX, engine, db: recorded.db, tokenizer, ...index }], port: 0, logger, ...options });
  servers.push(started);
  return started;
}

beforeAll(async () => {
  tokenizer = await loadTestTokenizer();
  sequences = testSequences(tokenizer, SEQUENCE_COUNT);
  database = await openSeededDatabase(sequences);
  recorded = recordingDatabase(database.db);
  engine = new TestDoubleEngine({ sequences: SEQUENCE_COUNT });
  logger = memoryLogger();
  server = await serverWith({});
});

afterAll(async () => {
  for (const s of servers) await s.close();
  await database?.cleanup();
});

beforeEach(() => {
  engine.influenceRequests.length = 0;
  engine.distributionRequests.length = 0;
});

describe("influence", () => {
  it("answers with hits, their sequences, the query and timings, and passes token ids and defaults to the engine", async () => {
    const res = await gql(
      server.graphqlUrl,
      influenceQuery(
        "{ query { promptTokens completionTokens loss } hits { rank ordinal score approxScore layerScores { layer score } sequence { id ordinal " +
          "documentId offset text tokenCount tokens } } timings { gradientMs totalMs } }",
      ),
      { variables: { prompt: "The quick brown", completion: " fox jumps" } },
    );
    expect(res.errors).toBeUndefined();
    const result = res.data.influence;
    expect(result.query).toEqual({ promptTokens: tokenizer.encode("The quick brown"), completionTokens: tokenizer.encode(" fox jumps"), loss: 1.25 });
    expect(result.hits).toHaveLength(10);
    expect(result.hits.map((h: { rank: number }) => h.rank)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    for (const hit of result.hits) {
      const stored = sequences[hit.ordinal];
      expect(hit.sequence).toEqual({
        id: stored.externalId,
        ordinal: stored.ordinal,
        documentId: stored.documentExternalId,
        offset: stored.tokenOffset,
        text: stored.text,
        tokenCount: stored.tokenIds.length,
        tokens: stored.tokenIds,
      });
      expect(hit.layerScores.map((l: { layer: number }) => l.layer)).toEqual([0, 1]);
    }
    expect(result.timings).toEqual({ gradientMs: 1, totalMs: 6 });
    expect(engine.influenceRequests).toEqual([
      expect.objectContaining({
        promptTokens: tokenizer.encode("The quick brown"),
        completionTokens: tokenizer.encode(" fox jumps"),
        topK: 10,
        rerank: false,
        tokenScores: false,
      }),
    ]);
    expect(engine.influenceRequests[0].allowedOrdinals).toBeUndefined();
  });

  it("passes the optional arguments through", async () => {
    const res = await gql(server.graphqlUrl, influenceQuery("{ hits { rank } }"), {
      variables: {
        promptTokens: [464, 2068],
        completionTokens: [7586, 21831, 18045],
        topK: 3,
        layers: [1],
        completionPositions: [0, 2],
        candidates: 50,
        rerank: false,
      },
    });
    expect(res.errors).toBeUndefined();
    expect(res.data.influence.hits).toHaveLength(3);
    expect(engine.influenceRequests[0]).toMatchObject({
      promptTokens: [464, 2068],
      completionTokens: [7586, 21831, 18045],
      topK: 3,
      layers: [1],
      completionPositions: [0, 2],
      candidates: 50,
      rerank: false,
    });
  });

  it("asks the engine for token scores only when the query selects them", async () => {
    const variables = { completion: " fox", topK: 2 };
    const asked = async (query: string, extra: Record<string, unknown> = {}) => {
      engine.influenceRequests.length = 0;
      const res = await gql(server.graphqlUrl, query, { variables: { ...variables, ...extra } });
      expect(res.errors).toBeUndefined();
      return { tokenScores: engine.influenceRequests[0].tokenScores, data: res.data };
    };
    expect((await asked(influenceQuery("{ hits { rank score } }"))).tokenScores).toBe(false);
    const selected = await asked(influenceQuery("{ hits { rank tokenScores { position tokenId text score } } }"));
    expect(selected.tokenScores).toBe(true);
    expect(selected.data.influence.hits[0].tokenScores).toEqual([{ position: 0, tokenId: 464, text: "The", score: expect.any(Number) }]);
    // Through a fragment and an alias.
    expect(
      (await asked(`${influenceQuery("{ hits { ...HitParts } }")} fragment HitParts on InfluenceHit { perToken: tokenScores { score } }`)).tokenScores,
    ).toBe(true);
    // Left out by @skip / @include.
    expect((await asked(influenceQuery("{ hits { rank tokenScores @skip(if: true) { score } } }"))).tokenScores).toBe(false);
    expect((await asked(influenceQuery("{ hits { rank tokenScores @include(if: false) { score } } }"))).tokenScores).toBe(false);
  });

  it("loads the sequences of 50 hits in one database round trip, their token ids only when asked for, in one more", async () => {
    const lookUps = async (fields: string) => {
      recorded.statements.length = 0;
      const res = await gql(server.graphqlUrl, influenceQuery(`{ hits { sequence { ${fields} } } }`), { variables: { completion: " fox", topK: 50 } });
      expect(res.errors).toBeUndefined();
      expect(res.data.influence.hits).toHaveLength(50);
      return { hits: res.data.influence.hits, statements: recorded.statements.filter((sql) => /FROM sequences/.test(sql)) };
    };
    const plain = await lookUps("id text");
    expect(plain.statements).toHaveLength(1);
    expect(plain.statements[0]).toMatch(/ordinal = ANY/);
    expect(plain.statements[0]).not.toMatch(/token_ids/);
    const withTokens = await lookUps("ordinal tokens tokenTexts");
    expect(withTokens.statements).toHaveLength(2);
    expect(withTokens.statements.filter((sql) => /token_ids/.test(sql) && /ordinal = ANY/.test(sql))).toHaveLength(1);
    for (const { sequence } of withTokens.hits) {
      const stored = sequences.find((s) => s.ordinal === sequence.ordinal);
      expect(sequence.tokens).toEqual(stored?.tokenIds);
      expect(sequence.tokenTexts).toEqual(stored?.tokenIds.map((id) => tokenizer.tokenText(id)));
    }
  });

  it("turns containsToken into the ordinals the search may return", async () => {
    const fox = tokenizer.encode(" fox");
    expect(fox).toHaveLength(1);
    const expected = sequences.filter((s) => s.tokenIds.includes(fox[0])).map((s) => s.ordinal);
    expect(expected.length).toBeGreaterThan(5);
    expect(expected.length).toBeLessThan(SEQUENCE_COUNT);

    const res = await gql(server.graphqlUrl, HITS, { variables: { completion: " jumps", containsToken: " fox", topK: 100 } });
    expect(res.errors).toBeUndefined();
    expect(engine.influenceRequests[0].allowedOrdinals).toEqual(expected);
    expect(res.data.influence.hits.map((h: { ordinal: number }) => h.ordinal).sort((a: number, b: number) => a - b)).toEqual(expected);

    // By id.
    await gql(server.graphqlUrl, HITS, { variables: { completion: " jumps", containsToken: `#${fox[0]}` } });
    expect(engine.influenceRequests[1].allowedOrdinals).toEqual(expected);
  });

  describe("refuses bad arguments with BAD_USER_INPUT, without calling the engine", () => {
    const longPrompt = Array.from({ length: TEST_CONTEXT_LENGTH }, () => " word").join("");
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      ["no completion", {}, /completion is required/],
      ["text and tokens", { completion: " fox", completionTokens: [1] }, /either as text .* or as token ids/],
      ["prompt and prompt tokens", { prompt: "a", promptTokens: [1], completionTokens: [2] }, /either as text .* or as token ids/],
      ["a prompt without completion", { prompt: "The quick" }, /prompt was given without completion/],
      ["prompt tokens without completion tokens", { promptTokens: [464] }, /promptTokens were given without completionTokens/],
      ["an empty completion", { completion: "" }, /completion is empty/],
      ["an empty prompt", { prompt: "", completion: " fox" }, /prompt is empty/],
      ["empty completion tokens", { completionTokens: [] }, /completionTokens is empty/],
      ["a token id outside the vocabulary", { completionTokens: [50257] }, /completionTokens\[0\] = 50257 is not a token id/],
      ["a negative token id", { promptTokens: [-1], completionTokens: [5] }, /promptTokens\[0\] = -1 is not a token id/],
      ["topK 0", { completion: " fox", topK: 0 }, /topK must be from 1 to 1000 \(got 0\)/],
      ["topK 1001", { completion: " fox", topK: 1001 }, /topK must be from 1 to 1000 \(got 1001\)/],
      ["candidates below topK", { completion: " fox", topK: 20, candidates: 19 }, /candidates must be from topK \(20\) to 10000/],
      ["candidates above 10000", { completion: " fox", candidates: 10001 }, /candidates must be from topK \(10\) to 10000/],
      ["an unknown layer", { completion: " fox", layers: [0, 7] }, /unknown layer 7: the index has layers 0, 1/],
      ["no layers", { completion: " fox", layers: [] }, /layers is empty/],
      [
        "a completion position past the end",
        { completion: " fox jumps", completionPositions: [2] },
        /completion position 2 is out of range: the completion has 2 tokens/,
      ],
      ["a negative completion position", { completion: " fox", completionPositions: [-1] }, /completion position -1 is out of range/],
      [
        "a query longer than the context",
        { prompt: longPrompt, completion: " fox" },
        new RegExp(`65 tokens \\(64 \\+ 1\\), more than the model's context of ${TEST_CONTEXT_LENGTH}`),
      ],
      ["containsToken of several tokens", { completion: " fox", containsToken: " foxes jump" }, /containsToken " foxes jump" is \d tokens .*not one/],
      ["an empty containsToken", { completion: " fox", containsToken: "" }, /containsToken is empty/],
      ["containsToken id outside the vocabulary", { completion: " fox", containsToken: "#60000" }, /containsToken #60000: no such token id/],
    ];
    it.each(cases)("%s", async (_name, variables, message) => {
      const res = await gql(server.graphqlUrl, HITS, { variables });
      expect(res.status).toBe(200);
      expect(codes(res)).toEqual(["BAD_USER_INPUT"]);
      expect(res.errors?.[0].message).toMatch(message);
      expect(res.errors?.[0].path).toEqual(["influence"]);
      expect(engine.influenceRequests).toEqual([]);
    });

    it("bins outside 1..200 of influenceDistribution", async () => {
      const res = await gql(server.graphqlUrl, `{ influenceDistribution(completion: " fox", bins: 0) { count } }`);
      expect(codes(res)).toEqual(["BAD_USER_INPUT"]);
      expect(res.errors?.[0].message).toMatch(/bins must be from 1 to 200 \(got 0\)/);
    });
  });

  it("answers token-id queries for a model folder without tokenizer files, and refuses text ones naming the missing files", async () => {
    const noTokenizer = new IdsOnlyTokenizer("/models/no-tokenizer", tokenizer.vocabSize);
    const idsOnly = await serverWith({}, { tokenizer: noTokenizer });
    const text = await gql(idsOnly.graphqlUrl, HITS, { variables: { prompt: "The quick", completion: " fox" } });
    expect(codes(text)).toEqual(["BAD_USER_INPUT"]);
    expect(text.errors?.[0].message).toBe(
      "/models/no-tokenizer has no tokenizer.json (nor vocab.json + merges.txt): text input needs one; pass token ids instead",
    );
    expect(engine.influenceRequests).toEqual([]);
    const ids = await gql(idsOnly.graphqlUrl, HITS, { variables: { promptTokens: [464], completionTokens: [21831] } });
    expect(ids.errors).toBeUndefined();
    expect(engine.influenceRequests[0].completionTokens).toEqual([21831]);
    const stored = sequences[3];
    const res = await gql(idsOnly.graphqlUrl, `query($id: ID!) { sequence(id: $id) { tokenTexts } }`, { variables: { id: stored.externalId } });
    expect(res.data.sequence.tokenTexts).toEqual(stored.tokenIds.map((id) => `#${id}`));
  });

  it("reports the engine's InputError as BAD_USER_INPUT and other failures as INTERNAL_SERVER_ERROR without a stack trace", async () => {
    engine.failNext = new InputError("the index does not cover token 5");
    const bad = await gql(server.graphqlUrl, HITS, { variables: { completion: " fox" } });
    expect(codes(bad)).toEqual(["BAD_USER_INPUT"]);
    expect(bad.errors?.[0].message).toBe("the index does not cover token 5");

    logger.errors.length = 0;
    engine.failNext = new Error("vector file truncated");
    const broken = await gql(server.graphqlUrl, HITS, { variables: { completion: " fox" } });
    expect(codes(broken)).toEqual(["INTERNAL_SERVER_ERROR"]);
    expect(broken.errors?.[0].message).toBe("vector file truncated");
    expect(JSON.stringify(broken.errors)).not.toMatch(/stacktrace|at .*\.ts:\d+/);
    expect(logger.errors.join("\n")).toMatch(/vector file truncated\n\s+at /);
  });
});

describe("influenceDistribution", () => {
  it("answers from the engine with the default number of bins", async () => {
    const res = await gql(
      server.graphqlUrl,
      `{ influenceDistribution(completion: " fox", layers: [0]) { count histogram { lower upper count } topScores powerLaw { alpha xMin ksDistance ` +
        `tailCount } topPercentShare query { completionTokens } } }`,
    );
    expect(res.errors).toBeUndefined();
    const result = res.data.influenceDistribution;
    expect(result.count).toBe(SEQUENCE_COUNT);
    expect(result.histogram).toHaveLength(40);
    expect(result.powerLaw).toEqual({ alpha: 2.5, xMin: 0.1, ksDistance: 0.05, tailCount: 12 });
    expect(result.query.completionTokens).toEqual(tokenizer.encode(" fox"));
    expect(engine.distributionRequests[0]).toMatchObject({ completionTokens: tokenizer.encode(" fox"), layers: [0], bins: 40 });
  });
});

describe("scoreSequences", () => {
  it("passes the compared sequence's ordinal to the engine, resolves its sequence, and logs the request", async () => {
    const compared = sequences[7];
    const res = await gql(
      server.graphqlUrl,
      `query($id: ID) { scoreSequences(completion: " fox", sequences: ["The quick brown fox"], compareWith: $id) {
        original { ordinal score sequence { id } } sequences { kind tokens text score change } } }`,
      { variables: { id: compared.externalId } },
    );
    expect(res.errors).toBeUndefined();
    const { original, sequences: scored } = res.data.scoreSequences;
    expect(original.sequence.id).toBe(compared.externalId);
    expect(original.ordinal).toBe(compared.ordinal);
    expect(engine.sequenceScoresRequests.at(-1)).toEqual({
      promptTokens: [],
      completionTokens: tokenizer.encode(" fox"),
      sequences: [tokenizer.encode("The quick brown fox")],
      compareWith: compared.ordinal,
      variants: false,
    });
    // The double scores a token at a hundredth of its id.
    const tokens = tokenizer.encode("The quick brown fox");
    const score = tokens.reduce((sum, id) => sum + id / 100, 0);
    expect(scored).toEqual([{ kind: "GIVEN", tokens, text: tokens.map((id) => `<${id}>`).join(""), score, change: score - original.score }]);
    const log = await gql(server.graphqlUrl, `{ recentQueries(limit: 1) { parameters topHitIds error } }`);
    expect(log.data.recentQueries[0]).toEqual({
      parameters: {
        operation: "scoreSequences",
        completion: " fox",
        sequences: ["The quick brown fox"],
        compareWith: compared.externalId,
        variants: false,
        index: TEST_INDEX,
      },
      topHitIds: [compared.externalId],
      error: null,
    });
  });
});

describe("recentQueries", () => {
  it("returns the logged queries newest first, with parameters, timings, top hits or the error", async () => {
    await gql(server.graphqlUrl, HITS, { variables: { completion: " first", topK: 2 } });
    await gql(server.graphqlUrl, HITS, { variables: { completion: " second", topK: 0 } });
    const third = await gql(server.graphqlUrl, HITS, { variables: { prompt: "The", completion: " third", topK: 3 } });
    const res = await gql(server.graphqlUrl, `{ recentQueries(limit: 3) { id createdAt parameters timings topHitIds error } }`);
    expect(res.errors).toBeUndefined();
    const [newest, refused, oldest] = res.data.recentQueries;
    // The effective arguments, schema defaults included.
    expect(newest.parameters).toEqual({ operation: "influence", prompt: "The", completion: " third", topK: 3, rerank: false, index: TEST_INDEX });
    expect(newest.topHitIds).toEqual(third.data.influence.hits.map((h: { sequence: { id: string } }) => h.sequence.id));
    expect(newest.timings).toMatchObject({ gradientMs: 1, searchMs: 2, rerankMs: 0, totalMs: 6, serviceMs: expect.any(Number) });
    expect(newest.error).toBeNull();
    expect(refused.parameters).toEqual({ operation: "influence", completion: " second", topK: 0, rerank: false, index: TEST_INDEX });
    expect(refused.error).toMatch(/^BAD_USER_INPUT: topK must be from 1 to 1000/);
    expect(refused.topHitIds).toEqual([]);
    expect(oldest.parameters.completion).toBe(" first");
    expect(Number(newest.id)).toBeGreaterThan(Number(refused.id));
    expect(Date.parse(newest.createdAt)).toBeGreaterThanOrEqual(Date.parse(oldest.createdAt));
    expect(newest.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  });

  it("logs a query after answering it: a read of the log and the server's close wait for it", async () => {
    // Inserts into the log held back 300 ms: still pending when the answers are in.
    const slowLog: Database = {
      ...database.db,
      query: async (text, params, options) => {
        if (text.includes("INSERT INTO query_log")) await new Promise((resolve) => setTimeout(resolve, 300));
        return database.db.query(text, params, options);
      },
    };
    const closing = await startServer({ indexes: [{ name: TEST_INDEX, engine, db: slowLog, tokenizer }], port: 0, logger });
    const completions = [" alpha", " beta", " gamma"];
    const answers = await Promise.all(completions.map((completion) => gql(closing.graphqlUrl, HITS, { variables: { completion, topK: 2 } })));
    expect(answers.map((a) => a.errors)).toEqual([undefined, undefined, undefined]);
    // A read of the log waits for the answered queries' entries.
    const read = await gql(closing.graphqlUrl, `{ recentQueries(limit: 3) { parameters } }`);
    expect(read.data.recentQueries.map((q: { parameters: { completion: string } }) => q.parameters.completion).sort()).toEqual([...completions].sort());
    const more = await gql(closing.graphqlUrl, HITS, { variables: { completion: " delta", topK: 2 } });
    expect(more.errors).toBeUndefined();
    await closing.close();
    const logged = await recentQueries(database.db, 1);
    expect(logged.map((q) => [q.parameters.completion, q.error])).toEqual([[" delta", null]]);
  });

  it("refuses a limit outside 1..1000", async () => {
    const res = await gql(server.graphqlUrl, `{ recentQueries(limit: 0) { id } }`);
    expect(codes(res)).toEqual(["BAD_USER_INPUT"]);
  });
});

describe("sequences", () => {
  const PAGE = `query Page($first: Int, $after: String, $search: String) {
    sequences(first: $first, after: $after, search: $search) { totalCount edges { cursor node { ordinal text } } pageInfo { hasNextPage endCursor } }
  }`;

  async function pageThrough(search?: string): Promise<{ ordinals: number[]; totalCount: number }> {
    const ordinals: number[] = [];
    let after: string | null = null;
    let totalCount = -1;
    for (let page = 0; page < 100; page++) {
      const res = await gql(server.graphqlUrl, PAGE, { variables: { first: 7, after, search } });
      expect(res.errors).toBeUndefined();
      const { edges, pageInfo } = res.data.sequences;
      totalCount = res.data.sequences.totalCount;
      ordinals.push(...edges.map((e: { node: { ordinal: number } }) => e.node.ordinal));
      if (!pageInfo.hasNextPage) return { ordinals, totalCount };
      expect(pageInfo.endCursor).toBe(edges.at(-1).cursor);
      after = pageInfo.endCursor;
    }
    throw new Error("no last page");
  }

  it("pages through all sequences in ordinal order", async () => {
    const { ordinals, totalCount } = await pageThrough();
    expect(ordinals).toEqual(sequences.map((s) => s.ordinal));
    expect(totalCount).toBe(SEQUENCE_COUNT);
  });

  it.each(["100%", "_case", "\\", "%_", "'; drop", "O'BRIEN", "%"])("searches literally for %j", async (search) => {
    const expected = sequences.filter((s) => s.text?.toLowerCase().includes(search.toLowerCase())).map((s) => s.ordinal);
    const { ordinals, totalCount } = await pageThrough(search);
    expect(ordinals).toEqual(expected);
    expect(totalCount).toBe(expected.length);
  });

  it("refuses a cursor it did not issue and a page size over 1000", async () => {
    expect(codes(await gql(server.graphqlUrl, PAGE, { variables: { after: "bm9wZQ" } }))).toEqual(["BAD_USER_INPUT"]);
    expect(codes(await gql(server.graphqlUrl, PAGE, { variables: { first: 1001 } }))).toEqual(["BAD_USER_INPUT"]);
  });

  it("finds one sequence by id, with its token texts, and null for an unknown id", async () => {
    const stored = sequences[5];
    const res = await gql(
      server.graphqlUrl,
      `query($id: ID!) { sequence(id: $id) { id ordinal tokens tokenTexts } missing: sequence(id: "no-such-doc") { id } }`,
      {
        variables: { id: stored.externalId },
      },
    );
    expect(res.errors).toBeUndefined();
    expect(res.data.sequence).toEqual({
      id: stored.externalId,
      ordinal: 5,
      tokens: stored.tokenIds,
      tokenTexts: stored.tokenIds.map((id) => tokenizer.tokenText(id)),
    });
    expect(res.data.sequence.tokenTexts.join("")).toBe(stored.text);
    expect(res.data.missing).toBeNull();
  });
});

describe("index and layers", () => {
  it("describe the index from the engine", async () => {
    const res = await gql(
      server.graphqlUrl,
      `{ index { model { architecture contextLength vocabSize } corpus { name sequences tokens } dims { total } layers modules { name damping }
         fisher build { id startedAt finishedAt projectionSeed } }
         layers { layer modules { name layer damping } } }`,
    );
    expect(res.errors).toBeUndefined();
    const info = engine.info();
    expect(res.data.index.model).toEqual({ architecture: "gpt2", contextLength: TEST_CONTEXT_LENGTH, vocabSize: 50257 });
    expect(res.data.index.corpus).toEqual({ name: info.corpus.name, sequences: SEQUENCE_COUNT, tokens: SEQUENCE_COUNT * 10 });
    expect(res.data.index.build).toEqual({
      id: 1,
      startedAt: "2025-01-02T03:04:05.000Z",
      finishedAt: "2025-01-02T03:05:05.000Z",
      projectionSeed: 3_000_000_000,
    });
    expect(res.data.index.modules).toHaveLength(4);
    expect(res.data.layers).toEqual(
      [0, 1].map((layer) => ({ layer, modules: info.modules.filter((m) => m.layer === layer).map(({ name, damping }) => ({ name, layer, damping })) })),
    );
  });
});

describe("HTTP", () => {
  it("requires the API key on /graphql and /metrics when one is set, not on /healthz", async () => {
    const locked = await serverWith({ apiKey: "s3cret" });
    const query = "{ layers { layer } }";
    const missing = await gql(locked.graphqlUrl, query);
    expect(missing.status).toBe(401);
    expect(codes(missing)).toEqual(["UNAUTHENTICATED"]);
    expect(missing.headers.get("www-authenticate")).toMatch(/^Bearer/);
    const wrong = await gql(locked.graphqlUrl, query, { headers: { authorization: "Bearer s3cre" } });
    expect(wrong.status).toBe(401);
    expect(wrong.errors?.[0].message).toMatch(/not valid/);
    expect((await gql(locked.graphqlUrl, query, { headers: { authorization: "Bearer s3cret" } })).data.layers).toHaveLength(2);
    expect((await gql(locked.graphqlUrl, query, { headers: { "x-api-key": "s3cret" } })).data.layers).toHaveLength(2);

    expect((await fetch(`${locked.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${locked.url}/metrics`, { headers: { "x-api-key": "s3cret" } })).status).toBe(200);
    expect((await fetch(`${locked.url}/healthz`)).status).toBe(200);
  });

  it("sends CORS headers only to configured origins", async () => {
    const post = (url: string, origin: string) =>
      fetch(url, { method: "POST", headers: { origin, "content-type": "application/json" }, body: JSON.stringify({ query: "{ layers { layer } }" }) });
    const unconfigured = await post(server.graphqlUrl, "http://app.example");
    expect(unconfigured.status).toBe(200);
    const corsHeaders: string[] = [];
    unconfigured.headers.forEach((_value, name) => name.startsWith("access-control-") && corsHeaders.push(name));
    expect(corsHeaders).toEqual([]);

    const open = await serverWith({ corsOrigins: ["http://app.example"] });
    const allowed = await post(open.graphqlUrl, "http://app.example");
    expect(allowed.headers.get("access-control-allow-origin")).toBe("http://app.example");
    expect(allowed.headers.get("vary")).toMatch(/Origin/i);
    const other = await post(open.graphqlUrl, "http://evil.example");
    expect(other.headers.get("access-control-allow-origin")).toBeNull();

    const preflight = await fetch(open.graphqlUrl, {
      method: "OPTIONS",
      headers: { origin: "http://app.example", "access-control-request-method": "POST", "access-control-request-headers": "content-type, authorization" },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("http://app.example");
    expect(preflight.headers.get("access-control-allow-headers")).toMatch(/Authorization/);
  });

  it("refuses a body over maxBodyBytes with 413", async () => {
    const padding = "x".repeat(100_001);
    const res = await fetch(server.graphqlUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: `{ layers { layer } } # ${padding}` }),
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({
      errors: [{ message: expect.stringMatching(/larger than the limit of 100000 bytes/), extensions: { code: "PAYLOAD_TOO_LARGE" } }],
    });
  });

  it("serves /healthz with the database's state", async () => {
    const res = await fetch(`${server.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "ok", database: { ok: true } });
  });

  it("serves several indexes: /healthz reports each, and two of one name are refused", async () => {
    const two = await serverWith({ indexes: [TEST_INDEX, "second"].map((name) => ({ name, engine, db: recorded.db, tokenizer })) });
    expect(await (await fetch(`${two.url}/healthz`)).json()).toMatchObject({
      status: "ok",
      database: { ok: true },
      indexes: [
        { name: TEST_INDEX, database: { ok: true } },
        { name: "second", database: { ok: true } },
      ],
    });
    const names = await gql(two.graphqlUrl, '{ indexes { name } index { name } second: index(index: "second") { name } }');
    expect(names.data).toEqual({ indexes: [{ name: TEST_INDEX }, { name: "second" }], index: { name: TEST_INDEX }, second: { name: "second" } });
    await expect(serverWith({ indexes: [TEST_INDEX, TEST_INDEX].map((name) => ({ name, engine, db: recorded.db, tokenizer })) })).rejects.toThrow(
      `two indexes are named "${TEST_INDEX}"`,
    );
  });

  it("counts requests by operation and outcome on /metrics", async () => {
    await gql(server.graphqlUrl, HITS, { variables: { completion: " fox", topK: 1 } });
    await gql(server.graphqlUrl, HITS, { variables: { completion: " fox", topK: 0 } });
    await gql(server.graphqlUrl, "{ nope }");
    const res = await fetch(`${server.url}/metrics`);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/^influence_graphql_requests_total\{operation="influence",outcome="success"\} [1-9]/m);
    expect(text).toMatch(/^influence_graphql_requests_total\{operation="influence",outcome="BAD_USER_INPUT"\} [1-9]/m);
    expect(text).toMatch(/^influence_graphql_requests_total\{operation="unknown",outcome="GRAPHQL_VALIDATION_FAILED"\} [1-9]/m);
    // The latency histogram holds every successful influence request: its +Inf bucket equals its count.
    const count = /^influence_graphql_request_duration_seconds_count\{operation="influence",outcome="success"\} (\d+)$/m.exec(text)?.[1];
    expect(Number(count)).toBeGreaterThan(0);
    expect(text).toMatch(
      new RegExp(`^influence_graphql_request_duration_seconds_bucket\\{le="\\+Inf",operation="influence",outcome="success"\\} ${count}$`, "m"),
    );
    expect(text).toMatch(/^process_cpu_seconds_total /m);
  });

  it("serves the web UI's files from webRoot, with index.html fallbacks, and no CDN landing page", async () => {
    const webRoot = await makeTempDir("influence-web");
    try {
      await mkdir(path.join(webRoot, "playground"));
      await writeFile(path.join(webRoot, "index.html"), "<html>dashboard</html>");
      await writeFile(path.join(webRoot, "playground", "index.html"), "<html>graphiql</html>");
      await writeFile(path.join(webRoot, "app.js"), "console.log(1)");
      const ui = await serverWith({ webRoot });
      const get = (p: string) => fetch(`${ui.url}${p}`, { headers: { accept: "text/html" } });
      expect(await (await get("/")).text()).toBe("<html>dashboard</html>");
      expect(await (await get("/app.js")).text()).toBe("console.log(1)");
      expect(await (await get("/playground/")).text()).toBe("<html>graphiql</html>");
      expect(await (await get("/playground")).text()).toBe("<html>graphiql</html>"); // redirected to /playground/
      expect(await (await get("/playground/saved/query")).text()).toBe("<html>graphiql</html>");
      expect(await (await get("/runs/7")).text()).toBe("<html>dashboard</html>");
      expect((await fetch(`${ui.url}/missing.js`, { headers: { accept: "application/javascript" } })).status).toBe(404);

      const landing = await get("/graphql");
      expect(await landing.text()).not.toMatch(/apollographql\.com|sandbox/i);
    } finally {
      await rm(webRoot, { recursive: true, force: true });
    }
  });
});

describe("query limits", () => {
  it("refuses operations nested deeper than maxDepth, fragments included", async () => {
    const shallow = await serverWith({ maxDepth: 3 });
    const deep = await gql(shallow.graphqlUrl, influenceQuery("{ hits { sequence { id } } }"), { variables: { completion: " fox" } });
    expect(deep.status).toBe(400);
    expect(codes(deep)).toEqual(["QUERY_TOO_DEEP"]);
    expect(deep.errors?.[0].message).toMatch(/nests fields 4 deep, more than the limit of 3/);
    const viaFragment = await gql(
      shallow.graphqlUrl,
      `{ ...Q } fragment Q on Query { influence(completion: " fox") { hits { ...H } } } fragment H on InfluenceHit { sequence { id } }`,
    );
    expect(codes(viaFragment)).toEqual(["QUERY_TOO_DEEP"]);
    expect(engine.influenceRequests).toEqual([]);
    expect((await gql(shallow.graphqlUrl, influenceQuery("{ hits { rank } }"), { variables: { completion: " fox" } })).errors).toBeUndefined();
  });

  it("refuses a query nested 12,000 deep with QUERY_TOO_DEEP before parsing it, by POST and by GET", async () => {
    const nested = (depth: number) => `{${"a{".repeat(depth)}b${"}".repeat(depth)}}`;
    const post = await gql(server.graphqlUrl, nested(12_000));
    expect(post.status).toBe(400);
    expect(codes(post)).toEqual(["QUERY_TOO_DEEP"]);
    expect(post.errors?.[0].message).toBe(
      `the query nests brackets ({ }, [ ], ( )) more than ${MAX_BRACKET_NESTING} deep; fields may nest at most a few levels (see the API's limits)`,
    );
    const lists = `{ influence(completion: " fox", layers: ${"[".repeat(12_000)}${"]".repeat(12_000)}) { hits { rank } } }`;
    expect(codes(await gql(server.graphqlUrl, lists))).toEqual(["QUERY_TOO_DEEP"]);
    // A URL holds less than a body: 1,000 deep.
    const get = await fetch(`${server.graphqlUrl}?query=${encodeURIComponent(nested(1000))}`, { headers: { "apollo-require-preflight": "1" } });
    expect(get.status).toBe(400);
    expect(((await get.json()) as { errors: Array<{ extensions: { code: string } }> }).errors.map((e) => e.extensions.code)).toEqual(["QUERY_TOO_DEEP"]);
    // Brackets inside a string are text, not nesting; a query just within the limit goes on to the field-depth check.
    const search = await gql(server.graphqlUrl, `{ sequences(search: ${JSON.stringify("{[(".repeat(300))}) { totalCount } }`);
    expect(search.errors).toBeUndefined();
    expect(search.data.sequences.totalCount).toBe(0);
    const ofTypes = MAX_BRACKET_NESTING - 2; // with the operation's and __type's braces: at the limit
    const justWithin = `{ __type(name: "Query") { ${"ofType { ".repeat(ofTypes)}name${" }".repeat(ofTypes)} } }`;
    const fieldDepth = await gql(server.graphqlUrl, justWithin);
    expect(codes(fieldDepth)).toEqual(["QUERY_TOO_DEEP"]);
    expect(fieldDepth.errors?.[0].message).toMatch(new RegExp(`nests fields ${ofTypes + 2} deep, more than the limit of 15`));
  });

  it("admits the standard introspection query but not a deeper recursive one", async () => {
    const introspection = await gql(server.graphqlUrl, getIntrospectionQuery());
    expect(introspection.errors).toBeUndefined();
    expect(introspection.data.__schema.queryType.name).toBe("Query");
    const deep = `{ __schema { types { ${"ofType { ".repeat(14)}name${" }".repeat(14)} } } }`;
    expect(codes(await gql(server.graphqlUrl, deep))).toEqual(["QUERY_TOO_DEEP"]);
  });

  it("refuses aliased copies of influence that together cost too much, before running any", async () => {
    const fields = Array.from({ length: 6 }, (_, i) => `a${i}: influence(completion: " fox") { hits { rank } }`).join("\n");
    const res = await gql(server.graphqlUrl, `{ ${fields} }`);
    expect(res.status).toBe(400);
    expect(codes(res)).toEqual(["QUERY_TOO_COMPLEX"]);
    expect(res.errors?.[0].message).toMatch(/costs \d+, more than the limit of 10000/);
    expect(engine.influenceRequests).toEqual([]);

    const few = Array.from({ length: 2 }, (_, i) => `a${i}: influence(completion: " fox") { hits { rank } }`).join("\n");
    expect((await gql(server.graphqlUrl, `{ ${few} }`)).errors).toBeUndefined();
  });

  it("prices hits by topK, and token scores per hit", async () => {
    const big = (selection: string) =>
      gql(server.graphqlUrl, `query($k: Int) { influence(completion: " fox", topK: $k) { hits { ${selection} } } }`, { variables: { k: 1000 } });
    expect((await big("rank sequence { id }")).errors).toBeUndefined();
    expect(codes(await big("rank sequence { id } tokenScores { position score }"))).toEqual(["QUERY_TOO_COMPLEX"]);
    const cheap = await serverWith({ maxComplexity: 2500 });
    expect(codes(await gql(cheap.graphqlUrl, `{ influence(completion: " fox", topK: 200) { hits { rank score ordinal } } }`))).toEqual(["QUERY_TOO_COMPLEX"]);
    expect((await gql(cheap.graphqlUrl, `{ influence(completion: " fox", topK: 100) { hits { rank score ordinal } } }`)).errors).toBeUndefined();
  });
});
