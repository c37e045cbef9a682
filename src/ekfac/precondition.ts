/** EK-FAC preconditioning of query gradients, module by module. */
import { tf } from "../backend/backend.js";
import { type FactorTensors, precondition } from "./factors.js";

/** M[query][module] = (G + damping)^-1 G_query for each module's block. */
export function preconditionQueries(factors: readonly FactorTensors[], gradients: readonly tf.Tensor2D[][]): tf.Tensor2D[][] {
  return gradients.map((perModule) => perModule.map((g, m) => precondition(factors[m], g)));
}
