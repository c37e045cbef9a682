import path from "node:path";
import { runBuild } from "../src/jobs/build.js";
import { IndexEngine } from "../src/engine/index-engine.js";
import { spearman } from "../src/stats/correlation.js";
import { tempDir } from "../src/util/temp-dir.js";
import { fixturePath, fixtureQueries } from "../support/fixtures.js";
import { expectedQueryScores, fixtureBuildJob } from "../support/fixture-index.js";
const tmp = await tempDir();
const dir = path.join(tmp.dir, "index");
await runBuild(fixtureBuildJob(fixturePath("gpt2-tiny"), dir));
const engine = await IndexEngine.open(dir);
const qs = fixtureQueries("gpt2-tiny");
for (let q = 0; q < qs.length; q++) {
  const { scores } = await engine.projectedScores({ promptTokens: qs[q].prompt_tokens, completionTokens: qs[q].completion_tokens });
  const exact = (await expectedQueryScores(q)).total;
  const ratio = Array.from(scores).map((s, i) => s / exact[i]);
  console.log(q, spearman(Array.from(scores), exact).toFixed(4), "median ratio", ratio.sort((a, b) => a - b)[ratio.length >> 1].toFixed(3));
}
await engine.close();
await tmp.remove();
