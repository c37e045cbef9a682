import "reflect-metadata";
import { rm } from "node:fs/promises";
import path from "node:path";
import { openDatabase } from "../src/db/connect.js";
import { insertSequences, migrate, type Database, type NewSequence, upsertCorpus } from "../src/db/index.js";
import type { ServerLogger } from "../src/server/logger.js";
import { loadTokenizer, type Tokenizer } from "../src/tokenizer/tokenizer.js";
import { makeTempDir } from "./db.js";
import { fixturePath } from "./fixtures.js";
import { TEST_CORPUS } from "./server-engine.js";

/** Texts with SQL and LIKE metacharacters, for search tests; each sequence gets one plus its ordinal. */
export const SEQUENCE_TEXTS = [
  "The quick brown fox",
  "100% sure about it",
  "100 percent sure",
  "snake_case name",
  "snakeXcase name",
  "a back\\slash here",
  "a backslash here",
  "'; DROP TABLE sequences; --",
  "it's O'Brien's fox",
  "50%_off \\ sale",
];

/** GPT-2's tokenizer (the fixture model's vocab.json and merges.txt). */
export function loadTestTokenizer(): Promise<Tokenizer> {
  return loadTokenizer(fixturePath("gpt2-tiny"));
}

/** `count` sequences of the test corpus: documents of two windows, texts from SEQUENCE_TEXTS. */
export function testSequences(tokenizer: Tokenizer, count: number): NewSequence[] {
  return Array.from({ length: count }, (_, ordinal) => {
    const text = `${SEQUENCE_TEXTS[ordinal % SEQUENCE_TEXTS.length]} [${ordinal}]`;
    const doc = Math.floor(ordinal / 2);
    return {
      ordinal,
      externalId: `doc-${doc}#${(ordinal % 2) * 512}`,
      documentExternalId: `doc-${doc}`,
      tokenOffset: (ordinal % 2) * 512,
      text,
      tokenIds: tokenizer.encode(text),
    };
  });
}

/** A migrated PGlite database in a temp folder holding the test corpus. */
export async function openSeededDatabase(sequences: NewSequence[]): Promise<{ db: Database; cleanup(): Promise<void> }> {
  const dir = await makeTempDir("influence-server");
  const db = await openDatabase({ dataDir: path.join(dir, "db") });
  await migrate(db);
  const corpus = await upsertCorpus(db, { name: TEST_CORPUS.name, sourcePath: TEST_CORPUS.path, fingerprint: TEST_CORPUS.fingerprint });
  await insertSequences(db, corpus.id, sequences);
  return {
    db,
    async cleanup() {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** `db` with a record of the SQL text of every statement sent through it. */
export function recordingDatabase(db: Database): { db: Database; statements: string[] } {
  const statements: string[] = [];
  return {
    statements,
    db: {
      kind: db.kind,
      location: db.location,
      query(text, params, options) {
        statements.push(text);
        return db.query(text, params, options);
      },
      transaction: (fn) => db.transaction(fn),
      close: () => db.close(),
    },
  };
}

/** A logger that keeps what it is told, for assertions and to keep test output clean. */
export function memoryLogger(): ServerLogger & { warnings: string[]; errors: string[] } {
  const warnings: string[] = [];
  const errors: string[] = [];
  return { warnings, errors, warn: (m) => void warnings.push(m), error: (m) => void errors.push(m) };
}

export interface GraphQLResponse {
  status: number;
  headers: Headers;
  // Shape checked by each test's assertions.
  data?: any;
  errors?: Array<{ message: string; path?: string[]; extensions?: Record<string, unknown> }>;
}

/** POSTs one GraphQL operation over HTTP. */
export async function gql(
  url: string,
  query: string,
  options: { variables?: Record<string, unknown>; headers?: Record<string, string> } = {},
): Promise<GraphQLResponse> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...options.headers },
    body: JSON.stringify({ query, variables: options.variables }),
  });
  const body = (await res.json()) as Omit<GraphQLResponse, "status" | "headers">;
  return { status: res.status, headers: res.headers, ...body };
}

/** The error codes of a response, in order. */
export function codes(response: GraphQLResponse): unknown[] {
  return (response.errors ?? []).map((e) => e.extensions?.code);
}
