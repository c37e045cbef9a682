import type { Command } from "commander";
import { IndexEngine } from "../../engine/index-engine.js";
import { checkInfluenceArgs } from "../../engine/query-validation.js";
import { CANDIDATES, DEFAULT_CANDIDATES_TEXT, TOP_K, rangeText } from "../../indexer/query-limits.js";
import { type Database, getSequencesByOrdinals, getCorpus, openDatabase } from "../../db/index.js";
import { indexPath, readIndexManifest } from "../../indexer/index-manifest.js";
import { InputError } from "../../util/errors.js";
import { anyInteger, deviceOption, integerList, modelRuntime } from "../options.js";
import { formatScore, formatTable } from "../table.js";

/** Characters of each hit's text in the table (--json prints it whole). */
const TEXT_WIDTH = 80;

export function registerQuery(program: Command): void {
  program
    .command("query")
    .description("the training sequences of an index that most influenced a completion: HNSW candidates re-scored by the index's sketch (exactly, on request)")
    .requiredOption("--index <dir>", "index folder made by `influence build`")
    .option("--prompt <text>", "prompt text")
    .option("--completion <text>", "completion text whose log-probability is measured")
    .option("--prompt-tokens <ids>", "prompt as comma-separated token ids", integerList)
    .option("--completion-tokens <ids>", "completion as comma-separated token ids", integerList)
    .option("--top-k <k>", `hits to return, ${rangeText(TOP_K)}`, anyInteger, TOP_K.default)
    .option("--layers <list>", "restrict scores to these transformer blocks, e.g. 0,2", integerList)
    .option("--completion-positions <list>", "measure only these 0-based completion tokens", integerList)
    .option(
      "--candidates <c>",
      `candidates from the vector search, re-scored by the sketch, k to ${CANDIDATES.max} (default ${DEFAULT_CANDIDATES_TEXT})`,
      anyInteger,
    )
    .option(
      "--rerank",
      "re-score the best candidates exactly with EK-FAC (a forward and backward pass each: the sketch's best max(3 x k, 30), or every candidate without a sketch)",
      false,
    )
    .option("--token-scores", "include per-token scores of each hit", false)
    .option("--database <url>", "PostgreSQL URL when the index keeps its sequences on a server")
    .option("--json", "print JSON instead of a table", false)
    .addOption(deviceOption())
    .action(async (opts) => {
      const engine = await IndexEngine.open(opts.index, modelRuntime(opts.device));
      let db: Database | undefined;
      try {
        const args = {
          prompt: opts.prompt,
          completion: opts.completion,
          promptTokens: opts.promptTokens,
          completionTokens: opts.completionTokens,
          topK: opts.topK,
          layers: opts.layers,
          completionPositions: opts.completionPositions,
          candidates: opts.candidates,
          rerank: opts.rerank,
        };
        const result = await engine.influence(checkInfluenceArgs(args, engine.tokenizer, engine.info(), opts.tokenScores));
        const manifest = await readIndexManifest(opts.index);
        const url = opts.database ?? (manifest.database.kind === "postgres" ? manifest.database.url : undefined);
        db = await openDatabase(url ? { url } : { dataDir: indexPath(engine.folder, "database") });
        const corpus = await getCorpus(db, manifest.corpus.name);
        if (!corpus) throw new InputError(`the database has no corpus ${manifest.corpus.name}; pass the --database the index was built with`);
        const sequences = await getSequencesByOrdinals(
          db,
          corpus.id,
          result.hits.map((h) => h.ordinal),
        );
        const hits = result.hits.map((h, i) => ({
          rank: h.rank,
          id: sequences[i]?.externalId ?? null,
          score: h.score,
          scoredBy: h.scoredBy,
          approxScore: h.approxScore,
          layerScores: Object.fromEntries(h.layerScores.map((l) => [l.layer, l.score])),
          ...(h.tokenScores ? { tokenScores: h.tokenScores } : {}),
          text: sequences[i]?.text ?? null,
        }));
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ query: result.query, hits, timings: result.timings })}\n`);
        } else {
          const columns = [
            { header: "rank", align: "right" },
            { header: "score", align: "right" },
            { header: "tier" },
            { header: "approx", align: "right" },
            { header: "id" },
            { header: "text" },
          ] as const;
          const rows = hits.map((h) => [
            String(h.rank),
            formatScore(h.score),
            h.scoredBy,
            formatScore(h.approxScore),
            h.id ?? "?",
            (h.text ?? "").replace(/\s+/g, " ").slice(0, TEXT_WIDTH),
          ]);
          console.log(formatTable(columns, rows));
          const t = result.timings;
          console.error(`gradient ${t.gradientMs.toFixed(0)} ms, search ${t.searchMs.toFixed(0)} ms, re-rank ${t.rerankMs.toFixed(0)} ms`);
        }
      } finally {
        await db?.close();
        await engine.close();
      }
    });
}
