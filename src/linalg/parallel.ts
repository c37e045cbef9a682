/**
 * Splits the row-parallel stages of eigh (each step of the tridiagonalisation, forming Q, replaying
 * rotations) between the calling thread and helper worker threads on shared memory.
 *
 * eigh is synchronous, so helpers are driven through Atomics on a shared control block rather than
 * messages: the caller posts a job, does its own share, then blocks until every helper is done.
 * Helpers run the kernels from their source text (evaluated worker code), which works the same
 * under tsc output, tsx and vitest without a separate worker file or TypeScript loader.
 */
import { Worker } from "node:worker_threads";
import { formQtBlocks, formQtKernels } from "./householder-q.js";
import { applyRotations, type RotationBatch, rotationKernels } from "./rotations.js";
import { symvKernels, symvRows, type TrailingStep } from "./tridiagonal.js";

/** Shared matrices the stages work on; all views of SharedArrayBuffers when helpers are used. */
export interface Workspace {
  n: number;
  /** The matrix being reduced, then the Householder vectors, one per row. */
  v: Float64Array;
  /** Vectors of a reduction step (see TrailingStep), then one partial result per helper. */
  vecs: Float64Array;
  /** Compact-WY factors of the reflector groups. */
  t: Float64Array;
  /** Q^T, then Q, then the eigenvectors. */
  q: Float64Array;
  /** Recorded rotations. */
  rot: Float64Array;
}

// Control block slots (Int32).
const SEQ = 0;
const DONE = 1;
const OP = 2;
const FAILED = 3;
const READY = 4;
// Job arguments (Float64).
const ARG_FIRST = 0;
const ARG_STEP = 1;
const ARG_ROW0 = 2;
const ARG_ROW1 = 3;
const ARG_LENGTH = 4;
const ARG_P_OFFSET = 5;

const OP_FORM_QT = 1;
const OP_ROTATE = 2;
const OP_SYMV = 3;
const OP_STOP = 4;

/** Trailing blocks with fewer rows are reduced on the calling thread: too little work to share. */
const SYMV_SPLIT_MIN_ROWS = 128;

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

/** The caller plus zero or more helper threads sharing one {@link Workspace}. */
export class RowTeam {
  private constructor(
    private readonly ws: Workspace,
    private readonly helpers: Helper[],
  ) {}

  /** Number of threads working, the caller included. */
  get size(): number {
    return this.helpers.length + 1;
  }

  /**
   * Starts up to `threads - 1` helpers on `ws` (which must then be shared memory). A helper that
   * fails to start is left out: the team still computes the same result with fewer threads.
   */
  static start(ws: Workspace, threads: number): RowTeam {
    const helpers: Helper[] = [];
    for (let i = 1; i < threads; i++) {
      const helper = startHelper(ws);
      if (!helper) break;
      helpers.push(helper);
    }
    return new RowTeam(ws, helpers);
  }

  /** A reduction step that splits the trailing rows into parts with equal numbers of elements. */
  trailingStep(): TrailingStep {
    const { ws, helpers } = this;
    const n = ws.n;
    const run = (i0: number) => {
      const m = n - i0;
      if (helpers.length === 0 || m < SYMV_SPLIT_MIN_ROWS) {
        symvRows(ws.v, n, i0, n, ws.vecs, 3 * n);
        return;
      }
      // Rows [i0, i0 + x) hold about x m - x^2 / 2 elements: solve for fractions of m^2 / 2.
      const bound = (part: number) => i0 + Math.round(m * (1 - Math.sqrt(1 - part / this.size)));
      helpers.forEach((h, i) => {
        post(h, OP_SYMV, { [ARG_ROW0]: bound(i + 1), [ARG_ROW1]: i + 2 === this.size ? n : bound(i + 2), [ARG_P_OFFSET]: (4 + i) * n });
      });
      symvRows(ws.v, n, i0, bound(1), ws.vecs, 3 * n);
      this.join();
      const p = ws.vecs;
      for (let i = 0; i < helpers.length; i++) {
        const off = (4 + i) * n;
        for (let j = i0; j < n; j++) p[3 * n + j] += p[off + j];
      }
    };
    return { vecs: ws.vecs.subarray(0, 4 * n), run };
  }

  /** Fills ws.q with Q^T, blocks of rows dealt round-robin so that every thread gets a fair share. */
  formQt(): void {
    const { ws } = this;
    this.helpers.forEach((h, i) => post(h, OP_FORM_QT, { [ARG_FIRST]: i + 1, [ARG_STEP]: this.size }));
    formQtBlocks(ws.q, ws.v, ws.t, ws.n, 0, this.size);
    this.join();
  }

  /** Replays the batch recorded in ws.rot on the rows of ws.q, in equal row ranges. */
  rotate(batch: RotationBatch): void {
    const { ws } = this;
    const share = Math.ceil(ws.n / this.size);
    this.helpers.forEach((h, i) => {
      const row0 = Math.min(ws.n, (i + 1) * share);
      post(h, OP_ROTATE, { [ARG_ROW0]: row0, [ARG_ROW1]: Math.min(ws.n, row0 + share), [ARG_LENGTH]: batch.length });
    });
    applyRotations(ws.q, ws.n, 0, Math.min(ws.n, share), batch);
    this.join();
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

/** Allocates a workspace for `threads` threads, in shared memory if there is more than one. */
export function allocateWorkspace(n: number, rotationNumbers: number, threads: number): Workspace {
  const f64 = (length: number) => (threads > 1 ? new Float64Array(new SharedArrayBuffer(8 * length)) : new Float64Array(length));
  return { n, v: f64(n * n), vecs: f64((3 + threads) * n), t: f64(16 * Math.ceil(n / 4)), q: f64(n * n), rot: f64(rotationNumbers) };
}

function post(h: Helper, op: number, args: Record<number, number>): void {
  for (const [slot, value] of Object.entries(args)) h.args[Number(slot)] = value;
  Atomics.store(h.ctrl, OP, op);
  Atomics.add(h.ctrl, SEQ, 1);
  Atomics.notify(h.ctrl, SEQ);
}

function startHelper(ws: Workspace): Helper | undefined {
  const ctrl = new Int32Array(new SharedArrayBuffer(4 * 8));
  const args = new Float64Array(new SharedArrayBuffer(8 * 8));
  const { n, v, vecs, t, q, rot } = ws;
  let worker: Worker;
  try {
    worker = new Worker(helperSource(), {
      eval: true,
      // Not the caller's flags: the helper runs plain JavaScript and needs no module loader (tsx's,
      // say) of its own.
      execArgv: [],
      workerData: { ctrl: ctrl.buffer, args: args.buffer, n, v: v.buffer, vecs: vecs.buffer, t: t.buffer, q: q.buffer, rot: rot.buffer },
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
${[...symvKernels, ...formQtKernels, ...rotationKernels].map((f) => f.toString()).join("\n")}
const { n } = workerData;
const ctrl = new Int32Array(workerData.ctrl);
const args = new Float64Array(workerData.args);
const v = new Float64Array(workerData.v);
const vecs = new Float64Array(workerData.vecs);
const t = new Float64Array(workerData.t);
const q = new Float64Array(workerData.q);
const rot = new Float64Array(workerData.rot);
Atomics.store(ctrl, ${READY}, 1);
Atomics.notify(ctrl, ${READY});
for (let seen = 0; ; ) {
  while (Atomics.load(ctrl, ${SEQ}) === seen) Atomics.wait(ctrl, ${SEQ}, seen, ${POLL_MS});
  seen = Atomics.load(ctrl, ${SEQ});
  const op = Atomics.load(ctrl, ${OP});
  if (op === ${OP_STOP}) break;
  try {
    if (op === ${OP_SYMV}) {
      const pOff = args[${ARG_P_OFFSET}] | 0;
      vecs.fill(0, pOff, pOff + n);
      symvRows(v, n, args[${ARG_ROW0}] | 0, args[${ARG_ROW1}] | 0, vecs, pOff);
    } else if (op === ${OP_FORM_QT}) formQtBlocks(q, v, t, n, args[${ARG_FIRST}] | 0, args[${ARG_STEP}] | 0);
    else if (op === ${OP_ROTATE}) applyRotations(q, n, args[${ARG_ROW0}] | 0, args[${ARG_ROW1}] | 0, { buf: rot, length: args[${ARG_LENGTH}] | 0 });
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
