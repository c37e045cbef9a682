/**
 * Property tests on hostile input, with fixed seeds and bounded runs: the safetensors parser on
 * random and mutated bytes, and the GraphQL API (real schema, server and database, the test-double
 * engine) on random argument values. (The JSONL reader has its own in corpus.test.ts.)
 */
import "reflect-metadata";
import fc from "fast-check";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Database } from "../src/db/index.js";
import { parseSafetensors } from "../src/safetensors/read.js";
import { DTYPE_BYTES } from "../src/safetensors/dtype.js";
import { encodeSafetensors } from "../src/safetensors/write.js";
import { type RunningServer, startServer } from "../src/http/app.js";
import { InputError } from "../src/util/errors.js";
import { loadTestTokenizer, memoryLogger, openSeededDatabase, testSequences } from "../support/server.js";
import { TEST_INDEX, TestDoubleEngine } from "../support/server-engine.js";

const FILE = "fuzz.safetensors";

/** Outcomes of checkParse so far, so that a property can show it reached both. */
const outcomes = { refused: 0, parsed: 0 };

/** parseSafetensors either refuses with an InputError naming the file, or returns a parse whose every claim holds. */
function checkParse(bytes: Uint8Array): void {
  let parsed: ReturnType<typeof parseSafetensors>;
  try {
    parsed = parseSafetensors(FILE, bytes);
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message.startsWith(`${FILE}: `)).toBe(true);
    outcomes.refused++;
    return;
  }
  expect(typeof parsed.metadata === "object" && parsed.metadata !== null && !Array.isArray(parsed.metadata)).toBe(true);
  for (const value of Object.values(parsed.metadata)) expect(typeof value).toBe("string");
  const ranges: Array<[number, number]> = [];
  for (const info of parsed.tensors.values()) {
    expect(info.dtype in DTYPE_BYTES).toBe(true);
    expect(info.shape.every((d) => Number.isSafeInteger(d) && d >= 0)).toBe(true);
    expect(info.end - info.begin).toBe(info.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[info.dtype]);
    expect(info.begin >= 0 && info.end <= parsed.data.byteLength).toBe(true);
    ranges.push([info.begin, info.end]);
  }
  ranges.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ranges.length; i++) expect(ranges[i][0]).toBeGreaterThanOrEqual(ranges[i - 1][1]);
  outcomes.parsed++;
}

/** An 8-byte little-endian header length, the header bytes, then `data` bytes. */
function frame(headerLength: bigint, header: Uint8Array, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + header.length + data.length);
  new DataView(out.buffer).setBigUint64(0, headerLength, true);
  out.set(header, 8);
  out.set(data, 8 + header.length);
  return out;
}

const VALID = encodeSafetensors(
  {
    "a.weight": { dtype: "F32", shape: [2, 3], data: [1, 2, 3, 4, 5, 6] },
    "a.bias": { dtype: "F16", shape: [3], data: [0.5, -1, 2] },
    scale: { dtype: "F64", shape: [], data: [3.25] },
  },
  { format: "pt", step: "7" },
);

describe("the safetensors parser on hostile bytes", () => {
  beforeEach(() => Object.assign(outcomes, { refused: 0, parsed: 0 }));
  it("random byte strings", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => checkParse(bytes)),
      { seed: 101, numRuns: 2000 },
    );
  });

  it("random header lengths around the real one, up to 2^64 - 1", () => {
    const lengths = fc.oneof(
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      fc.constantFrom(0n, 1n, 7n, 8n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n),
      fc.integer({ min: -16, max: 16 }).map((d) => BigInt(Math.max(0, VALID.length - 8 + d))),
    );
    fc.assert(
      fc.property(lengths, fc.uint8Array({ maxLength: 64 }), (length, data) => checkParse(frame(length, VALID.subarray(8), data))),
      { seed: 102, numRuns: 1000 },
    );
  });

  it("valid files with bytes flipped, cut or inserted", () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant("cut" as const), at: fc.nat(), byte: fc.constant(0) }),
      fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
    );
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 6 }), (mutations) => {
        let bytes = Uint8Array.from(VALID);
        for (const { kind, at, byte } of mutations) {
          const i = at % (bytes.length + 1);
          if (kind === "flip" && i < bytes.length) bytes[i] ^= byte || 1;
          if (kind === "cut") bytes = bytes.subarray(0, i);
          if (kind === "insert") bytes = Uint8Array.from([...bytes.subarray(0, i), byte, ...bytes.subarray(i)]);
        }
        checkParse(bytes);
      }),
      { seed: 103, numRuns: 2000 },
    );
    expect(outcomes.parsed).toBeGreaterThan(20);
    expect(outcomes.refused).toBeGreaterThan(20);
  });

  it("headers of random JSON: wrong dtypes, shapes, offsets and metadata", () => {
    const number = fc.oneof(fc.integer({ min: -5, max: 64 }), fc.constantFrom(2 ** 31, 2 ** 53, 2 ** 53 + 2, -0, 1.5, Number.MAX_VALUE), fc.double());
    const loose = fc.oneof(number, fc.string({ maxLength: 4 }), fc.constant(null), fc.boolean(), fc.array(number, { maxLength: 3 }));
    const entry = fc.record(
      {
        dtype: fc.oneof(fc.constantFrom(...Object.keys(DTYPE_BYTES)), fc.constantFrom("F8", "f32", "", "__proto__"), loose),
        shape: fc.oneof(fc.array(number, { maxLength: 4 }), loose),
        data_offsets: fc.oneof(fc.tuple(number, number), fc.array(number, { maxLength: 3 }), loose),
      },
      { requiredKeys: [] },
    );
    const metadata = fc.oneof(
      fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 })),
      fc.dictionary(fc.string({ maxLength: 5 }), loose),
      loose,
    );
    const header = fc.record(
      {
        tensors: fc.dictionary(fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom("__proto__", "constructor", "")), fc.oneof(entry, loose), { maxKeys: 4 }),
        metadata: fc.option(metadata),
      },
      { requiredKeys: ["tensors"] },
    );
    fc.assert(
      fc.property(header, fc.nat({ max: 200 }), fc.boolean(), ({ tensors, metadata: meta }, dataBytes, padded) => {
        const text = JSON.stringify(meta === undefined || meta === null ? tensors : { __metadata__: meta, ...tensors });
        const headerBytes = Buffer.from(padded ? `${text}   ` : text, "utf8");
        checkParse(frame(BigInt(headerBytes.length), headerBytes, new Uint8Array(dataBytes)));
      }),
      { seed: 104, numRuns: 3000 },
    );
    expect(outcomes.parsed).toBeGreaterThan(20);
    expect(outcomes.refused).toBeGreaterThan(20);
  });
});

describe("the GraphQL API on random argument values", () => {
  const SEQUENCE_COUNT = 40;
  let database: { db: Database; cleanup(): Promise<void> };
  let server: RunningServer;
  const logger = memoryLogger();
  /** Codes a client may get for bad input; anything else (INTERNAL_SERVER_ERROR above all) is a bug. */
  const CODES = new Set(["BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED", "GRAPHQL_PARSE_FAILED", "QUERY_TOO_COMPLEX", "QUERY_TOO_DEEP", "BAD_REQUEST"]);

  beforeAll(async () => {
    const tokenizer = await loadTestTokenizer();
    database = await openSeededDatabase(testSequences(tokenizer, SEQUENCE_COUNT));
    server = await startServer({
      indexes: [{ name: TEST_INDEX, engine: new TestDoubleEngine({ sequences: SEQUENCE_COUNT }), db: database.db, tokenizer }],
      port: 0,
      logger,
    });
  });
  afterAll(async () => {
    await server?.close();
    await database?.cleanup();
  });

  const hostileInt = fc.constantFrom(-1, 0, 1000, 1001, 10_000, 10_001, 50_256, 50_257, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 2 ** 53, 1.5, -0.5);
  /** Mostly in [min, max], sometimes at or past the edges of the schema's ranges, or not an integer. */
  const int = (min: number, max: number) => fc.oneof({ weight: 6, arbitrary: fc.integer({ min, max }) }, hostileInt, fc.double());
  const text = fc.oneof(
    { weight: 3, arbitrary: fc.string({ minLength: 1, maxLength: 12 }) },
    fc.string({ unit: "binary", maxLength: 12 }),
    fc.constantFrom(
      "",
      " fox",
      "The quick",
      "'; DROP TABLE sequences; --",
      "%",
      "_",
      "\\",
      "\u0000",
      "\ud800",
      "#464",
      "#-1",
      "#99999999999",
      "a".repeat(2000),
    ),
  );
  const tokens = fc.array(int(0, 50_256), { maxLength: 6 });
  /** Absent half the time; otherwise mostly of the argument's type, sometimes null or of another type. */
  const arg = <T>(typed: fc.Arbitrary<T>) =>
    fc.option(fc.oneof({ weight: 8, arbitrary: typed }, fc.constant(null), text, fc.array(hostileInt, { maxLength: 2 })), { nil: undefined, freq: 2 });

  const answers = { data: 0, errors: 0 };
  beforeEach(() => Object.assign(answers, { data: 0, errors: 0 }));

  /** Posts `query` with `variables`; checks it is answered with data or coded errors only. */
  async function checkAnswer(query: string, variables: Record<string, unknown>): Promise<void> {
    const res = await fetch(server.graphqlUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query, variables }) });
    const text = await res.text();
    const body = JSON.parse(text) as { data?: unknown; errors?: Array<{ extensions?: { code?: string } }> };
    expect([200, 400, 413], text).toContain(res.status);
    expect(text).not.toMatch(/\n\s+at |stacktrace/);
    if (body.errors) for (const e of body.errors) expect(CODES.has(String(e.extensions?.code)), text).toBe(true);
    else expect(body.data, text).toBeDefined();
    answers[body.errors ? "errors" : "data"]++;
  }

  it("influence: only data or coded errors", async () => {
    const query = `query Q($prompt: String, $completion: String, $promptTokens: [Int!], $completionTokens: [Int!], $topK: Int, $layers: [Int!],
        $completionPositions: [Int!], $containsToken: String, $candidates: Int, $rerank: Boolean) {
      influence(prompt: $prompt, completion: $completion, promptTokens: $promptTokens, completionTokens: $completionTokens, topK: $topK, layers: $layers,
        completionPositions: $completionPositions, containsToken: $containsToken, candidates: $candidates, rerank: $rerank) {
        hits { rank score sequence { id text } } query { completionTokens }
      }
    }`;
    // The query as text or as tokens (mostly one of the two, as the schema asks), then the options.
    const input = fc.oneof(
      fc.record({ prompt: arg(text), completion: text }, { requiredKeys: ["completion"] }),
      fc.record({ promptTokens: arg(tokens), completionTokens: tokens }, { requiredKeys: ["completionTokens"] }),
      fc.record({ prompt: arg(text), completion: arg(text), promptTokens: arg(tokens), completionTokens: arg(tokens) }, { requiredKeys: [] }),
    );
    const options = fc.record(
      {
        topK: arg(int(1, 40)),
        layers: arg(fc.array(int(0, 1), { maxLength: 3 })),
        completionPositions: arg(fc.array(int(0, 2), { maxLength: 3 })),
        containsToken: arg(text),
        candidates: arg(int(10, 200)),
        rerank: arg(fc.boolean()),
      },
      { requiredKeys: [] },
    );
    const variables = fc.tuple(input, options).map(([i, o]) => ({ ...i, ...o }));
    await fc.assert(
      fc.asyncProperty(variables, (v) => checkAnswer(query, v)),
      { seed: 201, numRuns: 400 },
    );
    expect(logger.errors).toEqual([]);
    expect(answers.data).toBeGreaterThan(10);
    expect(answers.errors).toBeGreaterThan(10);
  });

  it("sequences and sequence: only data or coded errors", async () => {
    const query = `query Q($first: Int, $after: String, $search: String, $id: ID!) {
      sequences(first: $first, after: $after, search: $search) { totalCount edges { cursor node { id text tokens } } pageInfo { hasNextPage endCursor } }
      sequence(id: $id) { id ordinal }
    }`;
    const cursor = fc.oneof(
      text,
      fc.base64String({ maxLength: 16 }),
      fc.nat({ max: 100 }).map((n) => Buffer.from(`seq:${n}`).toString("base64")),
    );
    const variables = fc.record({ first: arg(int(1, 50)), after: arg(cursor), search: arg(text), id: fc.oneof(text, int(0, 100)) }, { requiredKeys: ["id"] });
    await fc.assert(
      fc.asyncProperty(variables, (v) => checkAnswer(query, v)),
      { seed: 202, numRuns: 400 },
    );
    expect(logger.errors).toEqual([]);
    expect(answers.data).toBeGreaterThan(10);
    expect(answers.errors).toBeGreaterThan(10);
  });
});
