/**
 * Scores of training sequences against prepared queries, per module and per token (Eqs. 30-31):
 * with M the preconditioned query gradient of a module, token t of a training sequence
 * contributes g_t^T M a_t, so no training gradient is ever formed.
 */
import { download, tf } from "../backend/backend.js";
import type { TensorCapture } from "./capture-tensors.js";

/** Queries prepared for one module: token scores of a capture's rows for every query. */
export interface ModuleQueries {
  /** [rows, queries]: g_t^T M_q a_t for each row t and query q. */
  tokenScores(a: tf.Tensor2D, g: tf.Tensor2D): tf.Tensor2D;
  dispose(): void;
}

/** Full [out, in+1] matrices M_q, one per query, side by side. */
export function denseModuleQueries(matrices: readonly tf.Tensor2D[]): ModuleQueries {
  const Q = matrices.length;
  const nIn = matrices[0].shape[1];
  const side = tf.concat([...matrices], 1);
  return {
    tokenScores: (a, g) => tf.tidy(() => tf.sum(tf.mul(tf.reshape(tf.matMul(g, side), [-1, Q, nIn]), tf.expandDims(a, 1)), 2) as tf.Tensor2D),
    dispose: () => side.dispose(),
  };
}

/** Rank-r factors M_q = U_q V_q^T (Section 3.2.2): g_t^T M a_t = (U^T g_t) . (V^T a_t). */
export function lowRankModuleQueries(factors: ReadonlyArray<{ u: tf.Tensor2D; v: tf.Tensor2D }>): ModuleQueries {
  const Q = factors.length;
  const r = factors[0].u.shape[1];
  const us = tf.concat(
    factors.map((f) => f.u),
    1,
  );
  const vs = tf.concat(
    factors.map((f) => f.v),
    1,
  );
  return {
    tokenScores: (a, g) => tf.tidy(() => tf.sum(tf.reshape(tf.mul(tf.matMul(g, us), tf.matMul(a, vs)), [-1, Q, r]), 2) as tf.Tensor2D),
    dispose: () => tf.dispose([us, vs]),
  };
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
export function scoreCapture(capture: TensorCapture, queries: ReadonlyArray<ModuleQueries | undefined>, queryCount: number): BatchScores {
  const { batch } = capture;
  const zeros = () => Array.from({ length: queryCount }, () => new Float64Array(batch.size));
  const scores = zeros();
  const tokenScores = Array.from({ length: queryCount }, () => batch.lengths.map((n) => new Float64Array(n)));
  const moduleScores = capture.modules.map((m, i) => {
    const perModule = zeros();
    const prepared = queries[i];
    if (!prepared) return perModule;
    const rows = download(prepared.tokenScores(m.a, m.g));
    for (let b = 0; b < batch.size; b++) {
      for (let t = 0; t < batch.lengths[b]; t++) {
        const row = b * batch.length + t;
        for (let q = 0; q < queryCount; q++) {
          const x = rows[row * queryCount + q];
          perModule[q][b] += x;
          tokenScores[q][b][t] += x;
          scores[q][b] += x;
        }
      }
    }
    return perModule;
  });
  return { scores, moduleScores, tokenScores };
}
