/**
 * Rank-r factors M ~ U V^T of preconditioned query gradients (Section 3.2.2), by a randomized
 * SVD (Halko, Martinsson & Tropp 2011) with oversampling and power iterations: O(out x in x r)
 * work instead of a full SVD of every [out, in+1] matrix. The products with M run on the compute
 * engine; the small [k, k] and orthonormalisation work is float64 on the host.
 */
import { eigh } from "../linalg/eigh.js";
import { orthonormalColumns } from "../linalg/orthonormalize.js";
import { type HostTensor, matMul } from "../runtime/kernels.js";
import { normalGenerator } from "../util/random.js";

const OVERSAMPLING = 10;
const POWER_ITERATIONS = 2;

/** Orthonormal columns spanning those of y [rows, cols]. */
function orth(y: Float32Array, rows: number, cols: number): HostTensor {
  return { data: Float32Array.from(orthonormalColumns(Float64Array.from(y), rows, cols)), dims: [rows, cols] };
}

/** U [out, r] and V [in+1, r] with M ~ U V^T, the best rank-r approximation up to sketching error. */
export async function lowRankFactors(
  matrix: Float32Array,
  rows: number,
  cols: number,
  rank: number,
  seed: number,
): Promise<{ u: Float32Array; v: Float32Array }> {
  const m: HostTensor = { data: matrix, dims: [rows, cols] };
  const k = Math.min(rank + OVERSAMPLING, rows, cols);
  const r = Math.min(rank, k);
  const normal = normalGenerator(seed);
  const sketch: HostTensor = { data: Float32Array.from({ length: cols * k }, normal), dims: [cols, k] };
  let y = orth(await matMul(m, sketch), rows, k);
  for (let i = 0; i < POWER_ITERATIONS; i++) y = orth(await matMul(m, orth(await matMul(m, y, true), cols, k)), rows, k);
  // M ~ Y B with B = Y^T M [k, cols]; keep B's top-r left singular vectors W: M ~ (Y W)(W^T B).
  const b: HostTensor = { data: await matMul(y, m, true), dims: [k, cols] };
  const { vectors } = await eigh(Float64Array.from(await matMul(b, b, false, true)), k);
  // Eigenvalues ascend: the last r columns are the top singular directions.
  const w = new Float32Array(k * r);
  for (let i = 0; i < k; i++) for (let j = 0; j < r; j++) w[i * r + j] = vectors[i * k + (k - r + j)];
  const wT: HostTensor = { data: w, dims: [k, r] };
  return { u: await matMul(y, wT), v: await matMul(b, wT, true) };
}
