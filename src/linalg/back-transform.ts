/**
 * The eigenvectors of A from those of its tridiagonal form T = Qᵀ A Q: V = Q Z with
 * Q = H_0 H_1 … H_{n−2}, applied to Z group by group from the last, each group of reflectors in
 * compact WY form H_k … H_{k+b−1} = I − Vᵀ T V (LAPACK dlarft/dlarfb, V one vector a row): three
 * matrix products per group, 2n³ multiply-adds in all.
 *
 * Every group is applied to a block of Z's columns in one ONNX Runtime call (products64.ts), so that
 * only finished columns come back: each result ONNX Runtime hands back lands in memory the process
 * has never touched, and on this machine a first touch costs 3 to 7 ms per MiB. With a call per
 * group over all of Z the results added up to about 11 n² numbers at n = 5,632 (the stage took 13 s
 * there), against n² now.
 */
import { applyReflectorGroups, multiply } from "./products64.js";

/**
 * Reflectors per group: the inner size of two of the three products. At n = 3,072 the stage (then a call per group) took
 * 4.5 CPU seconds with groups of 128, 3.6 with 256 and 3.4 with 512 (whose T products cost more).
 */
const GROUP = 256;

/** Columns of Z per call: ONNX Runtime's intermediate results, three of n × COLUMNS, are reused from call to call. */
const COLUMNS = 256;

/**
 * The reflectors v_0 … v_{n−2} of a tridiagonalisation, stored group by group as the products take
 * them: group g (reflectors k0 = g·GROUP … k0 + b − 1) is a row-major b × m block, m = n − k0 − 1,
 * row k − k0 holding v_k from column k0 + 1 on (zero up to column k, one at k + 1).
 */
export class ReflectorGroups {
  readonly data: Float64Array;
  /** Where each group's block starts in `data`. */
  private readonly offsets: number[] = [];

  constructor(readonly n: number) {
    let length = 0;
    for (let k0 = 0; k0 < n - 1; k0 += GROUP) {
      this.offsets.push(length);
      length += this.rows(this.offsets.length - 1) * (n - k0 - 1);
    }
    this.data = new Float64Array(length);
  }

  get count(): number {
    return this.offsets.length;
  }

  /** The number of reflectors in group g. */
  rows(g: number): number {
    return Math.min(GROUP, this.n - 1 - g * GROUP);
  }

  /** Group g's block, rows(g) × (n − g·GROUP − 1). */
  block(g: number): Float64Array {
    const m = this.n - g * GROUP - 1;
    return this.data.subarray(this.offsets[g], this.offsets[g] + this.rows(g) * m);
  }

  /** Stores v_k, given as its entries from column `from` (at most k) to n − 1. */
  store(k: number, from: number, entries: Float64Array): void {
    const g = Math.floor(k / GROUP);
    const k0 = g * GROUP;
    const start = Math.max(from, k0 + 1);
    const row = this.offsets[g] + (k - k0) * (this.n - k0 - 1);
    this.data.set(entries.subarray(start - from), row + start - k0 - 1);
  }
}

/** z := Q z for the n×n row-major `z`, given the reflectors and their `tau`. */
export async function applyReflectors(reflectors: ReflectorGroups, tau: Float64Array, z: Float64Array): Promise<void> {
  const { n, count } = reflectors;
  if (count === 0) return;
  const groups = [];
  for (let g = 0; g < count; g++) {
    const b = reflectors.rows(g);
    const m = n - g * GROUP - 1;
    const v = reflectors.block(g);
    const t = triangularFactor(await multiply(v, v, b, m, b, { transB: true }), tau.subarray(g * GROUP, g * GROUP + b), b);
    groups.push({ v, t, b, m });
  }
  const block = new Float64Array(n * Math.min(COLUMNS, n));
  for (let c0 = 0; c0 < n; c0 += COLUMNS) {
    const c = Math.min(COLUMNS, n - c0);
    const zc = block.subarray(0, n * c);
    for (let r = 0; r < n; r++) zc.set(z.subarray(r * n + c0, r * n + c0 + c), r * c);
    const out = await applyReflectorGroups(groups, zc, n, c);
    for (let r = 0; r < n; r++) z.set(out.subarray(r * c, (r + 1) * c), r * n + c0);
  }
}

/**
 * The upper triangular T of H_0 … H_{b−1} = I − Vᵀ T V from the Gram matrix g = V Vᵀ: forward
 * recurrence T[0:j, j] = −τ_j T[0:j, 0:j] g[0:j, j], T[j][j] = τ_j (dlarft).
 */
function triangularFactor(g: Float64Array, tau: Float64Array, b: number): Float64Array {
  const t = new Float64Array(b * b);
  for (let j = 0; j < b; j++) {
    t[j * b + j] = tau[j];
    for (let i = 0; i < j; i++) {
      let s = 0;
      for (let p = i; p < j; p++) s += t[i * b + p] * g[p * b + j];
      t[i * b + j] = -tau[j] * s;
    }
  }
  return t;
}
