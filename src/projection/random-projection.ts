/**
 * Seeded random projections R^n -> R^k that preserve inner products in expectation:
 * P = sqrt(n/k) x (k orthonormal rows), so E[P^T P] = I, and P^T P = I exactly when k = n.
 * Orthonormal rows have lower variance than i.i.d. Gaussian ones at the same k.
 */
import { orthonormalColumns } from "../linalg/orthonormalize.js";
import { normalGenerator } from "../util/random.js";

/** P^T as an [n, k] row-major matrix (the layout that multiplies row vectors). */
export function projectionTranspose(n: number, k: number, seed: number): Float64Array {
  if (k > n) throw new Error(`cannot project ${n} coordinates onto ${k} > ${n}`);
  const normal = normalGenerator(seed);
  const columns = orthonormalColumns(Float64Array.from({ length: n * k }, normal), n, k);
  const scale = Math.sqrt(n / k);
  for (let i = 0; i < columns.length; i++) columns[i] *= scale;
  return columns;
}
