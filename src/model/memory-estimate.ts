/**
 * The memory a command will need, known before it is spent: what each phase of the command holds
 * at once (the process itself, a model's weights, its batches in ONNX Runtime's arena, and what
 * later stages add: ekfac/fit-memory.ts, jobs/memory-plan.ts for fit and build, engine/serve-memory.ts), the
 * peak over the phases, the batch size a budget allows, and the refusal when even the smallest
 * batch does not fit. The figures were measured on Linux with VmHWM (BENCHMARKS.md `memory`).
 */
import { InputError } from "../util/errors.js";
import { formatBytes } from "../util/memory.js";
import { layoutOf } from "./architectures.js";
import { batchTokenLimit } from "./batch-budget.js";
import type { ModelConfig } from "./config.js";

export interface MemoryPart {
  what: string;
  bytes: number;
}

/** What one phase of a command holds at once. */
export interface MemoryPhase {
  phase: string;
  parts: MemoryPart[];
}

/** The phase that holds the most, and how much. */
export interface MemoryEstimate extends MemoryPhase {
  bytes: number;
}

/**
 * Resident memory of the command line before it reads a model: Node, the sources compiled by tsx,
 * every command's dependencies and ONNX Runtime's library (measured: 175 to 185 MiB for
 * `influence fit` stopping at a missing model folder).
 */
export const PROCESS_BASELINE_BYTES = 180 * 2 ** 20;

/**
 * A worker thread's own Node isolate, heap and modules (tsx-compiled again in each thread), beside
 * what it loads: serve's engine workers and build's index workers (measured: about 100 MiB). The
 * old generation a worker starts with (workers/spawn-worker.ts) is room, not memory: the demo served
 * by one worker held 1,442-1,458 MB after 400 queries with it and 1,441-1,443 without (2026-12-07).
 */
export const WORKER_THREAD_BYTES = 100 * 2 ** 20;

/**
 * ONNX Runtime's share of one thread that runs a model: its sessions (the compiled forward and
 * capture graphs, the kernels of the products) and allocator bookkeeping, beside the arena's
 * batches (measured: 70 MiB for gpt2-tiny, about 110 for GPT-2 small).
 */
export function sessionBytes(cfg: ModelConfig): number {
  return 64 * 2 ** 20 + 4 * cfg.nLayer * 2 ** 20;
}

/** Bytes of a model's weights as the engine holds them: float32, whatever the dtype on disk. */
export function weightBytes(cfg: ModelConfig): number {
  let count = 0;
  for (const shape of layoutOf(cfg).parameterShapes(cfg).values()) count += shape.reduce((a, b) => a * b, 1);
  return 4 * count;
}

/** A model as one thread holds it. */
export interface ModelMemory {
  /** While its weights load: the float32 weights, and the checkpoint's tensor being read (one at a time) and converted. */
  loading: MemoryPart[];
  /** Once loaded, before its first batch: weights and sessions. */
  opened: MemoryPart[];
  /** Once it runs: weights, sessions, and its largest batch, kept by the arena. */
  running: MemoryPart[];
}

/** `tensorBytes`: the largest tensor of the checkpoint as stored (model/checkpoint.ts largestTensorBytes). */
export function modelMemory(cfg: ModelConfig, tensorBytes: number, batchBytes: number): ModelMemory {
  const weights = { what: "model weights (float32)", bytes: weightBytes(cfg) };
  const opened = [weights, { what: "ONNX Runtime sessions", bytes: sessionBytes(cfg) }];
  return {
    loading: [{ what: "checkpoint tensor being read", bytes: tensorBytes }, weights],
    opened,
    running: [...opened, { what: "largest batch's activations", bytes: batchBytes }],
  };
}

export function peakOf(phases: readonly MemoryPhase[]): MemoryEstimate {
  const totals = phases.map((p) => ({ ...p, bytes: p.parts.reduce((s, x) => s + x.bytes, 0) }));
  return totals.reduce((best, p) => (p.bytes > best.bytes ? p : best));
}

/** Parts of the same name added up (e.g. the same part of several workers), largest first. */
export function mergedParts(parts: readonly MemoryPart[]): MemoryPart[] {
  const byName = new Map<string, number>();
  for (const p of parts) byName.set(p.what, (byName.get(p.what) ?? 0) + p.bytes);
  return [...byName].map(([what, bytes]) => ({ what, bytes })).sort((a, b) => b.bytes - a.bytes);
}

/** "6.2 GiB (the eigendecompositions: covariance means 1.8 GiB, ...)": the estimate and its biggest parts. */
export function describeEstimate(estimate: MemoryEstimate, parts = 4): string {
  const biggest = mergedParts(estimate.parts).slice(0, parts);
  return `${formatBytes(estimate.bytes)} at its peak (${estimate.phase}: ${biggest.map((p) => `${p.what} ${formatBytes(p.bytes)}`).join(", ")})`;
}

/** What a command records of its memory (manifests, /healthz): the budget, the estimated peak and the peak reached. */
export interface MemoryRecord {
  budgetBytes: number;
  estimateBytes: number;
  /** The phase the estimate's peak falls in. */
  estimatePhase: string;
  peakBytes: number;
}

/** What a command records of its memory before it starts: the budget and the estimated peak. */
export function plannedMemory(budget: MemoryBudget, estimate: MemoryEstimate): Omit<MemoryRecord, "peakBytes"> {
  return { budgetBytes: budget.bytes, estimateBytes: estimate.bytes, estimatePhase: estimate.phase };
}

/** The line a command prints at its end: "peak memory 3.7 GiB (estimated 3.9 GiB, in the eigendecompositions; budget 23 GiB)". */
export function memoryReport(record: MemoryRecord): string {
  return `peak memory ${formatBytes(record.peakBytes)} (estimated ${formatBytes(record.estimateBytes)}, in ${record.estimatePhase}; budget ${formatBytes(record.budgetBytes)})`;
}

/** The memory budget of a command and where it came from, for messages. */
export interface MemoryBudget {
  bytes: number;
  /** "--memory 4G", or "the machine's memory". */
  source: string;
}

/**
 * Refuses a command whose estimated peak exceeds its budget, naming the estimate, its biggest
 * parts and what to change.
 */
export function checkBudget(command: string, estimate: MemoryEstimate, budget: MemoryBudget, advice: string): void {
  if (estimate.bytes <= budget.bytes) return;
  throw new InputError(
    `${command} needs about ${describeEstimate(estimate)}, more than ${budget.source} (${formatBytes(budget.bytes)}) allows: ` +
      `${advice}, or raise --memory if the machine has more (nothing was loaded or written)`,
  );
}

/** A command's batch size under a budget, and the estimate of its peak with that batch size. */
export interface MemoryPlan {
  batchTokens: number;
  estimate: MemoryEstimate;
}

/**
 * The largest batch size up to `requested` (and MAX_BATCH_BYTES) whose estimated peak fits the
 * budget; refused, before anything is loaded, when even one sequence per batch does not fit.
 * `estimateFor` gives the command's peak for a batch size; `advice` says what else can be changed.
 */
export function planMemory(
  command: string,
  cfg: ModelConfig,
  requested: number,
  budget: MemoryBudget,
  estimateFor: (batchTokens: number) => MemoryEstimate,
  advice: string,
): MemoryPlan {
  let batchTokens = batchTokenLimit(cfg, requested);
  let estimate = estimateFor(batchTokens);
  if (estimate.bytes > budget.bytes) {
    // The peak grows with the batch size: the largest size that fits, by bisection.
    let [fits, over] = [0, batchTokens];
    while (over - fits > 1) {
      const mid = Math.floor((fits + over) / 2);
      if (estimateFor(mid).bytes <= budget.bytes) fits = mid;
      else over = mid;
    }
    if (fits === 0) checkBudget(command, estimateFor(1), budget, `${advice} (even with one sequence per batch)`);
    batchTokens = fits;
    estimate = estimateFor(fits);
  }
  return { batchTokens, estimate };
}
