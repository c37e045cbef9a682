import type { Command } from "commander";
import { DEFAULT_ITERATIVE, SCORE_METHODS } from "../../ekfac/methods.js";
import { openModel } from "../../model/open-model.js";
import { type TrainingInput, runScore } from "../../jobs/score.js";
import { checkSequences } from "../../engine/query-validation.js";
import { SCORED_SEQUENCES } from "../../indexer/query-limits.js";
import type { OpenedModel } from "../../model/open-model.js";
import { InputError } from "../../util/errors.js";
import { deviceOption, integer, integerList, modelRuntime, oneOf, positiveNumber } from "../options.js";
import { progressBars } from "../progress.js";
import { formatScore, formatTable } from "../table.js";

/** Training sequences listed per query in the summary (--json prints all). */
const SUMMARY_TOP = 5;

export function registerScore(program: Command): void {
  const d = DEFAULT_ITERATIVE;
  program
    .command("score")
    .description("exact influence scores of training sequences on queries (no index), per module and per token on request")
    .requiredOption("--model <dir>", "Hugging Face model folder")
    .requiredOption("--factors <dir>", "output folder of `influence fit` for this model")
    .option("--train <file>", "training sequences to score, JSONL like the corpus")
    .option("--text <text>", `a training sequence to score, as text (repeat for several, at most ${SCORED_SEQUENCES.max}; instead of --train)`, collect)
    .option("--tokens <ids>", "a training sequence to score, as comma-separated token ids (repeatable, like --text)", collectIntegerList)
    .requiredOption("--queries <file>", 'queries, JSONL with {"id","prompt","completion"} or {"id","prompt_tokens","completion_tokens"}')
    .option("--method <name>", `ekfac, cg (conjugate gradients, exact Fisher), lissa, or identity (gradient dot product)`, oneOf(SCORE_METHODS), "ekfac")
    .option("--per-module", "also report the score of every MLP matrix", false)
    .option("--per-token", "also report the score of every training token (printed with --json)", false)
    .option("--rank <r>", "keep each preconditioned query gradient as a rank-r product (query batching)", integer(1))
    .option("--cg-tolerance <x>", "relative residual at which cg stops", positiveNumber, d.cg.tolerance)
    .option("--cg-max-iterations <n>", "iteration limit of cg", integer(1), d.cg.maxIterations)
    .option("--lissa-iterations <n>", "LiSSA recursion steps", integer(1), d.lissa.iterations)
    .option("--lissa-batch <n>", "sequences per LiSSA Fisher-vector product", integer(1), d.lissa.batchSize)
    .option("--lissa-scale <x>", "LiSSA step alpha (default: 0.5 / largest eigenvalue, by power iteration)", positiveNumber)
    .option("--json", "print one JSON object {queries, train, scores, moduleScores?, tokenScores?} instead of each query's top 5 as a table", false)
    .addOption(deviceOption())
    .option("--no-progress", "do not draw progress bars")
    .action(async (opts) => {
      const opened = await openModel(opts.model, modelRuntime(opts.device));
      const train = trainingInput(opts, opened);
      const bars = progressBars(opts.progress);
      try {
        const { timings, ...result } = await runScore({
          opened,
          factorsDir: opts.factors,
          train,
          queriesFile: opts.queries,
          method: opts.method,
          rank: opts.rank,
          perModule: opts.perModule,
          perToken: opts.perToken,
          iterative: {
            cg: { tolerance: opts.cgTolerance, maxIterations: opts.cgMaxIterations },
            lissa: { iterations: opts.lissaIterations, batchSize: opts.lissaBatch, scale: opts.lissaScale, seed: 0 },
          },
          onProgress: bars.listener,
        });
        bars.stop();
        console.error(`preconditioned queries in ${timings.queriesSeconds.toFixed(2)} s, scored in ${timings.scoringSeconds.toFixed(2)} s`);
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(result)}\n`);
        } else {
          const modules = Object.entries(result.moduleScores ?? {});
          const columns = [
            { header: "rank", align: "right" as const },
            { header: "train" },
            { header: "score", align: "right" as const },
            ...modules.map(([name]) => ({ header: name, align: "right" as const })),
          ];
          const tables = result.queries.map((id, q) => {
            const top = result.train
              .map((_, n) => n)
              .sort((a, b) => result.scores[q][b] - result.scores[q][a])
              .slice(0, SUMMARY_TOP);
            const rows = top.map((n, r) => [
              String(r + 1),
              result.train[n],
              formatScore(result.scores[q][n]),
              ...modules.map(([, scores]) => formatScore(scores[q][n])),
            ]);
            return `query ${id}\n${formatTable(columns, rows)}`;
          });
          console.log(tables.join("\n\n"));
        }
      } finally {
        bars.stop();
      }
    });
}

/** Repeatable options: each occurrence adds one sequence (absent: undefined, which --help shows as no default). */
const collect = (value: string, previous: string[] = []): string[] => [...previous, value];
const collectIntegerList = (value: string, previous: number[][] = []): number[][] => [...previous, integerList(value)];

/**
 * The training sequences: the --train file, or the --text or --tokens sequences, checked like
 * scoreSequences' (engine/query-validation.ts) and named text-1, text-2, ... or tokens-1, ...
 */
function trainingInput(opts: { train?: string; text?: string[]; tokens?: number[][] }, opened: OpenedModel): TrainingInput {
  const given = opts.text !== undefined || opts.tokens !== undefined;
  if (opts.train !== undefined && given)
    throw new InputError("give the training sequences either as a file (--train) or on the command line (--text, --tokens), not both");
  if (opts.train !== undefined) return { file: opts.train };
  if (!given) throw new InputError("no training sequences: give a file (--train FILE) or sequences (--text TEXT or --tokens IDS, repeatable)");
  const asText = opts.text !== undefined;
  const tokens = checkSequences({ sequences: opts.text ?? null, sequenceTokens: opts.tokens ?? null }, opened.tokenizer, opened.model.config.contextLength, {
    text: "--text",
    tokens: "--tokens",
  });
  return { sequences: tokens.map((t, i) => ({ id: `${asText ? "text" : "tokens"}-${i + 1}`, tokens: t })) };
}
