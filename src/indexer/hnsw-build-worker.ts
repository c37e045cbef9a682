/**
 * Worker thread that builds an hnswlib inner-product index and writes it to a file: the build is
 * synchronous native code that would otherwise block the event loop for minutes.
 */
import hnsw from "hnswlib-node";
import { parentPort, workerData } from "node:worker_threads";
import type { HnswBuildJob, HnswBuildMessage } from "./hnsw-index.js";

/** Progress is reported every this many points. */
const PROGRESS_EVERY = 1000;

const job = workerData as HnswBuildJob;
const post = (message: HnswBuildMessage): void => parentPort!.postMessage(message);

const { vectors, dim } = job;
const count = vectors.length / dim;
const index = new hnsw.HierarchicalNSW("ip", dim);
index.initIndex(count, job.M, job.efConstruction, job.seed);
// hnswlib-node takes plain arrays only; one is refilled per point.
const point = new Array<number>(dim);
for (let row = 0; row < count; row++) {
  for (let j = 0; j < dim; j++) point[j] = vectors[row * dim + j];
  index.addPoint(point, job.firstOrdinal + row);
  if ((row + 1) % PROGRESS_EVERY === 0) post({ type: "progress", done: row + 1, total: count });
}
index.writeIndexSync(job.outPath);
post({ type: "done" });
