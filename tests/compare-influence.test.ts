/**
 * Several indexes in one server, and compareInfluence, over HTTP on real indexes: gpt2-tiny and
 * pythia-tiny (two models of the same 48 sequences), and gpt2-tiny-legacy (another corpus). Each
 * index's hits are what `influence` answers on that index alone; the overlaps, layer shares and
 * token overlaps are recomputed here from those hits and the fixtures' tokens.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { namedIndexFolders, startIndexServer } from "../src/http/open-index-server.js";
import { runBuild } from "../src/jobs/build.js";
import { tempDir } from "../src/util/temp-dir.js";
import { fixtureBuildJob } from "../support/fixture-index.js";
import { fixturePath, fixtureQueries, fixtureTrain } from "../support/fixtures.js";
import { codes, gql, memoryLogger } from "../support/server.js";

/** The fixture model of each served index, by the name it is served under (legacy's is its folder's); the first is the default. */
const MODELS: Record<string, string> = { gpt2: "gpt2-tiny", pythia: "pythia-tiny", "gpt2-tiny-legacy": "gpt2-tiny-legacy" };
const TOP_K = 10;
const queries = fixtureQueries("gpt2-tiny");

const HIT_FIELDS = "rank ordinal score approxScore layerScores { layer score } sequence { id tokens }";
const COMPARE = `query C($indexes: [String!]!, $p: [Int!], $c: [Int!], $k: Int) {
  compareInfluence(indexes: $indexes, promptTokens: $p, completionTokens: $c, topK: $k) {
    results { index query { promptTokens completionTokens } hits { ${HIT_FIELDS} tokenOverlap } layerShares { layer score share } meanTokenOverlap }
    overlaps { indexes idsMatch count jaccard ids rankCorrelation }
  }
}`;
const INFLUENCE = `query I($index: String, $p: [Int!], $c: [Int!], $k: Int) {
  influence(index: $index, promptTokens: $p, completionTokens: $c, topK: $k) { hits { ${HIT_FIELDS} } }
}`;

interface Hit {
  rank: number;
  ordinal: number;
  score: number;
  approxScore: number;
  layerScores: Array<{ layer: number; score: number }>;
  sequence: { id: string; tokens: number[] };
  tokenOverlap: number;
}
interface IndexResult {
  index: string;
  query: { promptTokens: number[]; completionTokens: number[] };
  hits: Hit[];
  layerShares: Array<{ layer: number; score: number; share: number }>;
  meanTokenOverlap: number;
}
interface Overlap {
  indexes: string[];
  idsMatch: boolean | null;
  count: number;
  jaccard: number;
  ids: string[];
  rankCorrelation: number | null;
}

const sum = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0);

/** Spearman's rho of two rankings without ties: 1 - 6 sum d^2 / (m (m^2 - 1)). */
function spearmanOfRanks(first: readonly string[], second: readonly string[]): number {
  const m = first.length;
  const d2 = sum(first.map((id, i) => (i - second.indexOf(id)) ** 2));
  return 1 - (6 * d2) / (m * (m * m - 1));
}

describe("compareInfluence on gpt2-tiny, pythia-tiny and gpt2-tiny-legacy", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let server: Awaited<ReturnType<typeof startIndexServer>>;

  const compare = (indexes: string[], q: number, variables: Record<string, unknown> = {}) =>
    gql(server.graphqlUrl, COMPARE, { variables: { indexes, p: queries[q].prompt_tokens, c: queries[q].completion_tokens, k: TOP_K, ...variables } });
  const alone = async (index: string | null, q: number): Promise<Hit[]> => {
    const res = await gql(server.graphqlUrl, INFLUENCE, { variables: { index, p: queries[q].prompt_tokens, c: queries[q].completion_tokens, k: TOP_K } });
    expect(res.errors).toBeUndefined();
    return res.data.influence.hits;
  };

  beforeAll(async () => {
    tmp = await tempDir();
    const dir = (model: string) => path.join(tmp.dir, model);
    for (const model of Object.values(MODELS)) await runBuild(fixtureBuildJob(fixturePath(model), dir(model), {}, model));
    server = await startIndexServer({
      // Two named explicitly, one after its folder.
      indexes: [{ name: "gpt2", dir: dir("gpt2-tiny") }, { name: "pythia", dir: dir("pythia-tiny") }, { dir: dir("gpt2-tiny-legacy") }],
      port: 0,
      workers: 1,
      maxQueue: 16,
      timeoutMs: 120_000,
      logger: memoryLogger(),
    });
  });
  afterAll(async () => {
    await server?.close();
    await tmp?.remove();
  });

  it("lists the served indexes in order, with their models, corpora and dims", async () => {
    const res = await gql(server.graphqlUrl, "{ indexes { name model { architecture layers } corpus { name sequences } dims { total } } index { name } }");
    expect(res.errors).toBeUndefined();
    expect(res.data.indexes.map((i: { name: string }) => i.name)).toEqual(["gpt2", "pythia", "gpt2-tiny-legacy"]);
    expect(res.data.indexes.map((i: { corpus: { sequences: number } }) => i.corpus.sequences)).toEqual(
      Object.values(MODELS).map((model) => fixtureTrain(model).length),
    );
    expect(res.data.indexes[0].model.architecture).not.toBe(res.data.indexes[1].model.architecture);
    expect(res.data.index.name).toBe("gpt2");
    for (const index of res.data.indexes) {
      const one = await gql(server.graphqlUrl, "query($i: String) { index(index: $i) { name dims { total } } }", { variables: { i: index.name } });
      expect(one.data.index).toEqual({ name: index.name, dims: index.dims });
    }
  });

  it("answers every query field on the index it names, the first by default", async () => {
    expect(await alone(null, 0)).toEqual(await alone("gpt2", 0));
    const pythia = await alone("pythia", 0);
    expect(pythia.map((h) => h.sequence.tokens)).toEqual(pythia.map((h) => fixtureTrain("pythia-tiny")[h.ordinal].tokens));
    const legacyId = fixtureTrain("gpt2-tiny-legacy")[3].id;
    const sequence = await gql(server.graphqlUrl, 'query($id: ID!) { sequence(id: $id, index: "gpt2-tiny-legacy") { ordinal tokenTexts } }', {
      variables: { id: legacyId },
    });
    expect(sequence.data.sequence.ordinal).toBe(3);
    const listing = await gql(server.graphqlUrl, '{ sequences(index: "gpt2-tiny-legacy", first: 2) { totalCount edges { node { id } } } }');
    expect(listing.data.sequences.totalCount).toBe(fixtureTrain("gpt2-tiny-legacy").length);
    const log = await gql(server.graphqlUrl, '{ recentQueries(index: "pythia", limit: 1) { parameters } }');
    expect(log.data.recentQueries[0].parameters).toMatchObject({ operation: "influence", index: "pythia" });
  });

  it("returns each index's own hits, and their overlap, layer shares and token overlaps as recomputed from them", async () => {
    const commonCounts: number[] = [];
    for (const q of queries.keys()) {
      const res = await compare(["gpt2", "pythia"], q);
      expect(res.errors).toBeUndefined();
      const { results, overlaps } = res.data.compareInfluence as { results: IndexResult[]; overlaps: Overlap[] };
      expect(results.map((r) => r.index)).toEqual(["gpt2", "pythia"]);
      for (const result of results) {
        const own = await alone(result.index, q);
        expect(result.hits.map(({ tokenOverlap, ...hit }) => hit)).toEqual(own);
        // Token overlap: the share of the hit's distinct tokens found in the query.
        const queryTokens = new Set([...queries[q].prompt_tokens, ...queries[q].completion_tokens]);
        expect([...result.query.promptTokens, ...result.query.completionTokens]).toEqual([...queries[q].prompt_tokens, ...queries[q].completion_tokens]);
        for (const hit of result.hits) {
          const distinct = [...new Set(fixtureTrain(MODELS[result.index])[hit.ordinal].tokens)];
          expect(hit.tokenOverlap).toBeCloseTo(distinct.filter((t) => queryTokens.has(t)).length / distinct.length, 12);
        }
        expect(result.meanTokenOverlap).toBeCloseTo(sum(result.hits.map((h) => h.tokenOverlap)) / result.hits.length, 12);
        // Layer shares: each layer's sum over the hits, over the sum of the layers' absolute sums.
        const layers = [...new Set(own.flatMap((h) => h.layerScores.map((l) => l.layer)))].sort((a, b) => a - b);
        const totals = layers.map((layer) => sum(own.map((h) => h.layerScores.find((l) => l.layer === layer)!.score)));
        const scale = sum(totals.map(Math.abs));
        expect(result.layerShares.map((l) => l.layer)).toEqual(layers);
        result.layerShares.forEach((l, i) => {
          expect(l.score).toBeCloseTo(totals[i], 9);
          expect(l.share).toBeCloseTo(totals[i] / scale, 12);
        });
        expect(sum(result.layerShares.map((l) => Math.abs(l.share)))).toBeCloseTo(1, 12);
      }
      const [first, second] = results.map((r) => r.hits.map((h) => h.sequence.id));
      const common = first.filter((id) => second.includes(id));
      expect(overlaps).toHaveLength(1);
      const [overlap] = overlaps;
      // One corpus: an id in common is the same sequence.
      expect(overlap).toMatchObject({ indexes: ["gpt2", "pythia"], idsMatch: common.length === 0 ? null : true, count: common.length, ids: common });
      expect(overlap.jaccard).toBeCloseTo(common.length / new Set([...first, ...second]).size, 12);
      if (common.length < 2) expect(overlap.rankCorrelation).toBeNull();
      else
        expect(overlap.rankCorrelation).toBeCloseTo(
          spearmanOfRanks(
            common,
            second.filter((id) => common.includes(id)),
          ),
          12,
        );
      commonCounts.push(common.length);
    }
    // The rank correlation was checked, not only its absence.
    expect(Math.max(...commonCounts)).toBeGreaterThanOrEqual(3);
  });

  it("compares indexes of different corpora on sequence ids, and says so", async () => {
    const res = await compare(["gpt2", "gpt2-tiny-legacy", "pythia"], 1);
    expect(res.errors).toBeUndefined();
    const { results, overlaps } = res.data.compareInfluence as { results: IndexResult[]; overlaps: Overlap[] };
    expect(overlaps.map((o) => o.indexes)).toEqual([
      ["gpt2", "gpt2-tiny-legacy"],
      ["gpt2", "pythia"],
      ["gpt2-tiny-legacy", "pythia"],
    ]);
    const ids = results.map((r) => r.hits.map((h) => h.sequence.id));
    expect(ids[1]).toEqual((await alone("gpt2-tiny-legacy", 1)).map((h) => h.sequence.id));
    const models = results.map((r) => MODELS[r.index]);
    const tokensOf = (model: string, id: string) =>
      fixtureTrain(model)
        .find((s) => s.id === id)!
        .tokens.join();
    for (const [o, [a, b]] of overlaps.map(
      (o, i) =>
        [
          o,
          [
            [0, 1],
            [0, 2],
            [1, 2],
          ][i],
        ] as const,
    )) {
      const common = ids[a].filter((id) => ids[b].includes(id));
      expect(o.ids).toEqual(common);
      // The fixtures have no text: an id in common is the same sequence when its tokens are.
      const same = common.map((id) => tokensOf(models[a], id) === tokensOf(models[b], id));
      expect(o.idsMatch).toBe(common.length === 0 ? null : same.every(Boolean));
    }
    // Some legacy id is also a gpt2-tiny id, for a different sequence: the check above is not vacuous there.
    const gpt2 = new Map(fixtureTrain("gpt2-tiny").map((s) => [s.id, s.tokens.join()]));
    expect(fixtureTrain("gpt2-tiny-legacy").some((s) => gpt2.has(s.id) && gpt2.get(s.id) !== s.tokens.join())).toBe(true);
  });

  it("refuses an unknown index, fewer than two, one named twice, and names the index a bad query fails on", async () => {
    const unknown = await compare(["gpt2", "gpt3"], 0);
    expect(codes(unknown)).toEqual(["UNKNOWN_INDEX"]);
    expect(unknown.errors?.[0].message).toBe('no index is named "gpt3"; this server serves "gpt2", "pythia", "gpt2-tiny-legacy"');
    const influence = await gql(server.graphqlUrl, '{ influence(index: "nope", completion: " x") { hits { rank } } }');
    expect(codes(influence)).toEqual(["UNKNOWN_INDEX"]);
    const one = await compare(["gpt2"], 0);
    expect(codes(one)).toEqual(["BAD_USER_INPUT"]);
    expect(one.errors?.[0].message).toBe("indexes: compare at least 2 indexes, got 1");
    const twice = await compare(["pythia", "gpt2", "pythia"], 0);
    expect(codes(twice)).toEqual(["BAD_USER_INPUT"]);
    expect(twice.errors?.[0].message).toBe('indexes: "pythia" is named twice');
    const badTopK = await compare(["gpt2", "pythia"], 0, { k: 0 });
    expect(codes(badTopK)).toEqual(["BAD_USER_INPUT"]);
    expect(badTopK.errors?.[0].message).toMatch(/^index "(gpt2|pythia)": topK must be from 1 to/);
  });
});

describe("naming the served indexes", () => {
  it("names an index after its folder unless named, and refuses two of one name, one folder twice, and a name it cannot take", () => {
    expect(namedIndexFolders([{ dir: "/data/run-1/index" }, { name: "b", dir: "/data/run-2/index" }])).toEqual([
      { name: "index", dir: "/data/run-1/index" },
      { name: "b", dir: "/data/run-2/index" },
    ]);
    expect(() => namedIndexFolders([{ dir: "/data/run-1/index" }, { dir: "/data/run-2/index" }])).toThrow(
      'two indexes are named "index": give each its own name (--index NAME=DIR)',
    );
    expect(() =>
      namedIndexFolders([
        { name: "a", dir: "/data/index" },
        { name: "b", dir: "/data/index/" },
      ]),
    ).toThrow("--index: the folder /data/index is given twice (each index opens its own database there)");
    expect(() => namedIndexFolders([{ name: "a b", dir: "/data/index" }])).toThrow(/--index a b=\/data\/index: index name "a b" is not 1 to 64 letters/);
    expect(() => namedIndexFolders([{ dir: "/data/my index" }])).toThrow(/named after its folder; name it with --index NAME=\/data\/my index/);
  });

  it("refuses them before opening any index", async () => {
    const start = startIndexServer({
      indexes: [{ dir: "/nonexistent/a/index" }, { dir: "/nonexistent/b/index" }],
      port: 0,
      workers: 1,
      maxQueue: 1,
      timeoutMs: 1000,
    });
    await expect(start).rejects.toThrow(/two indexes are named "index"/);
  });
});
