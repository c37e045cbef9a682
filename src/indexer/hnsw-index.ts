/**
 * Approximate maximum-inner-product search over the vector file with hnswlib (space "ip").
 *
 * On disk an index is two files: `<path>`, hnswlib's own format, and the sidecar `<path>.json`
 * (HnswSidecar) which records what hnswlib does not check: the dimension, the space, a checksum
 * of the hnswlib file, and the checksum of the vectors it was built from. Both are verified before
 * hnswlib sees the file, because hnswlib's reader trusts its input (a corrupt file can crash it).
 *
 * hnswlib computes the "ip" distance as 1 - dot in float32. With gradient vectors whose inner
 * products are far from 1 in magnitude (1e-8 or 1e+6), 1 - dot would lose the ranking, so the
 * indexed vectors are scaled to RMS norm 1 and queries to norm 1; search() undoes both scalings.
 */
import hnsw from "hnswlib-node";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tempPathFor, writeJsonAtomic } from "../util/atomic-write.js";
import { InputError } from "../util/errors.js";
import { spawnTsWorker } from "../util/spawn-worker.js";
import type { SearchHits } from "./exact-search.js";
import { hnswlibFileComplete, readHnswlibHeader, type HnswlibHeader } from "./hnswlib-header.js";
import { rangesProblem, type CoordinateRange } from "./vector-layout.js";

export { exactTopK, type SearchHits } from "./exact-search.js";

/** ef used by search() until setEf() or a per-search ef says otherwise. */
export const DEFAULT_EF = 200;
const SIDECAR_FORMAT = "influence-graph hnsw";
const SIDECAR_VERSION = 1;

export interface HnswSidecar {
  format: typeof SIDECAR_FORMAT;
  version: typeof SIDECAR_VERSION;
  space: "ip";
  /** Dimension of the vectors, and of queries. */
  dim: number;
  /** The coordinates indexed, sorted: all of [0, dim), or e.g. one layer's for a per-layer index. */
  coordinates: CoordinateRange[];
  count: number;
  firstOrdinal: number;
  M: number;
  efConstruction: number;
  seed: number;
  /** Factor the indexed vectors were multiplied by (1 / their RMS norm). */
  scale: number;
  /** sha256 (hex) of the hnswlib file. */
  checksum: string;
  /** Payload checksum of the vector file the index was built from. */
  vectorsChecksum: string;
}

/** What buildHnsw needs of a vector file (a VectorFile fits). */
export interface HnswSource {
  rows: Float32Array;
  dim: number;
  firstOrdinal: number;
  /** The vector file's payload checksum. */
  checksum: string;
}

export interface HnswBuildOptions {
  M?: number;
  efConstruction?: number;
  seed?: number;
  /** Index only these coordinates (sorted, disjoint), e.g. one layer's; default all. */
  coordinates?: CoordinateRange[];
  onProgress?: (done: number, total: number) => void;
}

/** workerData of hnsw-build-worker.ts. */
export interface HnswBuildJob {
  /** The indexed coordinates of every row, already scaled; `dim` values per row. */
  vectors: Float32Array;
  dim: number;
  firstOrdinal: number;
  M: number;
  efConstruction: number;
  seed: number;
  outPath: string;
}

export type HnswBuildMessage = { type: "progress"; done: number; total: number } | { type: "done" };

export interface SearchOptions {
  /** Candidate list size (at least k is used); default the index's current ef. */
  ef?: number;
  /** Only labels (ordinals) for which this returns true are returned. */
  filter?: (label: number) => boolean;
}

const rangesSize = (ranges: readonly CoordinateRange[]): number => ranges.reduce((sum, r) => sum + r.size, 0);

/** Copies the coordinates `ranges` of `vector` (a full-dimension vector or a row's view) into `out`. */
function gather(
  vector: Float32Array | readonly number[],
  base: number,
  ranges: readonly CoordinateRange[],
  out: Float32Array | number[],
  outBase: number,
): void {
  let k = outBase;
  for (const { offset, size } of ranges) {
    for (let j = base + offset, end = base + offset + size; j < end; j++) out[k++] = vector[j];
  }
}

/** The indexed coordinates of every row, multiplied by 1 / (RMS row norm); and that factor. */
function scaledCoordinates(source: HnswSource, ranges: readonly CoordinateRange[]): { vectors: Float32Array; scale: number } {
  const count = source.rows.length / source.dim;
  const size = rangesSize(ranges);
  const vectors = new Float32Array(count * size);
  for (let row = 0; row < count; row++) gather(source.rows, row * source.dim, ranges, vectors, row * size);
  let sumSquares = 0;
  for (let i = 0; i < vectors.length; i++) sumSquares += vectors[i] * vectors[i];
  const rms = Math.sqrt(sumSquares / count);
  const scale = rms > 0 ? 1 / rms : 1;
  for (let i = 0; i < vectors.length; i++) vectors[i] *= scale;
  return { vectors, scale };
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

function runBuildWorker(job: HnswBuildJob, onProgress?: (done: number, total: number) => void): Promise<void> {
  const worker = spawnTsWorker(new URL("./hnsw-build-worker.ts", import.meta.url), job, { transferList: [job.vectors.buffer as ArrayBuffer] });
  return new Promise((resolve, reject) => {
    let done = false;
    worker.on("message", (message: HnswBuildMessage) => {
      if (message.type === "progress") onProgress?.(message.done, message.total);
      else done = true;
    });
    worker.on("error", reject);
    worker.on("exit", (code) => (done ? resolve() : reject(new Error(`HNSW build worker exited with code ${code} before finishing`))));
  });
}

/**
 * Builds an index over `source` in a worker thread (labels are ordinals) and writes `path` and
 * `path.json`, each atomically. Points are added in ordinal order on one thread, so the same
 * vectors and seed give the same graph.
 */
export async function buildHnsw(path: string, source: HnswSource, options: HnswBuildOptions = {}): Promise<HnswSidecar> {
  const { M = 16, efConstruction = 200, seed = 100, coordinates = [{ offset: 0, size: source.dim }], onProgress } = options;
  const count = source.rows.length / source.dim;
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`cannot build an HNSW index over ${source.rows.length} values of dimension ${source.dim}`);
  const problem = rangesProblem(coordinates, source.dim);
  if (problem) throw new RangeError(`cannot build an HNSW index: ${problem}`);
  const { vectors, scale } = scaledCoordinates(source, coordinates);
  const tempPath = tempPathFor(path);
  try {
    // Fail before a long build, not after (hnswlib's writer fails silently on a bad path).
    try {
      await writeFile(tempPath, "");
    } catch (err) {
      throw new InputError(`cannot write HNSW index ${path}: ${(err as Error).message}`, { cause: err });
    }
    await runBuildWorker({ vectors, dim: rangesSize(coordinates), firstOrdinal: source.firstOrdinal, M, efConstruction, seed, outPath: tempPath }, onProgress);
    // hnswlib's writer does not report failed writes: on a full disk it left a short (even empty)
    // file, which the sidecar's checksum then vouched for, and the build "succeeded".
    const written = await readHnswlibHeader(tempPath);
    if (!written || written.count !== count || !(await hnswlibFileComplete(tempPath, written))) {
      throw new InputError(`cannot write HNSW index ${path}: hnswlib wrote an incomplete file (is the disk full?)`);
    }
    // hnswlib does not fsync: do it before the rename makes the file visible.
    const handle = await open(tempPath, "r+");
    await handle.sync();
    await handle.close();
    const sidecar: HnswSidecar = {
      format: SIDECAR_FORMAT,
      version: SIDECAR_VERSION,
      space: "ip",
      dim: source.dim,
      coordinates: coordinates.map(({ offset, size }) => ({ offset, size })),
      count,
      firstOrdinal: source.firstOrdinal,
      M,
      efConstruction,
      seed,
      scale,
      checksum: await sha256File(tempPath),
      vectorsChecksum: source.checksum,
    };
    // A crash between the two renames leaves a pair whose checksums disagree: refused, not misread.
    await rename(tempPath, path);
    await writeJsonAtomic(`${path}.json`, sidecar);
    return sidecar;
  } finally {
    await rm(tempPath, { force: true });
  }
}

/** What is wrong with a parsed sidecar, or undefined. */
function sidecarProblem(s: Partial<HnswSidecar>): string | undefined {
  if (s.format !== SIDECAR_FORMAT) return "not an HNSW sidecar";
  if (s.version !== SIDECAR_VERSION) return `unsupported version ${s.version} (this program reads version ${SIDECAR_VERSION})`;
  if (s.space !== "ip") return `space ${s.space} is not "ip"`;
  for (const key of ["dim", "count", "firstOrdinal", "M", "efConstruction", "seed"] as const) {
    if (!Number.isSafeInteger(s[key]) || (s[key] as number) < 0) return `invalid ${key}`;
  }
  const coordinatesProblem = Array.isArray(s.coordinates) ? rangesProblem(s.coordinates, s.dim!) : "no coordinates";
  if (coordinatesProblem) return coordinatesProblem;
  if (!(typeof s.scale === "number" && s.scale > 0 && Number.isFinite(s.scale))) return "invalid scale";
  if (typeof s.checksum !== "string" || typeof s.vectorsChecksum !== "string") return "missing checksums";
  return undefined;
}

async function readSidecar(path: string): Promise<HnswSidecar> {
  const sidecarPath = `${path}.json`;
  let text: string;
  try {
    text = await readFile(sidecarPath, "utf8");
  } catch (err) {
    throw new InputError(`cannot read HNSW sidecar ${sidecarPath}: ${(err as Error).message}`, { cause: err });
  }
  let sidecar: HnswSidecar;
  try {
    sidecar = JSON.parse(text);
  } catch {
    throw new InputError(`corrupt HNSW sidecar ${sidecarPath}: not valid JSON`);
  }
  const problem = sidecarProblem(sidecar ?? {});
  if (problem) throw new InputError(`invalid HNSW sidecar ${sidecarPath}: ${problem}`);
  return sidecar;
}

export interface OpenHnswOptions {
  /** Dimension of the vectors queries will have. */
  expectDim: number;
  /** Payload checksum of the vector file in use: an index built from other vectors is refused. */
  expectVectorsChecksum: string;
}

/** An open index. search() is synchronous native code: a few milliseconds per query at ef 200 on 12k vectors of 2,048 dims. */
export class HnswIndex {
  private defaultEf = DEFAULT_EF;
  private readonly indexedDim: number;

  constructor(
    readonly info: HnswSidecar,
    private readonly index: hnsw.HierarchicalNSW,
  ) {
    this.indexedDim = rangesSize(info.coordinates);
  }

  /** The ef used by searches that do not pass one. */
  get ef(): number {
    return this.defaultEf;
  }

  setEf(ef: number): void {
    if (!Number.isInteger(ef) || ef < 1) throw new RangeError(`invalid ef ${ef}`);
    this.defaultEf = ef;
  }

  /**
   * The k labels with (approximately) the largest inner product with `query`, best first; scores
   * are the inner products over the indexed coordinates. `query` has all `info.dim` coordinates.
   */
  search(query: Float32Array | readonly number[], k: number, options: SearchOptions = {}): SearchHits {
    const { dim, coordinates, count, scale } = this.info;
    if (query.length !== dim) throw new RangeError(`query has ${query.length} coordinates, the index expects ${dim}`);
    const kept = Math.min(k, count);
    if (kept < 1) return { labels: [], scores: [] };
    const point = new Array<number>(this.indexedDim);
    gather(query, 0, coordinates, point, 0);
    const norm = Math.sqrt(point.reduce((sum, v) => sum + v * v, 0)) || 1;
    for (let j = 0; j < point.length; j++) point[j] /= norm;
    this.index.setEf(Math.max(options.ef ?? this.defaultEf, kept));
    const { neighbors, distances } = this.index.searchKnn(point, kept, options.filter);
    const hits = neighbors.map((label, i) => ({ label, score: ((1 - distances[i]) * norm) / scale }));
    hits.sort((x, y) => y.score - x.score || x.label - y.label);
    return { labels: hits.map((h) => h.label), scores: hits.map((h) => h.score) };
  }
}

/**
 * Opens `path` after checking its sidecar against the expected dimension and vectors, and the file
 * against the sidecar (checksum, and hnswlib's own header); any mismatch is an InputError naming
 * the file.
 */
export async function openHnsw(path: string, expected: OpenHnswOptions): Promise<HnswIndex> {
  const info = await readSidecar(path);
  if (info.dim !== expected.expectDim) {
    throw new InputError(`HNSW index ${path} was built for vectors of dimension ${info.dim}, but the vectors have dimension ${expected.expectDim}`);
  }
  if (info.vectorsChecksum !== expected.expectVectorsChecksum) {
    throw new InputError(
      `HNSW index ${path} was built from other vectors (vector checksum ${info.vectorsChecksum.slice(0, 12)}..., expected ${expected.expectVectorsChecksum.slice(0, 12)}...): rebuild it`,
    );
  }
  const indexedDim = rangesSize(info.coordinates);
  let header: HnswlibHeader | undefined;
  let checksum: string;
  try {
    header = await readHnswlibHeader(path);
    checksum = await sha256File(path);
  } catch (err) {
    throw new InputError(`cannot read HNSW index ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (!header || header.fileSize < header.minFileSize) throw new InputError(`truncated HNSW index ${path}`);
  if (checksum !== info.checksum) throw new InputError(`corrupt HNSW index ${path}: its checksum does not match ${path}.json`);
  if (header.dim !== indexedDim || header.count !== info.count || header.M !== info.M || header.efConstruction !== info.efConstruction) {
    throw new InputError(
      `HNSW index ${path} holds ${header.count} vectors of dimension ${header.dim} (M ${header.M}), but ${path}.json describes ${info.count} of dimension ${indexedDim} (M ${info.M})`,
    );
  }

  const index = new hnsw.HierarchicalNSW("ip", indexedDim);
  try {
    await index.readIndex(path);
  } catch (err) {
    throw new InputError(`cannot load HNSW index ${path}: ${(err as Error).message}`, { cause: err });
  }
  return new HnswIndex(info, index);
}
