/**
 * The large read-only arrays of an index, read and checked in one place: the EK-FAC factors and
 * their inverse scales, and each tier's projection and vector file (the first tier's vectors, and
 * the sketch when the index has one). An engine opened on its own (`influence query`, scripts,
 * tests), and every engine worker of `influence serve` that holds its own copy, reads them itself:
 * the factors into ordinary memory, the vector files' rows into shared memory, which its scoring
 * helper thread reads too (indexer/scoring-helper.ts). When the workers are to share one copy
 * (engine/serve-memory.ts), the server reads them once per index into shared memory and hands them
 * to every engine worker in its workerData, where SharedArrayBuffers are shared, not copied: N
 * workers hold one copy instead of N, and a worker started to replace a crashed one gets the same;
 * but for the projections, small and fed to ONNX Runtime on every query, which each worker holds
 * itself in ordinary memory. What cannot be shared stays with
 * each worker (index-engine.ts): the model's weights and ONNX Runtime sessions, the HNSW graphs where
 * HNSW searches the first tier (hnswlib-node reads a graph only from its file, into its own memory) and the token store.
 */
import { loadFactors } from "../ekfac/artifacts.js";
import { type ModuleFactors, inverseScale } from "../ekfac/factors.js";
import { type IndexManifest, type VectorFileRecord, indexPath } from "../indexer/index-manifest.js";
import { scanCopy, scansFirstTier } from "../indexer/scan-search.js";
import { type QuantizedVectorFile, type StoredVectors, type VectorFile, readStoredVectors, readVectorFile } from "../indexer/vector-file.js";
import type { TrackedModule } from "../model/model.js";
import { modelFingerprint } from "../model/open-model.js";
import type { HostTensor } from "../runtime/kernels.js";
import type { Projection } from "../projection/projection.js";
import { loadProjection } from "../projection/store.js";
import { type CoordinateMove, layoutMoves, layoutOf } from "../projection/vector-layout.js";
import { type Allocate, sharedMemory } from "../util/allocate.js";
import { errorMessage, InputError } from "../util/errors.js";

/** One tier of the index: its projection and its vector file (the first tier's float32, the sketch's float32, int8 or signs). */
export interface TierArrays<Rows extends StoredVectors = StoredVectors> {
  projection: Projection;
  rows: Rows;
  /** How a vector of the projection goes into the file's layout (none when the file keeps the projection's: the sketch of older builds, every first tier). */
  moves: CoordinateMove[];
}

export interface IndexArrays {
  factors: ModuleFactors[];
  /** 1 / (Lambda + damping) per module. */
  inverses: HostTensor[];
  /** The first tier: searched by HNSW, scores candidates when the index has no sketch. */
  vectors: TierArrays<VectorFile>;
  /** The first tier's rows in int8, scanned instead of searched by HNSW when the tier is small (indexer/scan-search.ts). */
  scan?: QuantizedVectorFile;
  /** The second tier, when the index has one. */
  sketch?: TierArrays;
}

/** Each tier's files: its projection and its vector file. */
const TIER_FILES = { vectors: ["projection", "vectors"], sketch: ["sketchProjection", "sketch"] } as const;

/** The files of an index folder that the arrays are read from (of the factors folder, the eigendecomposition and Lambda). */
export const INDEX_ARRAY_FILES = ["factors", ...TIER_FILES.vectors, ...TIER_FILES.sketch] as const;

/** Refuses an index whose model's files (`fingerprint`) are not those it was built for. */
export function checkIndexModel(dir: string, manifest: IndexManifest, fingerprint: string): void {
  if (fingerprint !== manifest.model.fingerprint) {
    throw new InputError(
      `${indexPath(dir, "manifest")}: the index was built for another model than the one now in ${manifest.model.path} (fingerprint ` +
        `${manifest.model.fingerprint.slice(0, 12)}, found ${fingerprint.slice(0, 12)})`,
    );
  }
}

/** Reads a tier's projection and vector file, checked against the manifest's record; a mismatch is refused naming the file. */
async function openTier<Rows extends StoredVectors>(
  dir: string,
  [projectionFile, rowsFile]: (typeof TIER_FILES)[keyof typeof TIER_FILES],
  expected: VectorFileRecord,
  modules: readonly TrackedModule[],
  read: (path: string, options: { allocate: Allocate }) => Promise<Rows>,
): Promise<TierArrays<Rows>> {
  // Ordinary memory even when the rest is shared: ONNX Runtime takes no shared memory, and every
  // query feeds both tiers' projections to it (copied on every run, they cost the demo index 11 MiB
  // a query and a full garbage collection every few). Cloned as workerData, each worker gets its own.
  const projection = await loadProjection(indexPath(dir, projectionFile), modules);
  // Shared memory always: the engine's scoring helper thread reads the rows in place.
  const rows = await read(indexPath(dir, rowsFile), { allocate: sharedMemory });
  if (rows.checksum !== expected.checksum || rows.dim !== projection.dim || rows.count !== expected.count) {
    throw new InputError(`${indexPath(dir, rowsFile)}: does not match ${indexPath(dir, "manifest")} (checksum, dimension or count differ)`);
  }
  try {
    return { projection, rows, moves: layoutMoves(layoutOf(projection), rows.layout) };
  } catch (err) {
    throw new InputError(`${indexPath(dir, rowsFile)}: its layout does not hold the rows of ${indexPath(dir, projectionFile)} (${errorMessage(err)})`);
  }
}

/**
 * Reads and checks the arrays of the index in `dir`, the factors into memory from `allocate` (the
 * rows always into shared memory, the projections into ordinary memory), for the model's
 * `modules`; the caller has checked the model's files against the manifest (checkIndexModel), so
 * that the factors are checked against the model through the manifest's fingerprint.
 */
export async function openIndexArrays(dir: string, manifest: IndexManifest, modules: readonly TrackedModule[], allocate: Allocate): Promise<IndexArrays> {
  const { factors } = await loadFactors(indexPath(dir, "factors"), { modelFingerprint: manifest.model.fingerprint, modules }, allocate);
  const vectors = await openTier(dir, TIER_FILES.vectors, manifest.vectors, modules, readVectorFile);
  const sketch = manifest.sketch ? await openTier(dir, TIER_FILES.sketch, manifest.sketch, modules, readStoredVectors) : undefined;
  const scan = scansFirstTier(vectors.rows) ? scanCopy(vectors.rows, sharedMemory) : undefined;
  return { factors, inverses: factors.map((f) => inverseScale(f, allocate)), vectors, ...(scan ? { scan } : {}), ...(sketch ? { sketch } : {}) };
}

/**
 * What `influence serve` reads once for all the engine workers of an index: the model's files
 * checked against the index, as each worker checks the model it loads (their weights hashed as
 * they stream, not held), then the arrays, in shared memory.
 */
export async function openSharedIndexArrays(dir: string, manifest: IndexManifest, modules: readonly TrackedModule[]): Promise<IndexArrays> {
  checkIndexModel(dir, manifest, await modelFingerprint(manifest.model.path));
  return openIndexArrays(dir, manifest, modules, sharedMemory);
}
