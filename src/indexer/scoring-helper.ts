/**
 * A second thread for the products of a query with many stored rows: the first tier's scan, the
 * sketch's two passes, a distribution over every row. They read tens of megabytes a query and are
 * bound by one core's memory bandwidth (the demo: 12 MB in 1.4 ms, 32 MB in 3.3 ms), which a
 * second core doubles. The caller and the helper take the rows CHUNK_ROWS at a time from one
 * counter until none are left, so the helper, which wakes about half a millisecond late, takes
 * what it has time for; a helper that has not woken when the rows run out is let sleep. They meet
 * through one SharedArrayBuffer and Atomics, without the event loop (the caller is synchronous).
 * The rows must be in shared memory; both score with the same function (row-scores.ts
 * scoreRowsInto), so the answers are the same to the bit.
 *
 * A call is begun, then finished: between the two the caller may do other work (the engine begins
 * the first tier's scan, then runs the sketch's projection in ONNX Runtime while the helper scans).
 * Below SPLIT_MIN_ROWS rows, while another call is begun, or once the helper failed or timed out,
 * the caller scores alone.
 */
import type { Worker } from "node:worker_threads";
import { spawnTsWorker } from "../workers/spawn-worker.js";
import { type PendingScores, type QueryPart, type RowScorer, localScorer, scoreRowsInto } from "./row-scores.js";
import type { StoredVectors } from "./vector-file.js";

/** Fewer rows than this (a query's 10 hits by layer, say) are scored by the caller alone, done before the helper would wake. */
const SPLIT_MIN_ROWS = 64;

/** Rows taken at a time: an atomic add per 16 rows costs nothing beside their products, and leaves the other thread little to wait for. */
export const CHUNK_ROWS = 16;

/** Query parts the exchange holds: a part per block of the layout (or per 2^17 values of one), far fewer in any index. */
export const HELPER_MAX_PARTS = 4096;

/**
 * The helper's state, control[STATE]: `work` asked by the caller, `busy` once the helper took it
 * (the caller can no longer call it off), then its answer.
 */
export const HelperState = { idle: 0, work: 1, busy: 2, done: 3, failed: 4, stop: 5 } as const;

/** Slots of the control array: the rows are [0, count), `next` the first not yet taken. */
export const Control = { state: 0, file: 1, parts: 2, count: 3, hasRows: 4, next: 5 } as const;

/**
 * Takes CHUNK_ROWS rows at a time until none are left, writing their scores into views.out (both
 * threads run this); returns how many rows this thread scored.
 */
export function scoreChunks(views: ReturnType<typeof exchangeViews>, file: StoredVectors, parts: readonly QueryPart[]): number {
  const { control } = views;
  const count = control[Control.count];
  const rows = control[Control.hasRows] ? views.rows : undefined;
  let scored = 0;
  for (let from = Atomics.add(control, Control.next, CHUNK_ROWS); from < count; from = Atomics.add(control, Control.next, CHUNK_ROWS)) {
    const to = Math.min(count, from + CHUNK_ROWS);
    scoreRowsInto(file, parts, rows, views.out, from, to);
    scored += to - from;
  }
  return scored;
}

/** The files' arrays and the exchange, as the helper thread receives them. */
export interface HelperData {
  files: StoredVectors[];
  exchange: SharedArrayBuffer;
  maxRows: number;
  maxValues: number;
}

/** A part's float64 slots in the exchange: offset, length of its values, scale, and coordinates covered (sign planes; else 0). */
const PART_SLOTS = 4;
/** Where the parts' values start in the exchange: after the control (32 bytes) and the parts' slots. */
const VALUES_AT = 32 + 8 * PART_SLOTS * HELPER_MAX_PARTS;

/** The exchange's views: control, parts' [offset, length, scale, size], their values (int8, float32, or sign planes), the rows and their scores. */
export function exchangeViews({ exchange, maxRows, maxValues }: Pick<HelperData, "exchange" | "maxRows" | "maxValues">) {
  const control = new Int32Array(exchange, 0, 8);
  const partsMeta = new Float64Array(exchange, 32, PART_SLOTS * HELPER_MAX_PARTS);
  const rowsAt = VALUES_AT + 4 * maxValues;
  return {
    control,
    partsMeta,
    float32Values: new Float32Array(exchange, VALUES_AT, maxValues),
    int8Values: new Int8Array(exchange, VALUES_AT, maxValues),
    // Sign planes: 5 bits a coordinate in whole bytes, however their parts fall; the region holds 4 bytes a value.
    uint8Values: new Uint8Array(exchange, VALUES_AT, 4 * maxValues),
    rows: new Int32Array(exchange, rowsAt, maxRows),
    out: new Float32Array(exchange, rowsAt + 4 * maxRows, maxRows),
  };
}

const exchangeBytes = (maxRows: number, maxValues: number): number => VALUES_AT + 4 * maxValues + 8 * maxRows;

/** A helper's resident memory: its thread (measured: 30 MiB) and its exchange, for files of at most these rows and values a row. */
export const scoringHelperBytes = (maxRows: number, maxValues: number): number => 30 * 2 ** 20 + exchangeBytes(maxRows, maxValues);

const isShared = (file: StoredVectors): boolean =>
  file.rows.buffer instanceof SharedArrayBuffer && (!("scales" in file) || file.scales.buffer instanceof SharedArrayBuffer);

/** The parts of `views` as the helper reads them back (written by ScoringHelper.score). */
export function partsFrom(views: ReturnType<typeof exchangeViews>, file: StoredVectors, count: number): QueryPart[] {
  const values = { int8: views.int8Values, sign: views.uint8Values, float32: views.float32Values }[file.elementType ?? "float32"];
  const parts: QueryPart[] = [];
  let at = 0;
  for (let p = 0; p < count; p++) {
    const [offset, length, scale, size] = views.partsMeta.subarray(PART_SLOTS * p, PART_SLOTS * (p + 1));
    parts.push({ offset, values: values.subarray(at, at + length), scale, ...(size > 0 ? { size } : {}) });
    at += length;
  }
  return parts;
}

export class ScoringHelper implements RowScorer {
  readonly #files: StoredVectors[];
  readonly #views: ReturnType<typeof exchangeViews>;
  readonly #worker: Worker;
  #broken = false;
  #helperRows = 0;
  /** A call begun and not yet finished: the exchange is in use, and further calls score alone. */
  #pending = false;

  private constructor(files: StoredVectors[], data: HelperData, worker: Worker) {
    this.#files = files;
    this.#views = exchangeViews(data);
    this.#worker = worker;
  }

  /**
   * A helper for these files (the rows it may be asked to score), once its thread is ready; undefined
   * when one of them is not in shared memory. A thread that cannot start is an error: it loads
   * nothing the caller does not.
   */
  static async start(files: StoredVectors[]): Promise<ScoringHelper | undefined> {
    if (files.length === 0 || !files.every(isShared)) return undefined;
    const maxRows = Math.max(...files.map((f) => f.count));
    const maxValues = Math.max(...files.map((f) => f.dim));
    const data: HelperData = { files, exchange: new SharedArrayBuffer(exchangeBytes(maxRows, maxValues)), maxRows, maxValues };
    const worker = spawnTsWorker(new URL("./scoring-helper-worker.ts", import.meta.url), data);
    await new Promise<void>((resolve, reject) => {
      worker.once("message", () => resolve());
      worker.once("error", reject);
      worker.once("exit", (code) => reject(new Error(`the scoring helper thread exited (code ${code}) before it was ready`)));
    });
    worker.removeAllListeners();
    // Ready: it never keeps the process alive, and a crash leaves the caller scoring alone.
    worker.unref();
    const helper = new ScoringHelper(files, data, worker);
    worker.on("error", () => helper.#fail());
    worker.on("exit", () => helper.#fail());
    return helper;
  }

  /** Whether the helper has neither failed nor been closed. */
  get working(): boolean {
    return !this.#broken;
  }

  /** Rows the helper scored in the last call (0 when it did not wake in time, or the call was not split). */
  get lastHelperRows(): number {
    return this.#helperRows;
  }

  begin(file: StoredVectors, parts: readonly QueryPart[], rows: Int32Array | undefined, count: number): PendingScores {
    const f = this.#files.indexOf(file);
    this.#helperRows = 0;
    if (count < SPLIT_MIN_ROWS || f < 0 || parts.length > HELPER_MAX_PARTS || !this.working || this.#pending) {
      return localScorer.begin(file, parts, rows, count);
    }
    const views = this.#views;
    const { control, partsMeta, int8Values, uint8Values, float32Values } = views;
    let at = 0;
    parts.forEach(({ offset, values, scale, size }, p) => {
      partsMeta.set([offset, values.length, scale, size ?? 0], PART_SLOTS * p);
      if (values instanceof Int8Array) int8Values.set(values, at);
      else if (values instanceof Uint8Array) uint8Values.set(values, at);
      else float32Values.set(values, at);
      at += values.length;
    });
    if (rows) views.rows.set(rows);
    control.set([f, parts.length, count, rows ? 1 : 0, 0], Control.file);
    Atomics.store(control, Control.state, HelperState.work);
    Atomics.notify(control, Control.state);
    this.#pending = true;
    let scores: Float32Array | undefined;
    return {
      finish: () => {
        scores ??= this.#finish(file, parts, rows, count);
        return scores;
      },
    };
  }

  /** The rows of the begun call that are left, scored here; then the helper's, once it is done. */
  #finish(file: StoredVectors, parts: readonly QueryPart[], rows: Int32Array | undefined, count: number): Float32Array {
    const views = this.#views;
    const { control } = views;
    this.#pending = false;
    const started = performance.now();
    const own = scoreChunks(views, file, parts);
    // Still asleep: called off. Else it holds at most one chunk, a small share of ours: a second (or
    // ten times our time) means it is stuck, and its chunk is scored again here with everything else.
    if (Atomics.compareExchange(control, Control.state, HelperState.work, HelperState.idle) !== HelperState.work) {
      const timeoutMs = Math.max(1000, 10 * (performance.now() - started));
      let state: number;
      while ((state = Atomics.load(control, Control.state)) === HelperState.busy) {
        if (Atomics.wait(control, Control.state, HelperState.busy, timeoutMs) === "timed-out") break;
      }
      if (state !== HelperState.done) {
        this.#fail();
        return localScorer.begin(file, parts, rows, count).finish();
      }
      Atomics.store(control, Control.state, HelperState.idle);
      this.#helperRows = count - own;
    }
    return views.out.slice(0, count);
  }

  #fail(): void {
    this.#broken = true;
  }

  /** Stops the helper thread. */
  async close(): Promise<void> {
    this.#broken = true;
    Atomics.store(this.#views.control, Control.state, HelperState.stop);
    Atomics.notify(this.#views.control, Control.state);
    await this.#worker.terminate();
  }
}
