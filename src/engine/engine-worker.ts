/** Worker thread of `influence serve`: opens the index once (on the arrays the server shares with it, if it does) and answers engine requests. */
import { workerData } from "node:worker_threads";
import { engineHandlers } from "./pooled-engine.js";
import { hostWorker } from "../workers/worker-host.js";
import { errorMessage } from "../util/errors.js";
import type { IndexArrays } from "./index-arrays.js";
import { IndexEngine } from "./index-engine.js";
import { type BusyEngines, countedHandlers, spareCore } from "./busy-engines.js";
import type { RuntimeOptions } from "../runtime/session.js";

export interface EngineWorkerData {
  indexDir: string;
  /** This worker's sessions: its share of the cores. */
  runtime: RuntimeOptions;
  /** The index's large read-only arrays, read once by the server into shared memory (openSharedIndexArrays) for every worker; without them, the worker reads its own. */
  arrays?: IndexArrays;
  /** The process's count of busy engines, every index's workers included. */
  busy: BusyEngines;
}

// An index that cannot be opened (a corrupt or truncated file) is reported as the answer to each
// request: thrown here, it killed the thread, and `influence serve` died with "the engine worker
// running this request died (...); it is being replaced" and a stack trace. `info`, which the
// server asks at start-up, keeps the InputError, so the command prints it and exits with 2; for a
// query it is the server's fault, not the client's.
const failing = (err: unknown) => {
  const unavailable = () => Promise.reject(new Error(`the index cannot be opened: ${errorMessage(err)}`));
  return {
    info: () => Promise.reject(err),
    candidates: unavailable,
    exactScores: unavailable,
    comparedSequence: unavailable,
    sequenceScores: unavailable,
    distribution: unavailable,
  };
};
const { indexDir, runtime, arrays, busy } = workerData as EngineWorkerData;
hostWorker(
  await IndexEngine.open(indexDir, runtime, arrays, { spareCore: () => spareCore(busy) }).then(
    (engine) => countedHandlers(engineHandlers(engine), busy),
    failing,
  ),
);
