import { type Command, InvalidArgumentError, Option } from "commander";
import type { FisherMode } from "../../ekfac/artifacts.js";
import { EVALUATE_METHODS, type EvaluateMethod, type EvaluateReport, type MethodSpec, runEvaluate } from "../../jobs/evaluate/evaluate.js";
import { deviceOption, fisherMode, integer, modelRuntime, oneOf, positiveNumber } from "../options.js";
import { progressBars } from "../progress.js";
import { formatTable } from "../table.js";

/** The fine-tuning schedule's fixed shape: warmup over 10% of the steps, cosine decay to 10% of the peak. */
const WARMUP_RATIO = 0.1;
const FLOOR_RATIO = 0.1;

/** Comma-separated, each checked by `parse`, without repeats. */
const list =
  <T extends string>(parse: (value: string) => T) =>
  (value: string): T[] => {
    const items = value.split(",").map((part) => parse(part.trim()));
    if (new Set(items).size !== items.length) throw new InvalidArgumentError(`lists ${JSON.stringify(value)} an item twice`);
    return items;
  };

/** One row per method and Fisher; identity uses no curvature, so it has one row. */
export function methodSpecs(methods: readonly EvaluateMethod[], fishers: readonly FisherMode[]): MethodSpec[] {
  return methods.flatMap((method): MethodSpec[] => (method === "identity" ? [{ method, fisher: null }] : fishers.map((fisher) => ({ method, fisher }))));
}

export function registerEvaluate(program: Command): void {
  program
    .command("evaluate")
    .description(
      "linear datamodeling score (LDS) of influence methods: fine-tune on random subsets of a corpus and check how well summed scores predict the query losses",
    )
    .requiredOption("--model <dir>", "Hugging Face GPT-2 model folder: the starting point of every fine-tuning")
    .requiredOption("--corpus <file>", 'fine-tuning corpus, JSONL with {"id","text"} or {"id","tokens"} per line')
    .requiredOption("--queries <file>", 'queries, JSONL with {"id","prompt","completion"} or {"id","prompt_tokens","completion_tokens"}')
    .option("--subsets <n>", "random subsets to fine-tune on (at least 2)", integer(Number.MIN_SAFE_INTEGER), 50)
    .option("--fraction <x>", "share of the corpus's sequences in each subset, between 0 and 1", Number, 0.5)
    .option("--epochs <n>", "passes over the sequences in every fine-tuning", integer(1), 3)
    .option("--lr <x>", "peak learning rate of every fine-tuning (warmup over 10% of the steps, cosine decay to 10%)", positiveNumber, 1e-3)
    .option("--batch-tokens <n>", "padded tokens per fine-tuning batch", integer(2), 1024)
    .addOption(
      new Option(
        "--methods <list>",
        `comma-separated scoring methods: ${EVALUATE_METHODS.join(", ")} (index: the scores of an index built with build's defaults: its sketch's)`,
      )
        .argParser(list(oneOf(EVALUATE_METHODS)))
        .default(["ekfac", "index", "identity", "lissa"], "ekfac,index,identity,lissa"),
    )
    .addOption(
      new Option("--fisher <list>", "Fisher of the factors, comma-separated: sampled, empirical (a row per Fisher for every method but identity)")
        .argParser(list(fisherMode))
        .default(["sampled"], "sampled"),
    )
    .option("--seed <n>", "seed of the subsets, of the batch order and of the sampled Fisher's labels", integer(0), 0)
    .option("--out <dir>", "folder keeping the fine-tunings' losses, the factors and the scores; a rerun resumes it (default: a temporary folder)")
    .option("--json", "print the report as one JSON object instead of a table", false)
    .addOption(deviceOption())
    .option("--no-progress", "do not draw progress bars")
    .action(async (opts) => {
      const runtime = modelRuntime(opts.device);
      const bars = progressBars(opts.progress);
      try {
        const report = await runEvaluate({
          modelDir: opts.model,
          corpusFile: opts.corpus,
          queriesFile: opts.queries,
          settings: {
            subsets: opts.subsets,
            fraction: opts.fraction,
            seed: opts.seed,
            schedule: { epochs: opts.epochs, batchTokens: opts.batchTokens, lr: opts.lr, warmupRatio: WARMUP_RATIO, floorRatio: FLOOR_RATIO },
          },
          methods: methodSpecs(opts.methods, opts.fisher),
          outDir: opts.out,
          runtime,
          onProgress: bars.listener,
          log: (message) => {
            bars.stop();
            console.error(`influence: ${message}`);
          },
        });
        bars.stop();
        process.stdout.write(opts.json ? `${JSON.stringify(report)}\n` : `${formatReport(report)}\n`);
      } finally {
        bars.stop();
      }
    });
}

export function formatReport(report: EvaluateReport): string {
  const columns = [
    { header: "method" },
    { header: "LDS", align: "right" as const },
    { header: `${report.interval.level * 100}% interval`, align: "right" as const },
  ];
  const rows = report.methods.map((m) => [m.label, m.lds.toFixed(3), `[${m.low.toFixed(3)}, ${m.high.toFixed(3)}]`]);
  const { corpus, settings } = report;
  return [
    `${report.queries.length} queries, ${settings.subsets} subsets of ${corpus.subsetSize} of the ${corpus.sequences} sequences, ${settings.schedule.epochs} epochs each`,
    formatTable(columns, rows),
    `LDS: mean over queries of Spearman's correlation, across subsets, of the subset's summed scores with minus the query's loss after fine-tuning on it.`,
    `Interval: ${report.interval.how}.`,
  ].join("\n");
}
