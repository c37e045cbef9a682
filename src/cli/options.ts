/** Parsers for command-line option values; each error names the option and what it accepts. */
import { InvalidArgumentError, Option } from "commander";
import type { DampingRule, FisherMode } from "../ekfac/artifacts.js";
import type { IndexFolder } from "../http/open-index-server.js";
import { DEFAULT_DAMPING_FACTOR } from "../ekfac/lambda.js";
import { DEVICES, type Device, executionProviders, parseDevice } from "../runtime/device.js";
import { type RuntimeOptions, runtimeSummary, workerRuntime } from "../runtime/session.js";
import { formatBytes, parseMemorySize } from "../util/memory.js";
import { type MemoryBudget, type MemoryPlan, describeEstimate } from "../model/memory-estimate.js";
import { groupLayers } from "../ekfac/layer-groups.js";
import type { FitMemoryPlan } from "../jobs/memory-plan.js";

/** Any integer: for options whose range the query's argument checks own (engine/query-validation.ts). */
export const anyInteger = (value: string): number => integer(Number.MIN_SAFE_INTEGER)(value);

export function integer(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer from ${min}${max === Number.MAX_SAFE_INTEGER ? "" : ` to ${max}`}, got ${JSON.stringify(value)}`);
    }
    return n;
  };
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected a positive number, got ${JSON.stringify(value)}`);
  return n;
}

export function fisherMode(value: string): FisherMode {
  if (value !== "sampled" && value !== "empirical") throw new InvalidArgumentError(`expected sampled or empirical, got ${JSON.stringify(value)}`);
  return value;
}

export function dampingRule(value: string): DampingRule {
  if (value === "heuristic") return { rule: "heuristic", factor: DEFAULT_DAMPING_FACTOR };
  return { rule: "fixed", value: positiveNumber(value) };
}

export function oneOf<T extends string>(choices: readonly T[]) {
  return (value: string): T => {
    if (!choices.includes(value as T)) throw new InvalidArgumentError(`expected one of ${choices.join(", ")}, got ${JSON.stringify(value)}`);
    return value as T;
  };
}

/** Comma-separated non-negative integers, e.g. `0,2`. */
export function integerList(value: string): number[] {
  return value.split(",").map((part) => integer(0)(part.trim()));
}

/**
 * Repeated `--index [NAME=]DIR`, in order. The name is what precedes the first "=" (a folder whose
 * path holds "=" is given with a name); index-names.ts checks it when the server opens.
 */
export function indexFolders(value: string, previous: IndexFolder[] | undefined): IndexFolder[] {
  const equals = value.indexOf("=");
  const folder = equals < 0 ? { dir: value } : { name: value.slice(0, equals), dir: value.slice(equals + 1) };
  if (folder.dir === "") throw new InvalidArgumentError(`expected [NAME=]DIR, got ${JSON.stringify(value)}`);
  return [...(previous ?? []), folder];
}

/** --damping: "heuristic" or a fixed positive number. */
export function dampingOption(): Option {
  return new Option("--damping <value>", `"heuristic" (${DEFAULT_DAMPING_FACTOR} x mean(Lambda) per matrix) or a fixed positive number`)
    .argParser(dampingRule)
    .default(dampingRule("heuristic"), "heuristic");
}

/** --memory: the budget of a command's peak memory (the machine's memory when absent). */
export function memoryOption(what: string): Option {
  return new Option(
    "--memory <size>",
    `memory ${what} may use, e.g. 8G or 512M: batches are cut to fit it, and the command refuses at once if its estimated peak does not (default: the machine's memory, or the cgroup's limit)`,
  ).argParser((value: string): number => {
    try {
      return parseMemorySize(value);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  });
}

/** --device: the execution provider of the model passes; INFLUENCE_DEVICE (cpu when unset) by default. */
export function deviceOption(): Option {
  return new Option("--device <device>", `execution provider of the model passes: ${DEVICES.join(" or ")} (default: INFLUENCE_DEVICE, else cpu)`).argParser(
    (value: string): Device => {
      try {
        return parseDevice(value, "--device");
      } catch (err) {
        throw new InvalidArgumentError((err as Error).message);
      }
    },
  );
}

/**
 * The runtime of a command's model passes on `workers` threads (the command's own thread when 1):
 * checks that the device's provider is installed before any work starts, and logs where the
 * passes run.
 */
export function modelRuntime(device: Device | undefined, workers = 1): Required<RuntimeOptions> {
  const runtime = workerRuntime(device, workers);
  executionProviders(runtime.device);
  notice(runtimeSummary(runtime, workers));
  return runtime;
}

/** Tells what a command decided at start, on stderr, unless INFLUENCE_QUIET=1. */
export function notice(message: string): void {
  if (process.env.INFLUENCE_QUIET !== "1") console.error(`influence: ${message}`);
}

/** Logs at start what a command expects to need at its peak, and the batch size its budget allows (fit, build). */
export function logMemoryPlan(plan: Pick<MemoryPlan, "estimate"> & { batchTokens?: number }, budget: MemoryBudget): void {
  const batches = plan.batchTokens === undefined ? "" : `; batches of up to ${plan.batchTokens} tokens`;
  notice(`memory estimate ${describeEstimate(plan.estimate)} of ${formatBytes(budget.bytes)} (${budget.source})${batches}`);
}

/** A grouped fit's plan (fit, build): why, and each group's layers and estimated peak. */
export function groupsPlan(plan: FitMemoryPlan, budget: MemoryBudget): string {
  const groups = plan.groups.map(({ group, estimate }) => `${groupLayers(group)} (${formatBytes(estimate.bytes)})`);
  return (
    `influence: all layers at once would need about ${formatBytes(plan.allAtOnce.bytes)}, more than ${budget.source} allows: fitting ${plan.groups.length} ` +
    `groups of layers one after another, each with its own covariance pass, eigendecompositions and Lambda pass: ${groups.join(", ")}`
  );
}
