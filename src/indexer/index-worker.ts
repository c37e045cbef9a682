/**
 * Worker thread of `influence build`: the gradient work of every phase, on chunks of the corpus
 * read from the token store. The fitting passes return partial sums that the main thread adds
 * up; a vectors shard is written to its file atomically, and the main thread records it in the
 * database, so a killed build resumes at the first unrecorded shard.
 */
import { workerData } from "node:worker_threads";
import type { ModuleFactors } from "../ekfac/factors.js";
import { type FisherPass, type FisherSettings, fisherLoss, passAccumulator, type TokenSequence } from "../ekfac/fit.js";
import type { LayerGroup } from "../ekfac/layer-groups.js";
import type { PartialSums } from "../ekfac/partial-sums.js";
import type { GradientCapture, LossSpec } from "../model/model.js";
import { batchTokenLimit } from "../model/batch-budget.js";
import { loadModel } from "../model/load.js";
import type { RuntimeOptions } from "../runtime/session.js";
import { type ElementType, layoutMoves, layoutOf, moveCoordinates, type VectorLayout } from "../projection/vector-layout.js";
import { coarseFirstLayout } from "../projection/sketch.js";
import { WhitenedMomentAccumulator } from "../projection/pca.js";
import { Projector } from "../projection/projector.js";
import { loadProjection } from "../projection/store.js";
import { hostWorker } from "../workers/worker-host.js";
import { lengthSortedBatches } from "../util/batches.js";
import { indexPath } from "./index-manifest.js";
import { sequenceVectors } from "./sequence-vectors.js";
import { readTokenStore } from "./token-store.js";
import { writeVectorFile } from "./vector-file.js";

export interface IndexWorkerData {
  modelDir: string;
  indexDir: string;
  batchTokens: number;
  /** This worker's sessions: its share of the cores. */
  runtime: RuntimeOptions;
}

/** Sequences [first, last] of the corpus. */
export interface OrdinalRange {
  firstOrdinal: number;
  lastOrdinal: number;
}

/** One chunk of a fitting pass (ekfac/fit.ts). */
export interface FisherChunk extends OrdinalRange, FisherSettings {
  pass: FisherPass;
  /** The group of a grouped fit: its modules only are summed (and a Lambda pass carries their eigenbases only). */
  group?: LayerGroup;
}

export interface ShardJob extends OrdinalRange {
  /** Where the first tier's vectors go. */
  file: string;
  /** Where the sketches go and how they are stored, when the index has a second tier. */
  sketch?: { file: string; elementType: ElementType };
}

const { modelDir, indexDir, batchTokens, runtime } = workerData as IndexWorkerData;
const model = await loadModel(modelDir, runtime);
const store = await readTokenStore(indexPath(indexDir, "tokens"));
// The projections exist only once their phase has run: loaded on the first shard.
let projector: Projector | undefined;
let sketcher: Projector | undefined;

const sequence = (ordinal: number): TokenSequence => ({ ordinal, tokens: Array.from(store.tokens(ordinal)) });
const rangeOf = ({ firstOrdinal, lastOrdinal }: OrdinalRange): TokenSequence[] =>
  Array.from({ length: lastOrdinal - firstOrdinal + 1 }, (_, i) => sequence(firstOrdinal + i));

/** Runs every length-sorted batch of the sequences through `consume`. */
async function eachCapture(
  sequences: TokenSequence[],
  loss: (batch: TokenSequence[]) => LossSpec,
  consume: (capture: GradientCapture) => Promise<void>,
): Promise<void> {
  for (const positions of lengthSortedBatches(
    sequences.map((s) => s.tokens.length),
    { maxTokens: batchTokenLimit(model.config, batchTokens) },
  )) {
    const batch = positions.map((i) => sequences[i]);
    await consume(
      await model.capture(
        batch.map((s) => s.tokens),
        loss(batch),
      ),
    );
  }
}

hostWorker({
  async fisher(payload): Promise<PartialSums> {
    const job = payload as FisherChunk;
    const accumulator = passAccumulator(job.pass, model.modules, job.group);
    await eachCapture(
      rangeOf(job),
      (batch) => fisherLoss(job.fisher, job.seed, batch),
      (c) => accumulator.add(c),
    );
    return accumulator.totals;
  },
  async moments(payload): Promise<PartialSums> {
    const job = payload as { ordinals: number[]; factors: ModuleFactors[] };
    const accumulator = new WhitenedMomentAccumulator(job.factors);
    await eachCapture(
      job.ordinals.map(sequence),
      () => ({ kind: "next-token" }),
      (c) => accumulator.add(c),
    );
    return accumulator.totals;
  },
  async shard(payload) {
    const { firstOrdinal, lastOrdinal, file, sketch } = payload as ShardJob;
    projector ??= new Projector(await loadProjection(indexPath(indexDir, "projection"), model.modules));
    // Each output's rows are stored in its layout: the projection's, or for the sketch its coarse part first.
    const outputs: Array<{ target: string; projector: Projector; elementType: ElementType; layout: VectorLayout }> = [
      { target: file, projector, elementType: "float32", layout: layoutOf(projector.projection) },
    ];
    if (sketch) {
      sketcher ??= new Projector(await loadProjection(indexPath(indexDir, "sketchProjection"), model.modules));
      outputs.push({ target: sketch.file, projector: sketcher, elementType: sketch.elementType, layout: coarseFirstLayout(layoutOf(sketcher.projection)) });
    }
    const sequences = rangeOf({ firstOrdinal, lastOrdinal }).map((s) => s.tokens);
    const rows = await sequenceVectors(
      model,
      outputs.map((o) => o.projector),
      sequences,
      batchTokens,
    );
    for (const [i, o] of outputs.entries()) {
      moveCoordinates(rows[i], o.projector.dim, layoutMoves(layoutOf(o.projector.projection), o.layout));
      await writeVectorFile(o.target, { dim: o.projector.dim, firstOrdinal, layout: o.layout, rows: rows[i], elementType: o.elementType });
    }
    return { sequences: sequences.length, tokens: sequences.reduce((s, x) => s + x.length, 0) };
  },
});
