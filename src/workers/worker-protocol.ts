/**
 * Messages between the worker pool and a worker thread (structured clone): a request names a method
 * of the worker; the answer carries its result or its error.
 */
import { InputError } from "../util/errors.js";

export interface WorkerRequest {
  id: number;
  method: string;
  payload: unknown;
}

export type WorkerResponse = { id: number; result: unknown } | { id: number; error: SerializedError };

/** An error as it crosses the thread boundary: class instances do not survive structured clone. */
export interface SerializedError {
  name: string;
  message: string;
  /** The caller's fault: the server answers BAD_USER_INPUT. */
  inputError: boolean;
  /** The worker's stack, for the server's log (never sent to clients). */
  stack?: string;
}

export function serializeError(err: unknown): SerializedError {
  if (err instanceof Error) return { name: err.name, message: err.message, inputError: err instanceof InputError, stack: err.stack };
  return { name: "Error", message: String(err), inputError: false };
}

/** An error thrown by a worker's handler, other than an InputError. */
export class WorkerError extends Error {
  constructor(
    readonly remoteName: string,
    message: string,
  ) {
    super(message);
    this.name = "WorkerError";
  }
}

export function deserializeError(error: SerializedError): Error {
  if (error.inputError) return new InputError(error.message);
  const local = new WorkerError(error.name, error.message);
  if (error.stack) local.stack = `${error.stack}\n    (in the worker thread)`;
  return local;
}
