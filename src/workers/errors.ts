/**
 * The worker pool's own failures, with the facts a caller needs to word them: the server maps
 * them to its codes (SERVER_BUSY, TIMEOUT, WORKER_CRASHED, SHUTTING_DOWN in server/errors.ts),
 * a batch job such as `influence build` reports them as they are.
 */

/** Every worker is running a request and the queue is full. */
export class PoolBusyError extends Error {
  override readonly name = "PoolBusyError";
  constructor(
    readonly running: number,
    readonly waiting: number,
  ) {
    super(`all ${running} worker threads are busy and ${waiting} requests are waiting`);
  }
}

/** No answer within the request's time limit (queueing included). */
export class PoolTimeoutError extends Error {
  override readonly name = "PoolTimeoutError";
  constructor(readonly timeoutMs: number) {
    super(`no answer from the worker thread within ${timeoutMs} ms`);
  }
}

/** The worker thread that was to run the request could not start, or died while running it. */
export class WorkerCrashedError extends Error {
  override readonly name = "WorkerCrashedError";
  constructor(
    readonly when: "starting" | "running",
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(
      when === "starting" ? `could not start a worker thread: ${reason}` : `the worker thread running this request died (${reason}); it is being replaced`,
      options,
    );
  }
}

/** The pool was closed before the request was answered. */
export class PoolClosedError extends Error {
  override readonly name = "PoolClosedError";
  constructor() {
    super("the worker pool is closed");
  }
}
