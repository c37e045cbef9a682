/** Step 2 of EK-FAC: float64 eigendecompositions of the Kronecker factors. */
import { eigh } from "../linalg/eigh.js";
import type { ModuleCovariance } from "./covariance.js";
import { inputWidth } from "../model/model.js";

export interface ModuleEigenbasis {
  qA: Float32Array;
  eigA: Float64Array;
  qS: Float32Array;
  eigS: Float64Array;
}

export async function eigenbasis(cov: ModuleCovariance): Promise<ModuleEigenbasis> {
  const a = await eigh(cov.A, inputWidth(cov.module));
  const s = await eigh(cov.S, cov.module.outFeatures);
  return { qA: Float32Array.from(a.vectors), eigA: a.values, qS: Float32Array.from(s.vectors), eigS: s.values };
}
