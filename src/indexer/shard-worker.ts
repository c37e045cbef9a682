/**
 * Worker thread of `influence build`: computes the vectors of whole shards of the corpus and
 * writes each shard's vector file atomically. The main thread records finished shards in the
 * database, so a killed build resumes at the first unrecorded shard.
 */
import { workerData } from "node:worker_threads";
import { initBackend } from "../backend/backend.js";
import { loadModel } from "../model/load.js";
import { layoutOf } from "../projection/layout.js";
import { Projector } from "../projection/projector.js";
import { loadProjection } from "../projection/store.js";
import { hostWorker } from "../server/worker-host.js";
import { indexPath } from "./index-manifest.js";
import { sequenceVectors } from "./sequence-vectors.js";
import { readTokenStore } from "./token-store.js";
import { writeVectorFile } from "./vector-file.js";

export interface ShardWorkerData {
  modelDir: string;
  indexDir: string;
  batchTokens: number;
}

export interface ShardJob {
  firstOrdinal: number;
  lastOrdinal: number;
  file: string;
}

const { modelDir, indexDir, batchTokens } = workerData as ShardWorkerData;
await initBackend();
const model = await loadModel(modelDir);
const projection = await loadProjection(indexPath(indexDir, "projection"), model.modules);
const projector = new Projector(projection);
const store = await readTokenStore(indexPath(indexDir, "tokens"));
const layout = layoutOf(projection);

hostWorker({
  async shard(payload) {
    const { firstOrdinal, lastOrdinal, file } = payload as ShardJob;
    const sequences = Array.from({ length: lastOrdinal - firstOrdinal + 1 }, (_, i) => store.tokens(firstOrdinal + i));
    const rows = sequenceVectors(model, projector, sequences, batchTokens);
    await writeVectorFile(file, { dim: projector.dim, firstOrdinal, layout, rows });
    return { sequences: sequences.length, tokens: sequences.reduce((s, x) => s + x.length, 0) };
  },
});
