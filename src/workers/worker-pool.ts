import type { Worker } from "node:worker_threads";
import { PoolBusyError, PoolClosedError, PoolTimeoutError, WorkerCrashedError } from "./errors.js";
import { deserializeError, type WorkerRequest, type WorkerResponse } from "./worker-protocol.js";

export interface WorkerPoolOptions {
  /** Starts one worker thread serving the protocol (see worker-host.ts), e.g. with spawnTsWorker. */
  spawn: () => Worker;
  /** Worker threads, each running one request at a time. */
  size: number;
  /** Requests allowed to wait for a free worker, in FIFO order (Infinity: no limit); one more fails with PoolBusyError. */
  maxQueue: number;
  /** Longest wait for an answer, from submission (queueing included), then PoolTimeoutError; none when absent. */
  timeoutMs?: number;
}

export interface WorkerPoolMetrics {
  size: number;
  /** Worker threads alive. */
  workers: number;
  /** Workers running a request. */
  busy: number;
  /** Requests waiting for a worker. */
  queued: number;
  maxQueue: number;
}

interface Job {
  request: WorkerRequest;
  resolve(result: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout | undefined;
  settled: boolean;
}

interface Slot {
  worker: Worker | null;
  /** The request the worker is running; kept after a timeout until the worker answers. */
  job: Job | null;
  /** The worker has answered a request: it is up (an engine worker loads its index first). */
  answered: boolean;
  /** The uncaught exception that is killing the worker, for the crash report. */
  crash: Error | null;
}

/**
 * A fixed set of worker threads with a FIFO queue: CPU-heavy work runs off the event loop. A
 * server bounds the queue and the time, so that overload is refused early (PoolBusyError) instead
 * of piling up; a batch job queues all its work and waits as long as it takes.
 *
 * A worker that crashes fails its request (WorkerCrashedError) and is replaced. A request that times
 * out fails with PoolTimeoutError at once, but its worker is left to finish it (its answer is then
 * dropped) and serves the next request: a thread terminated inside a native call that has not
 * returned (an ONNX Runtime run) aborts the whole process, and every pass the engine runs ends.
 * A worker that dies before ever answering is replaced only when the next request needs it, so
 * that one that cannot start does not respawn in a loop.
 */
export class WorkerPool {
  readonly #options: WorkerPoolOptions;
  readonly #slots: Slot[];
  #queue: Job[] = [];
  #nextId = 1;
  #closed = false;
  /** Waiting for every running request to finish (close with finishRunning). */
  #idle: Array<() => void> = [];

  constructor(options: WorkerPoolOptions) {
    const { size, maxQueue, timeoutMs } = options;
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`worker pool size must be an integer >= 1 (got ${size})`);
    if (!(Number.isInteger(maxQueue) || maxQueue === Infinity) || maxQueue < 0)
      throw new RangeError(`worker pool maxQueue must be an integer >= 0 or Infinity (got ${maxQueue})`);
    if (timeoutMs !== undefined && (!Number.isInteger(timeoutMs) || timeoutMs < 1))
      throw new RangeError(`worker pool timeoutMs must be an integer >= 1 (got ${timeoutMs})`);
    this.#options = options;
    this.#slots = Array.from({ length: options.size }, () => ({ worker: null, job: null, answered: false, crash: null }));
    // Start every worker now, so that they load before the first request arrives.
    try {
      for (const slot of this.#slots) this.#start(slot);
    } catch (err) {
      void this.close();
      throw err;
    }
  }

  /** Runs `method` with `payload` (structured-cloned) on the next free worker; `timeoutMs` overrides the pool's. */
  run<T = unknown>(method: string, payload: unknown, { timeoutMs = this.#options.timeoutMs }: { timeoutMs?: number } = {}): Promise<T> {
    if (this.#closed) return Promise.reject(new PoolClosedError());
    return new Promise<T>((resolve, reject) => {
      const job: Job = {
        request: { id: this.#nextId++, method, payload },
        resolve: resolve as (result: unknown) => void,
        reject,
        timer: timeoutMs === undefined ? undefined : setTimeout(() => this.#timeOut(job, timeoutMs), timeoutMs),
        settled: false,
      };
      if (this.#slots.some((s) => s.job === null) || this.#queue.length < this.#options.maxQueue) {
        this.#queue.push(job);
        this.#dispatch();
      } else {
        this.#settle(job, new PoolBusyError(this.#options.size, this.#options.maxQueue));
      }
    });
  }

  metrics(): WorkerPoolMetrics {
    return {
      size: this.#options.size,
      workers: this.#slots.filter((s) => s.worker !== null).length,
      busy: this.#slots.filter((s) => s.job !== null).length,
      queued: this.#queue.length,
      maxQueue: this.#options.maxQueue,
    };
  }

  /**
   * Fails waiting requests with PoolClosedError and terminates the workers; running requests fail
   * too, unless `finishRunning`: then they are waited for first. A worker terminated inside a
   * native call that has not returned (an ONNX Runtime run) aborts the whole process.
   */
  async close({ finishRunning = false }: { finishRunning?: boolean } = {}): Promise<void> {
    this.#closed = true;
    for (const job of this.#queue.splice(0)) this.#settle(job, new PoolClosedError());
    if (finishRunning && this.#slots.some((s) => s.job && s.worker)) await new Promise<void>((resolve) => this.#idle.push(resolve));
    const exits: Promise<number>[] = [];
    for (const slot of this.#slots) {
      if (slot.job) this.#settle(slot.job, new PoolClosedError());
      slot.job = null;
      if (slot.worker) exits.push(slot.worker.terminate());
      slot.worker = null;
    }
    await Promise.all(exits);
  }

  #start(slot: Slot): Worker {
    const worker = this.#options.spawn();
    Object.assign(slot, { worker, answered: false, crash: null });
    // Events of a worker the slot has since dropped (terminated, replaced) are ignored.
    worker.on("message", (response: WorkerResponse) => slot.worker === worker && this.#answer(slot, response));
    worker.on("messageerror", (err) => {
      const id = slot.job?.request.id;
      if (slot.worker === worker && id !== undefined)
        this.#answer(slot, { id, error: { name: err.name, message: `unreadable answer from the worker: ${err.message}`, inputError: false } });
    });
    worker.on("error", (err) => slot.worker === worker && (slot.crash = err));
    worker.on("exit", (code) => slot.worker === worker && this.#died(slot, code));
    return worker;
  }

  #assign(slot: Slot, job: Job): void {
    let worker = slot.worker;
    try {
      worker ??= this.#start(slot);
    } catch (err) {
      this.#settle(job, new WorkerCrashedError("starting", (err as Error).message, { cause: err }));
      return;
    }
    slot.job = job;
    try {
      worker.postMessage(job.request);
    } catch (err) {
      slot.job = null; // e.g. a payload that cannot be cloned: the worker never saw it
      this.#settle(job, err as Error);
    }
  }

  #answer(slot: Slot, response: WorkerResponse): void {
    const job = slot.job;
    if (!job || job.request.id !== response.id) return;
    slot.job = null;
    slot.answered = true;
    if ("error" in response) this.#settle(job, deserializeError(response.error));
    else this.#settle(job, null, response.result);
    this.#dispatch();
    this.#notifyIdle();
  }

  #died(slot: Slot, code: number): void {
    const { job, answered, crash } = slot;
    slot.worker = null;
    slot.job = null;
    if (job) {
      const reason = crash ? `${crash.name}: ${crash.message}` : `exit code ${code}`;
      this.#settle(job, new WorkerCrashedError("running", reason));
    }
    if (answered && !this.#closed) this.#tryStart(slot);
    this.#dispatch();
    this.#notifyIdle();
  }

  #notifyIdle(): void {
    if (this.#slots.every((s) => !s.job || !s.worker)) for (const resolve of this.#idle.splice(0)) resolve();
  }

  #timeOut(job: Job, timeoutMs: number): void {
    const queued = this.#queue.indexOf(job);
    if (queued >= 0) this.#queue.splice(queued, 1);
    this.#settle(job, new PoolTimeoutError(timeoutMs));
  }

  /** A replacement worker; if it cannot be started, the next request that needs the slot retries. */
  #tryStart(slot: Slot): void {
    try {
      this.#start(slot);
    } catch {
      // The slot stays empty; #assign reports the failure to the request that needs it.
    }
  }

  #dispatch(): void {
    while (!this.#closed && this.#queue.length > 0) {
      const slot = this.#slots.find((s) => s.job === null);
      if (!slot) return;
      this.#assign(slot, this.#queue.shift() as Job);
    }
  }

  #settle(job: Job, error: Error | null, result?: unknown): void {
    if (job.settled) return;
    job.settled = true;
    clearTimeout(job.timer);
    if (error) job.reject(error);
    else job.resolve(result);
  }
}
