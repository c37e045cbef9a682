/**
 * The memory plans of `fit` and `build`, made before the model is loaded: the corpus is read once
 * for its sequence lengths (the batches a pass will make), the checkpoint's largest tensor is taken from
 * its headers, and the peak over the command's phases decides the batch size under the budget, or
 * refuses the command.
 */
import { PGLITE_RESIDENT_BYTES } from "../db/pglite-database.js";
import { DEFAULT_SHARD_SIZE } from "../ekfac/fit.js";
import { fitPhases, passSumBytes } from "../ekfac/fit-memory.js";
import { corpusSource } from "../corpus/corpus-source.js";
import { largestBatchBytes } from "../model/batch-budget.js";
import { largestTensorBytes } from "../model/checkpoint.js";
import type { ModelConfig } from "../model/config.js";
import {
  type MemoryBudget,
  type MemoryEstimate,
  type MemoryPart,
  type MemoryPhase,
  type MemoryPlan,
  PROCESS_BASELINE_BYTES,
  WORKER_THREAD_BYTES,
  modelMemory,
  peakOf,
  planMemory,
} from "../model/memory-estimate.js";
import type { TrackedModule } from "../model/model.js";
import { modelTokenizer } from "../model/open-model.js";
import { formatBytes, machineMemory } from "../util/memory.js";

/** `--memory`'s value, or the machine's memory when it is not given. */
export function memoryBudget(bytes?: number): MemoryBudget {
  return bytes === undefined ? { bytes: machineMemory(), source: "the machine's memory" } : { bytes, source: `--memory ${formatBytes(bytes)}` };
}

const BASE: MemoryPart = { what: "the process (Node, ONNX Runtime)", bytes: PROCESS_BASELINE_BYTES };

/** What a plan is made from: the model's config and largest stored tensor, and the lengths of the sequences its passes run. */
export interface MemoryInputs {
  config: ModelConfig;
  modules: readonly TrackedModule[];
  /** The largest tensor of its checkpoint as stored: loading reads one at a time. */
  largestTensorBytes: number;
  lengths: number[];
}

/** Reads the inputs of a plan: the config, the checkpoint files' sizes, the corpus's sequence lengths (its first maxSequences). */
export async function memoryInputs(modelDir: string, corpusFile: string, maxSequences?: number): Promise<MemoryInputs> {
  const described = await modelTokenizer(modelDir);
  const source = await corpusSource(corpusFile, described, maxSequences);
  const lengths: number[] = [];
  for await (const s of source.sequences()) lengths.push(s.tokens.length);
  return { config: described.model.config, modules: described.model.modules, largestTensorBytes: await largestTensorBytes(described.dir), lengths };
}

/** The peak of `influence fit` (one thread) with batches of batchTokens and passes in shards of shardSize sequences. */
export function fitEstimate(inputs: MemoryInputs, batchTokens: number, shardSize = DEFAULT_SHARD_SIZE): MemoryEstimate {
  const { loading, running } = modelMemory(inputs.config, inputs.largestTensorBytes, largestBatchBytes(inputs.config, inputs.lengths, batchTokens));
  const shards = Math.ceil(inputs.lengths.length / shardSize);
  return peakOf([{ phase: "loading the model", parts: [BASE, ...loading] }, ...fitPhases(inputs.modules, [BASE, ...running], shards)]);
}

export function planFitMemory(inputs: MemoryInputs, requestedBatchTokens: number, budget: MemoryBudget, shardSize = DEFAULT_SHARD_SIZE): MemoryPlan {
  return planMemory(
    "fit",
    inputs.config,
    requestedBatchTokens,
    budget,
    (tokens) => fitEstimate(inputs, tokens, shardSize),
    "the weights and the EK-FAC factors of this model need that much whatever --batch-tokens is",
  );
}

/** Copies of the worker's part, one per worker. */
const perWorker = (workers: number, parts: readonly MemoryPart[]): MemoryPart[] =>
  parts.flatMap((p) => Array.from({ length: workers }, () => ({ what: `${p.what}, per worker`, bytes: p.bytes })));

/** What a build's estimate needs beyond the model and the corpus. */
export interface BuildMemorySettings {
  workers: number;
  /** A worker's batches never span shards (nor the fitting passes' smaller chunks). */
  shardSize: number;
  /** The sequences go to an embedded PGlite database in this process (no --database). */
  embeddedDatabase: boolean;
}

/** The largest batch of any shard. */
function shardBatchBytes(inputs: MemoryInputs, shardSize: number, batchTokens: number): number {
  let largest = 0;
  for (let first = 0; first < inputs.lengths.length; first += shardSize) {
    largest = Math.max(largest, largestBatchBytes(inputs.config, inputs.lengths.slice(first, first + shardSize), batchTokens));
  }
  return largest;
}

/**
 * The peak of `influence build` with batches of batchTokens. Each worker loads its own weights
 * (threads cannot share them) and keeps its largest batch; in the fitting passes each worker sums
 * its chunk (and copies the sums into its answer) while this thread holds the pass's total, a
 * total per shard in progress and the answers arriving.
 */
export function buildEstimate(inputs: MemoryInputs, settings: BuildMemorySettings, batchTokens: number): MemoryEstimate {
  const { workers } = settings;
  const model = modelMemory(inputs.config, inputs.largestTensorBytes, shardBatchBytes(inputs, settings.shardSize, batchTokens));
  const thread = { what: "worker thread", bytes: WORKER_THREAD_BYTES };
  const [loading, running] = [
    [thread, ...model.loading],
    [thread, ...model.running],
  ];
  const PROCESS: MemoryPart[] = [
    BASE,
    ...(settings.embeddedDatabase ? [{ what: "the embedded database (PGlite)", bytes: PGLITE_RESIDENT_BYTES.created }] : []),
  ];
  // Each chunk of the Lambda pass carries the eigenbases to its worker.
  const bases = { what: "eigenbases sent with a chunk", bytes: passSumBytes(inputs.modules, "covariance") / 2 };
  const sums = (pass: "covariance" | "lambda"): MemoryPhase => {
    const bytes = passSumBytes(inputs.modules, pass);
    return {
      phase: `the ${pass} pass`,
      parts: [
        ...PROCESS,
        { what: `${pass} sums of the pass, its shards and the workers' answers`, bytes: (1 + 2 * workers) * bytes },
        ...perWorker(workers, [...running, { what: `${pass} sums of a chunk and their copy`, bytes: 2 * bytes }, ...(pass === "lambda" ? [bases] : [])]),
      ],
    };
  };
  // The main thread's fit (eigendecompositions, saving), beside the workers that keep their models.
  const fit = fitPhases(inputs.modules, PROCESS).slice(1);
  return peakOf([
    { phase: "loading the models", parts: [...PROCESS, ...perWorker(workers, loading)] },
    sums("covariance"),
    ...fit.map((p) => ({ ...p, parts: [...p.parts, ...perWorker(workers, running)] })),
    sums("lambda"),
  ]);
}

export function planBuildMemory(inputs: MemoryInputs, settings: BuildMemorySettings, requestedBatchTokens: number, budget: MemoryBudget): MemoryPlan {
  return planMemory(
    "build",
    inputs.config,
    requestedBatchTokens,
    budget,
    (tokens) => buildEstimate(inputs, settings, tokens),
    `use fewer --workers (each of the ${settings.workers} holds its own weights and batches)`,
  );
}
