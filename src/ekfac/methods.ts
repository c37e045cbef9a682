/**
 * How a query gradient becomes the matrix M that training gradients are scored against:
 *   ekfac:    M = (G_EKFAC + damping)^-1 q, block-diagonal over modules (the method of the paper);
 *   cg:       M = (F + D)^-1 q solved by conjugate gradients with exact Fisher-vector products
 *             over all fitting sequences and all MLP parameters jointly (the reference);
 *   lissa:    the same solve by the stochastic LiSSA recursion on mini-batches;
 *   identity: M = q, the plain gradient dot product.
 * D is the per-module EK-FAC damping in every method.
 */
import { type GradientBank, flatten, unflatten } from "./baselines/gradient-bank.js";
import { conjugateGradient } from "./baselines/cg.js";
import { lissa, lissaScale } from "./baselines/lissa.js";
import { type ModuleFactors, inverseScale, precondition } from "./factors.js";
import { inputWidth } from "../model/model.js";

export const SCORE_METHODS = ["ekfac", "cg", "lissa", "identity"] as const;
export type ScoreMethod = (typeof SCORE_METHODS)[number];

export interface IterativeOptions {
  cg: { tolerance: number; maxIterations: number };
  lissa: { iterations: number; batchSize: number; scale?: number; seed: number };
}

export const DEFAULT_ITERATIVE: IterativeOptions = {
  cg: { tolerance: 1e-6, maxIterations: 500 },
  lissa: { iterations: 1000, batchSize: 8, seed: 0 },
};

/** Per-parameter damping vector in the bank's flattened layout. */
function dampingVector(bank: GradientBank, factors: readonly ModuleFactors[]): Float64Array {
  const d = new Float64Array(bank.size);
  factors.forEach((f, m) => d.fill(f.damping, bank.offsets[m], bank.offsets[m] + f.module.outFeatures * inputWidth(f.module)));
  return d;
}

/**
 * M[query][module] for a method; cg and lissa need the fitting sequences' gradient bank, and call
 * `onSolved` with the number of queries solved after each (their solves take seconds each).
 */
export async function queryMatrices(
  method: ScoreMethod,
  factors: readonly ModuleFactors[],
  gradients: readonly Float32Array[][],
  bank?: GradientBank,
  options: IterativeOptions = DEFAULT_ITERATIVE,
  onSolved?: (done: number) => void,
): Promise<{ matrices: Float32Array[][]; iterations?: number[] }> {
  if (method === "identity") return { matrices: gradients.map((q) => q.map((g) => g.slice())) };
  if (method === "ekfac") {
    // Module by module, all queries in one product.
    const perModule: Float32Array[][] = [];
    for (const [m, f] of factors.entries()) {
      perModule.push(
        await precondition(
          f,
          inverseScale(f),
          gradients.map((q) => q[m]),
        ),
      );
    }
    return { matrices: gradients.map((_, q) => perModule.map((module) => module[q])) };
  }
  if (!bank) throw new Error(`method ${method} needs the gradients of the fitting sequences`);
  const damping = dampingVector(bank, factors);
  const apply = (v: Float64Array, rows?: readonly number[]) => {
    const fv = bank.fisherProduct(v, rows);
    for (let i = 0; i < fv.length; i++) fv[i] += damping[i] * v[i];
    return fv;
  };
  const sizes = factors.map((f) => f.module.outFeatures * inputWidth(f.module));
  const iterations: number[] = [];
  const scale = method === "lissa" ? (options.lissa.scale ?? lissaScale(bank.maxSquaredNorm(), Math.max(...factors.map((f) => f.damping)))) : 0;
  const matrices = gradients.map((perModule) => {
    const b = Float64Array.from(flatten(perModule, bank.offsets, bank.size));
    let x: Float64Array;
    if (method === "cg") {
      const solved = conjugateGradient((v) => apply(v), b, options.cg);
      iterations.push(solved.iterations);
      x = solved.x;
    } else {
      x = lissa(apply, b, bank.gradients.length, { ...options.lissa, scale });
      iterations.push(options.lissa.iterations);
    }
    onSolved?.(iterations.length);
    return unflatten(x, bank.offsets, sizes);
  });
  return { matrices, iterations };
}
