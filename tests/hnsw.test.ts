import { createHash } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { copyFile, readdir, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { normalGenerator, uniformGenerator } from "../src/util/random.js";
import { buildHnsw, DEFAULT_EF, exactTopK, openHnsw, type HnswIndex, type HnswSidecar } from "../src/indexer/hnsw-index.js";
import { IndexSet, layerIndexPath, openIndexSet } from "../src/indexer/layer-search.js";
import { readVectorFile, writeVectorFile, type VectorFile } from "../src/indexer/vector-file.js";
import { maskQuery, rangesForLayers, type VectorLayout } from "../src/indexer/vector-layout.js";
import { expectRefused } from "./helpers/refusal.js";

const N = 5000;
const DIM = 256;
const LAYERS = 8;
const CENTRES = 300;
/** Each layer is two blocks of 16 coordinates, like an MLP's two matrices. */
const LAYOUT: VectorLayout = {
  blocks: Array.from({ length: LAYERS * 2 }, (_, i) => ({
    name: `h.${i >> 1}.mlp.${i % 2 ? "c_proj" : "c_fc"}`,
    layer: i >> 1,
    offset: i * 16,
    size: 16,
    kOut: 4,
    kIn: 4,
  })),
};

/**
 * Clustered vectors shaped like per-sequence gradients: a cluster centre shared by all layers,
 * plus a per-layer centre chosen independently in each layer, plus noise, times a log-normal norm.
 * (i.i.d. noise would have no neighbourhoods to find and give misleadingly low recall.)
 */
function gradientLikeVectors(count: number, seed: number): Float32Array[] {
  const normal = normalGenerator(seed);
  const uniform = uniformGenerator(seed + 1);
  const centres = Float32Array.from({ length: CENTRES * DIM }, normalGenerator(1234));
  const layerDim = DIM / LAYERS;
  return Array.from({ length: count }, () => {
    const v = new Float32Array(DIM);
    const shared = Math.floor(uniform() * CENTRES);
    const norm = Math.exp(0.5 * normal());
    let own = 0;
    for (let j = 0; j < DIM; j++) {
      if (j % layerDim === 0) own = Math.floor(uniform() * CENTRES);
      v[j] = norm * (0.7 * centres[shared * DIM + j] + 0.7 * centres[own * DIM + j] + 0.5 * normal());
    }
    return v;
  });
}

function concat(vectors: Float32Array[]): Float32Array {
  const out = new Float32Array(vectors.length * (vectors[0]?.length ?? 0));
  vectors.forEach((v, i) => out.set(v, i * v.length));
  return out;
}

/** Mean recall@k of `search` against exact search on the same (masked) queries and filter. */
function recallAtK(rows: Float32Array, queries: Float32Array[], k: number, search: (q: Float32Array) => number[], filter?: (label: number) => boolean): number {
  let found = 0;
  for (const q of queries) {
    const truth = new Set(exactTopK(rows, DIM, q, k, { filter }).labels);
    for (const label of search(q)) if (truth.has(label)) found++;
  }
  return found / (queries.length * k);
}

const dir = mkdtempSync(path.join(tmpdir(), "hnsw-"));
const file = (name: string): string => path.join(dir, name);
const indexPath = file("vectors.hnsw");
let vectors: VectorFile;
let sidecar: HnswSidecar;
let index: HnswIndex;
const progress: Array<[number, number]> = [];
let timerTicks = 0;
const queries = gradientLikeVectors(60, 99);

beforeAll(async () => {
  await writeVectorFile(file("vectors.vec"), { dim: DIM, firstOrdinal: 0, layout: LAYOUT, rows: concat(gradientLikeVectors(N, 7)) });
  vectors = await readVectorFile(file("vectors.vec"));
  // The build runs in a worker: timers on this thread must keep firing meanwhile.
  const timer = setInterval(() => void timerTicks++, 5);
  try {
    sidecar = await buildHnsw(indexPath, vectors, { onProgress: (done, total) => progress.push([done, total]) });
  } finally {
    clearInterval(timer);
  }
  index = await openHnsw(indexPath, { expectDim: DIM, expectVectorsChecksum: vectors.checksum });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("buildHnsw", () => {
  it("writes the index and a sidecar describing it, in a worker, atomically", async () => {
    expect(sidecar).toMatchObject({ space: "ip", dim: DIM, count: N, firstOrdinal: 0, M: 16, efConstruction: 200, coordinates: [{ offset: 0, size: DIM }] });
    expect(sidecar.checksum).toBe(
      createHash("sha256")
        .update(await readFile(indexPath))
        .digest("hex"),
    );
    expect(sidecar.vectorsChecksum).toBe(vectors.checksum);
    expect(JSON.parse(await readFile(`${indexPath}.json`, "utf8"))).toEqual(sidecar);
    expect((await readdir(dir)).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    expect(progress).toEqual([1, 2, 3, 4, 5].map((i) => [i * 1000, N]));
    // Built on this thread, the build would hold it from start to end: no timer could fire.
    expect(timerTicks).toBeGreaterThan(20);
  });

  it("gives the same file for the same vectors and seed, and labels rows by ordinal", async () => {
    const rows = concat(gradientLikeVectors(500, 3).map((v) => v.subarray(0, 64)));
    const source = { rows, dim: 64, firstOrdinal: 1_000_000, checksum: "c" };
    const a = await buildHnsw(file("a.hnsw"), source, { seed: 5 });
    const b = await buildHnsw(file("b.hnsw"), source, { seed: 5 });
    expect(a.checksum).toBe(b.checksum);
    const small = await openHnsw(file("a.hnsw"), { expectDim: 64, expectVectorsChecksum: "c" });
    const hits = small.search(rows.subarray(0, 64), 5);
    expect(hits.labels).toEqual(exactTopK(rows, 64, rows.subarray(0, 64), 5, { firstOrdinal: 1_000_000 }).labels);
    expect(Math.min(...hits.labels)).toBeGreaterThanOrEqual(1_000_000);
  });

  it("refuses empty input, coordinates outside the vectors and an unwritable path", async () => {
    await expect(buildHnsw(file("x.hnsw"), { rows: new Float32Array(0), dim: 4, firstOrdinal: 0, checksum: "c" })).rejects.toThrow(/cannot build/);
    const source = { rows: new Float32Array(8), dim: 4, firstOrdinal: 0, checksum: "c" };
    await expect(buildHnsw(file("x.hnsw"), source, { coordinates: [{ offset: 2, size: 3 }] })).rejects.toThrow(/beyond dimension 4/);
    const nowhere = file("no-such-dir/x.hnsw");
    await expect(buildHnsw(nowhere, source)).rejects.toThrow(new RegExp(`^cannot write HNSW index ${nowhere}`));
  });
});

describe("search quality on structured vectors (5000 x 256, M 16, efConstruction 200)", () => {
  it(`recall@10 >= 0.95 at the default ef (${DEFAULT_EF}), with exact inner products as scores`, () => {
    const recall = recallAtK(vectors.rows, queries, 10, (q) => index.search(q, 10).labels);
    expect(recall).toBeGreaterThanOrEqual(0.95);
    const q = queries[0];
    const hits = index.search(q, 10);
    expect(hits.labels).toHaveLength(10);
    for (let i = 1; i < hits.scores.length; i++) expect(hits.scores[i]).toBeLessThanOrEqual(hits.scores[i - 1]);
    for (const [i, label] of hits.labels.entries()) {
      let dot = 0;
      for (let j = 0; j < DIM; j++) dot += q[j] * vectors.rows[label * DIM + j];
      expect(hits.scores[i]).toBeCloseTo(dot, 2);
      expect(Math.abs(hits.scores[i] - dot)).toBeLessThan(1e-5 * Math.abs(dot));
    }
  });

  it("recall@10 >= 0.95 with a label filter, and only allowed labels", () => {
    const even = (label: number): boolean => label % 2 === 0;
    const recall = recallAtK(
      vectors.rows,
      queries,
      10,
      (q) => {
        const { labels } = index.search(q, 10, { filter: even });
        expect(labels).toHaveLength(10);
        expect(labels.every(even)).toBe(true);
        return labels;
      },
      even,
    );
    expect(recall).toBeGreaterThanOrEqual(0.95);
  });

  it("keeps rankings of vectors with tiny norms (1 - dot in float32 would round them all to 1)", async () => {
    const base = gradientLikeVectors(2000, 11).map((v) => v.subarray(0, 64));
    const rows = concat(base).map((x) => x * 1e-7);
    await buildHnsw(file("tiny.hnsw"), { rows, dim: 64, firstOrdinal: 0, checksum: "t" });
    const tiny = await openHnsw(file("tiny.hnsw"), { expectDim: 64, expectVectorsChecksum: "t" });
    const tinyQueries = gradientLikeVectors(30, 12).map((v) => v.slice(0, 64).map((x) => x * 1e-6));
    let found = 0;
    for (const q of tinyQueries) {
      const truth = exactTopK(rows, 64, q, 10);
      const hits = tiny.search(q, 10);
      found += hits.labels.filter((l) => truth.labels.includes(l)).length;
      expect(hits.scores[0] / truth.scores[0]).toBeCloseTo(1, 4);
    }
    expect(found / 300).toBeGreaterThanOrEqual(0.95);
  });

  it("refuses queries of the wrong dimension", () => {
    expect(() => index.search(new Float32Array(DIM - 1), 10)).toThrow(/query has 255 coordinates, the index expects 256/);
  });
});

describe("layer-restricted search", () => {
  let indexes: IndexSet;
  beforeAll(async () => {
    await buildHnsw(layerIndexPath(indexPath, 3), vectors, { coordinates: rangesForLayers(LAYOUT, [3]) });
    indexes = await openIndexSet(indexPath, { expectDim: DIM, expectVectorsChecksum: vectors.checksum, layout: LAYOUT });
  });

  it("answers one layer from its own index, recall@10 >= 0.95", () => {
    const plan = indexes.plan(queries[0], { layers: [3] });
    expect(plan.index).not.toBe(indexes.full);
    expect(plan.index.info.coordinates).toEqual([{ offset: 96, size: 32 }]);
    expect(plan.ef).toBe(DEFAULT_EF);
    const masked = queries.map((q) => maskQuery(q, rangesForLayers(LAYOUT, [3])));
    // Exact truth on the masked query; the layer index is given the unmasked one.
    let found = 0;
    for (const [i, q] of queries.entries()) {
      const truth = new Set(exactTopK(vectors.rows, DIM, masked[i], 10).labels);
      found += indexes.search(q, 10, { layers: [3] }).labels.filter((l) => truth.has(l)).length;
    }
    expect(found / (queries.length * 10)).toBeGreaterThanOrEqual(0.95);
  });

  it("answers other restrictions from the full index with a masked query and a larger ef, recall@10 >= 0.95", () => {
    const plan = indexes.plan(queries[0], { layers: [2, 6] });
    expect(plan.index).toBe(indexes.full);
    expect(plan.ef).toBe(DEFAULT_EF * 4);
    expect(Array.from(plan.query.subarray(64, 96))).toEqual(Array.from(queries[0].subarray(64, 96)));
    expect(plan.query.subarray(0, 64).every((x) => x === 0)).toBe(true);
    const masked = queries.map((q) => maskQuery(q, rangesForLayers(LAYOUT, [2, 6])));
    const recall = recallAtK(vectors.rows, masked, 10, (q) => indexes.search(q, 10, { layers: [2, 6] }).labels);
    expect(recall).toBeGreaterThanOrEqual(0.95);
    // Layer 5 has no index of its own either: same route, ef scaled by 8.
    expect(indexes.plan(queries[0], { layers: [5] })).toMatchObject({ index: indexes.full, ef: DEFAULT_EF * 8 });
  });

  it("treats all layers as no restriction, and refuses layers the layout lacks", () => {
    const plan = indexes.plan(queries[0], { layers: [0, 1, 2, 3, 4, 5, 6, 7] });
    expect(plan).toMatchObject({ index: indexes.full, ef: DEFAULT_EF });
    expect(plan.query).toEqual(queries[0]);
    expect(() => indexes.plan(queries[0], { layers: [8] })).toThrow(/none of the layers 8/);
  });
});

describe("openHnsw refuses mismatched or damaged files, naming them", () => {
  let n = 0;
  /** A copy of the built index and sidecar, optionally changed. */
  async function copy(changeIndex?: (bytes: Buffer) => Buffer, changeSidecar?: (s: Record<string, unknown>) => unknown): Promise<string> {
    const p = file(`copy-${n++}.hnsw`);
    const bytes = await readFile(indexPath);
    await writeFile(p, changeIndex ? changeIndex(bytes) : bytes);
    const json = JSON.parse(await readFile(`${indexPath}.json`, "utf8"));
    await writeFile(`${p}.json`, JSON.stringify(changeSidecar ? changeSidecar(json) : json));
    return p;
  }
  const open = (p: string, expectDim = DIM, expectVectorsChecksum = vectors.checksum) => openHnsw(p, { expectDim, expectVectorsChecksum });

  it("opens an intact copy", async () => {
    const p = await copy();
    expect((await open(p)).search(queries[0], 3).labels).toEqual(index.search(queries[0], 3).labels);
  });

  it("a flipped byte in the index", async () => {
    const p = await copy((b) => {
      b[b.length >> 1] ^= 0x10;
      return b;
    });
    await expectRefused(open(p), p, /^corrupt HNSW index .*checksum does not match/);
  });

  it("a truncated index, cut in the level-0 data or in the link lists", async () => {
    const half = await copy();
    await truncate(half, (await readFile(half)).length >> 1);
    await expectRefused(open(half), half, /^truncated HNSW index/);
    const tail = await copy((b) => b.subarray(0, b.length - 8));
    await expectRefused(open(tail), tail, /^corrupt HNSW index/);
    const tiny = await copy((b) => b.subarray(0, 40));
    await expectRefused(open(tiny), tiny, /^truncated HNSW index/);
  });

  it("missing index or sidecar, and a sidecar that is not JSON or not ours", async () => {
    const noIndex = await copy();
    await rm(noIndex);
    await expectRefused(open(noIndex), noIndex, /^cannot read HNSW index/);
    const noSidecar = await copy();
    await rm(`${noSidecar}.json`);
    await expectRefused(open(noSidecar), `${noSidecar}.json`, /^cannot read HNSW sidecar/);
    const garbled = await copy();
    await writeFile(`${garbled}.json`, "{ not json");
    await expectRefused(open(garbled), `${garbled}.json`, /^corrupt HNSW sidecar .*not valid JSON/);
    const foreign = await copy(undefined, (s) => ({ ...s, space: "l2" }));
    await expectRefused(open(foreign), `${foreign}.json`, /^invalid HNSW sidecar .*space l2/);
  });

  it("a sidecar for another dimension", async () => {
    const p = await copy();
    await expectRefused(open(p, 128), p, /built for vectors of dimension 256, but the vectors have dimension 128/);
    // A sidecar edited to claim 128 dimensions: hnswlib's own header says otherwise.
    const edited = await copy(undefined, (s) => ({ ...s, dim: 128, coordinates: [{ offset: 0, size: 128 }] }));
    await expectRefused(open(edited, 128), edited, /holds 5000 vectors of dimension 256 .* describes 5000 of dimension 128/);
  });

  it("an index built from other vectors", async () => {
    const p = await copy();
    await expectRefused(open(p, DIM, "0".repeat(64)), p, /built from other vectors .*rebuild it/);
  });

  it("an index and sidecar from different builds", async () => {
    const p = await copy();
    await copyFile(file("a.hnsw"), p);
    await expectRefused(open(p), p, /^corrupt HNSW index .*checksum does not match/);
  });
});

describe("exactTopK", () => {
  const rows = Float32Array.from([1, 0, 0, 1, 1, 1, -1, 0, 1, 1]);

  it("ranks by inner product, ties by label, with filter, offset and k beyond the count", () => {
    expect(exactTopK(rows, 2, [1, 0], 3)).toEqual({ labels: [0, 2, 4], scores: [1, 1, 1] });
    expect(exactTopK(rows, 2, [1, 2], 10)).toEqual({ labels: [2, 4, 1, 0, 3], scores: [3, 3, 2, 1, -1] });
    expect(exactTopK(rows, 2, [1, 2], 2, { filter: (l) => l !== 12, firstOrdinal: 10 })).toEqual({ labels: [14, 11], scores: [3, 2] });
    expect(exactTopK(rows, 2, [0, 0], 0)).toEqual({ labels: [], scores: [] });
  });

  it("agrees with sorting all inner products on random data", () => {
    const normal = normalGenerator(5);
    const data = Float32Array.from({ length: 300 * 16 }, () => normal());
    const q = Float32Array.from({ length: 16 }, (_, j) => (j < 8 ? normal() : 0));
    const all = Array.from({ length: 300 }, (_, i) => {
      let dot = 0;
      for (let j = 0; j < 16; j++) dot += q[j] * data[i * 16 + j];
      return { i, dot };
    }).sort((a, b) => b.dot - a.dot);
    const top = exactTopK(data, 16, q, 25);
    expect(top.labels).toEqual(all.slice(0, 25).map((x) => x.i));
    top.scores.forEach((s, k) => expect(s).toBeCloseTo(all[k].dot, 10));
  });
});
