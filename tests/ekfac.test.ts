import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inverseScale, precondition, preconditionedGradients } from "../src/ekfac/factors.js";
import { CovarianceAccumulator } from "../src/ekfac/covariance.js";
import { type FitResult, fitEkfac, serialPasses } from "../src/ekfac/fit.js";
import { queryGradients } from "../src/ekfac/gradients.js";
import { type BatchScores, denseModuleQueries, scoreCapture } from "../src/ekfac/scoring.js";
import { loadModel } from "../src/model/load.js";
import type { CausalLM } from "../src/model/model.js";
import { maxRelError } from "./helpers/compare.js";
import { fixtureExpected, fixtureModels, fixturePath, fixtureQueries, fixtureTrain } from "../support/fixtures.js";

describe.each(fixtureModels)("EK-FAC with the empirical Fisher on %s", (name) => {
  let model: CausalLM;
  let expected: Awaited<ReturnType<typeof fixtureExpected>>;
  let fit: FitResult;
  let result: BatchScores;
  /** (G + damping)^-1 G_query [query][module], through the dense route (formed gradients). */
  let densePreconditioned: Float32Array[][];
  const train = fixtureTrain(name);
  const queries = fixtureQueries(name).map((q) => ({ promptTokens: q.prompt_tokens, completionTokens: q.completion_tokens }));

  beforeAll(async () => {
    model = await loadModel(fixturePath(name));
    expected = await fixtureExpected(name);
    const sequences = async function* () {
      yield* train.map((s, ordinal) => ({ ordinal, tokens: s.tokens }));
    };
    const passes = serialPasses(model, sequences, train.length, { fisher: "empirical", seed: 0, batchTokens: 200 });
    fit = await fitEkfac(model.modules, passes, { damping: { rule: "heuristic", factor: 0.1 } });
    const { gradients } = await queryGradients(model, queries);
    // [module][query]
    const preconditioned: Float32Array[][] = [];
    for (const [m, f] of fit.factors.entries()) {
      preconditioned.push(
        await precondition(
          f,
          inverseScale(f),
          gradients.map((q) => q[m]),
        ),
      );
    }
    const perModule = preconditioned.map((queryMatrices, m) => denseModuleQueries(model.modules[m], queryMatrices));
    const capture = await model.capture(
      train.map((s) => s.tokens),
      { kind: "next-token" },
    );
    result = await scoreCapture(capture, perModule, queries.length);
    densePreconditioned = queries.map((_, q) => preconditioned.map((module) => module[q]));
  });
  afterAll(() => model.release());

  it("counts every token and sequence", () => {
    expect(fit.sequences).toBe(train.length);
    expect(fit.tokens).toBe(train.reduce((s, x) => s + x.tokens.length, 0));
  });

  it("reproduces A and S", () => {
    for (const { module, A, S } of fit.covariance) {
      expect(maxRelError(A, expected(`A.${module.name}`).data), `A.${module.name}`).toBeLessThan(1e-4);
      expect(maxRelError(S, expected(`S.${module.name}`).data), `S.${module.name}`).toBeLessThan(1e-4);
    }
  });

  it("reproduces the damping of every module", () => {
    for (const f of fit.factors) {
      expect(Math.abs(f.damping / expected(`damping.${f.module.name}`).data[0] - 1), f.module.name).toBeLessThan(1e-3);
    }
  });

  it("preconditions query gradients token by token from host factors as the dense route does", async () => {
    const capture = await model.capture(
      queries.map((q) => [...q.promptTokens, ...q.completionTokens]),
      { kind: "completion", promptLengths: queries.map((q) => q.promptTokens.length) },
    );
    for (const [m, f] of fit.factors.entries()) {
      const tokenwise = await preconditionedGradients(capture, f, inverseScale(f), m);
      tokenwise.forEach((x, q) => expect(maxRelError(x, densePreconditioned[q][m]), `${f.module.name}, query ${q}`).toBeLessThan(1e-4));
    }
  });

  it("reproduces the total and per-module scores", () => {
    expect(
      maxRelError(
        result.scores.flatMap((q) => Array.from(q)),
        expected("scores").data,
      ),
    ).toBeLessThan(1e-3);
    model.modules.forEach((module, m) => {
      const actual = result.moduleScores[m].flatMap((q) => Array.from(q));
      expect(maxRelError(actual, expected(`scores.${module.name}`).data), module.name).toBeLessThan(1e-3);
    });
  });

  it("has per-module scores that sum to the total and per-token scores that sum to the sequence score", () => {
    for (let q = 0; q < queries.length; q++) {
      for (let b = 0; b < train.length; b++) {
        const total = result.scores[q][b];
        const modules = result.moduleScores.reduce((s, m) => s + m[q][b], 0);
        const tokens = result.tokenScores[q][b].reduce((s, x) => s + x, 0);
        expect(modules).toBeCloseTo(total, 10);
        expect(tokens).toBeCloseTo(total, 10);
      }
    }
  });

  it("reproduces the per-token scores of query 0", () => {
    const { data, shape } = expected("token_scores_query0");
    const T = shape[1];
    const actual = result.tokenScores[0].flatMap((seq) => Array.from({ length: T }, (_, t) => seq[t] ?? 0));
    expect(maxRelError(actual, data)).toBeLessThan(1e-3);
  });
});

describe("Llama's gate_proj and up_proj, which read the same input", () => {
  let model: CausalLM;
  let fit: FitResult;
  let expected: Awaited<ReturnType<typeof fixtureExpected>>;
  const train = fixtureTrain("llama-tiny");

  beforeAll(async () => {
    model = await loadModel(fixturePath("llama-tiny"));
    expected = await fixtureExpected("llama-tiny");
    const sequences = async function* () {
      yield* train.map((s, ordinal) => ({ ordinal, tokens: s.tokens }));
    };
    fit = await fitEkfac(model.modules, serialPasses(model, sequences, train.length, { fisher: "empirical", seed: 0 }), {
      damping: { rule: "heuristic", factor: 0.1 },
    });
  });
  afterAll(() => model.release());

  it("sum A once: up_proj's A sum is empty in pass 1", () => {
    const sums = new CovarianceAccumulator(model.modules).totals.sums;
    const [gate, up] = ["layers.0.mlp.gate_proj", "layers.0.mlp.up_proj"].map((name) => model.modules.findIndex((m) => m.name === name));
    expect(sums[2 * gate].length).toBe(32 ** 2);
    expect(sums[2 * up].length).toBe(0);
    expect(sums[2 * up + 1].length).toBe(88 ** 2);
  });

  it("give up_proj the reference's A and gate_proj's eigenbasis of it, which diagonalises the reference's A", () => {
    for (const layer of [0, 1]) {
      const [gate, up] = ["gate_proj", "up_proj"].map((p) => model.modules.findIndex((m) => m.name === `layers.${layer}.mlp.${p}`));
      const name = `layers.${layer}.mlp.up_proj`;
      const A = expected(`A.${name}`).data;
      expect(maxRelError(fit.covariance[up].A, A), name).toBeLessThan(1e-4);
      const { qA, eigA } = fit.factors[up];
      expect(qA).toBe(fit.factors[gate].qA);
      expect(eigA).toBe(fit.factors[gate].eigA);
      // Q^T A Q against diag(eigA), A the reference's (independent of this fit).
      const n = 32;
      let off = 0;
      let diagError = 0;
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          let x = 0;
          for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) x += qA[r * n + i] * A[r * n + c] * qA[c * n + j];
          if (i === j) diagError = Math.max(diagError, Math.abs(x - eigA[i]));
          else off = Math.max(off, Math.abs(x));
        }
      }
      const scale = Math.max(...eigA);
      expect(off / scale, name).toBeLessThan(1e-5);
      expect(diagError / scale, name).toBeLessThan(1e-5);
    }
  });
});
