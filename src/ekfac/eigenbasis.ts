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

/** The eigenbases of A and S; A's is taken from `input` when given (a module that reads another's input). */
export async function eigenbasis(cov: ModuleCovariance, input?: Pick<ModuleEigenbasis, "qA" | "eigA">): Promise<ModuleEigenbasis> {
  let a = input;
  if (!a) {
    const { vectors, values } = await eigh(cov.A, inputWidth(cov.module));
    a = { qA: Float32Array.from(vectors), eigA: values };
  }
  const s = await eigh(cov.S, cov.module.outFeatures);
  return { qA: a.qA, eigA: a.eigA, qS: Float32Array.from(s.vectors), eigS: s.values };
}
