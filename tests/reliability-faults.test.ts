/**
 * Faults around `influence build` and the database, as users meet them: a disk that fills up and an
 * index folder that turns read-only in the middle of a build, a corpus with binary garbage, and the
 * PostgreSQL server stopped and started again under a running `influence serve`.
 *
 * Needs root, as CI has here: it mounts a small tmpfs to fill, and a read-only bind mount (root
 * ignores permission bits, so a chmod would not stop it).
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBuild } from "../src/jobs/build.js";
import { buildHnsw } from "../src/indexer/hnsw-index.js";
import { type IndexManifest, indexPath, readIndexManifest } from "../src/indexer/index-manifest.js";
import { readVectorFile } from "../src/indexer/vector-file.js";
import { tempDir } from "../src/util/temp-dir.js";
import { type PrivatePostgres, startPrivatePostgres } from "../support/db.js";
import { loopRequests } from "../support/reliability-load.js";
import { type SmallDisk, controlPostgres, mountReadOnly, mountSmallDisk } from "../support/reliability-system.js";
import {
  type ServeProcess,
  RELIABILITY_DOCUMENTS,
  health,
  reliabilityBuildArgs,
  reliabilityBuildJob,
  runInfluence,
  serveIndex,
  spawnInfluence,
  waitFor,
  writeReliabilityCorpus,
} from "../support/reliability.js";

const NO_STACK = /\n\s+at /;

/**
 * The reliability corpus ten times over (60 shards instead of 6), for the full-disk build: on ONNX
 * Runtime the 6 shards of the small corpus were all written before the disk could be filled.
 */
const LARGE_DOCUMENTS = Array.from({ length: 10 }, (_, copy) => RELIABILITY_DOCUMENTS.map((d) => ({ ...d, id: `${d.id}-${copy}` }))).flat();
const LARGE_CORPUS = (dir: string) => path.join(dir, "corpus-large.jsonl");

const sha256 = async (file: string) =>
  createHash("sha256")
    .update(await readFile(file))
    .digest("hex");
const shardFiles = async (dir: string) =>
  existsSync(path.join(dir, "shards")) ? (await readdir(path.join(dir, "shards"))).filter((f) => /^vectors-\d+\.bin$/.test(f)).sort() : [];

describe("faults during builds and database outages", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let reference: IndexManifest;
  let postgres: PrivatePostgres;
  let disk: SmallDisk;
  /** Built on the small disk, its sequences in PostgreSQL. */
  let faultyDir: string;

  beforeAll(async () => {
    tmp = await tempDir("influence-faults-");
    // The same build without faults, for its vectors checksum.
    await writeReliabilityCorpus(path.join(tmp.dir, "corpus.jsonl"));
    await writeFile(LARGE_CORPUS(tmp.dir), LARGE_DOCUMENTS.map((d) => `${JSON.stringify(d)}\n`).join(""));
    reference = await runBuild(reliabilityBuildJob(LARGE_CORPUS(tmp.dir), path.join(tmp.dir, "reference")));
    postgres = await startPrivatePostgres();
    disk = await mountSmallDisk(path.join(tmp.dir, "disk"), 64 << 20);
    faultyDir = path.join(disk.dir, "index");
  });
  afterAll(async () => {
    await disk?.unmount();
    await postgres?.stop();
    await tmp?.remove();
  });

  it(
    "stops a build whose disk fills up or whose folder turns read-only, naming the file, keeping what it wrote; --resume finishes it " + "identically",
    async () => {
      const args = reliabilityBuildArgs(LARGE_CORPUS(tmp.dir), faultyDir, ["--database", postgres.url]);

      // 1. The disk fills up once the first shard of vectors is written.
      const build = spawnInfluence(args);
      let earlier: Record<string, string>;
      try {
        await waitFor(async () => (await shardFiles(faultyDir)).length >= 1 || build.child.exitCode !== null, "the first shard");
        await disk.fill();
        const files = ["tokens.bin", "projection.safetensors", ...(await shardFiles(faultyDir)).map((f) => `shards/${f}`)];
        earlier = Object.fromEntries(await Promise.all(files.map(async (f) => [f, await sha256(path.join(faultyDir, f))])));
        const full = await build.exited;
        expect(full.code, build.stderr()).toBe(2);
        expect(build.stderr()).toMatch(
          new RegExp(`^influence: cannot write ${faultyDir}/shards/(vectors|sketch)-\\d+\\.bin: ENOSPC: no space left on device`, "m"),
        );
        expect(build.stderr()).not.toMatch(NO_STACK);
        // Still full (refilled: the failed build freed a few pages): the next attempt cannot even take the folder's lock.
        await disk.fill();
        const again = await runInfluence([...args, "--resume"]);
        expect(again.code).toBe(2);
        expect(again.stderr.trim()).toBe(`influence: cannot write ${faultyDir}/influence.lock: ENOSPC: no space left on device, write`);
      } finally {
        await build.stop();
        await disk.free();
      }
      for (const file of ["manifest.json", "vectors.bin", "hnsw.bin"]) expect(existsSync(path.join(faultyDir, file)), file).toBe(false);
      for (const [file, hash] of Object.entries(earlier)) expect(await sha256(path.join(faultyDir, file)), file).toBe(hash);
      for (const file of await shardFiles(faultyDir)) await expect(readVectorFile(path.join(faultyDir, "shards", file))).resolves.toBeDefined();
      const unfinished = await runInfluence(["serve", "--index", faultyDir, "--port", "0"]);
      expect(unfinished.code).toBe(2);
      expect(unfinished.stderr).toMatch(/the build of this index did not finish; run `influence build \.\.\. --out \S+ --resume`/);

      // 2. Space is back, but the shards folder is read-only: refused, naming the file.
      const readOnlyShards = await mountReadOnly(path.join(faultyDir, "shards"));
      try {
        const readOnly = await runInfluence([...args, "--resume"]);
        expect(readOnly.code, readOnly.stderr).toBe(2);
        expect(readOnly.stderr).toMatch(
          new RegExp(`^influence: cannot write ${faultyDir}/shards/(vectors|sketch)-\\d+\\.bin: EROFS: read-only file system`, "m"),
        );
        expect(readOnly.stderr).not.toMatch(NO_STACK);
      } finally {
        await readOnlyShards.undo();
      }
      expect(existsSync(indexPath(faultyDir, "manifest"))).toBe(false);
      for (const [file, hash] of Object.entries(earlier)) expect(await sha256(path.join(faultyDir, file)), file).toBe(hash);

      // 3. Writable again: --resume completes, with the vectors of the build that met no fault.
      const resumed = await runInfluence([...args, "--resume"]);
      expect(resumed.code, resumed.stderr).toBe(0);
      const manifest = await readIndexManifest(faultyDir);
      expect(manifest.vectors).toEqual(reference.vectors);
      expect(manifest.sketch).toEqual(reference.sketch);
      expect(manifest.database).toEqual({ kind: "postgres", url: postgres.url });
      expect(existsSync(indexPath(faultyDir, "buildState"))).toBe(false);
    },
  );

  it("fails an HNSW index that hnswlib could not write whole, instead of vouching for a short file", async () => {
    const dim = 32;
    const rows = Float32Array.from({ length: 200 * dim }, (_, i) => Math.sin(i * 0.37));
    const target = path.join(disk.dir, "hnsw-test.bin");
    await disk.fill();
    try {
      await expect(buildHnsw(target, { rows, dim, firstOrdinal: 0, checksum: "0".repeat(64) })).rejects.toThrow(
        `cannot write HNSW index ${target}: hnswlib wrote an incomplete file (is the disk full?)`,
      );
    } finally {
      await disk.free();
    }
    expect((await readdir(disk.dir)).filter((f) => f.includes("hnsw-test"))).toEqual([]);
  });

  it("refuses a corpus with binary garbage, naming the line, and leaves nothing a server would open", async () => {
    const corpus = path.join(tmp.dir, "garbage.jsonl");
    const good = RELIABILITY_DOCUMENTS.slice(0, 3).map((d) => `${JSON.stringify(d)}\n`);
    await writeFile(
      corpus,
      Buffer.concat([Buffer.from(good.join("")), Buffer.from([0x00, 0xff, 0xfe, 0x7b, 0x22, 0xc3, 0x28, 0x01, 0x0a]), Buffer.from(good.join(""))]),
    );
    const out = path.join(tmp.dir, "garbage-index");
    const build = await runInfluence(reliabilityBuildArgs(corpus, out));
    expect(build.code).toBe(2);
    expect(build.stderr.trim()).toBe(`influence: ${corpus}, line 4: not valid UTF-8 text (is this a JSONL text file?)`);
    // The corpus is read for the memory plan before anything is written: no folder at all.
    expect(existsSync(out)).toBe(false);
    const serve = await runInfluence(["serve", "--index", out, "--port", "0"]);
    expect(serve.code).toBe(2);
    expect(serve.stderr.trim()).toBe(`influence: ${out}: index folder not found`);
  });

  describe("PostgreSQL stopped and started again under load", () => {
    let server: ServeProcess;

    beforeAll(async () => {
      // The index the test above finished; built here when that test did not run or failed.
      if (!existsSync(indexPath(faultyDir, "manifest"))) {
        const resume = existsSync(indexPath(faultyDir, "buildState"));
        await runBuild(reliabilityBuildJob(path.join(tmp.dir, "corpus.jsonl"), faultyDir, { databaseUrl: postgres.url, resume }));
      }
      server = await serveIndex(faultyDir);
    });
    afterAll(() => server?.stop());

    it("answers DATABASE_UNAVAILABLE during the outage, never hangs or crashes, and recovers without a restart", async () => {
      // Listings and lookups (database only) on two clients, influence (engine, then database) on two more.
      const lookups = [`{ sequences(first: 5, search: "fox") { totalCount edges { node { id } } } }`, `{ sequence(id: "doc-3") { id text } }`].map((query) =>
        JSON.stringify({ query }),
      );
      const influence = JSON.stringify({
        query: `{ influence(prompt: "The cat", completion: " sat on the mat", candidates: 10) { hits { rank sequence { id text } } } }`,
      });
      const pg = await controlPostgres(postgres.url);
      let done = false;
      const load = Promise.all([
        loopRequests(server.graphqlUrl, lookups, 2, () => done, 20_000),
        loopRequests(server.graphqlUrl, [influence], 2, () => done, 20_000),
      ]);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await pg.stop();
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const during = await health(server.url);
      await pg.start();
      // Recovered once three listings in a row succeed; then two more seconds of load.
      await waitFor(
        async () => {
          const statuses = await Promise.all(
            [0, 1, 2].map(() =>
              fetch(server.graphqlUrl, { method: "POST", headers: { "content-type": "application/json" }, body: lookups[0] }).then((r) => r.status),
            ),
          );
          return statuses.every((s) => s === 200);
        },
        "recovery",
        30_000,
      );
      const recoveredAt = performance.now();
      await new Promise((resolve) => setTimeout(resolve, 2000));
      done = true;
      const answers = (await load).flat();

      expect(during.status).toBe(200);
      expect(during.body).toMatchObject({ status: "degraded", database: { ok: false } });
      const kinds = [...new Set(answers.map((a) => a.kind.replace(/:.*/s, "")))];
      expect(kinds.filter((k) => k !== "ok" && k !== "503 DATABASE_UNAVAILABLE")).toEqual([]);
      expect(answers.filter((a) => a.kind.startsWith("503 DATABASE_UNAVAILABLE:")).length).toBeGreaterThan(0);
      expect(answers.filter((a) => a.kind.startsWith("503 DATABASE_UNAVAILABLE:"))[0].kind).toMatch(
        /the database is unavailable \(.*\); retry when it is back/,
      );
      // Never a hang: every request answered, quickly; and all is well again after the recovery.
      expect(Math.max(...answers.map((a) => a.ms))).toBeLessThan(15_000);
      const afterRecovery = answers.filter((a) => a.sentAt > recoveredAt);
      expect(afterRecovery.length).toBeGreaterThan(0);
      expect(afterRecovery.filter((a) => a.kind !== "ok")).toEqual([]);
      expect(server.child.exitCode).toBeNull();
      expect((await health(server.url)).body.status).toBe("ok");
    });
  });
});
