/**
 * The memory of an EK-FAC fit beside the model that runs its passes (model/memory-estimate.ts):
 * what fitEkfac and saveFactors hold in each phase. Pass 1 sums A and S in float64 and finish()
 * turns the sums into their means in place; the eigendecompositions add the eigenbases (float32)
 * one module at a time beside the solver's workspace while each module's A and S shrink to
 * float32, pass 2 sums Lambda in float64, and saving writes the arrays as they are.
 */
import type { MemoryPart, MemoryPhase } from "../model/memory-estimate.js";
import { type TrackedModule, inputOwners, inputWidth } from "../model/model.js";

/**
 * Float64 n×n matrices the eigensolver holds at once for a matrix of n rows beside its input
 * (src/linalg/eigh-blocked.ts: the trailing matrix, the reflectors, the eigenvectors of T and
 * the back-transformation's products), as the resident memory grew through sequential
 * decompositions: 5 at n = 3,072, 8.9 at n = 5,632 and 8.0 at n = 8,192 (the freed workspace of
 * one decomposition is not all returned before the next one's is allocated).
 */
export const EIGH_WORKSPACE_MATRICES = 9;

/** Entries of A and S of every module, A once for modules that read the same input. */
function factorEntries(modules: readonly TrackedModule[]): number {
  const owners = inputOwners(modules);
  return modules.reduce((s, m, i) => s + (owners[i] === i ? inputWidth(m) ** 2 : 0) + m.outFeatures ** 2, 0);
}

/**
 * What assembling a grouped fit's factor files holds beside the model: one tensor at a time, read
 * from a group's file and written to the final one (jobs/fit-groups.ts); the largest is a float32
 * eigenbasis, covariance or Lambda.
 */
export function assemblyPhase(modules: readonly TrackedModule[], running: MemoryPart[]): MemoryPhase {
  const largest = Math.max(...modules.flatMap((m) => [inputWidth(m) ** 2, m.outFeatures ** 2, m.outFeatures * inputWidth(m)]));
  return { phase: "assembling the factors files", parts: [...running, { what: "factor tensor being copied (float32)", bytes: 4 * largest }] };
}

/** Float64 entries of the factors' sums of one fitting pass: A and S, or Lambda. */
export function passSumBytes(modules: readonly TrackedModule[], pass: "covariance" | "lambda"): number {
  return 8 * (pass === "covariance" ? factorEntries(modules) : modules.reduce((s, m) => s + m.outFeatures * inputWidth(m), 0));
}

/**
 * What the fit holds beside the model, by phase; `running` is the model (and its batches) as the
 * fit's passes hold it. A pass's first shard becomes its total (addSums); from the second shard
 * on, the shard in progress has sums of its own beside the total.
 */
export function fitPhases(modules: readonly TrackedModule[], running: MemoryPart[], shards = 1): MemoryPhase[] {
  const entries = factorEntries(modules);
  const widest = Math.max(...modules.flatMap((m) => [inputWidth(m), m.outFeatures]));
  const copies = shards > 1 ? 2 : 1;
  const passSums = (pass: "covariance" | "lambda", what: string) => ({
    what: `${what} sums (float64${copies > 1 ? ": the pass's and its shard's" : ""})`,
    bytes: copies * passSumBytes(modules, pass),
  });
  // Each module's 8 bytes per entry: float64 A and S until its eigenbasis is found, then float32 A, S and eigenbasis.
  const decomposing = { what: "A and S (float64, then float32) and eigenbases (float32)", bytes: 8 * entries };
  const means = { what: "A and S (float32)", bytes: 4 * entries };
  const bases = { what: "eigenbases (float32)", bytes: 4 * entries };
  const lambda = { what: "Lambda (float32)", bytes: passSumBytes(modules, "lambda") / 2 };
  // Files are written a tensor at a time from the arrays themselves (safetensorsPieces): nothing is encoded beside them.
  return [
    { phase: "the covariance pass", parts: [...running, passSums("covariance", "A and S")] },
    {
      phase: "the eigendecompositions",
      parts: [...running, decomposing, { what: "eigensolver workspace", bytes: EIGH_WORKSPACE_MATRICES * 8 * widest ** 2 }],
    },
    { phase: "the Lambda pass", parts: [...running, means, bases, passSums("lambda", "Lambda")] },
    { phase: "saving the factors", parts: [...running, means, bases, lambda] },
  ];
}
