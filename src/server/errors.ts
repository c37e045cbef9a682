import { InputError } from "../util/errors.js";
import { PoolBusyError, PoolClosedError, PoolTimeoutError, WorkerCrashedError } from "../workers/errors.js";

/** Values of `extensions.code` in GraphQL error responses (and of `error.code` in JSON HTTP errors). */
export type ErrorCode =
  | "BAD_USER_INPUT"
  | "UNKNOWN_INDEX"
  | "SERVER_BUSY"
  | "TIMEOUT"
  | "WORKER_CRASHED"
  | "SHUTTING_DOWN"
  | "DATABASE_UNAVAILABLE"
  | "QUERY_TOO_COMPLEX"
  | "QUERY_TOO_DEEP"
  | "UNAUTHENTICATED"
  | "PAYLOAD_TOO_LARGE"
  | "INTERNAL_SERVER_ERROR";

/**
 * HTTP status of a response carrying the code. Codes absent here leave the status to Apollo (200 for
 * errors met while resolving fields: other fields of the same request may still have data).
 */
const HTTP_STATUS: Partial<Record<ErrorCode, number>> = {
  SERVER_BUSY: 503,
  SHUTTING_DOWN: 503,
  DATABASE_UNAVAILABLE: 503,
  TIMEOUT: 504,
  QUERY_TOO_COMPLEX: 400,
  QUERY_TOO_DEEP: 400,
  UNAUTHENTICATED: 401,
  PAYLOAD_TOO_LARGE: 413,
};

export function httpStatusOf(code: ErrorCode): number | undefined {
  return HTTP_STATUS[code];
}

/** An error whose code and message are meant for the client. */
export class ServerError extends Error {
  override readonly name = "ServerError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /**
   * graphql-js copies an original error's `extensions` into the GraphQLError it wraps it in, and
   * Apollo takes the response's HTTP status from `extensions.http` (and strips it from the body).
   */
  get extensions(): { code: ErrorCode; http?: { status: number } } {
    const status = httpStatusOf(this.code);
    return status === undefined ? { code: this.code } : { code: this.code, http: { status } };
  }
}

/** The engine's worker pool's failures, in the server's words. */
function fromPoolError(err: unknown): ServerError | undefined {
  if (err instanceof PoolBusyError)
    return new ServerError("SERVER_BUSY", `the engine is busy (${err.running} running, ${err.waiting} waiting); retry shortly`, { cause: err });
  if (err instanceof PoolTimeoutError) return new ServerError("TIMEOUT", `the engine did not answer within ${err.timeoutMs} ms`, { cause: err });
  if (err instanceof PoolClosedError) return new ServerError("SHUTTING_DOWN", "the engine is shutting down", { cause: err });
  if (err instanceof WorkerCrashedError) {
    const message =
      err.when === "starting"
        ? `could not start an engine worker: ${err.reason}`
        : `the engine worker running this request died (${err.reason}); it is being replaced`;
    return new ServerError("WORKER_CRASHED", message, { cause: err });
  }
  return undefined;
}

/** The client-facing form of any error: InputError is the user's fault, anything unknown is ours. */
export function toServerError(err: unknown): ServerError {
  if (err instanceof ServerError) return err;
  const fromPool = fromPoolError(err);
  if (fromPool) return fromPool;
  if (err instanceof InputError) return new ServerError("BAD_USER_INPUT", err.message, { cause: err });
  const message = err instanceof Error ? err.message : String(err);
  return new ServerError("INTERNAL_SERVER_ERROR", message || "internal server error", { cause: err });
}
