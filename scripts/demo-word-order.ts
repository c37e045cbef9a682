/**
 * The word-order experiment on the demo index: for each of the README's demo questions, the top
 * hit (exact re-ranking, default candidates) and its word-order variants (engine/word-order-
 * variants.ts), each scored exactly as a training sequence. Prints the README's table (Markdown)
 * and, with --json, every variant's text and score.
 *
 *   npx tsx scripts/demo-word-order.ts [--index .demo/index] [--json]
 */
import path from "node:path";
import { parseArgs } from "node:util";
import { getCorpus, getSequencesByOrdinals, openDatabase } from "../src/db/index.js";
import { IndexEngine } from "../src/engine/index-engine.js";
import { checkInfluenceArgs, checkSequenceScoresArgs } from "../src/engine/query-validation.js";
import type { VariantKind } from "../src/engine/types.js";
import { indexPath, readIndexManifest } from "../src/indexer/index-manifest.js";
import { DEMO_INDEX } from "./demo-index.js";
import { DEMO_QUERIES } from "./demo-queries.js";

/** The variants in the README's columns, with their headers. */
const COLUMNS: Array<[VariantKind, string]> = [
  ["sentences-swapped", "sentences swapped"],
  ["halves-swapped", "halves swapped"],
  ["parts-swapped", "completion-related words first"],
  ["before-removed", "before them removed"],
  ["after-removed", "after them removed"],
];

const { values } = parseArgs({ options: { index: { type: "string", default: DEMO_INDEX }, json: { type: "boolean", default: false } } });
const indexDir = path.resolve(values.index as string);
process.env.INFLUENCE_QUIET = "1";
const engine = await IndexEngine.open(indexDir);
const manifest = await readIndexManifest(indexDir);
const db = await openDatabase({ dataDir: indexPath(indexDir, "database") });
try {
  const corpus = await getCorpus(db, manifest.corpus.name);
  if (!corpus) throw new Error(`${indexDir}: the database has no corpus ${manifest.corpus.name}`);
  const rows: string[] = [];
  const details: unknown[] = [];
  for (const question of DEMO_QUERIES) {
    const query = { prompt: question.prompt, completion: question.completion };
    const [top] = (await engine.influence(checkInfluenceArgs({ ...query, topK: 1 }, engine.tokenizer, engine.info(), false))).hits;
    const [sequence] = await getSequencesByOrdinals(db, corpus.id, [top.ordinal]);
    const { compareWith: _, ...request } = checkSequenceScoresArgs(
      { ...query, compareWith: sequence?.externalId, variants: true },
      engine.tokenizer,
      engine.info(),
    );
    const result = await engine.scoreSequences({ ...request, compareWith: top.ordinal });
    const original = result.original!;
    const byKind = new Map(result.sequences.map((s) => [s.kind, s]));
    const cell = (kind: VariantKind) => {
      const s = byKind.get(kind);
      return s ? `${Math.round(s.score).toLocaleString("en-US")} (${signed((100 * s.change!) / original.score)}%)` : "—";
    };
    rows.push(
      `| ${question.completion.trim()} | ${sequence?.externalId.replace(/^wn-|\.n\.01$/g, "")} | ${Math.round(original.score).toLocaleString("en-US")} | ${COLUMNS.map(([kind]) => cell(kind)).join(" | ")} |`,
    );
    const best = original.tokenScores!.reduce((b, t) => (t.score > b.score ? t : b));
    details.push({
      question: query,
      hit: sequence?.externalId,
      score: original.score,
      bestToken: { position: best.position, text: best.text, score: best.score },
      variants: result.sequences.map((s) => ({ kind: s.kind, score: s.score, change: s.change, text: s.text })),
    });
  }
  if (values.json) console.log(JSON.stringify(details, null, 2));
  const headers = COLUMNS.map(([, header]) => header);
  console.log(
    `| completion | top hit | original | ${headers.join(" | ")} |\n| --- | --- | ---: | ${headers.map(() => "---:").join(" | ")} |\n${rows.join("\n")}`,
  );
} finally {
  await db.close();
  await engine.close();
}

function signed(x: number): string {
  return `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(0)}`;
}
