import type { Command } from "commander";
import { DEFAULT_SHARD_SIZE } from "../../ekfac/fit.js";
import { runFit } from "../../jobs/fit.js";
import { openModel } from "../../model/open-model.js";
import { DEFAULT_BATCH_TOKENS } from "../../model/batch-budget.js";
import { recordFactorsMemory } from "../../ekfac/artifacts.js";
import { memoryBudget, memoryInputs, planFitMemory } from "../../jobs/memory-plan.js";
import { memoryReport, plannedMemory } from "../../model/memory-estimate.js";
import { peakResidentBytes } from "../../util/memory.js";
import { dampingOption, deviceOption, fisherMode, groupsPlan, integer, logMemoryPlan, memoryOption, modelRuntime } from "../options.js";
import { progressBars } from "../progress.js";

export function registerFit(program: Command): void {
  program
    .command("fit")
    .description("fit EK-FAC factors (A, S, eigenbases, corrected eigenvalues) of a model's MLP layers on a corpus")
    .requiredOption("--model <dir>", "Hugging Face model folder (config.json, model.safetensors, tokenizer files)")
    .requiredOption("--corpus <file>", 'training corpus, JSONL with {"id","text"} or {"id","tokens"} per line')
    .requiredOption("--out <dir>", "folder for the factors (safetensors files and manifest.json)")
    .option("--fisher <mode>", "labels for the Fisher: sampled from the model (the paper's) or empirical (true next tokens)", fisherMode, "sampled")
    .addOption(dampingOption())
    .option("--max-sequences <n>", "fit on the first n sequences only", integer(1))
    .option("--seed <n>", "seed of the sampled labels", integer(0), 0)
    .option("--batch-tokens <n>", "padded tokens per forward/backward batch (capped for large models to fit --memory)", integer(1), DEFAULT_BATCH_TOKENS)
    .option("--shard-size <n>", "sequences per shard of each pass, the unit a killed fit loses at most", integer(1), DEFAULT_SHARD_SIZE)
    .option("--resume", "continue the unfinished fit in --out (killed or failed) with the same settings", false)
    .addOption(memoryOption("the fit"))
    .addOption(deviceOption())
    .option("--no-progress", "do not draw progress bars")
    .action(async (opts) => {
      const budget = memoryBudget(opts.memory);
      const plan = planFitMemory(await memoryInputs(opts.model, opts.corpus, opts.maxSequences), opts.batchTokens, budget, opts.shardSize);
      logMemoryPlan(plan, budget);
      if (plan.groups.length > 1) console.error(groupsPlan(plan, budget));
      const opened = await openModel(opts.model, modelRuntime(opts.device));
      const bars = progressBars(opts.progress);
      try {
        const { manifest } = await runFit({
          opened,
          corpusFile: opts.corpus,
          outDir: opts.out,
          fisher: opts.fisher,
          damping: opts.damping,
          seed: opts.seed,
          maxSequences: opts.maxSequences,
          batchTokens: plan.batchTokens,
          shardSize: opts.shardSize,
          resume: opts.resume,
          groups: plan.groups.map((g) => g.group),
          onProgress: bars.listener,
        });
        bars.stop();
        const memory = { ...plannedMemory(budget, plan.estimate), peakBytes: peakResidentBytes() };
        await recordFactorsMemory(opts.out, memory);
        const t = manifest.timings;
        console.error(
          `fitted ${manifest.modules.length} matrices on ${manifest.corpus.sequences} sequences (${manifest.corpus.tokens} tokens) in ` +
            `${(t.covarianceSeconds + t.eigendecompositionSeconds + t.lambdaSeconds).toFixed(1)} s; factors in ${opts.out}; ${memoryReport(memory)}`,
        );
      } finally {
        bars.stop();
      }
    });
}
