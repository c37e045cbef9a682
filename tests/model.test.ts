import { beforeAll, describe, expect, it } from "vitest";
import { download, tf } from "../src/backend/backend.js";
import { makeBatch } from "../src/model/batch.js";
import { captureGradients } from "../src/model/capture.js";
import { loadModel } from "../src/model/load.js";
import type { CausalLM } from "../src/model/model.js";
import { elementwiseRelError, maxRelError } from "./helpers/compare.js";
import { fixtureExpected, fixtureModels, fixturePath, fixtureTrain } from "./helpers/fixtures.js";

/** G = g^T a for rows [from, from + len) of a capture: the sequence's gradient, [out, in+1]. */
function sequenceGradient(a: tf.Tensor2D, g: tf.Tensor2D, from: number, len: number): Float32Array {
  return download(tf.tidy(() => tf.matMul(tf.transpose(tf.slice(g, [from, 0], [len, -1])), tf.slice(a, [from, 0], [len, -1]))));
}

describe.each(fixtureModels)("GPT-2 forward and backward on %s", (name) => {
  let model: CausalLM;
  let expected: Awaited<ReturnType<typeof fixtureExpected>>;
  const train = fixtureTrain(name);

  beforeAll(async () => {
    model = await loadModel(fixturePath(name));
    expected = await fixtureExpected(name);
  });

  it("reproduces the logits and their logsumexp of sequence 0", () => {
    const seq = train[0].tokens;
    const pass = model.forward(makeBatch([seq], model.config.contextLength, model.config.vocabSize));
    const first64 = download(tf.slice(pass.logits, [0, 0], [-1, 64]));
    const lse = download(tf.logSumExp(pass.logits, 1));
    pass.dispose();
    pass.logits.dispose();
    expect(maxRelError(first64, expected("logits_seq0_first64").data)).toBeLessThan(1e-4);
    expect(elementwiseRelError(lse, expected("logsumexp_seq0").data)).toBeLessThan(1e-4);
  });

  it("reproduces per-sequence losses in a batch of mixed lengths", () => {
    // Drop a few tokens from every other sequence so that the batch is padded.
    const seqs = train.map((s, i) => (i % 2 ? s.tokens.slice(0, s.tokens.length - 3) : s.tokens));
    const capture = captureGradients(model, seqs, { kind: "next-token" });
    capture.dispose();
    const full = captureGradients(
      model,
      train.map((s) => s.tokens),
      { kind: "next-token" },
    );
    full.dispose();
    expect(elementwiseRelError(full.losses, expected("seq_loss").data)).toBeLessThan(1e-4);
    // Truncated sequences lose exactly their last three per-position terms: compare the untouched ones.
    const even = (xs: ArrayLike<number>) => Array.from(xs).filter((_, i) => i % 2 === 0);
    expect(elementwiseRelError(even(capture.losses), even(expected("seq_loss").data))).toBeLessThan(1e-4);
  });

  it("reproduces the per-token NLL of sequence 0 through completion losses", () => {
    // Prefix t+2 tokens long, prompt t+1 tokens: its completion loss is the NLL of token t+1.
    const seq = train[0].tokens;
    const prefixes = Array.from({ length: seq.length - 1 }, (_, t) => seq.slice(0, t + 2));
    const c = captureGradients(model, prefixes, { kind: "completion", promptLengths: prefixes.map((p) => p.length - 1) });
    c.dispose();
    expect(elementwiseRelError(c.losses, expected("token_nll_seq0").data)).toBeLessThan(1e-4);
  });

  it("reproduces the MLP gradients of sequence 0, alone and inside a padded batch", () => {
    const seq = train[0].tokens;
    const others = train.slice(1, 4).map((s, i) => s.tokens.slice(0, 10 + i));
    for (const batch of [[seq], [...others, seq]]) {
      const capture = captureGradients(model, batch, { kind: "next-token" });
      const row = (batch.length - 1) * capture.batch.length;
      for (const m of capture.modules) {
        const G = sequenceGradient(m.a, m.g, row, seq.length);
        expect(maxRelError(G, expected(`grad_seq0.${m.module.name}`).data), m.module.name).toBeLessThan(1e-3);
      }
      capture.dispose();
    }
  });
});

describe("completion losses restricted to positions", () => {
  it("measure exactly the chosen completion tokens, and their gradients add up", async () => {
    const model = await loadModel(fixturePath("gpt2-tiny"));
    const seq = fixtureTrain("gpt2-tiny")[0].tokens;
    const prompt = 5;
    const all = captureGradients(model, [seq], { kind: "completion", promptLengths: [prompt] });
    const parts = [
      [0, 3, 7],
      [1, 2, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18],
    ].map((positions) => captureGradients(model, [seq], { kind: "completion", promptLengths: [prompt], positions: [positions] }));
    expect(parts[0].losses[0] + parts[1].losses[0]).toBeCloseTo(all.losses[0], 4);
    all.modules.forEach((m, i) => {
      const whole = sequenceGradient(m.a, m.g, 0, seq.length);
      const [x, y] = parts.map((p) => sequenceGradient(p.modules[i].a, p.modules[i].g, 0, seq.length));
      expect(
        maxRelError(
          x.map((v, j) => v + y[j]),
          whole,
        ),
      ).toBeLessThan(1e-4);
    });
    expect(() => captureGradients(model, [seq], { kind: "completion", promptLengths: [prompt], positions: [[19]] })).toThrow(/outside the completion/);
    [all, ...parts].forEach((c) => c.dispose());
    model.dispose();
  });
});
