/**
 * Eigendecomposition of a symmetric tridiagonal matrix by divide and conquer (Cuppen; LAPACK dstedc,
 * dlaed1 to dlaed4), whose cost is matrix products.
 *
 * T is torn in two by its middle off-diagonal β: T = diag(T1', T2') + ρ u uᵀ with ρ = |β|,
 * u = e_last ± e_first and T1', T2' T's halves with |β| taken off their touching diagonal entries.
 * Given T1' = Z1 D1 Z1ᵀ and T2' = Z2 D2 Z2ᵀ (recursively), T = Q (D + ρ z zᵀ) Qᵀ with Q = diag(Z1, Z2)
 * and z = Qᵀ u, and the eigenvectors of the rank-one update D + ρ z zᵀ follow from the roots of its
 * secular equation (secular.ts). The eigenvectors of T are Q times those: two products, one per half
 * of Q's rows, which are the whole cost once n is a few hundred.
 *
 * Deflation (dlaed2) keeps the products small and the roots well separated: a z_j negligible next
 * to the tolerance leaves d_j and column j of Q as they are, and two d's so close that a rotation
 * can zero one z entry are merged. The eigenvectors of the rank-one problem use Gu and Eisenstat's
 * recomputed z (dlaed3), which makes them orthogonal to working precision however close the roots.
 */
import type { Eigh } from "./eigenpairs.js";
import { tridiagonalByRotations } from "./eigh-rotations.js";
import { multiply } from "./products64.js";
import { poleDistances, secularRoot } from "./secular.js";

const EPS = 2 ** -52;
/** Subproblems this small are solved by QL (LAPACK's smlsiz is 25). */
const LEAF_SIZE = 32;

/** Where a column of Q is nonzero, which decides the product it joins (dlaed2's coltyp). */
const TOP = 1;
const BOTH = 2;
const BOTTOM = 3;
const DEFLATED = 4;

/**
 * Eigendecomposition of the symmetric tridiagonal matrix with diagonal `d` and off-diagonal `e`
 * (e[i] = T[i][i+1], length n − 1 or more); neither is modified.
 */
export async function tridiagonalEigen(d: Float64Array, e: Float64Array): Promise<Eigh> {
  const n = d.length;
  // Scaled to norm about 1, as dstedc does, so that the deflation tolerance is absolute; by a power
  // of two, so that eigenvalues that deflate at once (a diagonal T) come back exact.
  let max = 0;
  for (let i = 0; i < n; i++) max = Math.max(max, Math.abs(d[i]), i < n - 1 ? Math.abs(e[i]) : 0);
  if (max === 0) return tridiagonalByRotations(d, e);
  const scale = 2 ** Math.min(1023, Math.ceil(Math.log2(max)));
  const result = await solve(
    d.map((x) => x / scale),
    e.subarray(0, Math.max(0, n - 1)).map((x) => x / scale),
  );
  for (let i = 0; i < n; i++) result.values[i] *= scale;
  return result;
}

async function solve(d: Float64Array, e: Float64Array): Promise<Eigh> {
  const n = d.length;
  if (n <= LEAF_SIZE) return tridiagonalByRotations(d, e);
  const n1 = n >> 1;
  const beta = e[n1 - 1];
  const d1 = d.slice(0, n1);
  const d2 = d.slice(n1);
  d1[n1 - 1] -= Math.abs(beta);
  d2[0] -= Math.abs(beta);
  const top = await solve(d1, e.subarray(0, n1 - 1));
  const bottom = await solve(d2, e.subarray(n1));
  return merge(top, bottom, n1, n - n1, beta);
}

/** The eigendecomposition of diag(T1', T2') + |β| u uᵀ from those of T1' (`top`) and T2' (`bottom`). */
async function merge(top: Eigh, bottom: Eigh, n1: number, n2: number, beta: number): Promise<Eigh> {
  const n = n1 + n2;
  // Q = diag(Z1, Z2), its columns typed by where they are nonzero.
  const q = new Float64Array(n * n);
  for (let r = 0; r < n1; r++) q.set(top.vectors.subarray(r * n1, (r + 1) * n1), r * n);
  for (let r = 0; r < n2; r++) q.set(bottom.vectors.subarray(r * n2, (r + 1) * n2), (n1 + r) * n + n1);
  const type = Int8Array.from({ length: n }, (_, j) => (j < n1 ? TOP : BOTTOM));
  const d = new Float64Array(n);
  d.set(top.values);
  d.set(bottom.values, n1);
  // z = Qᵀ u / √2 (unit norm: a row of Z1 and one of Z2), and ρ = 2|β| to match.
  const z = new Float64Array(n);
  const sign = beta < 0 ? -1 : 1;
  for (let j = 0; j < n1; j++) z[j] = top.vectors[(n1 - 1) * n1 + j] * Math.SQRT1_2;
  for (let j = 0; j < n2; j++) z[n1 + j] = sign * bottom.vectors[j] * Math.SQRT1_2;
  const rho = 2 * Math.abs(beta);

  const kept = deflate(d, z, rho, q, n, type);
  const k = kept.length;
  const rankOne =
    k > 0
      ? rankOneEigen(
          Float64Array.from(kept, (j) => d[j]),
          Float64Array.from(kept, (j) => z[j]),
          rho,
        )
      : undefined;
  // Every column goes straight to its place in ascending order of the eigenvalues: the kept ones
  // (the rank-one problem's values, in order) merged with the deflated ones (d_j and column j of Q).
  const deflated = Array.from({ length: n }, (_, j) => j)
    .filter((j) => type[j] === DEFLATED)
    .sort((a, b) => d[a] - d[b]);
  const values = new Float64Array(n);
  const keptAt = new Int32Array(k);
  const vectors = new Float64Array(n * n);
  for (let p = 0, a = 0, b = 0; p < n; p++) {
    if (b === deflated.length || (a < k && (rankOne as Eigh).values[a] <= d[deflated[b]])) {
      values[p] = (rankOne as Eigh).values[a];
      keptAt[a++] = p;
    } else {
      const j = deflated[b++];
      values[p] = d[j];
      for (let r = 0; r < n; r++) vectors[r * n + p] = q[r * n + j];
    }
  }
  if (rankOne) await rotateKept(q, n, n1, kept, type, rankOne.vectors, keptAt, vectors);
  return { values, vectors };
}

/**
 * dlaed2: marks the columns whose eigenpair is (d_j, Q e_j) as DEFLATED, rotating pairs of columns
 * of Q (and their d, z) where two d's are too close to tell apart. Returns the other columns in
 * ascending order of d, for the secular equation.
 */
function deflate(d: Float64Array, z: Float64Array, rho: number, q: Float64Array, n: number, type: Int8Array): number[] {
  let zMax = 0;
  let dMax = 0;
  for (let j = 0; j < n; j++) {
    zMax = Math.max(zMax, Math.abs(z[j]));
    dMax = Math.max(dMax, Math.abs(d[j]));
  }
  const tol = 8 * EPS * Math.max(dMax, zMax);
  const order = Array.from({ length: n }, (_, j) => j).sort((a, b) => d[a] - d[b]);
  const kept: number[] = [];
  let previous = -1;
  for (const j of order) {
    if (rho * Math.abs(z[j]) <= tol) {
      type[j] = DEFLATED;
      continue;
    }
    if (previous >= 0) {
      // Zero z[previous] by a rotation of the two columns: if the off-diagonal this leaves between
      // them is negligible, previous deflates with the rotated value.
      const tau = Math.hypot(z[j], z[previous]);
      const c = z[j] / tau;
      const s = -z[previous] / tau;
      const t = d[j] - d[previous];
      if (Math.abs(t * c * s) <= tol) {
        z[j] = tau;
        z[previous] = 0;
        if (type[j] !== type[previous]) type[j] = BOTH;
        type[previous] = DEFLATED;
        for (let r = 0; r < n; r++) {
          const x = q[r * n + previous];
          const y = q[r * n + j];
          q[r * n + previous] = c * x + s * y;
          q[r * n + j] = c * y - s * x;
        }
        const dp = d[previous];
        d[previous] = dp * c * c + d[j] * s * s;
        d[j] = dp * s * s + d[j] * c * c;
        previous = j;
        continue;
      }
      kept.push(previous);
    }
    previous = j;
  }
  if (previous >= 0) kept.push(previous);
  return kept;
}

/**
 * Eigenpairs of diag(d) + ρ z zᵀ with d strictly ascending and no z_j negligible: values ascending,
 * vectors k×k row-major, one a row (row j for value j), which the loop writes in order.
 */
function rankOneEigen(d: Float64Array, z: Float64Array, rho: number): Eigh {
  const k = d.length;
  if (k === 1) return { values: Float64Array.of(d[0] + rho * z[0] * z[0]), vectors: Float64Array.of(1) };
  const roots = Array.from({ length: k }, (_, i) => secularRoot(d, z, rho, i));
  // Gu–Eisenstat: the z for which the computed roots are exact, ẑ_i² ∝ Π_j (λ_j − d_i) / Π_{j≠i} (d_j − d_i).
  const w = new Float64Array(k).fill(1);
  const delta = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    poleDistances(d, roots[j], delta);
    for (let i = 0; i < k; i++) w[i] *= i === j ? delta[i] : delta[i] / (d[i] - d[j]);
  }
  const zHat = Float64Array.from(w, (wi, i) => Math.sign(z[i]) * Math.sqrt(-wi));
  const vectors = new Float64Array(k * k);
  const values = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    poleDistances(d, roots[j], delta);
    values[j] = d[roots[j].origin] + roots[j].tau;
    let norm = 0;
    for (let i = 0; i < k; i++) {
      const x = zHat[i] / delta[i];
      delta[i] = x;
      norm += x * x;
    }
    norm = 1 / Math.sqrt(norm);
    for (let i = 0; i < k; i++) vectors[j * k + i] = delta[i] * norm;
  }
  return { values, vectors };
}

/**
 * Writes the columns of Q[:, kept] U into `out` (n×n), column a to column keptAt[a]: the top n1 rows
 * from the kept columns that are nonzero there, the bottom rows likewise, two products instead of
 * one of n rows. `ut` is Uᵀ (k×k, row a the coefficients of output column a).
 */
async function rotateKept(
  q: Float64Array,
  n: number,
  n1: number,
  kept: number[],
  type: Int8Array,
  ut: Float64Array,
  keptAt: Int32Array,
  out: Float64Array,
): Promise<void> {
  const k = kept.length;
  const half = async (rows: number, row0: number, excluded: number) => {
    const use = kept.map((_, a) => a).filter((a) => type[kept[a]] !== excluded);
    if (rows === 0 || use.length === 0) return;
    const width = use.length;
    const qPart = new Float64Array(rows * width);
    for (let r = 0; r < rows; r++) {
      const src = (row0 + r) * n;
      for (let c = 0; c < width; c++) qPart[r * width + c] = q[src + kept[use[c]]];
    }
    const utPart = new Float64Array(k * width);
    for (let a = 0; a < k; a++) for (let c = 0; c < width; c++) utPart[a * width + c] = ut[a * k + use[c]];
    const product = await multiply(qPart, utPart, rows, width, k, { transB: true });
    for (let r = 0; r < rows; r++) {
      const dst = (row0 + r) * n;
      const src = r * k;
      for (let a = 0; a < k; a++) out[dst + keptAt[a]] = product[src + a];
    }
  };
  await half(n1, 0, BOTTOM);
  await half(n - n1, n1, TOP);
}
