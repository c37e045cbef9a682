/**
 * The memory plans of `fit` and `build`, made before the model is loaded: the corpus is read once
 * for its sequence lengths (the batches a pass will make), the checkpoint's largest tensor is taken from
 * its headers, and the peak over the command's phases decides the batch size under the budget, or
 * refuses the command.
 */
import { PGLITE_RESIDENT_BYTES } from "../db/pglite-database.js";
import { DEFAULT_SHARD_SIZE } from "../ekfac/fit.js";
import { assemblyPhase, fitPhases, passSumBytes } from "../ekfac/fit-memory.js";
import { type LayerGroup, groupLayers, groupModules, layerGroups } from "../ekfac/layer-groups.js";
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
import { InputError } from "../util/errors.js";
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

/** The estimates of a fit: its peak, and the peak of each group's passes and decompositions. */
export interface FitEstimates {
  peak: MemoryEstimate;
  groups: MemoryEstimate[];
}

/**
 * The peaks of `influence fit` (one thread) with batches of batchTokens, passes in shards of
 * shardSize sequences, and its layers fitted in `groups` (all at once when absent): the model's
 * loading, each group's phases (named with the group's layers when there are several), and the
 * assembly of the factors files from the groups' files.
 */
export function fitEstimates(inputs: MemoryInputs, batchTokens: number, shardSize = DEFAULT_SHARD_SIZE, groups?: readonly LayerGroup[]): FitEstimates {
  const { loading, running } = modelMemory(inputs.config, inputs.largestTensorBytes, largestBatchBytes(inputs.config, inputs.lengths, batchTokens));
  const shards = Math.ceil(inputs.lengths.length / shardSize);
  const loadingPhase = { phase: "loading the model", parts: [BASE, ...loading] };
  if (!groups || groups.length === 1) {
    const peak = peakOf([loadingPhase, ...fitPhases(inputs.modules, [BASE, ...running], shards)]);
    return { peak, groups: [peak] };
  }
  const perGroup = groups.map((g) =>
    peakOf(fitPhases(groupModules(inputs.modules, g), [BASE, ...running], shards).map((p) => ({ ...p, phase: `${p.phase} of ${groupLayers(g)}` }))),
  );
  return { peak: peakOf([loadingPhase, ...perGroup, assemblyPhase(inputs.modules, [BASE, ...running])]), groups: perGroup };
}

/** The peak of `influence fit`: fitEstimates' peak. */
export function fitEstimate(inputs: MemoryInputs, batchTokens: number, shardSize = DEFAULT_SHARD_SIZE, groups?: readonly LayerGroup[]): MemoryEstimate {
  return fitEstimates(inputs, batchTokens, shardSize, groups).peak;
}

/** A fit's plan: its batch size, its groups of layers (one: all at once) and the estimate of each group. */
export interface FitMemoryPlan extends MemoryPlan {
  groups: Array<{ group: LayerGroup; estimate: MemoryEstimate }>;
  /** The peak of fitting every layer at once with the same batches (the estimate when there is one group). */
  allAtOnce: MemoryEstimate;
}

/**
 * The fewest groups of consecutive layers whose fit fits the budget, each with the largest batch
 * size that fits (planMemory): all layers at once when they fit, as without groups; a grouped fit
 * runs both passes once per group. Refused when even one layer at a time with one sequence per
 * batch does not fit. `estimates` gives the command's peak and each group's for a batch size and
 * groups (all layers at once when absent); `advice` says what else can be changed, for a model of
 * that many layers.
 */
function planGroups(
  command: string,
  inputs: MemoryInputs,
  requestedBatchTokens: number,
  budget: MemoryBudget,
  estimates: (batchTokens: number, groups?: readonly LayerGroup[]) => FitEstimates,
  advice: (layers: number) => string,
): FitMemoryPlan {
  const layers = new Set(inputs.modules.map((m) => m.layer)).size;
  for (let count = 1; ; count++) {
    const groups = layerGroups(inputs.modules, count);
    try {
      const plan = planMemory(command, inputs.config, requestedBatchTokens, budget, (tokens) => estimates(tokens, groups).peak, advice(layers));
      const perGroup = estimates(plan.batchTokens, groups).groups;
      const allAtOnce = count === 1 ? plan.estimate : estimates(plan.batchTokens).peak;
      return { ...plan, groups: groups.map((group, i) => ({ group, estimate: perGroup[i] })), allAtOnce };
    } catch (err) {
      if (!(err instanceof InputError) || count === layers) throw err;
    }
  }
}

/** The plan of `influence fit` (planGroups). */
export function planFitMemory(inputs: MemoryInputs, requestedBatchTokens: number, budget: MemoryBudget, shardSize = DEFAULT_SHARD_SIZE): FitMemoryPlan {
  return planGroups(
    "fit",
    inputs,
    requestedBatchTokens,
    budget,
    (tokens, groups) => fitEstimates(inputs, tokens, shardSize, groups),
    (layers) =>
      `the weights and the EK-FAC factors of this model need that much whatever --batch-tokens is${layers > 1 ? ", even fitted one layer at a time" : ""}`,
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
 * The peaks of `influence build` with batches of batchTokens, its fit's layers in `groups` (all at
 * once when absent). Each worker loads its own weights (threads cannot share them) and keeps its
 * largest batch; in the fitting passes each worker sums its chunk (and copies the sums into its
 * answer) while this thread holds the pass's total, a total per shard in progress and the answers
 * arriving. A grouped fit's phases hold its group's modules only (named with the group's layers),
 * and the factors files are assembled from the groups' files beside the workers' models.
 */
export function buildEstimates(inputs: MemoryInputs, settings: BuildMemorySettings, batchTokens: number, groups?: readonly LayerGroup[]): FitEstimates {
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
  const fitOf = (modules: readonly TrackedModule[]): MemoryPhase[] => {
    // Each chunk of the Lambda pass carries the eigenbases to its worker.
    const bases = { what: "eigenbases sent with a chunk", bytes: passSumBytes(modules, "covariance") / 2 };
    const sums = (pass: "covariance" | "lambda"): MemoryPhase => {
      const bytes = passSumBytes(modules, pass);
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
    const fit = fitPhases(modules, PROCESS).slice(1);
    return [sums("covariance"), ...fit.map((p) => ({ ...p, parts: [...p.parts, ...perWorker(workers, running)] })), sums("lambda")];
  };
  const loadingPhase = { phase: "loading the models", parts: [...PROCESS, ...perWorker(workers, loading)] };
  if (!groups || groups.length === 1) {
    const peak = peakOf([loadingPhase, ...fitOf(inputs.modules)]);
    return { peak, groups: [peak] };
  }
  const perGroup = groups.map((g) => peakOf(fitOf(groupModules(inputs.modules, g)).map((p) => ({ ...p, phase: `${p.phase} of ${groupLayers(g)}` }))));
  return { peak: peakOf([loadingPhase, ...perGroup, assemblyPhase(inputs.modules, [...PROCESS, ...perWorker(workers, running)])]), groups: perGroup };
}

/** The peak of `influence build`: buildEstimates' peak. */
export function buildEstimate(inputs: MemoryInputs, settings: BuildMemorySettings, batchTokens: number, groups?: readonly LayerGroup[]): MemoryEstimate {
  return buildEstimates(inputs, settings, batchTokens, groups).peak;
}

/** The plan of `influence build`: its fit's groups of layers as planFitMemory chooses them, with the workers' parts counted. */
export function planBuildMemory(inputs: MemoryInputs, settings: BuildMemorySettings, requestedBatchTokens: number, budget: MemoryBudget): FitMemoryPlan {
  return planGroups(
    "build",
    inputs,
    requestedBatchTokens,
    budget,
    (tokens, groups) => buildEstimates(inputs, settings, tokens, groups),
    (layers) =>
      `use fewer --workers (each of the ${settings.workers} holds its own weights and batches${layers > 1 ? "; the factors already fitted one layer at a time" : ""})`,
  );
}
