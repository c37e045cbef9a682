/**
 * The top-k eigenvectors of a symmetric positive semi-definite matrix, as the projection's PCA
 * needs them (a few dozen of a few thousand). The full eigendecomposition (eigh.ts) costs O(n^3):
 * for GPT-2 small's 3072-wide MLP matrices 25 to 33 s each on two cores (bench eigh), two per
 * layer. Block subspace iteration with Rayleigh-Ritz (Halko, Martinsson & Tropp 2011,
 * Algorithms 4.4 and 5.3) costs O(n^2 b) per step for a block of b = 2k + 16 vectors: each step
 * is one [n, n] x [n, b] product, on the compute engine in float32, and everything of size
 * [n, b] or [b, b] in float64.
 *
 * A PCA basis is only as definite as the eigenvalue gaps around k (on the demo model λ_17/λ_16 is
 * about 0.98), so the iteration stops when the variance the top k Ritz vectors capture has
 * converged, not the vectors one by one: by Ky Fan's principle that is the quantity a projection
 * basis maximises. Problems too small to gain, and any that does not converge, take eigh.
 */
import { type HostTensor, matMul } from "../runtime/kernels.js";
import { eigh, largestFirst, validateMatrix } from "./eigh.js";
import { orthonormalColumns } from "./orthonormalize.js";
import { hashSeed, uniformGenerator } from "../util/random.js";

/** Below this size eigh takes a few seconds at most. */
export const SUBSPACE_MIN_N = 1024;
/**
 * Iteration pays while its block is at most this fraction of n: at n = 1024 a block of 48 took
 * 0.6 s against eigh's 2.3 s, one of 144 took 4 s against 2.5 s (the float64 [n, b] work grows as b^2).
 */
const MAX_BLOCK_FRACTION = 1 / 8;
const OVERSAMPLING = 16;
/** Relative change of the captured variance between two steps at which the iteration stops. */
const CAPTURED_VARIANCE_TOLERANCE = 1e-6;
const MAX_STEPS = 100;

export interface TopEigenvectors {
  /** Row-major [n, k]: column j is the eigenvector of the (j+1)-th largest eigenvalue. */
  vectors: Float64Array;
  /** The k largest eigenvalues (Ritz values), descending. */
  values: Float64Array;
  method: "eigh" | "subspace";
  /** Subspace steps taken (0 for eigh). */
  steps: number;
}

/** The top-k eigenvectors of the symmetric PSD row-major n x n `matrix`. */
export async function topEigenvectors(matrix: Float64Array, n: number, k: number): Promise<TopEigenvectors> {
  if (!Number.isInteger(k) || k < 1 || k > n) throw new Error(`topEigenvectors: k must be an integer from 1 to ${n}, got ${k}`);
  const block = Math.min(n, 2 * k + OVERSAMPLING);
  if (n < SUBSPACE_MIN_N || block > MAX_BLOCK_FRACTION * n) return byEigh(matrix, n, k);
  return (await subspaceIteration(matrix, n, k, block)) ?? byEigh(matrix, n, k);
}

async function byEigh(matrix: Float64Array, n: number, k: number): Promise<TopEigenvectors> {
  return { ...largestFirst(await eigh(matrix, n), n, k), method: "eigh", steps: 0 };
}

/** Undefined when the captured variance has not converged after MAX_STEPS. */
async function subspaceIteration(matrix: Float64Array, n: number, k: number, block: number): Promise<TopEigenvectors | undefined> {
  validateMatrix(matrix, n, "topEigenvectors");
  const uniform = uniformGenerator(hashSeed(n, k, block));
  let q = orthonormalColumns(
    Float64Array.from({ length: n * block }, () => uniform() - 0.5),
    n,
    block,
  );
  const m: HostTensor = { data: Float32Array.from(matrix), dims: [n, n] };
  let previous = Number.NEGATIVE_INFINITY;
  for (let step = 1; step <= MAX_STEPS; step++) {
    const mq = Float64Array.from(await matMul(m, { data: Float32Array.from(q), dims: [n, block] }));
    const ritz = await rayleighRitz(q, mq, n, block);
    const captured = ritz.values.subarray(0, k).reduce((s, x) => s + x, 0);
    if (Math.abs(captured - previous) <= CAPTURED_VARIANCE_TOLERANCE * Math.abs(captured)) {
      // Converged: the Ritz vectors of this step's subspace.
      const vectors = orthonormalColumns(rotate(q, ritz.rotation, k, n, block), n, k);
      return { vectors, values: ritz.values.slice(0, k), method: "subspace", steps: step };
    }
    previous = captured;
    // Next block: M q U, ordered by Ritz value so that the leading columns settle first.
    q = orthonormalColumns(rotate(mq, ritz.rotation, block, n, block), n, block);
  }
  return undefined;
}

/**
 * Rayleigh-Ritz on span(q) for q [n, b] with orthonormal columns, given M q: the eigenpairs of
 * q^T M q, values descending, with the matching eigenvectors as the columns of `rotation` [b, b].
 */
async function rayleighRitz(q: Float64Array, mq: Float64Array, n: number, b: number): Promise<{ values: Float64Array; rotation: Float64Array }> {
  const { values, vectors } = largestFirst(await eigh(symmetric(crossProduct(q, mq, n, b), b), b, { threads: 1 }), b, b);
  return { values, rotation: vectors };
}

/** x^T y for x, y [n, b]: [b, b]. */
function crossProduct(x: Float64Array, y: Float64Array, n: number, b: number): Float64Array {
  const out = new Float64Array(b * b);
  for (let r = 0; r < n; r++) {
    const off = r * b;
    for (let i = 0; i < b; i++) {
      const xi = x[off + i];
      if (xi === 0) continue;
      for (let j = 0; j < b; j++) out[i * b + j] += xi * y[off + j];
    }
  }
  return out;
}

/** (B + B^T) / 2: rounding leaves B slightly asymmetric. */
function symmetric(b: Float64Array, size: number): Float64Array {
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < i; j++) b[i * size + j] = b[j * size + i] = (b[i * size + j] + b[j * size + i]) / 2;
  }
  return b;
}

/** x R[:, 0..c) for x [n, b] and R [b, b]: [n, c]. */
function rotate(x: Float64Array, r: Float64Array, c: number, n: number, b: number): Float64Array {
  const out = new Float64Array(n * c);
  for (let row = 0; row < n; row++) {
    for (let i = 0; i < b; i++) {
      const xi = x[row * b + i];
      if (xi === 0) continue;
      for (let j = 0; j < c; j++) out[row * c + j] += xi * r[i * b + j];
    }
  }
  return out;
}
