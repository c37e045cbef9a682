import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { cp, copyFile, open, readFile, readdir, rm, truncate, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Database, countSequences, getCorpus, openDatabase } from "../src/db/index.js";
import { openIndexArrays } from "../src/engine/index-arrays.js";
import { IndexEngine } from "../src/engine/index-engine.js";
import { openModel } from "../src/model/open-model.js";
import { ordinaryMemory } from "../src/util/allocate.js";
import { runBuild } from "../src/jobs/build.js";
import { type IndexManifest, indexFiles, indexPath, readIndexManifest, vectorBytesPerSequence } from "../src/indexer/index-manifest.js";
import { readStoredVectors, readVectorFileHeader, writeVectorFile } from "../src/indexer/vector-file.js";
import { layoutMoves, moveCoordinates, type VectorLayout } from "../src/projection/vector-layout.js";
import { spearman } from "../src/stats/correlation.js";
import { FIXTURE_SHARD_SIZE, expectedQueryScores as expectedScores, fixtureBuildJob as buildJob, topIds } from "../support/fixture-index.js";
import { fixturePath, fixtureQueries, fixtureTrain, REPO_ROOT } from "../support/fixtures.js";
import { tempDir } from "../src/util/temp-dir.js";

const model = "gpt2-tiny";
const train = fixtureTrain(model);
const queries = fixtureQueries(model);
/** Ordinals of the k largest scores. */
const topOrdinals = (scores: readonly number[], k: number): number[] =>
  scores
    .map((s, o) => [s, o])
    .sort((a, b) => b[0] - a[0])
    .slice(0, k)
    .map(([, o]) => o);
const cli = (args: string[]): ChildProcess =>
  spawn(process.execPath, [path.join(REPO_ROOT, "bin/influence.js"), ...args], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, INFLUENCE_QUIET: "1" },
  });

describe("the influence index on gpt2-tiny (empirical Fisher)", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let modelDir: string;
  let indexDir: string;
  let engine: IndexEngine;
  let manifest: IndexManifest;
  let db: Database;
  let corpusId: number;

  /** External ids of hits, through the index's database. */
  const idsOf = async (ordinals: number[]) => {
    const { getSequencesByOrdinals } = await import("../src/db/index.js");
    return (await getSequencesByOrdinals(db, corpusId, ordinals)).map((s) => s?.externalId);
  };
  const request = (q: number, extra: object = {}) => ({
    promptTokens: queries[q].prompt_tokens,
    completionTokens: queries[q].completion_tokens,
    topK: 10,
    rerank: false,
    tokenScores: false,
    ...extra,
  });

  beforeAll(async () => {
    tmp = await tempDir();
    // A copy of the model, so that one test can change it under the index.
    modelDir = path.join(tmp.dir, "model");
    await cp(fixturePath(model), modelDir, { recursive: true });
    indexDir = path.join(tmp.dir, "index");
    manifest = await runBuild(buildJob(modelDir, indexDir));
    engine = await IndexEngine.open(indexDir);
    db = await openDatabase({ dataDir: indexPath(indexDir, "database") });
    corpusId = (await getCorpus(db, manifest.corpus.name))!.id;
  });
  afterAll(async () => {
    await db?.close();
    await engine?.close();
    await tmp.remove();
  });

  it("stores one sequence per corpus line and no leftovers of the build", async () => {
    expect(await countSequences(db, corpusId)).toBe(train.length);
    expect(manifest.vectors.count).toBe(train.length);
    // Two blocks of 128 x 33 and 32 x 129 each fit their share of the budget whole.
    expect(manifest.sketch).toMatchObject({ count: train.length, dim: 2 * (128 * 33 + 32 * 129) });
    // By default in int8: a scale and one byte per coordinate.
    expect((await readVectorFileHeader(indexPath(indexDir, "sketch"))).elementType).toBe("int8");
    expect(vectorBytesPerSequence(manifest)).toBe(4 * manifest.vectors.dim + 4 + (manifest.sketch?.dim ?? Number.NaN));
    expect(existsSync(indexPath(indexDir, "buildState"))).toBe(false);
    expect(existsSync(indexPath(indexDir, "shards"))).toBe(false);
  });

  it("answers from the index alone by default, ranking all 48 sequences like exact EK-FAC (Spearman >= 0.95 per query)", async () => {
    for (let q = 0; q < queries.length; q++) {
      const result = await engine.influence(request(q, { topK: train.length }));
      expect(result.hits.every((h) => h.scoredBy === "sketch")).toBe(true);
      const approx = new Array<number>(train.length);
      for (const h of result.hits) approx[h.ordinal] = h.approxScore;
      expect(approx.every((x) => Number.isFinite(x))).toBe(true);
      const { total } = await expectedScores(q);
      expect(spearman(approx, total), `query ${q}`).toBeGreaterThanOrEqual(0.95);
      // On the exact scores' scale: the median ratio over the exact top 10 within [0.8, 1.25].
      const ratios = topOrdinals(total, 10)
        .map((o) => approx[o] / total[o])
        .sort((a, b) => a - b);
      expect((ratios[4] + ratios[5]) / 2, `query ${q}`).toBeGreaterThanOrEqual(0.8);
      expect((ratios[4] + ratios[5]) / 2, `query ${q}`).toBeLessThanOrEqual(1.25);
    }
  });

  it("with its sketch stored as signs (--sketch-precision sign), ranks better than an int8 sketch of the same bytes", async () => {
    /** An index of the same fit (the build reuses a folder's factors) with another sketch, and its mean Spearman against exact EK-FAC over the queries. */
    const variant = async (name: string, sketch: object) => {
      const out = path.join(tmp.dir, name);
      await cp(indexPath(indexDir, "factors"), indexPath(out, "factors"), { recursive: true });
      const job = buildJob(modelDir, out);
      const built = await runBuild({ ...job, parameters: { ...job.parameters, sketch: { ...manifest.parameters.sketch, ...sketch } as never } });
      const opened = await IndexEngine.open(out);
      try {
        let sum = 0;
        for (let q = 0; q < queries.length; q++) {
          const result = await opened.influence(request(q, { topK: train.length }));
          expect(result.hits.every((h) => h.scoredBy === "sketch")).toBe(true);
          const approx = new Array<number>(train.length);
          for (const h of result.hits) approx[h.ordinal] = h.approxScore;
          sum += spearman(approx, (await expectedScores(q)).total);
        }
        return { built, out, spearman: sum / queries.length };
      } finally {
        await opened.close();
      }
    };
    const signs = await variant("signs", { precision: "sign" });
    expect((await readVectorFileHeader(indexPath(signs.out, "sketch"))).elementType).toBe("sign");
    const dim = manifest.sketch?.dim ?? Number.NaN;
    expect(signs.built.sketch?.dim).toBe(dim);
    // A factor and a bit per coordinate: a byte holds 8 of them.
    expect(vectorBytesPerSequence(signs.built)).toBe(4 * signs.built.vectors.dim + 4 + Math.ceil(dim / 8));
    // A bit carries 2/pi of a coordinate (indexer/sign-bits.ts): a byte of signs, about 5 int8 coordinates.
    const int8 = await variant("int8-of-the-bytes", { floats: Math.ceil(dim / 8), precision: "int8" });
    expect(vectorBytesPerSequence(int8.built)).toBeLessThanOrEqual(vectorBytesPerSequence(signs.built));
    expect(signs.spearman).toBeGreaterThan(int8.spearman);
  });

  it("re-ranks to the exact top-10 with scores within 1e-3", async () => {
    for (let q = 0; q < queries.length; q++) {
      const { total } = await expectedScores(q);
      const result = await engine.influence(request(q, { rerank: true }));
      expect(result.hits.every((h) => h.scoredBy === "exact")).toBe(true);
      expect(await idsOf(result.hits.map((h) => h.ordinal)), `query ${q}`).toEqual(topIds(total, 10));
      const scale = Math.max(...total.map(Math.abs));
      for (const h of result.hits) expect(Math.abs(h.score - total[h.ordinal]) / scale).toBeLessThan(1e-3);
    }
  });

  it("restricts both stages to block 1 with layers [1]", async () => {
    for (let q = 0; q < queries.length; q++) {
      const { block1 } = await expectedScores(q);
      const result = await engine.influence(request(q, { rerank: true, layers: [1] }));
      expect(await idsOf(result.hits.map((h) => h.ordinal)), `query ${q}`).toEqual(topIds(block1, 10));
      const scale = Math.max(...block1.map(Math.abs));
      for (const h of result.hits) {
        expect(Math.abs(h.score - block1[h.ordinal]) / scale).toBeLessThan(1e-3);
        expect(h.layerScores.map((l) => l.layer)).toEqual([1]);
      }
    }
  });

  it("scans its small first tier in int8 rather than searching HNSW, and answers as HNSW's search does", async () => {
    const arrays = await openIndexArrays(indexDir, manifest, (await openModel(modelDir)).model.modules, ordinaryMemory);
    const scan = arrays.scan;
    if (!scan) throw new Error("48 rows are scanned");
    const byHnsw = await IndexEngine.open(indexDir, {}, { ...arrays, scan: undefined });
    // The scan's copy with every score's sign turned: an engine that reads it finds the worst rows first.
    const reversed = await IndexEngine.open(indexDir, {}, { ...arrays, scan: { ...scan, scales: scan.scales.map((x) => -x) } });
    try {
      for (let q = 0; q < queries.length; q++) {
        const everyRow = await engine.approximateTopK(request(q), train.length, false);
        const exact = await engine.approximateTopK(request(q), 10, true);
        // HNSW finds the exact top 10 of 48 rows; the scan's int8 rounding may swap near ties (tests/scan-search.test.ts).
        expect((await byHnsw.approximateTopK(request(q), 10, false)).labels).toEqual(exact.labels);
        expect((await reversed.approximateTopK(request(q), 1, false)).labels).toEqual([everyRow.labels.at(-1)]);
        for (const extra of [{}, { layers: [1] }]) {
          const [scanned, searched] = [await engine.influence(request(q, extra)), await byHnsw.influence(request(q, extra))];
          expect(scanned.hits).toEqual(searched.hits);
        }
      }
    } finally {
      await byHnsw.close();
      await reversed.close();
    }
  });

  it("without a sketch, ranks the candidates by their float32 first-tier rows: the exact projected top 10", async () => {
    const arrays = await openIndexArrays(indexDir, manifest, (await openModel(modelDir)).model.modules, ordinaryMemory);
    const unsketched = await IndexEngine.open(indexDir, {}, { ...arrays, sketch: undefined });
    try {
      for (let q = 0; q < queries.length; q++) {
        for (const extra of [{}, { layers: [1] }]) {
          const { hits } = await unsketched.influence(request(q, extra));
          const exact = await unsketched.approximateTopK(request(q, extra), 10, true);
          expect(
            hits.map((h) => h.ordinal),
            `query ${q}`,
          ).toEqual(exact.labels);
          expect(hits.every((h) => h.scoredBy === "projected")).toBe(true);
          const scale = Math.abs(exact.scores[0]);
          hits.forEach((h, i) => expect(Math.abs(h.score - exact.scores[i]) / scale).toBeLessThan(1e-5));
        }
      }
    } finally {
      await unsketched.close();
    }
  });

  it("resumes a build killed with SIGKILL: every sequence once, and the same vectors", async () => {
    const out = path.join(tmp.dir, "killed");
    const args = [
      "build",
      "--model",
      modelDir,
      "--corpus",
      fixturePath(model, "train.jsonl"),
      "--out",
      out,
      "--fisher",
      "empirical",
      "--shard-size",
      String(FIXTURE_SHARD_SIZE),
      "--workers",
      "1",
      "--no-progress",
    ];
    const child = cli(args);
    // Kill once a few shards are written and recorded, well before the last of 12.
    const shards = path.join(out, "shards");
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(async () => {
        const files = existsSync(shards) ? (await readdir(shards)).filter((f) => f.endsWith(".bin")) : [];
        if (files.length >= 3) {
          clearInterval(timer);
          child.kill("SIGKILL");
          resolve();
        }
      }, 20);
      child.on("exit", (code) => {
        clearInterval(timer);
        if (code !== null) reject(new Error(`build finished (code ${code}) before it could be killed`));
      });
    });
    await new Promise((resolve) => child.once("exit", resolve));
    expect(existsSync(indexPath(out, "manifest"))).toBe(false);
    await expect(runBuild(buildJob(modelDir, out))).rejects.toThrow(/interrupted build.*--resume/);
    const resumed = await runBuild(buildJob(modelDir, out, { resume: true }));
    expect(resumed.vectors.checksum).toBe(manifest.vectors.checksum);
    expect(resumed.sketch?.checksum).toBe(manifest.sketch?.checksum);
    const resumedDb = await openDatabase({ dataDir: indexPath(out, "database") });
    try {
      const id = (await getCorpus(resumedDb, resumed.corpus.name))!.id;
      expect(await countSequences(resumedDb, id)).toBe(train.length);
      const { rows } = await resumedDb.query<{ n: number; distinct: number }>(
        "SELECT count(*)::int AS n, count(DISTINCT external_id)::int AS distinct FROM sequences WHERE corpus_id = $1",
        [id],
      );
      expect(rows[0]).toEqual({ n: train.length, distinct: train.length });
    } finally {
      await resumedDb.close();
    }
    const second = await IndexEngine.open(out);
    try {
      const [a, b] = [await engine.influence(request(0)), await second.influence(request(0))];
      expect(b.hits.map((h) => [h.ordinal, h.score, h.approxScore])).toEqual(a.hits.map((h) => [h.ordinal, h.score, h.approxScore]));
    } finally {
      await second.close();
    }
  });

  it("refuses a sketch too small to give every matrix a coordinate, before building anything", async () => {
    const out = path.join(tmp.dir, "tiny-sketch");
    const parameters = { ...buildJob(modelDir, out).parameters, sketch: { floats: 3, precision: "int8" as const, seed: 0 } };
    await expect(runBuild(buildJob(modelDir, out, { parameters }))).rejects.toThrow(
      "a sketch of 3 floats per sequence leaves nothing to some of the model's 4 matrices: give at least 4, or 0 for none",
    );
    expect(existsSync(indexPath(out, "buildState"))).toBe(false);
    expect(existsSync(indexPath(out, "tokens"))).toBe(false);
  });

  it("refuses a second build into a folder while one runs, and a folder that holds an index", async () => {
    const out = path.join(tmp.dir, "concurrent");
    const first = runBuild(buildJob(modelDir, out));
    await new Promise((resolve) => setTimeout(resolve, 200));
    await expect(runBuild(buildJob(modelDir, out))).rejects.toThrow(/index folder .* is in use by process/);
    await first;
    await expect(runBuild(buildJob(modelDir, out))).rejects.toThrow(/already holds a complete index/);
  });

  describe("its sketch, stored coarse part first", () => {
    /** A copy of the index whose sketch rows are stored in `layout` (of the built one's), moved there unless `move` is false; the manifest names the new file. */
    async function restored(name: string, layout: (built: VectorLayout) => VectorLayout, move = true): Promise<string> {
      const dir = path.join(tmp.dir, name);
      await cp(indexDir, dir, { recursive: true });
      const sketch = await readStoredVectors(indexPath(dir, "sketch"));
      if (sketch.elementType !== "int8") throw new Error("the fixture's sketch is int8");
      const values = Float32Array.from(sketch.rows, (v, i) => v * sketch.scales[Math.floor(i / sketch.dim)]);
      const stored = layout(sketch.layout);
      if (move) moveCoordinates(values, sketch.dim, layoutMoves(sketch.layout, stored));
      const { checksum } = await writeVectorFile(indexPath(dir, "sketch"), {
        dim: sketch.dim,
        firstOrdinal: 0,
        layout: stored,
        rows: values,
        elementType: "int8",
      });
      const m = JSON.parse(await readFile(indexPath(dir, "manifest"), "utf8"));
      m.sketch.checksum = checksum;
      await writeFile(indexPath(dir, "manifest"), JSON.stringify(m));
      return dir;
    }
    /** The projection's layout (whole blocks, in the order of their first pieces), as sketches were stored before. */
    const projectionOrder = (built: VectorLayout): VectorLayout => {
      let offset = 0;
      const heads = built.blocks.filter((b) => b.firstRow === 0).sort((a, b) => a.offset - b.offset);
      return {
        blocks: heads.map(({ name, layer, kIn, matrixRows }) => {
          const kOut = matrixRows ?? Number.NaN;
          offset += kOut * kIn;
          return { name, layer, offset: offset - kOut * kIn, size: kOut * kIn, kOut, kIn };
        }),
      };
    };

    it("is what the build wrote: c_fc's first 125 of 128 rows (4,096 coordinates at least), then its last 3", async () => {
      const { layout } = await readVectorFileHeader(indexPath(indexDir, "sketch"));
      expect(layout.blocks.map((b) => [b.name, b.firstRow, b.kOut])).toEqual([
        ["h.0.mlp.c_fc", 0, 125],
        ["h.0.mlp.c_proj", 0, 32],
        ["h.1.mlp.c_fc", 0, 125],
        ["h.1.mlp.c_proj", 0, 32],
        ["h.0.mlp.c_fc", 125, 3],
        ["h.1.mlp.c_fc", 125, 3],
      ]);
    });

    it("answers as the same sketch stored in the projection's order: every sequence's score, and the hits' by layer", async () => {
      const dir = await restored("projection-order", projectionOrder);
      expect((await readVectorFileHeader(indexPath(dir, "sketch"))).layout.blocks.every((b) => b.firstRow === undefined)).toBe(true);
      const before = await IndexEngine.open(dir);
      try {
        for (let q = 0; q < queries.length; q++) {
          const [own, old] = [await engine.approximateScores(request(q)), await before.approximateScores(request(q))];
          const scale = Math.max(...own.scores.map(Math.abs));
          own.scores.forEach((score, o) => expect(Math.abs(old.scores[o] - score) / scale, `query ${q}, sequence ${o}`).toBeLessThan(1e-2));
          // One layer of two: the other masked out of the query, in the order of each file.
          const [a, b] = [await engine.influence(request(q, { layers: [1] })), await before.influence(request(q, { layers: [1] }))];
          const byOrdinal = new Map(a.hits.map((h) => [h.ordinal, h]));
          const common = b.hits.filter((h) => byOrdinal.has(h.ordinal));
          expect(common.length, `query ${q}`).toBeGreaterThanOrEqual(8);
          for (const h of common) {
            expect(h.layerScores.map((l) => l.layer)).toEqual([1]);
            expect(Math.abs(h.layerScores[0].score - (byOrdinal.get(h.ordinal)?.layerScores[0].score ?? Number.NaN)) / scale).toBeLessThan(1e-2);
          }
        }
      } finally {
        await before.close();
      }
    });

    it("is refused when its layout does not hold the rows of its projection", async () => {
      const rename = (b: VectorLayout["blocks"][number]) => (b.name === "h.0.mlp.c_fc" ? { ...b, name: "h.9.mlp.c_fc" } : b);
      const renamed = await restored("renamed", (built) => ({ blocks: built.blocks.map(rename) }), false);
      await expect(IndexEngine.open(renamed)).rejects.toThrow(
        /sketch\.bin: its layout does not hold the rows of .*sketch.*\(layout block h\.9\.mlp\.c_fc: no such matrix/,
      );
    });
  });

  describe("damaged index folders are refused, naming the file", () => {
    async function damaged(name: string, damage: (dir: string) => Promise<void>): Promise<string> {
      const dir = path.join(tmp.dir, name);
      await cp(indexDir, dir, { recursive: true });
      await damage(dir);
      return dir;
    }

    it("a corrupt vector file", async () => {
      const dir = await damaged("corrupt", async (d) => {
        const file = await open(indexPath(d, "vectors"), "r+");
        const { size } = await file.stat();
        const byte = Buffer.alloc(1);
        await file.read(byte, 0, 1, size - 100);
        byte[0] ^= 0xff;
        await file.write(byte, 0, 1, size - 100);
        await file.close();
      });
      await expect(IndexEngine.open(dir)).rejects.toThrow(/vectors\.bin/);
    });

    it("a truncated vector file", async () => {
      const dir = await damaged("truncated", async (d) => truncate(indexPath(d, "vectors"), 5000));
      await expect(IndexEngine.open(dir)).rejects.toThrow(/vectors\.bin/);
    });

    it("a corrupt or missing sketch", async () => {
      const corrupt = await damaged("corrupt-sketch", async (d) => {
        const file = await open(indexPath(d, "sketch"), "r+");
        await file.write(Buffer.from([0x7f]), 0, 1, (await file.stat()).size - 10);
        await file.close();
      });
      await expect(IndexEngine.open(corrupt)).rejects.toThrow(/sketch\.bin: payload checksum mismatch/);
      const missing = await damaged("missing-sketch", async (d) => rm(indexPath(d, "sketch")));
      await expect(IndexEngine.open(missing)).rejects.toThrow(/cannot open vector file .*sketch\.bin/);
    });

    it("HNSW graphs missing: read only where HNSW searches the first tier, so a scanned index answers without them", async () => {
      const dir = await damaged("no-graphs", async (d) => {
        for (const name of await readdir(d)) if (name.startsWith(indexFiles.hnsw)) await rm(path.join(d, name));
      });
      const scanned = await IndexEngine.open(dir);
      try {
        for (let q = 0; q < queries.length; q++) expect((await scanned.influence(request(q))).hits).toEqual((await engine.influence(request(q))).hits);
      } finally {
        await scanned.close();
      }
      const arrays = await openIndexArrays(dir, manifest, (await openModel(modelDir)).model.modules, ordinaryMemory);
      await expect(IndexEngine.open(dir, {}, { ...arrays, scan: undefined })).rejects.toThrow(/hnsw\.bin/);
    });

    it("a manifest that does not match the vectors", async () => {
      const dir = await damaged("mismatched", async (d) => {
        const m = JSON.parse(await readFile(indexPath(d, "manifest"), "utf8"));
        m.vectors.checksum = "0".repeat(64);
        await writeFile(indexPath(d, "manifest"), JSON.stringify(m));
      });
      await expect(IndexEngine.open(dir)).rejects.toThrow(/vectors\.bin: does not match .*manifest\.json/);
    });

    it("an index whose model changed since it was built", async () => {
      const weights = path.join(modelDir, "model.safetensors");
      const saved = path.join(tmp.dir, "saved-weights");
      await copyFile(weights, saved);
      try {
        await copyFile(fixturePath("gpt2-tiny-legacy", "model.safetensors"), weights);
        await expect(IndexEngine.open(indexDir)).rejects.toThrow(/built for another model/);
      } finally {
        await copyFile(saved, weights);
        await rm(saved);
      }
      await expect(readIndexManifest(indexDir)).resolves.toBeDefined();
    });
  });
});
