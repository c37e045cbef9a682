/**
 * Worker thread of `influence build`: the gradient work of every phase, on chunks of the corpus
 * read from the token store. The fitting passes return partial sums that the main thread adds
 * up; a vectors shard is written to its file atomically, and the main thread records it in the
 * database, so a killed build resumes at the first unrecorded shard.
 */
import { workerData } from "node:worker_threads";
import { initBackend } from "../backend/backend.js";
import { CovarianceAccumulator } from "../ekfac/covariance.js";
import type { ModuleEigenbasis } from "../ekfac/eigenbasis.js";
import type { ModuleFactors } from "../ekfac/factors.js";
import { fisherLoss, type TokenSequence } from "../ekfac/fit.js";
import { LambdaAccumulator } from "../ekfac/lambda.js";
import type { PartialSums } from "../ekfac/partial-sums.js";
import type { FisherMode } from "../ekfac/artifacts.js";
import { batchTokenLimit } from "../model/batch-budget.js";
import { type GradientCapture, type LossSpec, captureGradients } from "../model/capture.js";
import { loadModel } from "../model/load.js";
import { layoutOf } from "../projection/layout.js";
import { WhitenedMomentAccumulator } from "../projection/pca.js";
import { Projector } from "../projection/projector.js";
import { loadProjection } from "../projection/store.js";
import { hostWorker } from "../server/worker-host.js";
import { lengthSortedBatches } from "../util/batches.js";
import { indexPath } from "./index-manifest.js";
import { sequenceVectors } from "./sequence-vectors.js";
import { readTokenStore } from "./token-store.js";
import { writeVectorFile } from "./vector-file.js";

export interface IndexWorkerData {
  modelDir: string;
  indexDir: string;
  batchTokens: number;
}

/** Sequences [first, last] of the corpus. */
export interface OrdinalRange {
  firstOrdinal: number;
  lastOrdinal: number;
}

export interface FisherPass extends OrdinalRange {
  fisher: FisherMode;
  seed: number;
}

export interface ShardJob extends OrdinalRange {
  file: string;
}

const { modelDir, indexDir, batchTokens } = workerData as IndexWorkerData;
await initBackend();
const model = await loadModel(modelDir);
const store = await readTokenStore(indexPath(indexDir, "tokens"));
// The projection exists only once its phase has run: loaded on the first shard.
let projector: Projector | undefined;

const sequence = (ordinal: number): TokenSequence => ({ ordinal, tokens: Array.from(store.tokens(ordinal)) });
const rangeOf = ({ firstOrdinal, lastOrdinal }: OrdinalRange): TokenSequence[] =>
  Array.from({ length: lastOrdinal - firstOrdinal + 1 }, (_, i) => sequence(firstOrdinal + i));

/** Runs every length-sorted batch of the sequences through `consume`. */
function eachCapture(sequences: TokenSequence[], loss: (batch: TokenSequence[]) => LossSpec, consume: (capture: GradientCapture) => void): void {
  for (const positions of lengthSortedBatches(
    sequences.map((s) => s.tokens.length),
    { maxTokens: batchTokenLimit(model.config, batchTokens) },
  )) {
    const batch = positions.map((i) => sequences[i]);
    const capture = captureGradients(
      model,
      batch.map((s) => s.tokens),
      loss(batch),
    );
    try {
      consume(capture);
    } finally {
      capture.dispose();
    }
  }
}

hostWorker({
  async covariance(payload): Promise<PartialSums> {
    const job = payload as FisherPass;
    const accumulator = new CovarianceAccumulator(model.modules);
    eachCapture(
      rangeOf(job),
      (batch) => fisherLoss(job.fisher, job.seed, batch),
      (c) => accumulator.add(c),
    );
    return accumulator.totals;
  },
  async lambda(payload): Promise<PartialSums> {
    const job = payload as FisherPass & { eigen: ModuleEigenbasis[] };
    const accumulator = new LambdaAccumulator(model.modules, job.eigen);
    eachCapture(
      rangeOf(job),
      (batch) => fisherLoss(job.fisher, job.seed, batch),
      (c) => accumulator.add(c),
    );
    return accumulator.totals;
  },
  async moments(payload): Promise<PartialSums> {
    const job = payload as { ordinals: number[]; factors: ModuleFactors[] };
    const accumulator = new WhitenedMomentAccumulator(job.factors);
    eachCapture(
      job.ordinals.map(sequence),
      () => ({ kind: "next-token" }),
      (c) => accumulator.add(c),
    );
    return accumulator.totals;
  },
  async shard(payload) {
    const { firstOrdinal, lastOrdinal, file } = payload as ShardJob;
    projector ??= new Projector(await loadProjection(indexPath(indexDir, "projection"), model.modules));
    const sequences = rangeOf({ firstOrdinal, lastOrdinal }).map((s) => s.tokens);
    const rows = sequenceVectors(model, projector, sequences, batchTokens);
    await writeVectorFile(file, { dim: projector.dim, firstOrdinal, layout: layoutOf(projector.projection), rows });
    return { sequences: sequences.length, tokens: sequences.reduce((s, x) => s + x.length, 0) };
  },
});
