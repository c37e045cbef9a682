import { rm } from "node:fs/promises";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { ModuleFactors } from "../src/ekfac/factors.js";
import { fitEkfac, serialPasses } from "../src/ekfac/fit.js";
import { loadModel } from "../src/model/load.js";
import type { GradientCapture, TrackedModule } from "../src/model/model.js";
import { Projector } from "../src/projection/projector.js";
import { loadProjection, saveProjection } from "../src/projection/store.js";
import { buildSketch, coarseSketch, resolveSketch, sketchDims } from "../src/projection/sketch.js";
import { layoutOf } from "../src/projection/vector-layout.js";
import { expectedQueryScores } from "../support/fixture-index.js";
import { makeTempDir } from "../support/db.js";
import { fixturePath, fixtureQueries, fixtureTrain } from "../support/fixtures.js";

describe("the sketch's dims: a budget of floats shared by the matrices", () => {
  it("keeps a matrix whole when it fits its share", () => {
    expect(
      sketchDims(
        [
          { out: 128, in: 33 },
          { out: 32, in: 129 },
        ],
        10_000,
      ),
    ).toEqual([
      { kOut: 128, kIn: 33 },
      { kOut: 32, kIn: 129 },
    ]);
  });

  it("gives the others near-square dims within the share, a narrow side's spare to the other", () => {
    // The demo model: 8 matrices of 512 x 129 and 128 x 513, 4,096 floats each.
    expect(
      sketchDims(
        [
          { out: 512, in: 129 },
          { out: 128, in: 513 },
        ],
        8192,
      ),
    ).toEqual([
      { kOut: 64, kIn: 64 },
      { kOut: 64, kIn: 64 },
    ]);
    expect(
      sketchDims(
        [
          { out: 512, in: 20 },
          { out: 10, in: 513 },
        ],
        8192,
      ),
    ).toEqual([
      { kOut: 204, kIn: 20 },
      { kOut: 10, kIn: 409 },
    ]);
    for (const d of sketchDims(
      [
        { out: 3072, in: 769 },
        { out: 768, in: 3073 },
      ],
      3000,
    ))
      expect(d.kOut * d.kIn).toBeLessThanOrEqual(1500);
  });

  it("refuses a budget that leaves a matrix nothing", () => {
    expect(() =>
      sketchDims(
        [
          { out: 4, in: 4 },
          { out: 4, in: 4 },
          { out: 4, in: 4 },
        ],
        2,
      ),
    ).toThrow(/2 floats leaves no coordinate to each of 3 matrices/);
  });
});

describe("the sketch a build's request resolves to", () => {
  const layers = (n: number, shapes: Array<{ out: number; in: number }>) => Array.from({ length: n }, () => shapes).flat();
  const gpt2Tiny = layers(2, [
    { out: 128, in: 33 },
    { out: 32, in: 129 },
  ]);
  const demo = layers(4, [
    { out: 512, in: 129 },
    { out: 128, in: 513 },
  ]);
  const gpt2Small = layers(12, [
    { out: 3072, in: 769 },
    { out: 768, in: 3073 },
  ]);
  const isWhole = (shapes: typeof demo, floats: number) => sketchDims(shapes, floats).every((d, i) => d.kOut === shapes[i].out && d.kIn === shapes[i].in);
  const auto = { floats: 131_072, precision: "auto" as const, seed: 3 };

  it("auto: int8 of whole matrices where they fit the budget, with a rank-4 scale", () => {
    expect(resolveSketch(auto, gpt2Tiny)).toEqual({ floats: 131_072, precision: "int8", rank: 4, seed: 3 });
    expect(isWhole(gpt2Tiny, 131_072)).toBe(true);
  });

  it("auto: signs of whole matrices where they fit eight times the budget, with a rank-2 scale", () => {
    const resolved = resolveSketch(auto, demo);
    expect(resolved).toEqual({ floats: 8 * 512 * 129, precision: "sign", rank: 2, seed: 3 });
    expect(isWhole(demo, resolved.floats)).toBe(true);
    // One coordinate fewer a matrix would cut the widest.
    expect(isWhole(demo, resolved.floats - demo.length)).toBe(false);
    // Just too many for int8: a budget one matrix's share below whole.
    expect(resolveSketch({ ...auto, floats: resolved.floats - 1 }, demo).precision).toBe("sign");
    expect(resolveSketch({ ...auto, floats: resolved.floats }, demo)).toMatchObject({ precision: "int8", floats: resolved.floats });
  });

  it("auto: signs of eight times the budget's coordinates where whole matrices do not fit", () => {
    expect(resolveSketch(auto, gpt2Small)).toEqual({ floats: 8 * 131_072, precision: "sign", rank: 2, seed: 3 });
  });

  it("keeps a named precision's budget, and a named rank", () => {
    expect(resolveSketch({ ...auto, precision: "int8" }, demo)).toEqual({ floats: 131_072, precision: "int8", rank: 4, seed: 3 });
    expect(resolveSketch({ ...auto, precision: "sign" }, demo)).toEqual({ floats: 131_072, precision: "sign", rank: 2, seed: 3 });
    expect(resolveSketch({ ...auto, precision: "float32" }, gpt2Small)).toEqual({ floats: 131_072, precision: "float32", rank: 4, seed: 3 });
    expect(resolveSketch({ ...auto, rank: 5 }, demo)).toMatchObject({ precision: "sign", rank: 5 });
  });
});

describe("the sketch's scores on gpt2-tiny against the fixture's exact EK-FAC scores", () => {
  const queries = fixtureQueries("gpt2-tiny");
  const train = fixtureTrain("gpt2-tiny").map((s) => s.tokens);
  let factors: ModuleFactors[];
  let modules: TrackedModule[];
  let trainCapture: GradientCapture;
  let queryCapture: GradientCapture;
  let exact: number[][];

  /** Scores [query][sequence] by a sketch with these settings, or by its coarse part (coarseSketch). */
  const sketchScores = async (floats: number, rank: number, seed: number, part: "whole" | "coarse" = "whole"): Promise<number[][]> => {
    const projector = new Projector(await buildSketch(factors, { floats, rank, seed }));
    const [t, q] = [await projector.vectors(trainCapture), await projector.vectors(queryCapture)];
    const dim = projector.dim;
    // The coarse part of every block, however small (the engine's has a floor of coordinates a block).
    const coarse = part === "whole" ? undefined : coarseSketch(layoutOf(projector.projection), 0);
    const { ranges, scales } = coarse ?? { ranges: [{ offset: 0, size: dim }], scales: [1] };
    return queries.map((_, i) =>
      train.map((_, j) => {
        let s = 0;
        ranges.forEach(({ offset, size }, r) => {
          for (let c = offset; c < offset + size; c++) s += scales[r] * q[i * dim + c] * t[j * dim + c];
        });
        return s;
      }),
    );
  };
  /** Largest error over all scores, relative to each query's largest exact score. */
  const error = (scores: number[][]): number =>
    Math.max(...scores.map((row, q) => Math.max(...row.map((s, j) => Math.abs(s - exact[q][j]))) / Math.max(...exact[q].map(Math.abs))));

  beforeAll(async () => {
    const model = await loadModel(fixturePath("gpt2-tiny"));
    modules = [...model.modules];
    const sequences = async function* () {
      yield* train.map((tokens, ordinal) => ({ ordinal, tokens }));
    };
    factors = (
      await fitEkfac(model.modules, serialPasses(model, sequences, train.length, { fisher: "empirical", seed: 0 }), {
        damping: { rule: "heuristic", factor: 0.1 },
      })
    ).factors;
    trainCapture = await model.capture(train, { kind: "next-token" });
    queryCapture = await model.capture(
      queries.map((q) => [...q.prompt_tokens, ...q.completion_tokens]),
      { kind: "completion", promptLengths: queries.map((q) => q.prompt_tokens.length) },
    );
    exact = await Promise.all(queries.map(async (_, q) => (await expectedQueryScores(q)).total));
  });

  it("is exact when it keeps every matrix whole with the whole whitening scale", async () => {
    expect(error(await sketchScores(4 * 4224, 33, 0))).toBeLessThan(1e-4);
  });

  it("is saved and loaded to the bit; a file whose blocks do not follow one another, or whose dimension is not theirs, is refused", async () => {
    const dir = await makeTempDir("projection");
    try {
      const built = await buildSketch(factors, { floats: 4 * 256, rank: 2, seed: 0 });
      const file = path.join(dir, "projection.safetensors");
      await saveProjection(file, built);
      const loaded = await loadProjection(file, modules);
      expect(await new Projector(loaded).vectors(queryCapture)).toEqual(await new Projector(built).vectors(queryCapture));
      const [first, ...rest] = built.modules;
      await saveProjection(file, { ...built, modules: [first, ...rest.map((p) => ({ ...p, offset: p.offset + 1 }))] });
      await expect(loadProjection(file, modules)).rejects.toThrow(
        `the block of ${rest[0].module.name} starts at ${rest[0].offset + 1}, not where the block before it ends (${rest[0].offset})`,
      );
      await saveProjection(file, { ...built, dim: built.dim + 1 });
      await expect(loadProjection(file, modules)).rejects.toThrow(`dimension ${built.dim + 1} is not the blocks' ${built.dim}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("is unbiased when it compresses: the mean over seeds is far closer to exact than one seed", async () => {
    const runs = await Promise.all(Array.from({ length: 16 }, (_, seed) => sketchScores(4 * 256, 33, seed)));
    const mean = exact.map((row, q) => row.map((_, j) => runs.reduce((s, r) => s + r[q][j], 0) / runs.length));
    const single = runs.map(error).sort((a, b) => a - b)[runs.length >> 1];
    // Independent seeds: the mean's error shrinks like 1 / sqrt(16) = 1/4 of one seed's.
    expect(error(mean)).toBeLessThan(single / 2.5);
  });

  it("has an unbiased coarse part: a quarter of every block's rows, scaled, averages to exact over seeds", async () => {
    // Every matrix kept whole: the whole sketch is exact, so the coarse part's error is its own.
    const runs = await Promise.all(Array.from({ length: 16 }, (_, seed) => sketchScores(4 * 4224, 33, seed, "coarse")));
    const mean = exact.map((row, q) => row.map((_, j) => runs.reduce((s, r) => s + r[q][j], 0) / runs.length));
    const single = runs.map(error).sort((a, b) => a - b)[runs.length >> 1];
    expect(single).toBeGreaterThan(1e-2); // it does compress
    expect(error(mean)).toBeLessThan(single / 2.5);
  });
});
