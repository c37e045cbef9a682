/**
 * Recorded sequences of Givens rotations (the sweeps of a QL iteration), replayed on the rows of a
 * matrix: x := x G_1 G_2 ... where rotation i of a sweep mixes columns i and i+1 of every row.
 *
 * Replaying row by row keeps a row in cache while a whole batch of sweeps runs over it, and rows are
 * independent so they can be split across threads. Sweeps are stored in pairs and a pair is
 * replayed as a wavefront (rotation i of the first sweep, then rotation i+1 of the second), so each
 * element is loaded and stored once per two sweeps and the two sweeps' dependency chains overlap.
 * Within a sweep each rotation's result feeds the next; four rows go together to hide that latency.
 */

/**
 * Pairs of sweeps in `buf[0 .. length)`. A pair over columns [lo, hi] (hi > lo) is stored in the
 * order the wavefront reads it: `lo, hi`, then the first sweep's rotation hi-1 as `c, s`, then for
 * i = hi-2 down to lo the first sweep's rotation i and the second sweep's rotation i+1, then the
 * second sweep's rotation lo. A sweep shorter than its pair's range is padded with identities.
 */
export interface RotationBatch {
  buf: Float64Array;
  length: number;
}

/** Numbers needed by one pair of sweeps in an n×n problem. */
export const pairSize = (n: number): number => 2 + 4 * (n - 1);

/**
 * Collects sweeps and packs them in pairs into the batch buffer `buf`. A sweep is written to the
 * arrays returned by {@link begin} (c[i], s[i] for its rotations i in [l, m)) and committed by
 * {@link end}.
 */
export class RotationRecorder {
  readonly batch: RotationBatch;
  private readonly c: Float64Array[];
  private readonly s: Float64Array[];
  private readonly range = [0, 0, 0, 0];
  private pending = 0;

  constructor(
    private readonly n: number,
    buf: Float64Array,
  ) {
    if (buf.length < pairSize(n)) throw new Error(`rotation buffer of ${buf.length} numbers is too small for n = ${n}`);
    this.batch = { buf, length: 0 };
    this.c = [new Float64Array(n), new Float64Array(n)];
    this.s = [new Float64Array(n), new Float64Array(n)];
  }

  /** True when the batch has no room for another pair: consume it and call {@link clear}. */
  get full(): boolean {
    return this.pending === 0 && this.batch.length + pairSize(this.n) > this.batch.buf.length;
  }

  clear(): void {
    this.batch.length = 0;
  }

  begin(l: number, m: number): { c: Float64Array; s: Float64Array } {
    this.range[2 * this.pending] = l;
    this.range[2 * this.pending + 1] = m;
    return { c: this.c[this.pending], s: this.s[this.pending] };
  }

  end(): void {
    if (++this.pending === 2) this.pack();
  }

  /** Pairs a lone last sweep with an identity sweep. */
  flush(): void {
    if (this.pending === 0) return;
    this.range[2] = this.range[0];
    this.range[3] = this.range[1];
    this.c[1].fill(1);
    this.s[1].fill(0);
    this.pack();
  }

  private pack(): void {
    const [l1, m1, l2, m2] = this.range;
    const [c1, c2] = this.c;
    const [s1, s2] = this.s;
    const lo = Math.min(l1, l2);
    const hi = Math.max(m1, m2);
    const buf = this.batch.buf;
    let pos = this.batch.length;
    const put = (c: Float64Array, s: Float64Array, l: number, m: number, i: number) => {
      const inside = i >= l && i < m;
      buf[pos++] = inside ? c[i] : 1;
      buf[pos++] = inside ? s[i] : 0;
    };
    buf[pos++] = lo;
    buf[pos++] = hi;
    put(c1, s1, l1, m1, hi - 1);
    for (let i = hi - 2; i >= lo; i--) {
      put(c1, s1, l1, m1, i);
      put(c2, s2, l2, m2, i + 1);
    }
    put(c2, s2, l2, m2, lo);
    this.batch.length = pos;
    this.pending = 0;
  }
}

/** Replays `batch` on rows [row0, row1) of the row-major n×n matrix `x`. */
export function applyRotations(x: Float64Array, n: number, row0: number, row1: number, batch: RotationBatch): void {
  let r = row0;
  for (; r + 3 < row1; r += 4) {
    const o = r * n;
    rotateRows4(
      x.subarray(o, o + n),
      x.subarray(o + n, o + 2 * n),
      x.subarray(o + 2 * n, o + 3 * n),
      x.subarray(o + 3 * n, o + 4 * n),
      batch.buf,
      batch.length,
    );
  }
  for (; r < row1; r++) rotateRow(x.subarray(r * n, r * n + n), batch.buf, batch.length);
}

function rotateRows4(xa: Float64Array, xb: Float64Array, xc: Float64Array, xd: Float64Array, buf: Float64Array, length: number): void {
  for (let pos = 0; pos < length; ) {
    // `| 0` keeps the indices integers; as doubles they slow every row access.
    const lo = buf[pos] | 0;
    const hi = buf[pos + 1] | 0;
    let c1 = buf[pos + 2];
    let s1 = buf[pos + 3];
    pos += 4;
    // t1 carries the first sweep's running element, t2 the second's.
    let a = xa[hi - 1];
    let b = xb[hi - 1];
    let c = xc[hi - 1];
    let d = xd[hi - 1];
    let ta1 = xa[hi];
    let tb1 = xb[hi];
    let tc1 = xc[hi];
    let td1 = xd[hi];
    let ta2 = s1 * a + c1 * ta1;
    let tb2 = s1 * b + c1 * tb1;
    let tc2 = s1 * c + c1 * tc1;
    let td2 = s1 * d + c1 * td1;
    ta1 = c1 * a - s1 * ta1;
    tb1 = c1 * b - s1 * tb1;
    tc1 = c1 * c - s1 * tc1;
    td1 = c1 * d - s1 * td1;
    for (let i = hi - 2; i >= lo; i--) {
      c1 = buf[pos];
      s1 = buf[pos + 1];
      const c2 = buf[pos + 2];
      const s2 = buf[pos + 3];
      pos += 4;
      a = xa[i];
      b = xb[i];
      c = xc[i];
      d = xd[i];
      const oa = s1 * a + c1 * ta1;
      const ob = s1 * b + c1 * tb1;
      const oc = s1 * c + c1 * tc1;
      const od = s1 * d + c1 * td1;
      ta1 = c1 * a - s1 * ta1;
      tb1 = c1 * b - s1 * tb1;
      tc1 = c1 * c - s1 * tc1;
      td1 = c1 * d - s1 * td1;
      xa[i + 2] = s2 * oa + c2 * ta2;
      xb[i + 2] = s2 * ob + c2 * tb2;
      xc[i + 2] = s2 * oc + c2 * tc2;
      xd[i + 2] = s2 * od + c2 * td2;
      ta2 = c2 * oa - s2 * ta2;
      tb2 = c2 * ob - s2 * tb2;
      tc2 = c2 * oc - s2 * tc2;
      td2 = c2 * od - s2 * td2;
    }
    const c2 = buf[pos];
    const s2 = buf[pos + 1];
    pos += 2;
    xa[lo + 1] = s2 * ta1 + c2 * ta2;
    xb[lo + 1] = s2 * tb1 + c2 * tb2;
    xc[lo + 1] = s2 * tc1 + c2 * tc2;
    xd[lo + 1] = s2 * td1 + c2 * td2;
    xa[lo] = c2 * ta1 - s2 * ta2;
    xb[lo] = c2 * tb1 - s2 * tb2;
    xc[lo] = c2 * tc1 - s2 * tc2;
    xd[lo] = c2 * td1 - s2 * td2;
  }
}

function rotateRow(x: Float64Array, buf: Float64Array, length: number): void {
  for (let pos = 0; pos < length; ) {
    const lo = buf[pos] | 0;
    const hi = buf[pos + 1] | 0;
    let c1 = buf[pos + 2];
    let s1 = buf[pos + 3];
    pos += 4;
    let a = x[hi - 1];
    let t1 = x[hi];
    let t2 = s1 * a + c1 * t1;
    t1 = c1 * a - s1 * t1;
    for (let i = hi - 2; i >= lo; i--) {
      c1 = buf[pos];
      s1 = buf[pos + 1];
      const c2 = buf[pos + 2];
      const s2 = buf[pos + 3];
      pos += 4;
      a = x[i];
      const o = s1 * a + c1 * t1;
      t1 = c1 * a - s1 * t1;
      x[i + 2] = s2 * o + c2 * t2;
      t2 = c2 * o - s2 * t2;
    }
    const c2 = buf[pos];
    const s2 = buf[pos + 1];
    pos += 2;
    x[lo + 1] = s2 * t1 + c2 * t2;
    x[lo] = c2 * t1 - s2 * t2;
  }
}
