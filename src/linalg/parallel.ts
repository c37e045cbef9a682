/**
 * Splits the symmetric matrix-vector products of the blocked tridiagonal reduction (one per column,
 * together the part of its cost that is not a matrix product) between the calling thread and helper
 * worker threads on shared memory.
 *
 * A product is short (milliseconds), so helpers are driven through Atomics on a shared control block
 * rather than messages: the caller posts a job, does its own share, then blocks until every helper
 * is done. Helpers run the kernel from its source text (evaluated worker code), which works the same
 * under tsc output, tsx and vitest without a separate worker file or TypeScript loader.
 */
import { Worker } from "node:worker_threads";

// Control block slots (Int32).
const SEQ = 0;
const DONE = 1;
const OP = 2;
const FAILED = 3;
const READY = 4;
// Job arguments (Float64).
const ARG_SIZE = 0;
const ARG_ROW0 = 1;
const ARG_ROW1 = 2;
const ARG_FIRST = 3;
const ARG_OUT = 4;

const OP_SYMV = 1;
const OP_STOP = 2;

/** Products over fewer rows are done on the calling thread: too little work to share. */
const SPLIT_MIN_ROWS = 128;

/** How long to wait for a helper to start before going on without it. */
const START_TIMEOUT_MS = 10_000;

/**
 * Waits re-check the control block this often (ms), because a notify can get lost: on a loaded
 * machine (Node 20), a wait on the main thread was seen sleeping on for good after the helper had
 * stored DONE and notified.
 */
const POLL_MS = 2;

interface Helper {
  worker: Worker;
  ctrl: Int32Array;
  args: Float64Array;
}

/** The caller plus zero or more helper threads sharing a matrix and a vector. */
export class SymvTeam {
  private constructor(
    /** The matrix, m×m row-major at the start for the m of each product. */
    readonly matrix: Float64Array,
    /** The vector x of the product. */
    readonly x: Float64Array,
    /** One result per thread, n numbers each. */
    private readonly partials: Float64Array,
    private readonly helpers: Helper[],
  ) {}

  /**
   * Starts up to `threads - 1` helpers over an n×n matrix and vectors of n, in shared memory when
   * there are helpers. A helper that fails to start is left out: the team computes the same result
   * with fewer threads.
   */
  static start(n: number, threads: number): SymvTeam {
    const f64 = (length: number) => (threads > 1 ? new Float64Array(new SharedArrayBuffer(8 * length)) : new Float64Array(length));
    const matrix = f64(n * n);
    const x = f64(n);
    const partials = f64(threads * n);
    const helpers: Helper[] = [];
    for (let i = 1; i < threads; i++) {
      const helper = startHelper(matrix, x, partials, n);
      if (!helper) break;
      helpers.push(helper);
    }
    return new SymvTeam(matrix, x, partials, helpers);
  }

  private get size(): number {
    return this.helpers.length + 1;
  }

  /**
   * y = B x over rows and columns [first, m) of the symmetric m×m matrix B at the start of
   * `matrix`, of which only the upper triangle is read. Returns y (m numbers, zero below `first`),
   * valid until the next call.
   */
  symv(m: number, first: number): Float64Array {
    const { matrix, x, partials, helpers } = this;
    const y = partials.subarray(0, m);
    y.fill(0);
    const rows = m - first;
    if (helpers.length === 0 || rows < SPLIT_MIN_ROWS) {
      symvUpperRows(matrix, m, first, m, x, partials, 0);
      return y;
    }
    // Rows [first, first + r) hold about r·rows − r²/2 elements: split at fractions of rows²/2.
    const bound = (part: number) => first + Math.round(rows * (1 - Math.sqrt(1 - part / this.size)));
    helpers.forEach((h, i) => {
      post(h, OP_SYMV, {
        [ARG_SIZE]: m,
        [ARG_ROW0]: bound(i + 1),
        [ARG_ROW1]: i + 2 === this.size ? m : bound(i + 2),
        [ARG_FIRST]: first,
        [ARG_OUT]: (i + 1) * m,
      });
    });
    symvUpperRows(matrix, m, bound(0), bound(1), x, partials, 0);
    this.join();
    for (let i = 1; i < this.size; i++) {
      const off = i * m;
      for (let j = first; j < m; j++) y[j] += partials[off + j];
    }
    return y;
  }

  /** Stops the helpers; the team must not be used afterwards. */
  close(): void {
    for (const h of this.helpers) {
      post(h, OP_STOP, {});
      void h.worker.terminate();
    }
    this.helpers.length = 0;
  }

  private join(): void {
    for (const h of this.helpers) {
      const seq = Atomics.load(h.ctrl, SEQ);
      for (let done = Atomics.load(h.ctrl, DONE); done !== seq; done = Atomics.load(h.ctrl, DONE)) {
        Atomics.wait(h.ctrl, DONE, done, POLL_MS);
      }
      if (Atomics.load(h.ctrl, FAILED)) throw new Error("eigh: a helper thread failed; see its error above");
    }
  }
}

/**
 * y[out + j] += (B x)_j contributions of rows [r0, r1) of the m×m matrix B (upper triangle, columns
 * from the row on), each row also standing for its column below the diagonal. Four rows go together
 * so that each loaded element of x and y serves all four. Also run by helper threads from its source
 * text: no calls, no imports.
 */
export function symvUpperRows(b: Float64Array, m: number, r0: number, r1: number, x: Float64Array, y: Float64Array, out: number): void {
  let r = r0;
  for (; r + 3 < r1; r += 4) {
    const o0 = r * m;
    const o1 = o0 + m;
    const o2 = o1 + m;
    const o3 = o2 + m;
    const x0 = x[r];
    const x1 = x[r + 1];
    const x2 = x[r + 2];
    const x3 = x[r + 3];
    // The 4×4 diagonal block.
    const b01 = b[o0 + r + 1];
    const b02 = b[o0 + r + 2];
    const b03 = b[o0 + r + 3];
    const b12 = b[o1 + r + 2];
    const b13 = b[o1 + r + 3];
    const b23 = b[o2 + r + 3];
    let s0 = b[o0 + r] * x0 + b01 * x1 + b02 * x2 + b03 * x3;
    let s1 = b01 * x0 + b[o1 + r + 1] * x1 + b12 * x2 + b13 * x3;
    let s2 = b02 * x0 + b12 * x1 + b[o2 + r + 2] * x2 + b23 * x3;
    let s3 = b03 * x0 + b13 * x1 + b23 * x2 + b[o3 + r + 3] * x3;
    for (let j = r + 4; j < m; j++) {
      const a0 = b[o0 + j];
      const a1 = b[o1 + j];
      const a2 = b[o2 + j];
      const a3 = b[o3 + j];
      const xj = x[j];
      s0 += a0 * xj;
      s1 += a1 * xj;
      s2 += a2 * xj;
      s3 += a3 * xj;
      y[out + j] += a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3;
    }
    y[out + r] += s0;
    y[out + r + 1] += s1;
    y[out + r + 2] += s2;
    y[out + r + 3] += s3;
  }
  for (; r < r1; r++) {
    const o = r * m;
    const xr = x[r];
    let s = b[o + r] * xr;
    for (let j = r + 1; j < m; j++) {
      const a = b[o + j];
      s += a * x[j];
      y[out + j] += a * xr;
    }
    y[out + r] += s;
  }
}

function post(h: Helper, op: number, args: Record<number, number>): void {
  for (const [slot, value] of Object.entries(args)) h.args[Number(slot)] = value;
  Atomics.store(h.ctrl, OP, op);
  Atomics.add(h.ctrl, SEQ, 1);
  Atomics.notify(h.ctrl, SEQ);
}

function startHelper(matrix: Float64Array, x: Float64Array, partials: Float64Array, n: number): Helper | undefined {
  const ctrl = new Int32Array(new SharedArrayBuffer(4 * 8));
  const args = new Float64Array(new SharedArrayBuffer(8 * 8));
  let worker: Worker;
  try {
    worker = new Worker(helperSource(), {
      eval: true,
      // Not the caller's flags: the helper runs plain JavaScript and needs no module loader (tsx's,
      // say) of its own.
      execArgv: [],
      workerData: { ctrl: ctrl.buffer, args: args.buffer, n, matrix: matrix.buffer, x: x.buffer, partials: partials.buffer },
    });
  } catch (err) {
    console.warn(`eigh: cannot start a helper thread (${err instanceof Error ? err.message : String(err)}); going on without it`);
    return undefined;
  }
  // Reported once the caller is back in the event loop; without a listener it would crash the process.
  worker.on("error", (err) => console.warn(`eigh: helper thread failed: ${err.message}`));
  worker.unref();
  const deadline = performance.now() + START_TIMEOUT_MS;
  while (Atomics.load(ctrl, READY) === 0 && performance.now() < deadline) Atomics.wait(ctrl, READY, 0, POLL_MS);
  if (Atomics.load(ctrl, READY) === 0) {
    console.warn(`eigh: a helper thread did not start within ${START_TIMEOUT_MS / 1000} s; going on without it`);
    void worker.terminate();
    return undefined;
  }
  return { worker, ctrl, args };
}

let source: string | undefined;

function helperSource(): string {
  source ??= `"use strict";
const { workerData } = require("node:worker_threads");
${symvUpperRows.toString()}
const ctrl = new Int32Array(workerData.ctrl);
const args = new Float64Array(workerData.args);
const matrix = new Float64Array(workerData.matrix);
const x = new Float64Array(workerData.x);
const partials = new Float64Array(workerData.partials);
Atomics.store(ctrl, ${READY}, 1);
Atomics.notify(ctrl, ${READY});
for (let seen = 0; ; ) {
  while (Atomics.load(ctrl, ${SEQ}) === seen) Atomics.wait(ctrl, ${SEQ}, seen, ${POLL_MS});
  seen = Atomics.load(ctrl, ${SEQ});
  const op = Atomics.load(ctrl, ${OP});
  if (op === ${OP_STOP}) break;
  try {
    const m = args[${ARG_SIZE}] | 0;
    const out = args[${ARG_OUT}] | 0;
    partials.fill(0, out + (args[${ARG_FIRST}] | 0), out + m);
    symvUpperRows(matrix, m, args[${ARG_ROW0}] | 0, args[${ARG_ROW1}] | 0, x, partials, out);
  } catch (err) {
    console.error(err);
    Atomics.store(ctrl, ${FAILED}, 1);
  }
  Atomics.store(ctrl, ${DONE}, seen);
  Atomics.notify(ctrl, ${DONE});
}
`;
  return source;
}
