/**
 * Scores of training sequences against prepared queries, per module and per token (Eqs. 30-31):
 * with M the preconditioned query gradient of a module, token t of a training sequence
 * contributes g_t^T M a_t, so no training gradient is ever formed.
 */
import { type GradientCapture, type TrackedModule, inputWidth } from "../model/model.js";
import type { HostTensor } from "../runtime/kernels.js";
import { stackMatrices } from "./factors.js";
import { capturedRows, denseTokenScores, lowRankTokenScores } from "./products.js";

/** Queries prepared for one module: token scores of a capture's rows for every query. */
export interface ModuleQueries {
  /** [queries, rows]: g_t^T M_q a_t for each query q and row t. */
  tokenScores(a: HostTensor, g: HostTensor): Promise<Float32Array>;
}

/** Full [out, in+1] matrices M_q, one per query. */
export function denseModuleQueries(module: TrackedModule, matrices: readonly Float32Array[]): ModuleQueries {
  const m = stackMatrices(matrices, module.outFeatures, inputWidth(module));
  return { tokenScores: (a, g) => denseTokenScores(a, g, m) };
}

/** Rank-r factors M_q = U_q V_q^T (Section 3.2.2), u [out, r] and v [in+1, r] per query. */
export function lowRankModuleQueries(module: TrackedModule, factors: ReadonlyArray<{ u: Float32Array; v: Float32Array }>, rank: number): ModuleQueries {
  const u = stackMatrices(
    factors.map((f) => f.u),
    module.outFeatures,
    rank,
  );
  const v = stackMatrices(
    factors.map((f) => f.v),
    inputWidth(module),
    rank,
  );
  return { tokenScores: (a, g) => lowRankTokenScores(a, g, u, v) };
}

export interface BatchScores {
  /** [query][sequence] totals. */
  scores: Float64Array[];
  /** [module][query][sequence]. */
  moduleScores: Float64Array[][];
  /** [query][sequence][token], summed over modules. */
  tokenScores: Float64Array[][];
}

/**
 * Scores of every sequence of a capture against every query, by module and by token. A module
 * whose queries are undefined is left out (its scores are zero): scores restricted to layers.
 */
export async function scoreCapture(capture: GradientCapture, queries: ReadonlyArray<ModuleQueries | undefined>, queryCount: number): Promise<BatchScores> {
  const { batch } = capture;
  const rowCount = batch.size * batch.length;
  const zeros = () => Array.from({ length: queryCount }, () => new Float64Array(batch.size));
  const scores = zeros();
  const tokenScores = Array.from({ length: queryCount }, () => batch.lengths.map((n) => new Float64Array(n)));
  const moduleScores: Float64Array[][] = [];
  for (let i = 0; i < capture.modules.length; i++) {
    const perModule = zeros();
    moduleScores.push(perModule);
    const prepared = queries[i];
    if (!prepared) continue;
    const { a, g } = capturedRows(capture, i);
    const rows = await prepared.tokenScores(a, g);
    for (let q = 0; q < queryCount; q++) {
      for (let b = 0; b < batch.size; b++) {
        for (let t = 0; t < batch.lengths[b]; t++) {
          const x = rows[q * rowCount + b * batch.length + t];
          perModule[q][b] += x;
          tokenScores[q][b][t] += x;
          scores[q][b] += x;
        }
      }
    }
  }
  return { scores, moduleScores, tokenScores };
}
