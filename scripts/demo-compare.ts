/**
 * The two demo models compared on the README's demo questions, through `compareInfluence` on the
 * server `npm run demo -- --compare` runs (both indexes built here when missing): each model's
 * completion loss and top 10, the overlap of the two top 10s, each one's mean token overlap with
 * the query (the paper's measure of how literal the hits are) and its influence by layer. Prints
 * the README's table (Markdown) and, with --json, the whole answers.
 *
 *   npx tsx scripts/demo-compare.ts [--json]
 */
import "reflect-metadata";
import { parseArgs } from "node:util";
import { memoryLogger } from "../support/server.js";
import { DEMO_INDEX, DEMO_SMALL_INDEX, DEMO_SMALL_MODEL, ensureDemoIndex, serveDemo } from "./demo-index.js";
import { DEMO_QUERIES } from "./demo-queries.js";

const COMPARE = `query($prompt: String!, $completion: String!) {
  compareInfluence(indexes: ["index", "index-small"], prompt: $prompt, completion: $completion, topK: 10) {
    results { index query { loss } hits { score tokenOverlap sequence { id } } layerShares { layer share } meanTokenOverlap }
    overlaps { count jaccard ids rankCorrelation }
  }
}`;

interface Result {
  index: string;
  query: { loss: number };
  hits: Array<{ score: number; tokenOverlap: number; sequence: { id: string } }>;
  layerShares: Array<{ layer: number; share: number }>;
  meanTokenOverlap: number;
}
interface Comparison {
  results: Result[];
  overlaps: Array<{ count: number; jaccard: number; ids: string[]; rankCorrelation: number | null }>;
}

const { values } = parseArgs({ options: { json: { type: "boolean", default: false } } });
process.env.INFLUENCE_QUIET = "1";
await ensureDemoIndex(DEMO_INDEX, { log: (m) => console.error(m) });
await ensureDemoIndex(DEMO_SMALL_INDEX, { modelDir: DEMO_SMALL_MODEL, log: (m) => console.error(m) });
const server = await serveDemo([DEMO_INDEX, DEMO_SMALL_INDEX], { host: "127.0.0.1", port: 0, logger: memoryLogger() });
try {
  const short = (id: string) => id.replace(/^wn-|\.n\.01$/g, "");
  const percent = (x: number) => `${Math.round(100 * x)}%`;
  const shares = (r: Result) => r.layerShares.map((l) => percent(l.share)).join(" / ");
  const answers: Array<{ question: (typeof DEMO_QUERIES)[number]; comparison: Comparison }> = [];
  const rows: string[] = [];
  for (const question of DEMO_QUERIES) {
    const res = await fetch(server.graphqlUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: COMPARE, variables: { prompt: question.prompt, completion: question.completion } }),
    });
    const body = (await res.json()) as { data?: { compareInfluence: Comparison }; errors?: unknown[] };
    if (body.errors) throw new Error(`compareInfluence failed: ${JSON.stringify(body.errors)}`);
    const comparison = body.data!.compareInfluence;
    answers.push({ question, comparison });
    const [big, small] = comparison.results;
    const [overlap] = comparison.overlaps;
    const both = (f: (r: Result) => string) => `${f(big)} · ${f(small)}`;
    rows.push(
      `| ${question.completion.trim()} | ${both((r) => r.query.loss.toFixed(2))} | ${overlap.count} (${overlap.ids.map(short).join(", ")}) | ` +
        `${both((r) => percent(r.meanTokenOverlap))} | ${both(shares)} | ${both((r) =>
          r.hits
            .slice(0, 3)
            .map((h) => short(h.sequence.id))
            .join(", "),
        )} |`,
    );
  }
  const mean = (i: number) => answers.reduce((s, a) => s + a.comparison.results[i].meanTokenOverlap, 0) / answers.length;
  console.log(
    "| completion | completion loss (big · small) | in both top 10s | mean token overlap (big · small) | layer shares 0/1/2/3 (big · small) | top 3 (big · small) |",
  );
  console.log("| --- | --- | --- | --- | --- | --- |");
  for (const row of rows) console.log(row);
  console.log(`\nMean token overlap over the ${answers.length} questions: big ${percent(mean(0))}, small ${percent(mean(1))}.`);
  if (values.json) console.log(JSON.stringify(answers, null, 2));
} finally {
  await server.close();
}
