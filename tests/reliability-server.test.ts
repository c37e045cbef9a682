/**
 * `influence serve` as a separate process over a real index (PGlite), facing hostile requests over
 * HTTP, a kill -9 in the middle of a query, and damaged index files at start-up.
 */
import { existsSync } from "node:fs";
import { cp, readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { indexPath } from "../src/indexer/index-manifest.js";
import { runBuild } from "../src/jobs/build.js";
import { tempDir } from "../src/util/temp-dir.js";
import { LOCK_FILE_NAME } from "../src/util/directory-lock.js";
import {
  type ServeProcess,
  documentsContaining,
  flipByte,
  health,
  listeningAddresses,
  reliabilityBuildJob,
  runInfluence,
  serveIndex,
  waitUntilIdle,
  writeReliabilityCorpus,
} from "../support/reliability.js";
import { codes, gql } from "../support/server.js";

const INFLUENCE = `query Influence($prompt: String, $completion: String, $promptTokens: [Int!], $completionTokens: [Int!], $topK: Int,
    $candidates: Int, $layers: [Int!], $completionPositions: [Int!], $containsToken: String) {
  influence(prompt: $prompt, completion: $completion, promptTokens: $promptTokens, completionTokens: $completionTokens, topK: $topK,
    candidates: $candidates, layers: $layers, completionPositions: $completionPositions, containsToken: $containsToken) {
    hits { rank score sequence { id text tokens } }
  }
}`;
const SEQUENCES = `query Sequences($search: String, $first: Int, $after: String) {
  sequences(search: $search, first: $first, after: $after) { totalCount edges { node { id } } }
}`;
/** The query every check comes back to; candidates 24 = every sequence, so the top-10 is exact. */
const GOOD = { prompt: "The cat", completion: " sat on the mat", candidates: 24 };

interface Answer {
  status: number;
  // Shape checked by each case.
  body: any;
  text: string;
}

async function post(url: string, body: string | Buffer, contentType = "application/json"): Promise<Answer> {
  const res = await fetch(url, { method: "POST", headers: { "content-type": contentType }, body: typeof body === "string" ? body : new Uint8Array(body) });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed, text };
}

const json = (query: string, variables?: Record<string, unknown>) => JSON.stringify({ query, variables });
const influence = (variables: Record<string, unknown>) => json(INFLUENCE, { ...GOOD, ...variables });
/** influence with the query as token ids. */
const byTokens = (promptTokens: unknown[], completionTokens: unknown[]) => influence({ prompt: null, completion: null, promptTokens, completionTokens });
const nested = (depth: number): string => (depth === 0 ? "name" : `ofType { ${nested(depth - 1)} }`);

interface HostileCase {
  name: string;
  body: string | Buffer;
  contentType?: string;
  status: number;
  /** extensions.code of the first error; "data" for an answer without errors. */
  code: string;
  message?: RegExp;
  /** Further checks of an answer with data. */
  check?: (data: any) => void;
}

const utf8 = (text: string) => Buffer.from(text, "utf8");
const invalidUtf8 = Buffer.from([0xff, 0xfe, 0xc3, 0x28]);

const HOSTILE: HostileCase[] = [
  // Query shapes that blow up depth or cost.
  {
    name: "fields nested 24 deep",
    body: json(`{ __type(name: "Query") { fields { type { ${nested(20)} } } } }`),
    status: 400,
    code: "QUERY_TOO_DEEP",
    message: /nests fields 24 deep/,
  },
  {
    name: "6 aliased influence searches",
    body: json(`{ ${Array.from({ length: 6 }, (_, i) => `a${i}: influence(prompt: "a", completion: " b") { hits { rank } }`).join(" ")} }`),
    status: 400,
    code: "QUERY_TOO_COMPLEX",
  },
  {
    name: "50 aliased pages of 1000 sequences",
    body: json(`{ ${Array.from({ length: 50 }, (_, i) => `a${i}: sequences(first: 1000) { edges { node { id text tokens } } }`).join(" ")} }`),
    status: 400,
    code: "QUERY_TOO_COMPLEX",
  },
  {
    name: "a fragment cycle",
    body: json(`{ ...A } fragment A on Query { layers { layer } ...B } fragment B on Query { ...A }`),
    status: 400,
    code: "GRAPHQL_VALIDATION_FAILED",
  },
  {
    name: "a batch of 100 operations",
    body: JSON.stringify(Array.from({ length: 100 }, () => ({ query: `{ layers { layer } }` }))),
    status: 400,
    code: "BAD_REQUEST",
  },
  {
    name: "a list variable nested 45000 deep",
    body: `{"query": ${JSON.stringify(INFLUENCE)}, "variables": {"completion": " b", "layers": ${"[".repeat(45_000)}${"]".repeat(45_000)}}}`,
    status: 400,
    code: "BAD_USER_INPUT",
  },
  // Integers out of range, as variables and as literals.
  { name: "topK -1", body: influence({ topK: -1 }), status: 200, code: "BAD_USER_INPUT", message: /topK must be from 1 to 1000 \(got -1\)/ },
  {
    name: "topK 2^31",
    body: influence({ topK: 2 ** 31 }),
    status: 400,
    code: "BAD_USER_INPUT",
    message: /Int cannot represent non 32-bit signed integer value: 2147483648/,
  },
  {
    name: "topK 2^53",
    body: influence({ topK: 2 ** 53 }),
    status: 400,
    code: "BAD_USER_INPUT",
    message: /Int cannot represent non 32-bit signed integer value: 9007199254740992/,
  },
  {
    name: "topK 2^53 as a literal",
    body: json(`{ influence(prompt: "a", completion: " b", topK: 9007199254740992) { hits { rank } } }`),
    status: 400,
    code: "GRAPHQL_VALIDATION_FAILED",
  },
  { name: "topK 1.5", body: influence({ topK: 1.5 }), status: 400, code: "BAD_USER_INPUT", message: /non-integer value: 1.5/ },
  {
    name: "candidates -1",
    body: influence({ candidates: -1 }),
    status: 200,
    code: "BAD_USER_INPUT",
    message: /candidates must be from topK \(10\) to 10000 \(got -1\)/,
  },
  { name: "candidates 2^31-1", body: influence({ candidates: 2 ** 31 - 1 }), status: 200, code: "BAD_USER_INPUT", message: /got 2147483647/ },
  { name: "candidates 2^31", body: influence({ candidates: 2 ** 31 }), status: 400, code: "BAD_USER_INPUT" },
  { name: "layers [-1]", body: influence({ layers: [-1] }), status: 200, code: "BAD_USER_INPUT", message: /unknown layer -1: the index has layers 0, 1/ },
  { name: "layers [2^31-1]", body: influence({ layers: [2 ** 31 - 1] }), status: 200, code: "BAD_USER_INPUT", message: /unknown layer 2147483647/ },
  { name: "layers [2^53]", body: influence({ layers: [2 ** 53] }), status: 400, code: "BAD_USER_INPUT" },
  {
    name: "completionPositions [-1]",
    body: influence({ completionPositions: [-1] }),
    status: 200,
    code: "BAD_USER_INPUT",
    message: /completion position -1 is out of range/,
  },
  {
    name: "completionPositions [2^31-1]",
    body: influence({ completionPositions: [2 ** 31 - 1] }),
    status: 200,
    code: "BAD_USER_INPUT",
    message: /completion position 2147483647 is out of range/,
  },
  { name: "a negative token id", body: byTokens([-1], [262]), status: 200, code: "BAD_USER_INPUT", message: /promptTokens\[0\] = -1 is not a token id/ },
  {
    name: "token id 50257 (past the vocabulary)",
    body: byTokens([464], [50257]),
    status: 200,
    code: "BAD_USER_INPUT",
    message: /completionTokens\[0\] = 50257 is not a token id \(the vocabulary has ids 0 to 50256\)/,
  },
  { name: "token id 2^31-1", body: byTokens([2 ** 31 - 1], [262]), status: 200, code: "BAD_USER_INPUT", message: /= 2147483647 is not a token id/ },
  { name: "token id 2^53", body: byTokens([464], [2 ** 53]), status: 400, code: "BAD_USER_INPUT" },
  {
    name: "5000 prompt tokens",
    body: byTokens(Array(5000).fill(464), [262]),
    status: 200,
    code: "BAD_USER_INPUT",
    message: /5001 tokens \(5000 \+ 1\), more than the model's context of 64/,
  },
  // Enormous strings and bodies.
  {
    name: "a 90 kB prompt (within the body limit)",
    body: influence({ prompt: "word ".repeat(18_000) }),
    status: 200,
    code: "BAD_USER_INPUT",
    message: /more than the model's context of 64/,
  },
  {
    name: "a body over the 100 kB limit",
    body: influence({ prompt: "x".repeat(120_000) }),
    status: 413,
    code: "PAYLOAD_TOO_LARGE",
    message: /larger than the limit of 100000 bytes/,
  },
  { name: "a body that is not JSON", body: "{ this is not json", status: 400, code: "BAD_USER_INPUT", message: /^bad request: / },
  {
    name: "a charset the server does not read",
    body: json("{ layers { layer } }"),
    contentType: "application/json; charset=latin1",
    status: 415,
    code: "BAD_USER_INPUT",
    message: /unsupported charset/,
  },
  {
    name: "text/plain (a cross-site form post)",
    body: json("{ layers { layer } }"),
    contentType: "text/plain",
    status: 400,
    code: "BAD_REQUEST",
    message: /Cross-Site Request Forgery/,
  },
  {
    name: "invalid UTF-8 inside the GraphQL syntax",
    body: Buffer.concat([utf8('{"query": "{ seq'), invalidUtf8, utf8('uences { totalCount } }"}')]),
    status: 400,
    code: "GRAPHQL_PARSE_FAILED",
  },
  {
    name: "invalid UTF-8 inside a search string: read as U+FFFD, found nowhere",
    body: Buffer.concat([utf8('{"query": "{ sequences(search: \\"'), invalidUtf8, utf8('\\") { totalCount edges { node { id } } } }"}')]),
    status: 200,
    code: "data",
    check: (data) => expect(data.sequences).toEqual({ totalCount: 0, edges: [] }),
  },
  // SQL and LIKE metacharacters: matched literally, never interpreted.
  ...["'; DROP TABLE sequences; --", "%", "_", "\\", "100%", "snake_case", "it's O'Brien"].map(
    (search): HostileCase => ({
      name: `search ${JSON.stringify(search)}`,
      body: json(SEQUENCES, { search, first: 100 }),
      status: 200,
      code: "data",
      check: (data) => {
        const expected = documentsContaining(search);
        expect(expected.length).toBeGreaterThan(0);
        expect(data.sequences.totalCount).toBe(expected.length);
        expect(data.sequences.edges.map((e: { node: { id: string } }) => e.node.id)).toEqual(expected);
      },
    }),
  ),
  ...[
    ["control characters", "\u0001\u001b[31m"],
    ["a lone surrogate", "\ud800"],
    ["a right-to-left override", "\u202efox"],
  ].map(
    ([what, search]): HostileCase => ({
      name: `search with ${what}: a correct empty result`,
      body: json(SEQUENCES, { search }),
      status: 200,
      code: "data",
      check: (data) => expect(data.sequences).toEqual({ totalCount: 0, edges: [] }),
    }),
  ),
  { name: "search with a NUL character", body: json(SEQUENCES, { search: "a\u0000b" }), status: 200, code: "BAD_USER_INPUT", message: /NUL character/ },
  {
    name: "search of 5000 characters",
    body: json(SEQUENCES, { search: "a".repeat(5000) }),
    status: 200,
    code: "BAD_USER_INPUT",
    message: /longer than 1000 characters/,
  },
  {
    name: "first -1",
    body: json(SEQUENCES, { first: -1 }),
    status: 200,
    code: "BAD_USER_INPUT",
    message: /first must be an integer from 1 to 1000 \(got -1\)/,
  },
  { name: "first 2^31", body: json(SEQUENCES, { first: 2 ** 31 }), status: 400, code: "BAD_USER_INPUT" },
  { name: "an SQL cursor", body: json(SEQUENCES, { after: "'; DROP TABLE sequences; --" }), status: 200, code: "BAD_USER_INPUT", message: /invalid cursor/ },
  {
    name: "containsToken of SQL",
    body: influence({ containsToken: "'; DROP TABLE sequences; --" }),
    status: 200,
    code: "BAD_USER_INPUT",
    message: /is 7 tokens/,
  },
  { name: "containsToken #-1", body: influence({ containsToken: "#-1" }), status: 200, code: "BAD_USER_INPUT", message: /not one/ },
  {
    name: "containsToken #99999999999999999999",
    body: influence({ containsToken: "#99999999999999999999" }),
    status: 200,
    code: "BAD_USER_INPUT",
    message: /no such token id/,
  },
  ...[
    ["%", 4],
    ["_", 62],
    ["\\", 59],
  ].map(
    ([token, id]): HostileCase => ({
      name: `containsToken ${JSON.stringify(token)}: only hits holding that token`,
      body: influence({ containsToken: token }),
      status: 200,
      code: "data",
      check: (data) => {
        const hits = data.influence.hits as Array<{ sequence: { id: string; text: string; tokens: number[] } }>;
        expect(hits.length).toBeGreaterThan(0);
        for (const h of hits) expect(h.sequence.tokens).toContain(id);
        expect(hits.length).toBeLessThanOrEqual(documentsContaining(token as string).length);
      },
    }),
  ),
  // Unicode control characters in the query text itself.
  {
    name: "a prompt and completion full of control characters",
    body: influence({ prompt: "\u0000\u0001\u001b[31m\u202e\ufeffThe cat", completion: " sat\u0007 on\u0008 the mat\u0000" }),
    status: 200,
    code: "data",
    check: (data) => expect(data.influence.hits).toHaveLength(10),
  },
];

describe("influence serve, as a process", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let indexDir: string;
  let server: ServeProcess;
  let goodHits: unknown;

  const ask = async (url: string, headers: Record<string, string> = {}) => {
    const res = await gql(url, INFLUENCE, { variables: GOOD, headers });
    expect(res.errors).toBeUndefined();
    return res.data.influence.hits.map((h: { rank: number; score: number; sequence: { id: string } }) => [h.rank, h.sequence.id, h.score]);
  };

  beforeAll(async () => {
    tmp = await tempDir("influence-reliability-");
    indexDir = path.join(tmp.dir, "index");
    await runBuild(reliabilityBuildJob(await writeReliabilityCorpus(path.join(tmp.dir, "corpus.jsonl")), indexDir));
    // Copies for the start-up tests, taken before any server opens the database.
    await Promise.all(["corrupt-vectors", "corrupt-tokens"].map((name) => cp(indexDir, path.join(tmp.dir, name), { recursive: true })));
    server = await serveIndex(indexDir);
    goodHits = await ask(server.graphqlUrl);
  });
  afterAll(async () => {
    await server?.stop();
    await tmp?.remove();
  });

  it("binds 127.0.0.1 by default", async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    // The kernel's own table of listening sockets: 127.0.0.1 only, nothing on other addresses or IPv6.
    const port = Number(new URL(server.url).port);
    expect(await listeningAddresses(port)).toEqual([`0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`]);
  });

  describe("answers hostile requests with coded errors or correct data, never a 500 or a stack trace", () => {
    it.each(HOSTILE.map((c) => [c.name, c] as const))("%s", async (_name, c) => {
      const answer = await post(server.graphqlUrl, c.body, c.contentType);
      expect(answer.text).not.toMatch(/\n\s+at |stacktrace|INTERNAL_SERVER_ERROR/);
      expect(answer.status, answer.text.slice(0, 300)).toBe(c.status);
      if (c.code === "data") {
        expect(answer.body.errors, answer.text.slice(0, 300)).toBeUndefined();
        c.check?.(answer.body.data);
      } else {
        expect(answer.body.errors?.[0]?.extensions?.code, answer.text.slice(0, 300)).toBe(c.code);
        if (c.message) expect(answer.body.errors[0].message).toMatch(c.message);
      }
    });

    it("and keeps serving: /healthz, the full table, the same hits", async () => {
      expect(server.child.exitCode).toBeNull();
      expect((await health(server.url)).body.status).toBe("ok");
      const all = await gql(server.graphqlUrl, SEQUENCES, { variables: { first: 100 } });
      expect(all.data.sequences.totalCount).toBe(24);
      expect(await ask(server.graphqlUrl)).toEqual(goodHits);
    });
  });

  it("restarts after kill -9 in the middle of a query: the same hits, the database intact, its lock taken over", async () => {
    await waitUntilIdle(server.url);
    // Three queries in flight (two running, one waiting); killed once the engine is busy with them.
    const inFlight = Array.from({ length: 3 }, () =>
      gql(server.graphqlUrl, INFLUENCE, { variables: GOOD }).then(
        () => "answered",
        () => "cut",
      ),
    );
    await expect.poll(async () => (await health(server.url)).body.engine?.busy, { timeout: 10_000, interval: 20 }).toBeGreaterThan(0);
    server.child.kill("SIGKILL");
    expect(await server.exited).toEqual({ code: null, signal: "SIGKILL" });
    expect(await Promise.all(inFlight)).toContain("cut");
    const lockFile = path.join(indexPath(indexDir, "database"), LOCK_FILE_NAME);
    expect(JSON.parse(await readFile(lockFile, "utf8")).pid).toBe(server.pid);

    // Restarted with an API key from the environment, which the serve command must honour.
    server = await serveIndex(indexDir, { env: { INFLUENCE_API_KEY: "reliability-key" } });
    expect(JSON.parse(await readFile(lockFile, "utf8")).pid).toBe(server.pid);
    const locked = await gql(server.graphqlUrl, INFLUENCE, { variables: GOOD });
    expect(locked.status).toBe(401);
    expect(codes(locked)).toEqual(["UNAUTHENTICATED"]);
    expect((await health(server.url)).status).toBe(200);
    const withKey = { authorization: "Bearer reliability-key" };
    expect(await ask(server.graphqlUrl, withKey)).toEqual(goodHits);
    // Queries logged before the kill are still there.
    const logged = await gql(server.graphqlUrl, "{ recentQueries(limit: 1000) { topHitIds error } }", { headers: withKey });
    const goodIds = (goodHits as Array<[number, string, number]>).map(([, id]) => id);
    expect(
      logged.data.recentQueries.filter((q: { topHitIds: string[] }) => JSON.stringify(q.topHitIds) === JSON.stringify(goodIds)).length,
    ).toBeGreaterThanOrEqual(2);
    const all = await gql(server.graphqlUrl, SEQUENCES, { variables: { first: 100 }, headers: withKey });
    expect(all.data.sequences.totalCount).toBe(24);
  });

  describe("refuses to start on a damaged index, exiting non-zero and naming the file", () => {
    it.each([
      ["vectors.bin", "corrupt-vectors", /vector file .*corrupt-vectors\/vectors\.bin: payload checksum mismatch/],
      ["tokens.bin", "corrupt-tokens", /corrupt token store .*corrupt-tokens\/tokens\.bin: payload checksum mismatch/],
    ])("a flipped byte in %s", async (file, copy, message) => {
      const dir = path.join(tmp.dir, copy);
      await flipByte(path.join(dir, file), 100);
      const run = await runInfluence(["serve", "--index", dir, "--port", "0"], { timeoutMs: 90_000 });
      expect(run.signal).toBeNull();
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(message);
      expect(run.stderr).not.toMatch(/\n\s+at /);
      // The database it had opened first is closed again, its lock released.
      expect(existsSync(path.join(indexPath(dir, "database"), LOCK_FILE_NAME))).toBe(false);
    });
  });
});
