import { parentPort } from "node:worker_threads";
import { serializeError, type WorkerRequest, type WorkerResponse } from "./worker-protocol.js";

export type WorkerHandlers = Record<string, (payload: unknown) => Promise<unknown>>;

/**
 * Serves the worker pool's requests inside a worker thread: each request runs `handlers[method]`
 * and is answered with its result, or its error (name, message, and whether it is an InputError).
 * Call it once the worker is ready; requests sent before then wait in the thread's message port.
 */
export function hostWorker(handlers: WorkerHandlers): void {
  const port = parentPort;
  if (!port) throw new Error("hostWorker() must be called inside a worker thread");
  port.on("message", async ({ id, method, payload }: WorkerRequest) => {
    let response: WorkerResponse;
    try {
      if (!Object.hasOwn(handlers, method)) throw new Error(`this worker has no method "${method}" (it has ${Object.keys(handlers).join(", ")})`);
      response = { id, result: await handlers[method](payload) };
    } catch (err) {
      response = { id, error: serializeError(err) };
    }
    try {
      port.postMessage(response);
    } catch (err) {
      // A result that cannot be cloned (e.g. it holds a function): report that instead.
      port.postMessage({ id, error: serializeError(err) } satisfies WorkerResponse);
    }
  });
}
