import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel } from "../src/model/load.js";
import { type CausalLM, type GradientCapture, inputWidth } from "../src/model/model.js";
import { elementwiseRelError, maxRelError } from "./helpers/compare.js";
import { sequenceGradient } from "./helpers/gradients.js";
import { fixtureExpected, fixturePath, fixtureTrain } from "../support/fixtures.js";

const train = fixtureTrain("gpt2-tiny");
let model: CausalLM;
beforeAll(async () => {
  model = await loadModel(fixturePath("gpt2-tiny"));
});
afterAll(() => model.release());

/** The gradient of sequence 0 of a capture, [out, in+1]. */
const firstGradient = (c: GradientCapture, m: number, length: number) => {
  const { module, a, g } = c.modules[m];
  return sequenceGradient(a, g, 0, length, inputWidth(module), module.outFeatures);
};

describe("the capture pass", () => {
  it("gives per-sequence losses in a batch of mixed lengths", async () => {
    const expected = await fixtureExpected("gpt2-tiny");
    // Drop a few tokens from every other sequence so that the batch is padded.
    const seqs = train.map((s, i) => (i % 2 ? s.tokens.slice(0, s.tokens.length - 3) : s.tokens));
    const capture = await model.capture(seqs, { kind: "next-token" });
    // Truncated sequences lose exactly their last three per-position terms: compare the untouched ones.
    const even = (xs: ArrayLike<number>) => Array.from(xs).filter((_, i) => i % 2 === 0);
    expect(elementwiseRelError(even(capture.losses), even(expected("seq_loss").data))).toBeLessThan(1e-4);
  });

  it("measures exactly the chosen completion tokens, and their gradients add up", async () => {
    const seq = train[0].tokens;
    const prompt = 5;
    const all = await model.capture([seq], { kind: "completion", promptLengths: [prompt] });
    const parts = await Promise.all(
      [
        [0, 3, 7],
        [1, 2, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18],
      ].map((positions) => model.capture([seq], { kind: "completion", promptLengths: [prompt], positions: [positions] })),
    );
    expect(parts[0].losses[0] + parts[1].losses[0]).toBeCloseTo(all.losses[0], 4);
    all.modules.forEach((_, m) => {
      const [x, y] = parts.map((p) => firstGradient(p, m, seq.length));
      expect(
        maxRelError(
          x.map((v, j) => v + y[j]),
          firstGradient(all, m, seq.length),
        ),
      ).toBeLessThan(1e-4);
    });
    await expect(model.capture([seq], { kind: "completion", promptLengths: [prompt], positions: [[19]] })).rejects.toThrow(/outside the completion/);
  });
});
