/**
 * The computations of `influence build`'s phases, shared by its two schedulers: worker threads on
 * one machine (build.ts) and jobs in a PostgreSQL queue run by worker processes on any number of
 * machines (distributed/). Each step reads and writes files of the index folder, so a step gives the
 * same bytes whichever scheduler ran it.
 */
import { rm } from "node:fs/promises";
import path from "node:path";
import type { CorpusSource } from "../corpus/corpus-source.js";
import { type Database, analyzeSequences, finishBuild, getBuild, insertSequences } from "../db/index.js";
import { redactUrl } from "../db/pool-database.js";
import { type FactorsManifest, saveFactors } from "../ekfac/artifacts.js";
import type { FitResult } from "../ekfac/fit.js";
import { buildHnsw } from "../indexer/hnsw-index.js";
import {
  type BuildParameters,
  INDEX_FORMAT,
  INDEX_VERSION,
  type IndexManifest,
  type VectorFileRecord,
  indexPath,
  writeIndexManifest,
} from "../indexer/index-manifest.js";
import { buildLayerIndex, layersOf } from "../indexer/layer-search.js";
import { TokenStoreWriter } from "../indexer/token-store.js";
import { type VectorFile, mergeVectorFiles, readStoredVectors, readVectorFile, readVectorFileHeader } from "../indexer/vector-file.js";
import { type TrackedModule, inputWidth } from "../model/model.js";
import type { ModelDescription } from "../model/open-model.js";
import type { ModuleFactors } from "../ekfac/factors.js";
import type { OrdinalRange, ShardJob } from "../indexer/index-worker.js";
import type { WhitenedMoments } from "../projection/pca.js";
import { buildProjection } from "../projection/projection.js";
import { type SketchRequest, buildSketch, resolveSketch, sketchPrecision } from "../projection/sketch.js";
import { InputError } from "../util/errors.js";
import { saveProjection } from "../projection/store.js";
import type { ProgressListener } from "../util/progress.js";
import { factorsManifest } from "./fit.js";
import type { FitSummary } from "./fit-groups.js";

const INGEST_BATCH = 500;

/** A build's parameters as asked for: the sketch's precision and rank may be left to resolveSketch. */
export type BuildRequest = Omit<BuildParameters, "modelFingerprint" | "corpusFingerprint" | "sketch"> & { sketch: SketchRequest | null };

/** The parameters a build records: the request's, with the sketch resolved for the model's matrices. */
export function resolveParameters(
  request: BuildRequest,
  modules: readonly TrackedModule[],
  fingerprints: Pick<BuildParameters, "modelFingerprint" | "corpusFingerprint">,
): BuildParameters {
  const { sketch } = request;
  if (sketch && sketch.floats < modules.length) {
    throw new InputError(
      `a sketch of ${sketch.floats} floats per sequence leaves nothing to some of the model's ${modules.length} matrices: give at least ${modules.length}, or 0 for none`,
    );
  }
  const shapes = modules.map((m) => ({ out: m.outFeatures, in: inputWidth(m) }));
  return { ...fingerprints, ...request, sketch: sketch && resolveSketch(sketch, shapes) };
}

export function defaultCorpusName(source: Pick<CorpusSource, "path" | "fingerprint">): string {
  return `${path.basename(source.path).replace(/\.jsonl(\.gz)?$/, "")}-${source.fingerprint.slice(0, 8)}`;
}

/** Sequences into the database (idempotent per ordinal) and, in the same pass, the token store. */
export async function ingest(
  db: Database,
  corpusId: number,
  source: CorpusSource,
  tokensPath: string,
  onProgress?: ProgressListener,
): Promise<{ sequences: number; tokens: number }> {
  const writer = await TokenStoreWriter.open(tokensPath);
  let batch: Parameters<typeof insertSequences>[2][number][] = [];
  const tokenBatch: Array<{ ordinal: number; tokens: number[] }> = [];
  let sequences = 0;
  let tokens = 0;
  const flush = async () => {
    await insertSequences(db, corpusId, batch);
    await writer.append(tokenBatch);
    batch = [];
    tokenBatch.length = 0;
    onProgress?.({ phase: "ingest", done: sequences, tokens });
  };
  try {
    for await (const s of source.sequences()) {
      batch.push({
        ordinal: s.ordinal,
        externalId: s.externalId,
        documentExternalId: s.documentId,
        tokenOffset: s.offset,
        text: s.text ?? null,
        tokenIds: s.tokens,
      });
      tokenBatch.push({ ordinal: s.ordinal, tokens: s.tokens });
      sequences++;
      tokens += s.tokens.length;
      if (batch.length >= INGEST_BATCH) await flush();
    }
    await flush();
    await writer.finish();
  } catch (err) {
    await writer.abort();
    throw err;
  }
  await analyzeSequences(db);
  return { sequences, tokens };
}

/** How many sequences the EK-FAC fit covers: the first `fitSequences` of the indexed ones (all by default). */
export function fitCount(p: Pick<BuildParameters, "fitSequences" | "maxSequences">, indexed: number): number {
  return Math.min(p.fitSequences ?? Number.POSITIVE_INFINITY, p.maxSequences ?? Number.POSITIVE_INFINITY, indexed);
}

/** The manifest of a build's fit. */
export function buildFactorsManifest(
  opened: Pick<ModelDescription, "fingerprint" | "dir">,
  fitSource: Pick<CorpusSource, "path" | "fingerprint">,
  p: BuildParameters,
  maxSequences: number | undefined,
  fit: FitSummary,
): FactorsManifest {
  return factorsManifest(opened, fitSource, { fisher: p.fisher, damping: p.damping, seed: p.seed, maxSequences }, fit);
}

/** Writes the fit into the index folder's factors directory. */
export async function saveBuildFactors(
  outDir: string,
  opened: Pick<ModelDescription, "fingerprint" | "dir">,
  fitSource: Pick<CorpusSource, "path" | "fingerprint">,
  p: BuildParameters,
  maxSequences: number | undefined,
  result: FitResult,
): Promise<void> {
  await saveFactors(indexPath(outDir, "factors"), buildFactorsManifest(opened, fitSource, p, maxSequences, result), result.covariance, result.factors);
}

/** Ordinals spread evenly over the corpus: the PCA sample. */
export function evenSample(count: number, size: number): number[] {
  const n = Math.min(count, size);
  return Array.from({ length: n }, (_, i) => Math.floor((i * count) / n));
}

/** The two tiers' files of a shard and of the index. */
type Tier = "vectors" | "sketch";
const tiers = (p: Pick<BuildParameters, "sketch">): Tier[] => (p.sketch ? ["vectors", "sketch"] : ["vectors"]);

/** Where a shard's vectors (or sketches) are written while the build runs. */
export const shardFile = (outDir: string, shard: number, tier: Tier = "vectors"): string =>
  path.join(indexPath(outDir, "shards"), `${tier}-${String(shard).padStart(6, "0")}.bin`);

/** The worker's job for one shard: its sequences and the files of every tier the build stores. */
export function shardJob(outDir: string, p: Pick<BuildParameters, "sketch">, shard: number, range: OrdinalRange): ShardJob {
  const sketch = p.sketch && { file: shardFile(outDir, shard, "sketch"), elementType: sketchPrecision(p.sketch) };
  return { ...range, file: shardFile(outDir, shard), ...(sketch ? { sketch } : {}) };
}

/** Whether a recorded shard's files are all there and sound (a missing or damaged one is computed again). */
export async function shardFilesIntact(outDir: string, p: Pick<BuildParameters, "sketch">, shard: number): Promise<boolean> {
  try {
    for (const tier of tiers(p)) await readStoredVectors(shardFile(outDir, shard, tier));
    return true;
  } catch {
    return false;
  }
}

/** The shards' files, in shard order, into the index's one file per tier. */
export async function mergeShardVectors(outDir: string, p: BuildParameters, shards: readonly number[]): Promise<void> {
  const ordered = [...shards].sort((a, b) => a - b);
  for (const tier of tiers(p)) {
    await mergeVectorFiles(
      ordered.map((s) => shardFile(outDir, s, tier)),
      indexPath(outDir, tier),
    );
  }
}

/** The first tier's projection (PCA from `moments`, or random) and, if the build has one, the sketch's. */
export async function saveProjections(
  outDir: string,
  p: BuildParameters,
  factors: readonly ModuleFactors[],
  moments?: readonly WhitenedMoments[],
): Promise<void> {
  await saveProjection(indexPath(outDir, "projection"), await buildProjection(factors, p.projection, moments));
  if (p.sketch) await saveProjection(indexPath(outDir, "sketchProjection"), await buildSketch(factors, p.sketch));
}

/** An HNSW graph of the index: over whole vectors, or over one layer's coordinates. */
export type Graph = "full" | { layer: number };

/** Every graph an index has: the full one, then one per layer (see layer-search.ts). */
export async function indexGraphs(outDir: string): Promise<Graph[]> {
  const { layout } = await readVectorFileHeader(indexPath(outDir, "vectors"));
  return ["full", ...layersOf(layout).map((layer) => ({ layer }))];
}

export const graphName = (graph: Graph): string => (graph === "full" ? "full" : `layer-${graph.layer}`);

/** Builds one graph over the index's vector file. */
export async function buildGraph(outDir: string, p: BuildParameters, graph: Graph, vectors?: VectorFile, onProgress?: ProgressListener): Promise<void> {
  const source = vectors ?? (await readVectorFile(indexPath(outDir, "vectors")));
  const phase = graph === "full" ? "hnsw" : "hnsw per layer";
  const options = {
    M: p.hnsw.M,
    efConstruction: p.hnsw.efConstruction,
    seed: p.seed,
    onProgress: (done: number, total: number) => onProgress?.({ phase, done, total, unit: "vectors" }),
  };
  if (graph === "full") await buildHnsw(indexPath(outDir, "hnsw"), source, options);
  else await buildLayerIndex(indexPath(outDir, "hnsw"), source, source.layout, graph.layer, options);
}

/** What the manifest says of the build's inputs. */
export interface IndexedInputs {
  model: Pick<ModelDescription, "dir" | "fingerprint">;
  corpus: { name: string; path: string; fingerprint: string };
  counts: { sequences: number; tokens: number };
  databaseUrl?: string;
}

/**
 * Writes the manifest (only now does the folder hold an index), marks the build completed and
 * removes the shards' files.
 */
export async function completeIndex(db: Database, buildId: number, outDir: string, parameters: BuildParameters, inputs: IndexedInputs): Promise<IndexManifest> {
  const recordOf = async (tier: Tier): Promise<VectorFileRecord> => {
    const { dim, count, checksum } = await readVectorFileHeader(indexPath(outDir, tier));
    return { dim, count, checksum };
  };
  const build = await getBuild(db, buildId);
  const manifest: IndexManifest = {
    format: INDEX_FORMAT,
    version: INDEX_VERSION,
    createdAt: new Date().toISOString(),
    parameters,
    model: { path: inputs.model.dir, fingerprint: inputs.model.fingerprint },
    corpus: { ...inputs.corpus, ...inputs.counts },
    database: inputs.databaseUrl ? { kind: "postgres", url: redactUrl(inputs.databaseUrl) } : { kind: "pglite" },
    vectors: await recordOf("vectors"),
    ...(parameters.sketch ? { sketch: await recordOf("sketch") } : {}),
    build: {
      id: buildId,
      startedAt: (build?.startedAt ?? new Date()).toISOString(),
      finishedAt: new Date().toISOString(),
      seconds: Object.values(build?.phaseTimings ?? {}).reduce((s, x) => s + x, 0),
      phaseSeconds: build?.phaseTimings ?? {},
    },
  };
  await writeIndexManifest(outDir, manifest);
  await finishBuild(db, buildId, { status: "completed", counts: inputs.counts });
  await rm(indexPath(outDir, "shards"), { recursive: true, force: true });
  return manifest;
}
