/** Index builds of the reference fixtures, as `influence build --fisher empirical --shard-size 4` would run them. */
import { type BuildJob, DEFAULT_BUILD_PARAMETERS } from "../src/jobs/build.js";
import { readSafetensorsHeader } from "../src/safetensors/read.js";
import { fixturePath, fixtureExpected, fixtureTrain } from "./fixtures.js";

export const FIXTURE_SHARD_SIZE = 4;

export function fixtureBuildJob(modelDir: string, outDir: string, extra: Partial<BuildJob> = {}, model = "gpt2-tiny"): BuildJob {
  return {
    modelDir,
    corpusFile: fixturePath(model, "train.jsonl"),
    outDir,
    parameters: { ...DEFAULT_BUILD_PARAMETERS, fisher: "empirical", shardSize: FIXTURE_SHARD_SIZE },
    workers: 2,
    resume: false,
    ...extra,
  };
}

/** Expected total scores of query q on a fixture, and the sum over block 1's matrices (`h.1.` or `layers.1.`). */
export async function expectedQueryScores(q: number, model = "gpt2-tiny"): Promise<{ total: number[]; block1: number[] }> {
  const expected = await fixtureExpected(model);
  const n = fixtureTrain(model).length;
  const row = (key: string) => Array.from(expected(key).data.subarray(q * n, (q + 1) * n));
  const { tensors } = await readSafetensorsHeader(fixturePath(model, "expected.safetensors"));
  const block1 = [...tensors.keys()].filter((key) => /^scores\.(h|layers)\.1\./.test(key)).map(row);
  return { total: row("scores"), block1: row("scores").map((_, i) => block1.reduce((s, m) => s + m[i], 0)) };
}

/** Ids of the k highest scores of a fixture's training sequences. */
export function topIds(scores: readonly number[], k: number, model = "gpt2-tiny"): string[] {
  const train = fixtureTrain(model);
  return scores
    .map((s, i) => [s, i] as const)
    .sort((a, b) => b[0] - a[0])
    .slice(0, k)
    .map(([, i]) => train[i].id);
}
