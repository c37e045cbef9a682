import { spawn } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { finishBuild, getBuild, latestBuild, listShards, markShardDone, planShards, recordBuildPhase, reopenBuild, startBuild } from "../src/db/builds.js";
import { openDatabase } from "../src/db/connect.js";
import { getCorpus, upsertCorpus, type Corpus } from "../src/db/corpora.js";
import { DirectoryLockedError, LOCK_FILE_NAME, lockDirectory, type DirectoryLock } from "../src/util/directory-lock.js";
import { loadMigrations, migrate } from "../src/db/migrate.js";
import { logQuery, recentQueries } from "../src/db/query-log.js";
import {
  analyzeSequences,
  countSequences,
  getSequenceByExternalId,
  getSequencesByOrdinals,
  getTokenIdsByOrdinals,
  insertSequences,
  listSequences,
  maxOrdinal,
  ordinalsContainingToken,
  type NewSequence,
  type Sequence,
} from "../src/db/sequences.js";
import type { Database } from "../src/db/types.js";
import { InputError } from "../src/util/errors.js";
import { backends, countingDatabase, createTestDatabase, makeTempDir } from "../support/db.js";
import { SEQUENCE_TEXTS } from "../support/server.js";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** The server tests' texts with SQL and LIKE metacharacters, and accents; searches are checked against a plain JS substring test. */
const TEXTS = [...SEQUENCE_TEXTS, "École normale", "ecole primaire"];

/**
 * A corpus of `count` sequences: documents of 1 to 3 windows (split ones get `#<offset>` ids), a
 * sequence without text every 7th, token ids drawn so that token 7 occurs in some sequences only.
 */
function makeSequences(count: number, start = 0): NewSequence[] {
  const out: NewSequence[] = [];
  for (let ordinal = start; ordinal < start + count; ordinal++) {
    const doc = Math.floor(ordinal / 3);
    const window = ordinal % 3;
    const split = doc % 2 === 0; // odd documents have one window, so ordinal%3 > 0 stays unsplit
    const tokenIds = Array.from({ length: 4 + (ordinal % 5) }, (_, k) => 10 + ((ordinal * 31 + k * 17) % 40));
    if (ordinal % 4 === 1) tokenIds.push(7);
    out.push({
      ordinal,
      externalId: split ? `doc-${doc}#${window * 512}` : `doc-${doc}-w${window}`,
      documentExternalId: split ? `doc-${doc}` : `doc-${doc}-w${window}`,
      tokenOffset: split ? window * 512 : 0,
      text: ordinal % 7 === 6 ? null : `${TEXTS[ordinal % TEXTS.length]} [${ordinal}]`,
      tokenIds,
    });
  }
  return out;
}

const SAMPLE = makeSequences(120);

async function newCorpus(db: Database, name: string): Promise<Corpus> {
  return upsertCorpus(db, { name, sourcePath: `/data/${name}.jsonl`, fingerprint: `sha256:${name}` });
}

async function pageThrough(db: Database, corpusId: number, first: number, search?: string): Promise<{ ordinals: number[]; pages: number }> {
  const ordinals: number[] = [];
  let after: string | null = null;
  let pages = 0;
  for (;;) {
    const page = await listSequences(db, { corpusId, first, after, search });
    pages++;
    ordinals.push(...page.edges.map((e) => e.node.ordinal));
    expect(page.edges.length).toBeLessThanOrEqual(first);
    if (!page.pageInfo.hasNextPage) return { ordinals, pages };
    expect(page.edges).toHaveLength(first);
    after = page.pageInfo.endCursor;
    expect(after).toBe(page.edges.at(-1)!.cursor);
  }
}

describe.each(backends)("data layer on $name", (backend) => {
  let db: Database;
  let cleanup: () => Promise<void>;
  let firstMigration: string[];
  let corpus: Corpus;

  beforeAll(async () => {
    ({ db, cleanup } = await backend.open());
    firstMigration = await migrate(db);
    corpus = await newCorpus(db, "main");
    expect(await insertSequences(db, corpus.id, SAMPLE)).toBe(SAMPLE.length);
  });
  afterAll(async () => {
    await cleanup?.();
  });

  it("reports its backend", () => {
    expect(db.kind).toBe(backend.name);
  });

  describe("migrations", () => {
    it("apply every migration once, then nothing on a second run", async () => {
      const files = (await loadMigrations()).map((m) => m.name);
      expect(files[0]).toBe("001_initial_schema.sql");
      expect(firstMigration).toEqual(files);
      expect(await migrate(db)).toEqual([]);
      const { rows } = await db.query<{ version: number; name: string }>("SELECT version, name FROM schema_migrations ORDER BY version");
      expect(rows.map((r) => r.name)).toEqual(files);
      expect(rows[0].version).toBe(1);
    });

    it("refuse an applied migration whose file changed", async () => {
      const [first] = await loadMigrations();
      await expect(migrate(db, [{ ...first, checksum: "0".repeat(64) }])).rejects.toThrow(/001_initial_schema\.sql was changed after it was applied/);
    });

    it("refuse a database migrated by a newer program", async () => {
      await expect(migrate(db, [])).rejects.toThrow(/has migration 001_initial_schema\.sql, which this program does not know/);
    });
  });

  it("parses every column type to the same JavaScript values", async () => {
    const { rows } = await db.query(
      `SELECT 1::int4 AS i4, 9007199254740991::int8 AS i8, (SELECT count(*) FROM sequences) AS n, ARRAY[1, -2]::int4[] AS ia,
              ARRAY[3, NULL]::int8[] AS ba, ARRAY['a', 'b,c', NULL]::text[] AS ta, '{"a": [1, {"b": null}], "c": "é"}'::jsonb AS j,
              '2024-01-02T03:04:05.678Z'::timestamptz AS ts, true AS b, 1.5::float8 AS f, NULL::text AS nul, $1::text AS t,
              $2::int4[] AS pa, $3::jsonb AS pj, $4::timestamptz AS pts`,
      ["héllo 👋 \n\t'\"", [5, 6], JSON.stringify({ k: [1, 2] }), new Date("2020-02-29T12:00:00.001Z")],
    );
    expect(rows).toEqual([
      {
        i4: 1,
        i8: 9007199254740991,
        n: SAMPLE.length,
        ia: [1, -2],
        ba: [3, null],
        ta: ["a", "b,c", null],
        j: { a: [1, { b: null }], c: "é" },
        ts: new Date("2024-01-02T03:04:05.678Z"),
        b: true,
        f: 1.5,
        nul: null,
        t: "héllo 👋 \n\t'\"",
        pa: [5, 6],
        pj: { k: [1, 2] },
        pts: new Date("2020-02-29T12:00:00.001Z"),
      },
    ]);
    expect(rows[0].ts).toBeInstanceOf(Date);
    const tz = await db.query<{ tz: string }>("SELECT current_setting('TimeZone') AS tz");
    expect(tz.rows[0].tz).toBe("UTC");
  });

  describe("corpora", () => {
    it("returns the same corpus for the same content and updates a moved source path", async () => {
      const again = await upsertCorpus(db, { name: "main", sourcePath: "/moved/main.jsonl", fingerprint: "sha256:main" });
      expect(again.id).toBe(corpus.id);
      expect(again.sourcePath).toBe("/moved/main.jsonl");
      expect(again.createdAt).toBeInstanceOf(Date);
      expect((await getCorpus(db, "main"))?.sourcePath).toBe("/moved/main.jsonl");
      expect(await getCorpus(db, "absent")).toBeNull();
    });

    it("refuses the same name with different content", async () => {
      const attempt = upsertCorpus(db, { name: "main", sourcePath: "/x.jsonl", fingerprint: "sha256:other" });
      await expect(attempt).rejects.toThrow(InputError);
      await expect(attempt).rejects.toThrow(/corpus "main" already exists with different content \(fingerprint sha256:main/);
    });
  });

  describe("sequences", () => {
    it("round-trip every field", async () => {
      const [stored] = await getSequencesByOrdinals(db, corpus.id, [3]);
      const input = SAMPLE[3];
      expect(stored).toEqual({
        corpusId: corpus.id,
        ordinal: 3,
        externalId: "doc-1-w0",
        documentId: expect.any(Number),
        documentExternalId: "doc-1-w0",
        tokenOffset: 0,
        text: input.text,
        tokenCount: input.tokenIds.length,
      } satisfies Sequence);
      // Token ids on their own, in the order asked, null where no sequence is.
      expect(await getTokenIdsByOrdinals(db, corpus.id, [8, 3, 10_000, 3])).toEqual([SAMPLE[8].tokenIds, input.tokenIds, null, input.tokenIds]);
      expect(await getTokenIdsByOrdinals(db, corpus.id, [])).toEqual([]);
      await expect(getTokenIdsByOrdinals(db, corpus.id, [-1])).rejects.toThrow(/ordinal must be an integer/);
      const split = await getSequenceByExternalId(db, corpus.id, "doc-2#1024");
      expect(split).toMatchObject({ ordinal: 8, documentExternalId: "doc-2", tokenOffset: 1024, tokenCount: SAMPLE[8].tokenIds.length });
      const nullText = await getSequenceByExternalId(db, corpus.id, SAMPLE[6].externalId);
      expect(nullText?.text).toBeNull();
      expect(await getSequenceByExternalId(db, corpus.id, "no-such-id")).toBeNull();
    });

    it("windows of one document share its document row", async () => {
      const [a, b, c] = await getSequencesByOrdinals(db, corpus.id, [0, 1, 2]);
      expect([a!.externalId, b!.externalId, c!.externalId]).toEqual(["doc-0#0", "doc-0#512", "doc-0#1024"]);
      expect(new Set([a!.documentId, b!.documentId, c!.documentId]).size).toBe(1);
      const docs = await db.query<{ n: number }>("SELECT count(*) AS n FROM documents WHERE corpus_id = $1", [corpus.id]);
      expect(docs.rows[0].n).toBe(new Set(SAMPLE.map((s) => s.documentExternalId)).size);
    });

    it("count and max ordinal", async () => {
      expect(await countSequences(db, corpus.id)).toBe(120);
      expect(await maxOrdinal(db, corpus.id)).toBe(119);
      const empty = await newCorpus(db, "empty");
      expect(await countSequences(db, empty.id)).toBe(0);
      expect(await maxOrdinal(db, empty.id)).toBeNull();
    });

    it("getSequencesByOrdinals keeps the requested order, repeats and gaps", async () => {
      const result = await getSequencesByOrdinals(db, corpus.id, [42, 5, 9999, 42, 0]);
      expect(result.map((s) => s?.ordinal ?? null)).toEqual([42, 5, null, 42, 0]);
      expect(result[0]!.text).toBe(SAMPLE[42].text);
      expect(await getSequencesByOrdinals(db, corpus.id, [])).toEqual([]);
      await expect(getSequencesByOrdinals(db, corpus.id, [1, -1])).rejects.toThrow(/ordinal must be an integer from 0/);
    });

    it("getSequencesByOrdinals of 50 ordinals is one round trip", async () => {
      const counted = countingDatabase(db);
      const clientQuery = vi.spyOn(pg.Client.prototype, "query");
      try {
        const ordinals = Array.from({ length: 50 }, (_, i) => (i * 7) % 120);
        const result = await getSequencesByOrdinals(counted.db, corpus.id, ordinals);
        expect(result.map((s) => s!.ordinal)).toEqual(ordinals);
        expect(counted.statements()).toBe(1);
        expect(clientQuery).toHaveBeenCalledTimes(1);
      } finally {
        clientQuery.mockRestore();
      }
    });

    it("re-inserting is idempotent: no duplicates, only new ordinals count", async () => {
      const c = await newCorpus(db, "resume");
      const batch = makeSequences(30);
      expect(await insertSequences(db, c.id, batch.slice(0, 20))).toBe(20);
      expect(await insertSequences(db, c.id, batch.slice(0, 20))).toBe(0);
      expect(await insertSequences(db, c.id, batch.slice(10, 30))).toBe(10);
      expect(await countSequences(db, c.id)).toBe(30);
      const docs = await db.query<{ n: number }>("SELECT count(*) AS n FROM documents WHERE corpus_id = $1", [c.id]);
      expect(docs.rows[0].n).toBe(new Set(batch.map((s) => s.documentExternalId)).size);
      expect((await getSequencesByOrdinals(db, c.id, [15]))[0]?.externalId).toBe(batch[15].externalId);
    });

    it("refuses a duplicate external id at another ordinal, and rolls the batch back", async () => {
      const c = await newCorpus(db, "dup");
      await insertSequences(db, c.id, makeSequences(3));
      const clash = { ...makeSequences(1, 3)[0], externalId: "doc-0#512" };
      const attempt = insertSequences(db, c.id, [...makeSequences(2, 4), clash]);
      await expect(attempt).rejects.toThrow(InputError);
      await expect(attempt).rejects.toThrow(/same external id.*doc-0#512/);
      expect(await countSequences(db, c.id)).toBe(3);
    });

    it("validates batches before sending them", async () => {
      const good = makeSequences(1)[0];
      const cases: [Partial<NewSequence>, RegExp][] = [
        [{ ordinal: -1 }, /ordinal must be an integer from 0/],
        [{ ordinal: 1.5 }, /ordinal must be an integer/],
        [{ tokenIds: [] }, /tokenIds must be a non-empty array/],
        [{ tokenIds: [1, -3] }, /token id must be an integer from 0/],
        [{ externalId: "" }, /externalId must be a non-empty string/],
        [{ text: "nul\0byte" }, /contains a NUL character/],
      ];
      for (const [change, message] of cases) {
        await expect(insertSequences(db, corpus.id, [{ ...good, ...change }])).rejects.toThrow(message);
      }
      await expect(insertSequences(db, corpus.id, [good, good])).rejects.toThrow(/repeats an ordinal/);
      await expect(insertSequences(db, 999_999, [good])).rejects.toThrow(/corpus 999999 does not exist/);
      expect(await countSequences(db, corpus.id)).toBe(120);
    });
  });

  describe("listSequences", () => {
    it("pages through every sequence once, in ordinal order", async () => {
      for (const first of [1, 7, 120, 1000]) {
        const { ordinals, pages } = await pageThrough(db, corpus.id, first);
        expect(ordinals).toEqual(SAMPLE.map((s) => s.ordinal));
        expect(pages).toBe(Math.ceil(120 / first));
      }
    });

    it("returns an empty last page with a null endCursor", async () => {
      const last = await listSequences(db, {
        corpusId: corpus.id,
        first: 5,
        after: (await listSequences(db, { corpusId: corpus.id, first: 120 })).pageInfo.endCursor,
      });
      expect(last).toEqual({ edges: [], pageInfo: { hasNextPage: false, endCursor: null } });
    });

    it("validates first and the cursor", async () => {
      await expect(listSequences(db, { corpusId: corpus.id, first: 0 })).rejects.toThrow(/first must be an integer from 1 to 1000 \(got 0\)/);
      await expect(listSequences(db, { corpusId: corpus.id, first: 1001 })).rejects.toThrow(InputError);
      await expect(listSequences(db, { corpusId: corpus.id, first: 5, after: "bm90LWEtY3Vyc29y" })).rejects.toThrow(/invalid cursor/);
      await expect(listSequences(db, { corpusId: corpus.id, first: 5, after: "'; DROP TABLE sequences; --" })).rejects.toThrow(/invalid cursor/);
    });

    const searches = ["%", "_", "\\", "100%", "snake_case", "'; DROP TABLE sequences; --", "'", "ÉCOLE", "école", "BROWN", "%_ \\", "absent text"];
    it.each(searches)("search %j matches exactly the texts containing it literally", async (search) => {
      const expected = SAMPLE.filter((s) => s.text?.toLowerCase().includes(search.toLowerCase())).map((s) => s.ordinal);
      const { ordinals } = await pageThrough(db, corpus.id, 4, search);
      expect(ordinals).toEqual(expected);
      expect(await countSequences(db, corpus.id)).toBe(120); // the table survived
    });

    it("search test data has both literal and wildcard-only matches", () => {
      // Guards the test above: '%' and '_' as wildcards would match these rows too.
      const texts = SAMPLE.map((s) => s.text ?? "");
      expect(texts.some((t) => t.includes("snakeXcase"))).toBe(true);
      expect(texts.some((t) => t.includes("100 percent"))).toBe(true);
      expect(SAMPLE.filter((s) => s.text?.includes("%")).length).toBeGreaterThan(0);
      expect(SAMPLE.filter((s) => s.text?.includes("%")).length).toBeLessThan(30);
    });
  });

  describe("token filter", () => {
    it("finds exactly the sequences containing a token", async () => {
      for (const token of [7, 10, 33, 49, 50]) {
        const expected = SAMPLE.filter((s) => s.tokenIds.includes(token)).map((s) => s.ordinal);
        expect(await ordinalsContainingToken(db, corpus.id, token)).toEqual(expected);
      }
      expect((await ordinalsContainingToken(db, corpus.id, 7)).length).toBe(30);
      await expect(ordinalsContainingToken(db, corpus.id, -1)).rejects.toThrow(/token id must be an integer/);
    });

    it("uses the GIN index for a rare token in a large corpus", async () => {
      const c = await newCorpus(db, "large");
      const rare = 5; // in 1 sequence of 200; makeSequences draws ids from 7 and 10..49 only
      const batch = makeSequences(20_000).map((s) => ({ ...s, tokenIds: s.ordinal % 200 === 0 ? [...s.tokenIds, rare] : s.tokenIds }));
      for (let i = 0; i < batch.length; i += 2000) await insertSequences(db, c.id, batch.slice(i, i + 2000));
      await analyzeSequences(db);
      const { rows } = await db.query<{ "QUERY PLAN": string }>(
        "EXPLAIN SELECT ordinal FROM sequences WHERE corpus_id = $1 AND token_ids @> ARRAY[$2::integer]",
        [c.id, rare],
      );
      expect(rows.map((r) => r["QUERY PLAN"]).join("\n")).toContain("Bitmap Index Scan on sequences_token_ids_gin");
      expect(await ordinalsContainingToken(db, c.id, rare)).toEqual(Array.from({ length: 100 }, (_, i) => i * 200));
    });
  });

  describe("builds and shards", () => {
    it("follow a build from start to completion, resumably", async () => {
      const c = await newCorpus(db, "built");
      const build = await startBuild(db, c.id, { damping: 0.001, layers: ["h.0.mlp"] });
      expect(build).toMatchObject({ corpusId: c.id, status: "running", parameters: { damping: 0.001, layers: ["h.0.mlp"] }, finishedAt: null, error: null });
      await expect(startBuild(db, c.id, {})).rejects.toThrow(new RegExp(`build ${build.id} of this corpus.*is still marked running`));

      const plan = [
        { shard: 0, firstOrdinal: 0, lastOrdinal: 49 },
        { shard: 1, firstOrdinal: 50, lastOrdinal: 99 },
        { shard: 2, firstOrdinal: 100, lastOrdinal: 119 },
      ];
      await planShards(db, build.id, plan);
      await planShards(db, build.id, plan); // a resumed build plans again
      await expect(planShards(db, build.id, [{ shard: 1, firstOrdinal: 50, lastOrdinal: 98 }])).rejects.toThrow(
        /already has shard 1 with a different ordinal range/,
      );

      const done = await markShardDone(db, build.id, 1, "shard-0001.f32");
      expect(done).toMatchObject({ shard: 1, status: "done", vectorFile: "shard-0001.f32" });
      expect(done.finishedAt).toBeInstanceOf(Date);
      const again = await markShardDone(db, build.id, 1, "shard-0001.f32");
      expect(again).toEqual(done);
      await expect(markShardDone(db, build.id, 1, "other.f32")).rejects.toThrow(/already done with shard-0001\.f32/);
      await expect(markShardDone(db, build.id, 7, "x.f32")).rejects.toThrow(/has no shard 7/);
      expect((await listShards(db, build.id)).map((s) => [s.shard, s.firstOrdinal, s.lastOrdinal, s.status])).toEqual([
        [0, 0, 49, "pending"],
        [1, 50, 99, "done"],
        [2, 100, 119, "pending"],
      ]);

      await recordBuildPhase(db, build.id, "factors", 12.5);
      await recordBuildPhase(db, build.id, "gradients", 3);
      const finished = await finishBuild(db, build.id, { status: "completed", counts: { sequences: 120, tokens: 900 } });
      expect(finished).toMatchObject({ status: "completed", phaseTimings: { factors: 12.5, gradients: 3 }, counts: { sequences: 120, tokens: 900 } });
      expect(finished.finishedAt!.getTime()).toBeGreaterThanOrEqual(finished.startedAt.getTime());
      await expect(finishBuild(db, build.id, { status: "failed", error: "late" })).rejects.toThrow(`build ${build.id} is already completed`);
      await expect(recordBuildPhase(db, build.id, "late", 1)).rejects.toThrow(/already completed/);
      expect((await latestBuild(db, c.id))?.id).toBe(build.id);
    });

    it("reopen a failed build to resume it", async () => {
      const c = await newCorpus(db, "failing");
      const build = await startBuild(db, c.id, {});
      const failed = await finishBuild(db, build.id, { status: "failed", error: "out of memory" });
      expect(failed).toMatchObject({ status: "failed", error: "out of memory" });
      const reopened = await reopenBuild(db, build.id);
      expect(reopened).toMatchObject({ id: build.id, status: "running", finishedAt: null, error: null });
      await expect(reopenBuild(db, build.id)).rejects.toThrow(/is running, not failed/);
      expect((await getBuild(db, build.id))?.status).toBe("running");
      expect(await getBuild(db, 999_999)).toBeNull();
      expect(await latestBuild(db, (await newCorpus(db, "unbuilt")).id)).toBeNull();
    });
  });

  describe("query log", () => {
    it("reads newest first, with a limit", async () => {
      for (let i = 0; i < 5; i++) {
        await logQuery(db, {
          parameters: { prompt: `p${i}`, k: 10 },
          timings: { totalMs: i + 0.5 },
          topHitIds: [`doc-${i}#0`, `doc-${i + 1}`],
          error: i === 3 ? "timeout" : null,
        });
      }
      const recent = await recentQueries(db, 3);
      expect(recent.map((q) => q.parameters.prompt)).toEqual(["p4", "p3", "p2"]);
      expect(recent[1]).toMatchObject({ timings: { totalMs: 3.5 }, topHitIds: ["doc-3#0", "doc-4"], error: "timeout" });
      expect(recent[0].error).toBeNull();
      expect(recent[0].createdAt.getTime()).toBeGreaterThanOrEqual(recent[1].createdAt.getTime());
      expect((await recentQueries(db, 1000)).length).toBe(5);
      await expect(recentQueries(db, 0)).rejects.toThrow(/limit must be an integer from 1 to 1000/);
      await expect(logQuery(db, { parameters: {}, timings: { t: Number.NaN }, topHitIds: [] })).rejects.toThrow(/timings\.t must be a finite number/);
    });
  });

  describe("transactions", () => {
    it("roll back when the function throws", async () => {
      const c = await newCorpus(db, "rollback");
      await expect(
        db.transaction(async (tx) => {
          await tx.query("INSERT INTO documents (corpus_id, external_id) VALUES ($1, 'x')", [c.id]);
          throw new Error("boom");
        }),
      ).rejects.toThrow("boom");
      const { rows } = await db.query<{ n: number }>("SELECT count(*) AS n FROM documents WHERE corpus_id = $1", [c.id]);
      expect(rows[0].n).toBe(0);
    });

    it("refuse db.query inside a transaction, and a tx used after it ended", async () => {
      let leaked: Parameters<Parameters<Database["transaction"]>[0]>[0] | undefined;
      await expect(
        db.transaction(async (tx) => {
          leaked = tx;
          await db.query("SELECT 1");
        }),
      ).rejects.toThrow(/db\.query\(\) called inside db\.transaction\(\)/);
      await expect(leaked!.query("SELECT 1")).rejects.toThrow(/transaction already finished/);
      expect((await db.query<{ one: number }>("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
    });

    it("stay usable after SQL errors", async () => {
      await expect(db.query("SELECT * FROM no_such_table")).rejects.toMatchObject({ code: "42P01" });
      await expect(db.query("SELECT $1::int", ["x"])).rejects.toMatchObject({ code: "22P02" });
      expect((await db.query<{ n: number }>("SELECT $1::int + 1 AS n", [2])).rows).toEqual([{ n: 3 }]);
    });
  });

  it("keeps a named statement in the session and runs it with each call's values, after a failed run and in transactions", async () => {
    const text = "SELECT $1::int * 2 AS n";
    const named = { name: "test-double" };
    expect((await db.query(text, [2], named)).rows).toEqual([{ n: 4 }]);
    await expect(db.query(text, ["x"], named)).rejects.toMatchObject({ code: "22P02" });
    expect((await db.query(text, [5], named)).rows).toEqual([{ n: 10 }]);
    await db.transaction(async (tx) => {
      expect((await tx.query(text, [7], named)).rows).toEqual([{ n: 14 }]);
      const { rows } = await tx.query<{ statement: string }>("SELECT statement FROM pg_prepared_statements WHERE name = $1", [named.name]);
      expect(rows.map((r) => r.statement)).toEqual([text]);
    });
  });
});

describe("PGlite and PostgreSQL return identical results", () => {
  it("for the same calls", async () => {
    const snapshots: unknown[] = [];
    for (const backend of backends) {
      const { db, cleanup } = await backend.open();
      try {
        await migrate(db);
        const c = await newCorpus(db, "same");
        await insertSequences(db, c.id, SAMPLE.slice(0, 30));
        const build = await startBuild(db, c.id, { a: 1 });
        await planShards(db, build.id, [{ shard: 0, firstOrdinal: 0, lastOrdinal: 29 }]);
        await markShardDone(db, build.id, 0, "s0.f32");
        await logQuery(db, { parameters: { q: "x" }, timings: { ms: 1.25 }, topHitIds: ["a"] });
        const results = {
          corpus: c,
          page: await listSequences(db, { corpusId: c.id, first: 10, search: "%" }),
          byOrdinals: await getSequencesByOrdinals(db, c.id, [3, 1, 99]),
          tokens: await ordinalsContainingToken(db, c.id, 7),
          count: await countSequences(db, c.id),
          build: await finishBuild(db, build.id, { status: "completed", counts: { n: 30 } }),
          shards: await listShards(db, build.id),
          queries: await recentQueries(db, 10),
        };
        snapshots.push(JSON.parse(JSON.stringify(results, (_key, value) => (typeof value === "string" && /^\d{4}-\d\d-\d\dT/.test(value) ? "<date>" : value))));
        // Dates must be Date objects on both, which JSON flattening would hide.
        expect(results.corpus.createdAt).toBeInstanceOf(Date);
        expect(results.queries[0].createdAt).toBeInstanceOf(Date);
      } finally {
        await cleanup();
      }
    }
    expect(snapshots).toHaveLength(2);
    expect(snapshots[0]).toEqual(snapshots[1]);
  });
});

describe("PGlite directory lock", () => {
  it("refuses a second opener, naming the directory and the holding process", async () => {
    const dir = path.join(await makeTempDir("influence-lock"), "db");
    try {
      const first = await openDatabase({ dataDir: dir });
      try {
        const second = openDatabase({ dataDir: dir });
        await expect(second).rejects.toThrow(InputError);
        await expect(second).rejects.toThrow(`database directory ${dir} is in use by process ${process.pid}`);
        // The refused opener left the holder's lock alone.
        expect(JSON.parse(await readFile(path.join(dir, LOCK_FILE_NAME), "utf8")).pid).toBe(process.pid);
      } finally {
        await first.close();
      }
      await expect(readFile(path.join(dir, LOCK_FILE_NAME))).rejects.toMatchObject({ code: "ENOENT" });
    } finally {
      await rm(path.dirname(dir), { recursive: true, force: true });
    }
  });

  it("refuses a directory held by another process until it closes it", async () => {
    const dir = path.join(await makeTempDir("influence-lock"), "db");
    const holder = await holdInChildProcess(dir);
    try {
      await expect(openDatabase({ dataDir: dir })).rejects.toThrow(`database directory ${dir} is in use by process ${holder.pid}`);
      await holder.close();
      const db = await openDatabase({ dataDir: dir });
      expect((await getCorpus(db, "from-child"))?.fingerprint).toBe("sha256:from-child");
      await db.close();
    } finally {
      holder.kill();
      await rm(path.dirname(dir), { recursive: true, force: true });
    }
  });

  it("takes over the lock of a killed process", async () => {
    const dir = path.join(await makeTempDir("influence-lock"), "db");
    const holder = await holdInChildProcess(dir);
    try {
      holder.kill();
      await holder.exited;
      expect(JSON.parse(await readFile(path.join(dir, LOCK_FILE_NAME), "utf8")).pid).toBe(holder.pid);
      const db = await openDatabase({ dataDir: dir });
      expect(JSON.parse(await readFile(path.join(dir, LOCK_FILE_NAME), "utf8")).pid).toBe(process.pid);
      await db.close();
    } finally {
      await rm(path.dirname(dir), { recursive: true, force: true });
    }
  });

  it("takes over a stale lock left by a dead process, keeping the data", async () => {
    const dir = await makeTempDir("influence-lock");
    try {
      let db = await openDatabase({ dataDir: dir });
      await migrate(db);
      await newCorpus(db, "kept");
      await db.close();

      await writeLock(dir, await deadPid());
      db = await openDatabase({ dataDir: dir });
      try {
        expect(JSON.parse(await readFile(path.join(dir, LOCK_FILE_NAME), "utf8")).pid).toBe(process.pid);
        expect((await getCorpus(db, "kept"))?.name).toBe("kept");
      } finally {
        await db.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("lets exactly one of several racing openers take over a stale lock", async () => {
    const dir = await makeTempDir("influence-lock");
    try {
      for (let round = 0; round < 20; round++) {
        await writeLock(dir, await deadPid());
        // Staggered starts, so that some read the stale lock while others already replaced it.
        const results = await Promise.allSettled(
          Array.from({ length: 6 }, (_, i) => new Promise((resolve) => setTimeout(resolve, i % 3)).then(() => lockDirectory(dir))),
        );
        const won = results.filter((r) => r.status === "fulfilled");
        expect(won).toHaveLength(1);
        for (const r of results) if (r.status === "rejected") expect(r.reason).toBeInstanceOf(DirectoryLockedError);
        await (won[0] as PromiseFulfilledResult<DirectoryLock>).value.release();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  async function deadPid(): Promise<number> {
    const dead = spawn("true");
    await new Promise((resolve) => dead.on("exit", resolve));
    return dead.pid!;
  }

  /** A child process that opens `dir`, stores a corpus, and keeps the database open until its stdin ends. */
  async function holdInChildProcess(dir: string) {
    const script = `
      const { openDatabase } = await import(process.argv[1]);
      const { migrate } = await import(process.argv[2]);
      const { upsertCorpus } = await import(process.argv[3]);
      const db = await openDatabase({ dataDir: process.argv[4] });
      await migrate(db);
      await upsertCorpus(db, { name: "from-child", sourcePath: "/c.jsonl", fingerprint: "sha256:from-child" });
      process.stdout.write("ready\\n");
      process.stdin.resume();
      process.stdin.on("end", async () => { await db.close(); process.exit(0); });`;
    const src = (file: string) => path.join(REPO_ROOT, "src/db", file);
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", script, src("connect.ts"), src("migrate.ts"), src("corpora.ts"), dir],
      {
        cwd: REPO_ROOT,
        stdio: ["pipe", "pipe", "inherit"],
      },
    );
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (chunk: Buffer) => chunk.toString().includes("ready") && resolve());
      void exited.then((code) => reject(new Error(`child exited with ${code} before opening ${dir}`)));
    });
    return {
      pid: child.pid!,
      exited,
      async close() {
        child.stdin.end();
        expect(await exited).toBe(0);
      },
      kill: () => child.kill("SIGKILL"),
    };
  }

  async function writeLock(dir: string, pid: number): Promise<void> {
    const holder = { pid, hostname: os.hostname(), acquiredAt: new Date().toISOString(), token: "other" };
    await writeFile(path.join(dir, LOCK_FILE_NAME), JSON.stringify(holder));
  }
});

describe("openDatabase", () => {
  it("rejects ambiguous or malformed options", async () => {
    await expect(openDatabase({})).rejects.toThrow(/no database/);
    await expect(openDatabase({ url: "postgres://x", dataDir: "/tmp/x" })).rejects.toThrow(/not both/);
    await expect(openDatabase({ url: "mysql://localhost/db" })).rejects.toThrow(/must start with postgres:\/\//);
  });

  it("names the server, without the password, when it cannot connect", async () => {
    await expect(openDatabase({ url: "postgres://postgres:secret@127.0.0.1:1/nowhere" })).rejects.toThrow(
      /cannot connect to PostgreSQL at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/nowhere/,
    );
  });
});

describe("migrations on PostgreSQL", () => {
  it("are applied once when several sessions migrate at once (advisory lock)", async () => {
    const target = await createTestDatabase();
    const dbs = await Promise.all(Array.from({ length: 4 }, () => openDatabase({ url: target.url })));
    try {
      const results = await Promise.all(dbs.map((d) => migrate(d)));
      const files = (await loadMigrations()).map((m) => m.name);
      expect(results.flat().sort()).toEqual(files);
      const { rows } = await dbs[0].query<{ n: number }>("SELECT count(*) AS n FROM schema_migrations");
      expect(rows[0].n).toBe(files.length);
    } finally {
      await Promise.all(dbs.map((d) => d.close()));
      await target.drop();
    }
  });
});
