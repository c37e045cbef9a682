/**
 * The index's vector for one sequence and one MLP matrix: its EK-FAC-whitened gradient in the
 * eigenbasis, compressed by a Kronecker-structured projection P_out X P_in^T (PCA or random),
 *
 *   v = P_out [W o (Q_S^T G Q_A)] P_in^T,   W = 1/sqrt(Lambda + damping),  G = sum_t g_t a_t^T,
 *
 * so that <v_query, v_train> ~ q^T (G_EKFAC + damping)^-1 g (docs/math.md, section 5). Forming G and
 * rotating it costs several forward passes of the layer. Instead W ~ sum_r u_r v_r^T (see
 * scaling-factors.ts), and since W o (x y^T) = sum_r (u_r o x)(v_r o y)^T,
 *
 *   v = sum_r sum_t (L_r g_t)(R_r a_t)^T,  L_r = P_out diag(u_r) Q_S^T,  R_r = P_in diag(v_r) Q_A^T:
 *
 * per token, rank x (k_out x out + k_in x (in+1)) multiply-adds, a fraction of the layer itself.
 */
import type { ModuleFactors } from "../ekfac/factors.js";
import { type TrackedModule, inputWidth } from "../model/model.js";
import { hashSeed } from "../util/random.js";
import { topEigenvectors } from "../linalg/top-eigenvectors.js";
import { matMul } from "../runtime/kernels.js";
import type { WhitenedMoments } from "./pca.js";
import { projectionTranspose } from "./random-projection.js";
import { scalingFactors, whiteningScale } from "./scaling-factors.js";

export interface ProjectionSettings {
  kOut: number;
  kIn: number;
  /** Terms of the low-rank whitening scale. */
  rank: number;
  seed: number;
  /** "pca": two-sided PCA of whitened training gradients (pca.ts); "random": seeded orthonormal projections. */
  basis: "pca" | "random";
}

export interface ModuleProjection {
  module: TrackedModule;
  /** Effective dims (capped at the matrix's own). */
  kOut: number;
  kIn: number;
  rank: number;
  /** Start of this module's block in the sequence vector; the block has kOut x kIn coordinates. */
  offset: number;
  /** [out, rank x kOut]: the L_r^T side by side. */
  left: Float32Array;
  /** [in+1, rank x kIn]: the R_r^T side by side. */
  right: Float32Array;
  /** Relative Frobenius error of the low-rank whitening scale. */
  scalingError: number;
}

export interface Projection {
  settings: ProjectionSettings;
  modules: ModuleProjection[];
  dim: number;
}

/** Q diag(s_r) P^T for every r, side by side: Q [diag(s_1) P^T .. diag(s_rank) P^T], [n, rank x k]. */
function sideMatrix(q: Float32Array, n: number, pt: Float64Array, k: number, s: Float64Array, rank: number): Promise<Float32Array> {
  const scaled = new Float32Array(n * rank * k);
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < rank; r++) for (let j = 0; j < k; j++) scaled[(i * rank + r) * k + j] = s[r * n + i] * pt[i * k + j];
  }
  return matMul({ data: q, dims: [n, n] }, { data: scaled, dims: [n, rank * k] });
}

/** A module's effective dims: the requested ones, or `moduleDims[m]` when given (sketch.ts), capped at the matrix's own. */
export interface ModuleDims {
  kOut: number;
  kIn: number;
}

/** The projection of every module; with `moments` (basis "pca") the bases come from them. */
export async function buildProjection(
  factors: readonly ModuleFactors[],
  settings: ProjectionSettings,
  moments?: readonly WhitenedMoments[],
  moduleDims?: readonly ModuleDims[],
): Promise<Projection> {
  if ((settings.basis === "pca") !== (moments !== undefined)) throw new Error(`basis ${settings.basis} ${moments ? "takes no" : "needs"} whitened moments`);
  let offset = 0;
  const modules: ModuleProjection[] = [];
  for (const [m, f] of factors.entries()) {
    const out = f.module.outFeatures;
    const nIn = inputWidth(f.module);
    const kOut = Math.min(moduleDims?.[m].kOut ?? settings.kOut, out);
    const kIn = Math.min(moduleDims?.[m].kIn ?? settings.kIn, nIn);
    const scale = await scalingFactors(whiteningScale(f.lambda, f.damping), out, nIn, settings.rank);
    const moment = moments?.[m];
    const pOut = moment ? (await topEigenvectors(moment.rows, out, kOut)).vectors : projectionTranspose(out, kOut, hashSeed(settings.seed, m, 0));
    const pIn = moment ? (await topEigenvectors(moment.cols, nIn, kIn)).vectors : projectionTranspose(nIn, kIn, hashSeed(settings.seed, m, 1));
    const left = await sideMatrix(f.qS, out, pOut, kOut, scale.u, scale.rank);
    const right = await sideMatrix(f.qA, nIn, pIn, kIn, scale.v, scale.rank);
    modules.push({ module: f.module, kOut, kIn, rank: scale.rank, offset, left, right, scalingError: scale.relativeError });
    offset += kOut * kIn;
  }
  return { settings, modules, dim: offset };
}
