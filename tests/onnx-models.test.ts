import ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Batch, makeBatch } from "../src/model/batch.js";
import { loadModel } from "../src/model/load.js";
import { type CausalLM, inputWidth } from "../src/model/model.js";
import { samplingUniforms } from "../src/model/onnx/causal-lm.js";
import { sampleLabels } from "../src/model/onnx/loss.js";
import { GraphBuilder } from "../src/runtime/graph.js";
import { GraphSession } from "../src/runtime/session.js";
import { uniformGenerator } from "../src/util/random.js";
import { elementwiseRelError, maxRelError } from "./helpers/compare.js";
import { sequenceGradient } from "./helpers/gradients.js";
import { architectureFixtures, fixtureExpected, fixtureModels, fixturePath, fixtureQueries, fixtureTrain } from "../support/fixtures.js";

/** sum_t x_t x_t^T / count over every row of row-major x [rows, w]. */
function secondMoment(x: Float32Array, w: number, count: number): Float64Array {
  const M = new Float64Array(w * w);
  for (let t = 0; t < x.length / w; t++) {
    for (let i = 0; i < w; i++) {
      const xi = x[t * w + i];
      if (xi !== 0) for (let j = 0; j < w; j++) M[i * w + j] += (xi * x[t * w + j]) / count;
    }
  }
  return M;
}

/** logsumexp of every row of row-major logits [rows, V], in float64. */
function rowLogSumExp(logits: Float32Array, V: number): Float64Array {
  return Float64Array.from({ length: logits.length / V }, (_, r) => {
    const row = logits.subarray(r * V, (r + 1) * V);
    const max = row.reduce((m, x) => Math.max(m, x), -Infinity);
    return max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
  });
}

describe.each([...fixtureModels, ...architectureFixtures])("the model on ONNX Runtime, %s", (name) => {
  let model: CausalLM;
  let expected: Awaited<ReturnType<typeof fixtureExpected>>;
  const train = fixtureTrain(name);
  const seq0 = train[0].tokens;

  beforeAll(async () => {
    model = await loadModel(fixturePath(name), { device: "cpu" });
    expected = await fixtureExpected(name);
  });
  afterAll(() => model.release());

  it("reproduces the logits of sequence 0 and their logsumexp", async () => {
    const V = model.config.vocabSize;
    const logits = await model.logits(makeBatch([seq0], model.config.contextLength, V));
    const first64 = Array.from({ length: seq0.length * 64 }, (_, k) => logits[Math.floor(k / 64) * V + (k % 64)]);
    expect(maxRelError(first64, expected("logits_seq0_first64").data)).toBeLessThan(1e-4);
    expect(elementwiseRelError(rowLogSumExp(logits, V), expected("logsumexp_seq0").data)).toBeLessThan(1e-4);
  });

  it("reproduces every sequence's loss, and the per-token NLL of sequence 0 as completion losses", async () => {
    const all = await model.capture(
      train.map((s) => s.tokens),
      { kind: "next-token" },
    );
    expect(elementwiseRelError(all.losses, expected("seq_loss").data)).toBeLessThan(1e-4);
    // Prefix t+2 tokens long, prompt t+1 tokens: its completion loss is the NLL of token t+1.
    const prefixes = Array.from({ length: seq0.length - 1 }, (_, t) => seq0.slice(0, t + 2));
    const c = await model.capture(prefixes, { kind: "completion", promptLengths: prefixes.map((p) => p.length - 1) });
    expect(elementwiseRelError(c.losses, expected("token_nll_seq0").data)).toBeLessThan(1e-4);
  });

  it("reproduces the normalised second moments A and S over all training positions", async () => {
    const capture = await model.capture(
      train.map((s) => s.tokens),
      { kind: "next-token" },
    );
    const positions = capture.batch.lengths.reduce((s, l) => s + l, 0);
    expect(positions).toBe(capture.batch.size * capture.batch.length); // equal lengths: no padding rows
    for (const m of capture.modules) {
      const A = secondMoment(m.a, inputWidth(m.module), positions);
      const S = secondMoment(m.g, m.module.outFeatures, positions);
      expect(maxRelError(A, expected(`A.${m.module.name}`).data), `A.${m.module.name}`).toBeLessThan(1e-4);
      expect(maxRelError(S, expected(`S.${m.module.name}`).data), `S.${m.module.name}`).toBeLessThan(1e-4);
    }
  });

  it("reproduces the MLP gradients of sequence 0 alone and last in a padded batch of 8", async () => {
    const others = train.slice(1, 8).map((s, i) => s.tokens.slice(0, 5 + i));
    for (const seqs of [[seq0], [...others, seq0]]) {
      const capture = await model.capture(seqs, { kind: "next-token" });
      const row = (seqs.length - 1) * capture.batch.length;
      for (const m of capture.modules) {
        const [inW, outW] = [inputWidth(m.module), m.module.outFeatures];
        expect(m.a.length).toBe(capture.batch.size * capture.batch.length * inW);
        const G = sequenceGradient(m.a, m.g, row, seq0.length, inW, outW);
        expect(maxRelError(G, expected(`grad_seq0.${m.module.name}`).data), m.module.name).toBeLessThan(1e-3);
        // padding rows carry neither inputs nor gradients
        for (let b = 0; b < seqs.length; b++) {
          const pad = [b * capture.batch.length + seqs[b].length, (b + 1) * capture.batch.length];
          expect(m.a.subarray(pad[0] * inW, pad[1] * inW).every((v) => v === 0)).toBe(true);
          expect(m.g.subarray(pad[0] * outW, pad[1] * outW).every((v) => v === 0)).toBe(true);
        }
      }
    }
  });

  it("measures each query's completion loss as the sum of its completion tokens' NLL under the forward logits", async () => {
    const queries = fixtureQueries(name);
    const seqs = queries.map((q) => [...q.prompt_tokens, ...q.completion_tokens]);
    const capture = await model.capture(seqs, { kind: "completion", promptLengths: queries.map((q) => q.prompt_tokens.length) });
    const V = model.config.vocabSize;
    const batch = capture.batch;
    const logits = await model.logits(batch);
    const lse = rowLogSumExp(logits, V);
    queries.forEach((q, b) => {
      let nll = 0;
      for (let t = q.prompt_tokens.length - 1; t < seqs[b].length - 1; t++) {
        const row = b * batch.length + t;
        nll += lse[row] - logits[row * V + seqs[b][t + 1]];
      }
      expect(Math.abs(capture.losses[b] - nll) / nll, q.id).toBeLessThan(1e-5);
    });
  });

  it("draws sampled labels that depend on the sequence's seed, not on its batch", async () => {
    const others = train.slice(1, 8).map((s, i) => s.tokens.slice(0, 5 + i));
    const alone = await model.capture([seq0], { kind: "sampled", seeds: [11] });
    const batched = await model.capture([...others, seq0], { kind: "sampled", seeds: [1, 2, 3, 4, 5, 6, 7, 11] });
    const last = batched.rows.reduce((n, r) => n + (r >= 7 * batched.batch.length ? 1 : 0), 0);
    expect(Array.from(batched.labels.slice(-last))).toEqual(Array.from(alone.labels));
    expect(Math.abs(batched.losses[7] - alone.losses[0]) / alone.losses[0]).toBeLessThan(1e-5);
    // The loss is that of the drawn labels under the model's logits.
    const V = model.config.vocabSize;
    const logits = await model.logits(alone.batch, alone.rows);
    const lse = rowLogSumExp(logits, V);
    const nll = Array.from(alone.labels).reduce((s, label, k) => s + lse[k] - logits[k * V + label], 0);
    expect(Math.abs(alone.losses[0] - nll) / nll).toBeLessThan(1e-5);
    const other = await model.capture([seq0], { kind: "sampled", seeds: [12] });
    expect(Array.from(other.labels)).not.toEqual(Array.from(alone.labels));
  });
});

/**
 * Labels drawn from the softmax rows (one per loss row) by inverse-CDF sampling with one uniform
 * per position from the sequence's own seed, so a sequence gets the same labels in any batch.
 */
function sampledLabels(p: Float32Array, vocab: number, batch: Batch, rows: Int32Array, seeds: readonly number[]): Int32Array {
  if (seeds.length !== batch.size) throw new Error(`sampled labels need one seed per sequence (${seeds.length} for ${batch.size})`);
  const uniforms = seeds.map((seed) => uniformGenerator(seed));
  return rows.map((row, k) => {
    const base = k * vocab;
    let total = 0;
    for (let v = 0; v < vocab; v++) total += p[base + v];
    const target = uniforms[Math.floor(row / batch.length)]() * total;
    let acc = 0;
    let v = 0;
    while (v < vocab - 1 && (acc += p[base + v]) <= target) v++;
    return v;
  });
}

describe("sampling in the graph", () => {
  it("draws the host sampler's labels from the same probabilities", async () => {
    const V = 50257;
    const seqs = [Array.from({ length: 30 }, (_, i) => i), Array.from({ length: 17 }, (_, i) => i + 100)];
    const batch = makeBatch(seqs, 64, V);
    const rows = Int32Array.from(batch.mask.keys()).filter((r) => batch.mask[r] === 1 && batch.mask[r + 1] === 1 && (r + 1) % batch.length !== 0);
    // Softmax rows of spread-out logits, some probabilities exactly zero, some rows peaked.
    const random = uniformGenerator(5);
    const p = new Float32Array(rows.length * V);
    for (let k = 0; k < rows.length; k++) {
      const logits = Array.from({ length: V }, () => (random() < 0.01 ? -200 : 4 * random()) + (k % 3 === 0 && random() < 1e-4 ? 12 : 0));
      const max = Math.max(...logits);
      const e = logits.map((l) => Math.exp(l - max));
      const sum = e.reduce((s, x) => s + x, 0);
      e.forEach((x, v) => (p[k * V + v] = x / sum));
    }
    const seeds = [3, 4];
    const g = new GraphBuilder("test", "sampling");
    const labels = sampleLabels(g, g.input("p", "float32", ["rows", V]), g.input("u", "float64", ["rows"]), V);
    g.output(labels, "labels", "int64", ["rows"]);
    const session = await GraphSession.create(g, { device: "cpu" });
    const out = await session.run(
      { p: new ort.Tensor("float32", p, [rows.length, V]), u: new ort.Tensor("float64", samplingUniforms(batch, rows, seeds), [rows.length]) },
      ["labels"],
    );
    await session.release();
    const host = sampledLabels(p, V, batch, rows, seeds);
    expect(Array.from(out.labels.data as BigInt64Array, Number)).toEqual(Array.from(host));
    expect(new Set(host).size).toBeGreaterThan(rows.length / 2);
  });
});
