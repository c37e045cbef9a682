/** Worker thread of `influence serve`: opens the index once and answers engine requests. */
import { workerData } from "node:worker_threads";
import { engineHandlers } from "../server/pooled-engine.js";
import { hostWorker } from "../server/worker-host.js";
import { IndexEngine } from "./index-engine.js";

export interface EngineWorkerData {
  indexDir: string;
}

hostWorker(engineHandlers(await IndexEngine.open((workerData as EngineWorkerData).indexDir)));
