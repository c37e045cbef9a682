import { type Command, InvalidArgumentError, Option } from "commander";
import { InputError } from "../../util/errors.js";
import { type BuildJob, DEFAULT_BUILD_PARAMETERS, DEFAULT_WORKERS, runBuild } from "../../jobs/build.js";
import { DEFAULT_QUEUE_SETTINGS, planBuild, waitForBuild } from "../../jobs/distributed/planner.js";
import { type IndexManifest, recordBuildMemory, vectorBytesPerSequence } from "../../indexer/index-manifest.js";
import { memoryBudget, memoryInputs, planBuildMemory } from "../../jobs/memory-plan.js";
import { type MemoryRecord, memoryReport, plannedMemory } from "../../model/memory-estimate.js";
import { peakResidentBytes } from "../../util/memory.js";
import { sketchPrecision } from "../../projection/sketch.js";
import { DEFAULT_BATCH_TOKENS } from "../../model/batch-budget.js";
import { dampingOption, deviceOption, fisherMode, groupsPlan, integer, logMemoryPlan, memoryOption, modelRuntime, oneOf } from "../options.js";
import { progressBars } from "../progress.js";
import { registerBuildStatus } from "./build-status.js";

function dims(value: string): { kOut: number; kIn: number } {
  const m = /^(\d+)x(\d+)$/.exec(value.trim());
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new InvalidArgumentError(`expected KOUTxKIN, e.g. 64x64, got ${JSON.stringify(value)}`);
  return { kOut: Number(m[1]), kIn: Number(m[2]) };
}

export function registerBuild(program: Command): void {
  const d = DEFAULT_BUILD_PARAMETERS;
  const q = DEFAULT_QUEUE_SETTINGS;
  const build = program
    .command("build")
    .description("index a corpus: EK-FAC factors, whitened projected gradient vectors of every sequence, HNSW index, sequences in PostgreSQL")
    .option("--model <dir>", "Hugging Face model folder (required)")
    .option("--corpus <file>", 'training corpus, JSONL (optionally .gz) with {"id","text"} or {"id","tokens"} per line (required)')
    .option("--out <dir>", "index folder to create (or to continue with --resume) (required)")
    .option("--database <url>", "PostgreSQL URL for the sequences' metadata (default: embedded PGlite in <out>/db)")
    .option("--corpus-name <name>", "name of the corpus in the database (default: file name and content hash)")
    .addOption(
      new Option("--dims <KOUTxKIN>", "projected dimensions per MLP matrix (capped at the matrix's own)")
        .argParser(dims)
        .default({ kOut: d.projection.kOut, kIn: d.projection.kIn }, `${d.projection.kOut}x${d.projection.kIn}`),
    )
    .option("--basis <basis>", "projection basis: pca (two-sided PCA of whitened gradients) or random", oneOf(["pca", "random"] as const), d.projection.basis)
    .option(
      "--scale-rank <r>",
      "terms of the low-rank EK-FAC whitening scale (default: 4; a sign sketch's 2, whose whole matrices' query projection costs a product per term)",
      integer(1, 64),
    )
    .option("--pca-sequences <n>", "sequences sampled for the PCA basis", integer(1), d.pcaSequences)
    .option(
      "--sketch-floats <n>",
      "coordinates per sequence of the second tier, an unbiased random sketch that re-scores the search's candidates " +
        "(with --sketch-precision auto: its bytes per sequence; 0: none)",
      integer(0),
      d.sketch?.floats ?? 0,
    )
    .option(
      "--sketch-precision <type>",
      "how the sketch is stored: auto (int8 when the whole gradient fits --sketch-floats, else signs of up to 8 times as many coordinates), " +
        "int8 (a quarter of float32's bytes; a row's values within half a step of max |x| / 127), " +
        "sign (a bit per coordinate and a factor per row: ranks as about 5 int8 coordinates per byte) or float32",
      oneOf(["auto", "int8", "sign", "float32"] as const),
      d.sketch?.precision ?? "auto",
    )
    .option("--fisher <mode>", "labels for the Fisher: sampled (the paper's) or empirical", fisherMode, d.fisher)
    .addOption(dampingOption())
    .option("--max-sequences <n>", "index only the first n sequences of the corpus", integer(1))
    .option("--fit-sequences <n>", "fit EK-FAC on the first n sequences only (default: all indexed)", integer(1))
    .option("--seed <n>", "seed of sampled labels, projections and the HNSW graph", integer(0), d.seed)
    .option("--shard-size <n>", "sequences per resumable shard", integer(1), d.shardSize)
    .option("--workers <n>", "worker threads running the model passes (each with its share of the cores)", integer(1, 64), DEFAULT_WORKERS)
    .option("--batch-tokens <n>", "padded tokens per forward/backward batch (capped for large models to fit --memory)", integer(1), DEFAULT_BATCH_TOKENS)
    .option("--hnsw-m <n>", "HNSW graph degree M", integer(2, 256), d.hnsw.M)
    .option("--hnsw-ef-construction <n>", "HNSW efConstruction", integer(1, 4096), d.hnsw.efConstruction)
    .option("--resume", "continue an interrupted build in --out with the same parameters", false)
    .option("--distributed", "plan the build as jobs in --database for `influence worker` processes on any number of machines (--out: a folder they all mount)")
    .option("--no-wait", "with --distributed: return once the build is planned instead of waiting for the workers")
    .option(
      "--job-timeout <s>",
      "with --distributed: seconds after which a running job is taken for lost and retried by another worker",
      integer(1, 86_399),
      q.jobTimeoutSeconds,
    )
    .option("--retries <n>", "with --distributed: retries of a failing or lost job before the build fails", integer(0, 100), q.retries)
    .addOption(memoryOption("the build"))
    .addOption(deviceOption())
    .option("--no-progress", "do not draw progress bars")
    .action(async (opts, command: Command) => {
      // Not commander's requiredOption: it would also require them of `build status`.
      for (const option of command.options.filter((o) => ["model", "corpus", "out"].includes(o.attributeName()))) {
        if (opts[option.attributeName()] === undefined) command.error(`error: required option '${option.flags}' not specified`, { exitCode: 2 });
      }
      const { device } = modelRuntime(opts.device, opts.workers);
      const bars = progressBars(opts.progress);
      try {
        const job: BuildJob = {
          modelDir: opts.model,
          corpusFile: opts.corpus,
          outDir: opts.out,
          databaseUrl: opts.database,
          corpusName: opts.corpusName,
          parameters: {
            fisher: opts.fisher,
            damping: opts.damping,
            seed: opts.seed,
            maxSequences: opts.maxSequences ?? null,
            fitSequences: opts.fitSequences ?? null,
            projection: { ...opts.dims, rank: opts.scaleRank ?? d.projection.rank, seed: opts.seed, basis: opts.basis },
            sketch: opts.sketchFloats > 0 ? { floats: opts.sketchFloats, rank: opts.scaleRank, seed: opts.seed, precision: opts.sketchPrecision } : null,
            pcaSequences: opts.pcaSequences,
            shardSize: opts.shardSize,
            hnsw: { M: opts.hnswM, efConstruction: opts.hnswEfConstruction },
          },
          workers: opts.workers,
          device,
          resume: opts.resume,
          batchTokens: opts.batchTokens,
          onProgress: bars.listener,
          log: (m) => console.error(m),
        };
        let manifest: IndexManifest;
        let memory: MemoryRecord | undefined;
        if (opts.distributed) {
          if (!opts.database) throw new InputError("--distributed needs --database postgres://...: the workers take their jobs from there");
          if (opts.resume) throw new InputError("--resume is for single-machine builds: a distributed build resumes by itself when workers run again");
          // The jobs run on the workers' machines, each fit job over all layers at once: a budget here would bound nothing.
          if (opts.memory !== undefined)
            throw new InputError(
              "--memory is for single-machine builds: a distributed build's jobs run on its workers' machines, and its fit holds all layers at once",
            );
          const databaseUrl: string = opts.database;
          const buildId = await planBuild({ ...job, databaseUrl, queue: { jobTimeoutSeconds: opts.jobTimeout, retries: opts.retries } });
          if (!opts.wait) {
            console.error(`build ${buildId} planned; follow it with \`influence build status --database <url> --build ${buildId}\``);
            return;
          }
          manifest = await waitForBuild(databaseUrl, buildId, { onProgress: bars.listener });
        } else {
          const budget = memoryBudget(opts.memory);
          const inputs = await memoryInputs(opts.model, opts.corpus, opts.maxSequences);
          const settings = { workers: opts.workers, shardSize: opts.shardSize, embeddedDatabase: !opts.database };
          const plan = planBuildMemory(inputs, settings, opts.batchTokens, budget);
          logMemoryPlan(plan, budget);
          if (plan.groups.length > 1) console.error(groupsPlan(plan, budget));
          await runBuild({ ...job, batchTokens: plan.batchTokens, groups: plan.groups.map((g) => g.group) });
          memory = { ...plannedMemory(budget, plan.estimate), peakBytes: peakResidentBytes() };
          manifest = await recordBuildMemory(opts.out, memory);
        }
        bars.stop();
        const sketchDim = manifest.sketch?.dim ?? 0;
        console.error(
          `indexed ${manifest.corpus.sequences} sequences (${manifest.corpus.tokens} tokens, ${manifest.vectors.dim} dims` +
            `${sketchDim ? ` and an ${sketchPrecision(manifest.parameters.sketch)} sketch of ${sketchDim}` : ""}, ${vectorBytesPerSequence(manifest)} bytes each) in ` +
            `${manifest.build.seconds.toFixed(1)} s into ${opts.out}${memory ? `; ${memoryReport(memory)}` : ""}`,
        );
      } finally {
        bars.stop();
      }
    });
  registerBuildStatus(build);
}
