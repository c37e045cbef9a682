/**
 * How many of a process's engines are running a request, counted across threads: an engine lends
 * a core to its scoring helper (indexer/scoring-helper.ts) only while one is idle, so that under
 * load the helper is not woken onto a core another engine is using.
 */
import type { WorkerHandlers } from "../workers/worker-host.js";

export interface BusyEngines {
  /** [engines running a request], in shared memory: every engine worker gets it in its workerData. */
  counter: Int32Array;
  cores: number;
}

export const busyEngines = (cores: number): BusyEngines => ({ counter: new Int32Array(new SharedArrayBuffer(4)), cores });

/**
 * Whether a core is left over by the engines running requests (the caller's own among them). A
 * search runs on its engine's thread alone (ONNX Runtime's other threads sleep between runs), so
 * each busy engine holds one core while it searches.
 */
export const spareCore = ({ counter, cores }: BusyEngines): boolean => Atomics.load(counter, 0) < cores;

/** The handlers of an engine worker, each counted as a busy engine while it runs. */
export function countedHandlers(handlers: WorkerHandlers, { counter }: BusyEngines): WorkerHandlers {
  const counted = async (run: () => Promise<unknown>) => {
    Atomics.add(counter, 0, 1);
    try {
      return await run();
    } finally {
      Atomics.sub(counter, 0, 1);
    }
  };
  return Object.fromEntries(Object.entries(handlers).map(([method, handler]) => [method, (payload: unknown) => counted(() => handler(payload))]));
}
