/**
 * Splits the symmetric matrix-vector products of the blocked tridiagonal reduction (one per column,
 * together the part of its cost that is not a matrix product) between the calling thread and helper
 * worker threads, all running the WebAssembly kernels of wasm-kernels.ts over one shared memory,
 * which also holds the reduction's other vectors for the kernels the calling thread runs alone.
 *
 * A product is short (milliseconds), so helpers are driven through Atomics on a shared control block
 * rather than messages: the caller posts a job, does its own share, then blocks until every helper
 * is done. Helpers are evaluated worker code handed the compiled kernel, which works the same under
 * tsc output, tsx and vitest without a separate worker file or TypeScript loader.
 */
import { Worker } from "node:worker_threads";
import { type WasmKernels, wasmKernelModule, wasmKernels } from "./wasm-kernels.js";

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
/** Byte address of the helper's result in the shared memory. */
const ARG_OUT = 4;

const OP_SYMV = 1;
const OP_STOP = 2;

/** Products over fewer rows are done on the calling thread: too little work to share. */
const SPLIT_MIN_ROWS = 128;

/** A WebAssembly page; the kernel's memory holds at most 65,536 of them (4 GiB). */
const PAGE_BYTES = 65536;
const MAX_PAGES = 65536;

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
    /** `scratch` numbers for the caller, in the same memory, for {@link dots} and {@link combine}. */
    readonly scratch: Float64Array,
    /** One result per thread, n numbers each. */
    private readonly partials: Float64Array,
    private readonly kernels: WasmKernels,
    private readonly helpers: Helper[],
  ) {}

  /**
   * Starts up to `threads - 1` helpers over an n×n matrix, vectors of n and `scratch` numbers in one
   * shared memory. A helper that fails to start is left out: the team computes the same result with
   * fewer threads.
   */
  static start(n: number, threads: number, scratch = 0): SymvTeam {
    const bytes = 8 * (n * n + n + threads * n + scratch);
    const pages = Math.max(1, Math.ceil(bytes / PAGE_BYTES));
    if (pages > MAX_PAGES) throw new Error(`eigh: a ${n}×${n} matrix exceeds the 4 GiB that the blocked solver's kernel can address`);
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    const matrix = new Float64Array(memory.buffer, 0, n * n);
    const x = new Float64Array(memory.buffer, matrix.byteLength, n);
    const partials = new Float64Array(memory.buffer, x.byteOffset + x.byteLength, threads * n);
    const extra = new Float64Array(memory.buffer, partials.byteOffset + partials.byteLength, scratch);
    const helpers: Helper[] = [];
    for (let i = 1; i < threads; i++) {
      const helper = startHelper(memory, x.byteOffset);
      if (!helper) break;
      helpers.push(helper);
    }
    return new SymvTeam(matrix, x, extra, partials, wasmKernels(memory), helpers);
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
    const { x, partials, kernels, helpers } = this;
    const y = partials.subarray(0, m);
    y.fill(0);
    const rows = m - first;
    if (helpers.length === 0 || rows < SPLIT_MIN_ROWS) {
      kernels.symv(0, m, first, m, x.byteOffset, partials.byteOffset);
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
        [ARG_OUT]: partials.byteOffset + 8 * (i + 1) * m,
      });
    });
    kernels.symv(0, m, bound(0), bound(1), x.byteOffset, partials.byteOffset);
    this.join();
    for (let i = 1; i < this.size; i++) {
      const off = i * m;
      for (let j = first; j < m; j++) y[j] += partials[off + j];
    }
    return y;
  }

  /**
   * out[q] = Σ_c rows[q·stride + c] x[c] over columns [c0, c1), for q < count, on the calling
   * thread; all three arrays in this team's memory (matrix, x, scratch or a product's result).
   */
  dots(rows: Float64Array, stride: number, count: number, x: Float64Array, out: Float64Array, c0: number, c1: number): void {
    this.kernels.dots(this.address(rows), stride, count, this.address(x), this.address(out), c0, c1);
  }

  /** y[c] += Σ_q coef[q] rows[q·stride + c] over columns [c0, c1), for q < count: {@link dots}'s transpose. */
  combine(rows: Float64Array, stride: number, count: number, coef: Float64Array, y: Float64Array, c0: number, c1: number): void {
    this.kernels.combine(this.address(rows), stride, count, this.address(coef), this.address(y), c0, c1);
  }

  private address(view: Float64Array): number {
    if (view.buffer !== this.matrix.buffer) throw new Error("eigh: a kernel's array is outside the team's memory");
    return view.byteOffset;
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

function post(h: Helper, op: number, args: Record<number, number>): void {
  for (const [slot, value] of Object.entries(args)) h.args[Number(slot)] = value;
  Atomics.store(h.ctrl, OP, op);
  Atomics.add(h.ctrl, SEQ, 1);
  Atomics.notify(h.ctrl, SEQ);
}

/** A helper over `memory`, where the matrix starts at byte 0 and x at byte `x`. */
function startHelper(memory: WebAssembly.Memory, x: number): Helper | undefined {
  const ctrl = new Int32Array(new SharedArrayBuffer(4 * 8));
  const args = new Float64Array(new SharedArrayBuffer(8 * 8));
  let worker: Worker;
  try {
    worker = new Worker(helperSource(), {
      eval: true,
      // Not the caller's flags: the helper runs plain JavaScript and needs no module loader (tsx's,
      // say) of its own.
      execArgv: [],
      workerData: { ctrl: ctrl.buffer, args: args.buffer, module: wasmKernelModule(), memory, x },
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
const ctrl = new Int32Array(workerData.ctrl);
const args = new Float64Array(workerData.args);
const symv = new WebAssembly.Instance(workerData.module, { env: { memory: workerData.memory } }).exports.symv;
const values = new Float64Array(workerData.memory.buffer);
Atomics.store(ctrl, ${READY}, 1);
Atomics.notify(ctrl, ${READY});
for (let seen = 0; ; ) {
  while (Atomics.load(ctrl, ${SEQ}) === seen) Atomics.wait(ctrl, ${SEQ}, seen, ${POLL_MS});
  seen = Atomics.load(ctrl, ${SEQ});
  const op = Atomics.load(ctrl, ${OP});
  if (op === ${OP_STOP}) break;
  try {
    const m = args[${ARG_SIZE}] | 0;
    const out = args[${ARG_OUT}];
    values.fill(0, out / 8 + (args[${ARG_FIRST}] | 0), out / 8 + m);
    symv(0, m, args[${ARG_ROW0}] | 0, args[${ARG_ROW1}] | 0, workerData.x, out);
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
