/**
 * A real index of gpt2-tiny served as `influence serve` serves it when a copy per worker does not
 * fit the budget, its engine in 2 worker threads that share one copy of the index's arrays: it
 * answers as the engine opened in process, and serve's memory estimate counts shared arrays once
 * and a copy per worker once for each. `scoreSequences` through it: sequences scored as
 * if they were training sequences agree with the indexed sequences' exact scores, the fixture's
 * float64 reference, and their own token and layer scores.
 */
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openSharedIndexArrays } from "../src/engine/index-arrays.js";
import { IndexEngine } from "../src/engine/index-engine.js";
import { planServeMemory, serveEstimate } from "../src/engine/serve-memory.js";
import { wordOrderVariants } from "../src/engine/word-order-variants.js";
import { startIndexServer } from "../src/http/open-index-server.js";
import { indexFiles, indexPath, readIndexManifest } from "../src/indexer/index-manifest.js";
import { SCORED_SEQUENCES } from "../src/indexer/query-limits.js";
import { runBuild } from "../src/jobs/build.js";
import { modelTokenizer } from "../src/model/open-model.js";
import { workerRuntime } from "../src/runtime/session.js";
import { loadTokenizer, type Tokenizer } from "../src/tokenizer/tokenizer.js";
import { tempDir } from "../src/util/temp-dir.js";
import { expectedQueryScores, fixtureBuildJob } from "../support/fixture-index.js";
import { fixturePath, fixtureQueries, fixtureTrain } from "../support/fixtures.js";
import { codes, gql, memoryLogger } from "../support/server.js";

const train = fixtureTrain("gpt2-tiny");
const queries = fixtureQueries("gpt2-tiny");

const SCORE_SEQUENCES = `query S($p: [Int!], $c: [Int!], $prompt: String, $completion: String, $layers: [Int!], $sequences: [String!],
    $sequenceTokens: [[Int!]!], $compareWith: ID, $variants: Boolean) {
  scoreSequences(promptTokens: $p, completionTokens: $c, prompt: $prompt, completion: $completion, layers: $layers, sequences: $sequences,
      sequenceTokens: $sequenceTokens, compareWith: $compareWith, variants: $variants) {
    query { loss }
    original { ordinal score layerScores { layer score } tokenScores { position tokenId text score } sequence { id tokens } }
    sequences { kind tokens text score change layerScores { layer score } tokenScores { position tokenId score } }
  }
}`;

interface Scored {
  kind: string;
  tokens: number[];
  text: string;
  score: number;
  change: number | null;
  layerScores: Array<{ layer: number; score: number }>;
  tokenScores: Array<{ position: number; tokenId: number; score: number }>;
}

const sum = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0);
const sorted = (xs: readonly number[]) => [...xs].sort((a, b) => a - b);
const relative = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

const INFLUENCE = `query($p: [Int!], $c: [Int!], $layers: [Int!]) {
  influence(promptTokens: $p, completionTokens: $c, layers: $layers, topK: 4, candidates: 12, rerank: true) {
    hits { rank ordinal score approxScore layerScores { layer score } tokenScores { position tokenId score } }
  }
  influenceDistribution(promptTokens: $p, completionTokens: $c, layers: $layers) { count topScores topPercentShare }
}`;

describe("a gpt2-tiny index served by 2 workers", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let indexDir: string;
  let server: Awaited<ReturnType<typeof startIndexServer>>;
  let tokenizer: Tokenizer;

  const ask = (q: number, variables: Record<string, unknown>) =>
    gql(server.graphqlUrl, SCORE_SEQUENCES, { variables: { p: queries[q].prompt_tokens, c: queries[q].completion_tokens, ...variables } });

  beforeAll(async () => {
    tmp = await tempDir();
    indexDir = path.join(tmp.dir, "index");
    await runBuild(fixtureBuildJob(fixturePath("gpt2-tiny"), indexDir));
    // Sharing one copy of the arrays: the workers' answers must not depend on it (the other servers of the tests hold a copy per worker).
    server = await startIndexServer({
      indexes: [{ dir: indexDir }],
      port: 0,
      workers: 2,
      maxQueue: 16,
      timeoutMs: 120_000,
      logger: memoryLogger(),
      arraySharing: "shared",
    });
    tokenizer = await loadTokenizer(fixturePath("gpt2-tiny"));
  });
  afterAll(async () => {
    await server?.close();
    await tmp?.remove();
  });

  it("answers influence and distribution queries exactly as the engine opened in process, on its own copy of the arrays", async () => {
    // With the threads of one of the 2 workers: another number of threads splits ONNX Runtime's float32 sums otherwise.
    const engine = await IndexEngine.open(indexDir, workerRuntime(undefined, 2));
    try {
      for (const [q, layers] of [
        [0, undefined],
        [1, [1]],
        [2, undefined],
      ] as const) {
        const tokens = { promptTokens: queries[q].prompt_tokens, completionTokens: queries[q].completion_tokens, ...(layers ? { layers: [...layers] } : {}) };
        const served = await gql(server.graphqlUrl, INFLUENCE, { variables: { p: tokens.promptTokens, c: tokens.completionTokens, layers } });
        expect(served.errors).toBeUndefined();
        const local = await engine.influence({ ...tokens, topK: 4, candidates: 12, rerank: true, tokenScores: true });
        expect(local.hits).toHaveLength(4);
        expect(served.data.influence.hits).toEqual(
          local.hits.map(({ rank, ordinal, score, approxScore, layerScores, tokenScores }) => ({
            rank,
            ordinal,
            score,
            approxScore,
            layerScores,
            tokenScores: tokenScores?.map(({ position, tokenId, score }) => ({ position, tokenId, score })),
          })),
        );
        const distribution = await engine.distribution({ ...tokens, bins: 20 });
        expect(served.data.influenceDistribution).toEqual({
          count: distribution.count,
          topScores: distribution.topScores,
          topPercentShare: distribution.topPercentShare,
        });
      }
    } finally {
      await engine.close();
    }
  });

  it("reads the arrays once into shared memory for its workers but the projections; the memory estimate counts them once if shared, else once per worker, the rest per worker", async () => {
    const manifest = await readIndexManifest(indexDir);
    const arrays = await openSharedIndexArrays(indexDir, manifest, (await modelTokenizer(manifest.model.path)).model.modules);
    const tiers = [arrays.vectors, arrays.sketch!];
    // The first tier's 48 rows are scanned: their int8 copy is read once too.
    const scan = arrays.scan!;
    const large = [
      ...arrays.factors.flatMap((f) => [f.qA, f.qS, f.lambda]),
      ...arrays.inverses.map((t) => t.data),
      ...tiers.map((t) => t.rows.rows),
      scan.rows,
      scan.scales,
    ];
    expect(large).toHaveLength(4 * 3 + 4 + 2 + 2);
    for (const array of large) expect(array.buffer).toBeInstanceOf(SharedArrayBuffer);
    // ONNX Runtime reads no shared memory, and every query feeds it the projections: they stay ordinary (each worker gets a copy).
    const projections = tiers.flatMap((t) => t.projection.modules.flatMap((p) => [p.left, p.right]));
    expect(projections).toHaveLength(2 * 4 * 2);
    for (const array of projections) expect(array.buffer).toBeInstanceOf(ArrayBuffer);
    // Cloned as workerData is, they are the same memory: a value written through the clone is read through the original.
    const clone = structuredClone(arrays);
    const saved = arrays.vectors.rows.rows[0];
    clone.vectors.rows.rows[0] = 12345;
    expect(arrays.vectors.rows.rows[0]).toBe(12345);
    arrays.vectors.rows.rows[0] = saved;

    const bytes = async (...files: string[]) => (await Promise.all(files.map((f) => stat(f)))).reduce((sum, s) => sum + s.size, 0);
    // gpt2-tiny's 2 blocks each track a 128 x (32 + 1) and a 32 x (128 + 1) matrix: as stored, QA, QS and Lambda in
    // float32, the eigenvalues and the damping in float64; their inverse scales in float32.
    const stored = ([o, i]: number[]) => 4 * (i * i + o * o + o * i) + 8 * (i + o + 1);
    const factors = 2 * (stored([128, 33]) + stored([32, 129]));
    const inverses = 4 * 2 * (128 * 33 + 32 * 129);
    const tierFiles = await bytes(...(["vectors", "sketch"] as const).map((f) => indexPath(indexDir, f)));
    const projectionFiles = await bytes(...(["projection", "sketchProjection"] as const).map((f) => indexPath(indexDir, f)));
    // Its first tier is scanned: the workers never read its HNSW graphs (tests/index.test.ts).
    expect((await readdir(indexDir)).some((name) => name.startsWith(indexFiles.hnsw))).toBe(true);
    const perWorker = await bytes(indexPath(indexDir, "tokens"));
    for (const workers of [1, 2]) {
      for (const sharing of ["shared", "per-worker"] as const) {
        const estimate = await serveEstimate([indexDir], workers, sharing);
        expect(estimate.phase).toBe("serving");
        // Shared: counted once; per worker: once for each.
        const copies = sharing === "shared" ? 1 : workers;
        const whose = sharing === "shared" ? "shared by the workers" : "per worker";
        expect(estimate.parts.filter((p) => /^(EK-FAC|vectors)/.test(p.what))).toEqual(
          Array.from({ length: copies }, () => [
            { what: `EK-FAC factors and inverse scales (${whose})`, bytes: factors + inverses },
            { what: `vectors and sketches (${whose})`, bytes: tierFiles + scan.rows.byteLength + scan.scales.byteLength },
          ]).flat(),
        );
        // Every worker's projections, and the server's when it reads the shared arrays.
        expect(estimate.parts.filter((p) => p.what.startsWith("projections"))).toEqual(
          Array.from({ length: workers + (sharing === "shared" ? 1 : 0) }, () => ({ what: "projections (per reader)", bytes: projectionFiles })),
        );
        expect(estimate.parts.filter((p) => p.what.endsWith("token stores (per worker)"))).toEqual(
          Array.from({ length: workers }, () => ({ what: "token stores (per worker)", bytes: perWorker })),
        );
      }
    }
  });

  it("plans a copy of the arrays per worker when that fits the budget or there is one worker, else one shared copy", async () => {
    const [shared, perWorker] = [await serveEstimate([indexDir], 2, "shared"), await serveEstimate([indexDir], 2, "per-worker")];
    expect(shared.bytes).toBeLessThan(perWorker.bytes);
    const plan = (workers: number, bytes: number) => planServeMemory([indexDir], workers, { bytes, source: "--memory test" });
    expect(await plan(2, perWorker.bytes)).toEqual({ sharing: "per-worker", estimate: perWorker, perWorker });
    expect(await plan(2, perWorker.bytes - 1)).toEqual({ sharing: "shared", estimate: shared, perWorker });
    const one = await serveEstimate([indexDir], 1, "per-worker");
    expect(await plan(1, 1)).toEqual({ sharing: "per-worker", estimate: one, perWorker: one });
  });

  it("scores an indexed sequence's own tokens as its exact score (1e-6), the reference's (1e-3), with token and layer scores summing to it", async () => {
    const { total } = await expectedQueryScores(0);
    const best = total.indexOf(Math.max(...total));
    const others = [1, 2, 3].map((i) => (best + i) % train.length);
    const response = await ask(0, { sequenceTokens: [best, ...others].map((n) => train[n].tokens), compareWith: train[best].id });
    expect(response.errors).toBeUndefined();
    const { original, sequences } = response.data.scoreSequences as { original: Scored & { sequence: { id: string; tokens: number[] } }; sequences: Scored[] };
    expect(original.sequence).toEqual({ id: train[best].id, tokens: train[best].tokens });
    expect(relative(sequences[0].score, original.score)).toBeLessThan(1e-6);
    expect(Math.abs(sequences[0].change!)).toBeLessThan(1e-6 * Math.abs(original.score));
    const scale = Math.max(...total.map(Math.abs));
    for (const [i, n] of [best, ...others].entries()) {
      const s = sequences[i];
      expect(s.kind).toBe("GIVEN");
      expect(s.tokens).toEqual(train[n].tokens);
      expect(s.text).toBe(tokenizer.decode(train[n].tokens));
      expect(Math.abs(s.score - total[n]) / scale, `sequence ${train[n].id}`).toBeLessThan(1e-3);
      expect(relative(sum(s.tokenScores.map((t) => t.score)), s.score)).toBeLessThan(1e-9);
      expect(relative(sum(s.layerScores.map((l) => l.score)), s.score)).toBeLessThan(1e-9);
      expect(s.tokenScores.map((t) => t.tokenId)).toEqual(train[n].tokens);
      expect(s.change).toBeCloseTo(s.score - original.score, 9);
    }

    // The same sequence as an influence hit: the same exact score.
    const hit = await gql(
      server.graphqlUrl,
      `query($p: [Int!], $c: [Int!]) { influence(promptTokens: $p, completionTokens: $c, topK: 1, rerank: true) { hits { score sequence { id } } } }`,
      {
        variables: { p: queries[0].prompt_tokens, c: queries[0].completion_tokens },
      },
    );
    expect(hit.data.influence.hits[0].sequence.id).toBe(train[best].id);
    expect(relative(sequences[0].score, hit.data.influence.hits[0].score)).toBeLessThan(1e-6);
  });

  it("restricts the scores to block 1 with layers: [1]", async () => {
    const { block1 } = await expectedQueryScores(1);
    const response = await ask(1, { sequenceTokens: train.slice(0, 3).map((s) => s.tokens), layers: [1] });
    expect(response.errors).toBeUndefined();
    const scale = Math.max(...block1.map(Math.abs));
    (response.data.scoreSequences.sequences as Scored[]).forEach((s, n) => {
      expect(s.layerScores.map((l) => l.layer)).toEqual([1]);
      expect(Math.abs(s.score - block1[n]) / scale).toBeLessThan(1e-3);
    });
  });

  it("scores texts as their tokens, and an indexed sequence's word-order variants as those tokens would score", async () => {
    const text = " The quick brown fox jumps over the lazy dog. It was not amused.";
    const asText = await ask(2, { sequences: [text] });
    expect(asText.errors).toBeUndefined();
    const [scored] = asText.data.scoreSequences.sequences as Scored[];
    expect(scored.tokens).toEqual(tokenizer.encode(text));
    expect(scored.text).toBe(text);
    expect(asText.data.scoreSequences.original).toBeNull();
    expect(scored.change).toBeNull();

    const id = train[5].id;
    const withVariants = await ask(2, { compareWith: id, variants: true });
    expect(withVariants.errors).toBeUndefined();
    const { original, sequences } = withVariants.data.scoreSequences as { original: Scored; sequences: Scored[] };
    // The variants the rules make of the original's token scores, each scored as those tokens given directly.
    const expected = wordOrderVariants(original.tokenScores.map((t) => ({ ...t, text: tokenizer.tokenText(t.tokenId) })));
    expect(expected.length).toBeGreaterThan(1);
    expect(sequences.map((s) => [s.kind, s.tokens])).toEqual(expected.map((v) => [v.kind.toUpperCase().replace(/-/g, "_"), v.tokens]));
    const direct = await ask(2, { sequenceTokens: expected.map((v) => v.tokens) });
    sequences.forEach((s, i) => {
      expect(relative(s.score, direct.data.scoreSequences.sequences[i].score)).toBeLessThan(1e-6);
      expect(s.change).toBeCloseTo(s.score - original.score, 9);
      // A swap keeps every token; a removal keeps a prefix or a suffix.
      const tokens = train[5].tokens;
      if (s.kind.endsWith("SWAPPED")) expect(sorted(s.tokens)).toEqual(sorted(tokens));
      if (s.kind === "BEFORE_REMOVED") expect(s.tokens).toEqual(tokens.slice(tokens.length - s.tokens.length));
      if (s.kind === "AFTER_REMOVED") expect(s.tokens).toEqual(tokens.slice(0, s.tokens.length));
    });
  });

  it("refuses bad input with BAD_USER_INPUT and a message saying what is wrong", async () => {
    const tooLong = Array.from({ length: 65 }, () => 262);
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ sequences: [""] }, /^sequences\[0\] is empty: a training sequence needs at least 2 tokens$/],
      [{ sequences: ["hi"] }, /^sequences\[0\] is 1 token: a training sequence needs at least 2 \(its first token predicts the second\)$/],
      [{ sequences: [" word".repeat(70)] }, /^sequences\[0\] is 70 tokens, more than the model's context of 64$/],
      [{ sequenceTokens: [[464, 2068], tooLong] }, /^sequenceTokens\[1\] is 65 tokens, more than the model's context of 64$/],
      [{ sequenceTokens: [[464, 50257]] }, /^sequenceTokens\[0\]\[1\] = 50257 is not a token id \(the vocabulary has ids 0 to 50256\)$/],
      [{ sequenceTokens: [[464, -1]] }, /^sequenceTokens\[0\]\[1\] = -1 is not a token id/],
      [
        { sequences: Array.from({ length: SCORED_SEQUENCES.max + 1 }, () => "a b c") },
        new RegExp(`^sequences has ${SCORED_SEQUENCES.max + 1} sequences, more than the limit of ${SCORED_SEQUENCES.max} per request$`),
      ],
      [{ sequences: ["a b"], sequenceTokens: [[464, 2068]] }, /^give the sequences either as text \(sequences\) or as token ids \(sequenceTokens\), not both$/],
      [{}, /^nothing to score: give sequences \(text\) or sequenceTokens \(token ids\), or compareWith with variants: true$/],
      [{ variants: true }, /^variants needs compareWith/],
      [{ compareWith: "no-such-id", variants: true }, /^compareWith: the index has no sequence with id "no-such-id"$/],
      [{ sequences: ["a b"], layers: [7] }, /^unknown layer 7: the index has layers 0, 1$/],
    ];
    for (const [variables, message] of cases) {
      const response = await ask(0, variables);
      expect(codes(response), JSON.stringify(variables).slice(0, 80)).toEqual(["BAD_USER_INPUT"]);
      expect(response.errors![0].message).toMatch(message);
    }
    const noQuery = await gql(server.graphqlUrl, SCORE_SEQUENCES, { variables: { sequences: ["a b"] } });
    expect(codes(noQuery)).toEqual(["BAD_USER_INPUT"]);
    expect(noQuery.errors![0].message).toMatch(/^completion is required/);
  });
});
