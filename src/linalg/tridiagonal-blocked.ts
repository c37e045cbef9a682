/**
 * Blocked Householder reduction of a symmetric matrix to tridiagonal form, A = Q T Qᵀ (LAPACK
 * dsytrd/dlatrd). Columns are reduced in panels of PANEL: within a panel each column needs one
 * symmetric matrix-vector product with the trailing matrix as it was at the panel's start (corrected
 * for the panel's earlier reflectors by products with the vectors V and W collected so far), and
 * after the panel the trailing matrix takes all its reflectors at once, B −= V Wᵀ + W Vᵀ, as a
 * matrix product. Half of the arithmetic is then matrix products; the other half, the
 * matrix-vector products, is bound by memory: a WebAssembly SIMD kernel (wasm-kernels.ts, as are
 * the panel's corrections) split between threads (parallel.ts).
 *
 * The trailing matrix is kept compact (m×m row-major for its current size m) at the start of the
 * team's shared matrix, and only its upper triangle is kept up to date: row i right of the diagonal
 * is column i below it.
 */
import { ReflectorGroups } from "./back-transform.js";
import { SymvTeam } from "./parallel.js";
import { subtractProduct } from "./products64.js";
import type { Tridiagonal } from "./tridiagonal.js";
import { householder } from "./tridiagonal.js";

/**
 * Columns per panel. The update's product has inner size 2·PANEL: at 3,072 rows it ran at 7 GFLOP/s
 * for 128 and 16 GFLOP/s for 512, while the panel's own work (O(n·PANEL) per column, not matrix
 * products) grows with PANEL.
 */
const PANEL = 64;

/**
 * Below this size the reduction runs on the calling thread alone: its matrix-vector products take
 * less time than starting a helper thread (best of 3 on 2 busy cores: 0.75 s on one thread against
 * 0.98 on two at n = 1,024, 3.4 against 2.1 s at 1,536).
 */
export const HELPERS_MIN_N = 1280;

/** Trailing updates of more rows than this are split in row blocks that skip the lower triangle. */
const UPDATE_BLOCK_ROWS = 768;

/** Tridiagonal form of A plus its Householder vectors v_k (zero up to column k, v_k[k+1] = 1). */
export interface BlockedTridiagonal extends Tridiagonal {
  reflectors: ReflectorGroups;
}

/** Reduces the symmetric row-major n×n matrix `a` (not modified), with `threads` sharing the matrix-vector products. */
export async function tridiagonalizeBlocked(a: Float64Array, n: number, threads: number): Promise<BlockedTridiagonal> {
  const team = SymvTeam.start(n, n < HELPERS_MIN_N ? 1 : threads, 2 * PANEL * (n + 1));
  try {
    return await reduce(a, n, team);
  } finally {
    team.close();
  }
}

async function reduce(a: Float64Array, n: number, team: SymvTeam): Promise<BlockedTridiagonal> {
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  const tau = new Float64Array(n);
  const reflectors = new ReflectorGroups(n);
  const b = team.matrix;
  b.set(a);
  // The panel's vectors and the coefficients of its corrections, in the team's memory for its kernels.
  const v = team.scratch.subarray(0, PANEL * n);
  const w = team.scratch.subarray(PANEL * n, 2 * PANEL * n);
  const vCoef = team.scratch.subarray(2 * PANEL * n, 2 * PANEL * n + PANEL);
  const wCoef = team.scratch.subarray(2 * PANEL * n + PANEL, 2 * PANEL * n + 2 * PANEL);
  const room = updateRoom(n);
  for (let p0 = 0; p0 < n - 1; ) {
    const m = n - p0;
    const nb = Math.min(PANEL, m - 1);
    for (let i = 0; i < nb; i++) {
      const row = i * m;
      const bRow = b.subarray(row, row + m);
      // Row i of B (column i) with the panel's earlier reflectors applied: −Σ_q v_q[i] w_q + w_q[i] v_q.
      for (let q = 0; q < i; q++) {
        vCoef[q] = -w[q * m + i];
        wCoef[q] = -v[q * m + i];
      }
      team.combine(v, m, i, vCoef, bRow, i, m);
      team.combine(w, m, i, wCoef, bRow, i, m);
      d[p0 + i] = bRow[i];
      const h = householder(b, row + i + 1, m - i - 1);
      e[p0 + i] = h.beta;
      tau[p0 + i] = h.tau;
      const vi = v.subarray(i * m, (i + 1) * m);
      vi.fill(0, 0, i + 1);
      vi.set(bRow.subarray(i + 1), i + 1);
      reflectors.store(p0 + i, p0, vi);
      team.x.set(vi);
      const y = team.symv(m, i + 1);
      // B v for the B of the panel's start; the current one is B − Σ_q (v_q w_qᵀ + w_q v_qᵀ).
      team.dots(w, m, i, vi, wCoef, i + 1, m);
      team.dots(v, m, i, vi, vCoef, i + 1, m);
      for (let q = 0; q < i; q++) {
        wCoef[q] = -wCoef[q];
        vCoef[q] = -vCoef[q];
      }
      team.combine(v, m, i, wCoef, y, i + 1, m);
      team.combine(w, m, i, vCoef, y, i + 1, m);
      // w = τ B v − (τ²/2)(vᵀ B v) v, so that H B H = B − v wᵀ − w v^T.
      let yv = 0;
      for (let c = i + 1; c < m; c++) yv += y[c] * vi[c];
      const alpha = -0.5 * h.tau * h.tau * yv;
      const wi = w.subarray(i * m, (i + 1) * m);
      wi.fill(0, 0, i + 1);
      for (let c = i + 1; c < m; c++) wi[c] = h.tau * y[c] + alpha * vi[c];
    }
    await updateTrailing(b, m, nb, v, w, room);
    p0 += nb;
  }
  if (n > 0) d[n - 1] = b[0];
  return { d, e, tau, reflectors };
}

/**
 * The update's arrays, made once for the first (largest) panel and reused by the others: memory
 * the process has not touched before costs 3 to 7 ms per MiB here (see back-transform.ts).
 */
interface UpdateRoom {
  /** The panel's vectors side by side, (m − nb) × 2nb each. */
  xt: Float64Array;
  yt: Float64Array;
  /** A row block's part of B. */
  room: Float64Array;
}

function updateRoom(n: number): UpdateRoom {
  // A row block has at most 1.5 UPDATE_BLOCK_ROWS rows, or fewer than 2 UPDATE_BLOCK_ROWS when alone.
  const rows = Math.min(n, 2 * UPDATE_BLOCK_ROWS);
  return { xt: new Float64Array(2 * PANEL * n), yt: new Float64Array(2 * PANEL * n), room: new Float64Array(rows * n) };
}

/**
 * B' = B[nb:, nb:] − V Wᵀ − W Vᵀ over the upper triangle, for the panel's vectors (rows of v and w,
 * m numbers each), written compact ((m − nb)² row-major) at the start of `b`.
 */
async function updateTrailing(b: Float64Array, m: number, nb: number, v: Float64Array, w: Float64Array, { xt, yt, room }: UpdateRoom): Promise<void> {
  const m2 = m - nb;
  // Row r of xt is (v_q[nb + r])_q followed by (w_q[nb + r])_q, of yt the same with v and w swapped,
  // so that (xt ytᵀ)[r][c] = Σ_q v_q[r] w_q[c] + w_q[r] v_q[c].
  const k = 2 * nb;
  for (let q = 0; q < nb; q++) {
    for (let r = 0; r < m2; r++) {
      const vq = v[q * m + nb + r];
      const wq = w[q * m + nb + r];
      xt[r * k + q] = vq;
      xt[r * k + nb + q] = wq;
      yt[r * k + q] = wq;
      yt[r * k + nb + q] = vq;
    }
  }
  const blocks = Math.max(1, Math.round(m2 / UPDATE_BLOCK_ROWS));
  const edges = Array.from({ length: blocks + 1 }, (_, i) => Math.round((i * m2) / blocks));
  // Rows [r0, r1) need columns [r0, m2): one kernel call each on those of B (copied out of the
  // team's memory, which ONNX Runtime cannot read: it is shared), then the compaction in row order,
  // which only ever writes where every call has already read.
  const updated = [];
  for (let i = 0; i < blocks; i++) {
    const [r0, r1] = [edges[i], edges[i + 1]];
    const width = m2 - r0;
    const c = room.subarray(0, (r1 - r0) * width);
    for (let r = r0; r < r1; r++) c.set(b.subarray((nb + r) * m + nb + r0, (nb + r + 1) * m), (r - r0) * width);
    updated.push(await subtractProduct(c, xt.subarray(r0 * k, r1 * k), yt.subarray(r0 * k, m2 * k), r1 - r0, k, width));
  }
  for (let i = 0; i < blocks; i++) {
    const [r0, r1] = [edges[i], edges[i + 1]];
    const width = m2 - r0;
    for (let r = r0; r < r1; r++) {
      const from = (r - r0) * width + (r - r0);
      b.set(updated[i].subarray(from, (r - r0 + 1) * width), r * m2 + r);
    }
  }
}
