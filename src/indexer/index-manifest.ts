/**
 * An index folder and its manifest. The manifest is written last, atomically: a folder without
 * one holds no usable index (at most an interrupted build), so a server never opens a half-built
 * index.
 *
 *   manifest.json          this manifest
 *   build.json             parameters of the build in progress (checked by --resume)
 *   factors/               EK-FAC factors (ekfac/artifacts.ts)
 *   projection.safetensors the per-module projections (projection/store.ts)
 *   tokens.bin             token ids of every sequence (token-store.ts)
 *   sketch.safetensors     the second tier's projections (projection/sketch.ts), unless built without
 *   shards/                vector files of finished shards, during a build
 *   vectors.bin            all sequence vectors (vector-file.ts): the first tier, searched by HNSW
 *   sketch.bin             all sequence sketches (same format, int8 rows by default): the second tier, re-scores candidates
 *   hnsw.bin, .json        the inner-product HNSW index and its sidecar (hnsw-index.ts)
 *   db/                    the embedded PGlite database, unless --database names a server
 */
import type { MemoryRecord } from "../model/memory-estimate.js";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { ProjectionSettings } from "../projection/projection.js";
import { type SketchSettings, sketchPrecision } from "../projection/sketch.js";
import { writeJsonAtomic } from "../util/atomic-write.js";
import { InputError } from "../util/errors.js";
import { rowBytes } from "./vector-file.js";

export const INDEX_FORMAT = "influence-graph.index";
export const INDEX_VERSION = 1;

export const indexFiles = {
  manifest: "manifest.json",
  buildState: "build.json",
  factors: "factors",
  projection: "projection.safetensors",
  sketchProjection: "sketch.safetensors",
  tokens: "tokens.bin",
  shards: "shards",
  vectors: "vectors.bin",
  sketch: "sketch.bin",
  hnsw: "hnsw.bin",
  database: "db",
} as const;

export const indexPath = (dir: string, file: keyof typeof indexFiles): string => path.join(dir, indexFiles[file]);

/** Everything that determines an index's content; a resumed build must ask for the same. */
export interface BuildParameters {
  modelFingerprint: string;
  corpusFingerprint: string;
  fisher: "sampled" | "empirical";
  damping: { rule: "heuristic"; factor: number } | { rule: "fixed"; value: number };
  seed: number;
  /** Index only the first n sequences of the corpus (all when null). */
  maxSequences: number | null;
  /** Fit EK-FAC on the first n sequences (all indexed ones when null). */
  fitSequences: number | null;
  projection: ProjectionSettings;
  /** The second tier; null: none (queries score by the first tier's vectors). Absent in indexes built before it. */
  sketch?: SketchSettings | null;
  pcaSequences: number;
  shardSize: number;
  hnsw: { M: number; efConstruction: number };
}

/** What the manifest records of a vector file (the first tier's or the sketch's), to check it when opened. */
export interface VectorFileRecord {
  dim: number;
  count: number;
  checksum: string;
}

/** Bytes per sequence of an index's vector files: the first tier's float32 row and the sketch's row. */
export const vectorBytesPerSequence = (m: Pick<IndexManifest, "vectors" | "sketch" | "parameters">): number =>
  rowBytes(m.vectors.dim, "float32") + (m.sketch ? rowBytes(m.sketch.dim, sketchPrecision(m.parameters.sketch)) : 0);

export interface IndexManifest {
  format: typeof INDEX_FORMAT;
  version: number;
  createdAt: string;
  parameters: BuildParameters;
  model: { path: string; fingerprint: string };
  corpus: { name: string; path: string; fingerprint: string; sequences: number; tokens: number };
  /** Where the sequences' metadata lives: the embedded database, or a server (URL without password). */
  database: { kind: "pglite" } | { kind: "postgres"; url: string };
  vectors: VectorFileRecord;
  /** The sketch file, when the build made one. */
  sketch?: VectorFileRecord;
  build: { id: number; startedAt: string; finishedAt: string; seconds: number; phaseSeconds: Record<string, number>; memory?: MemoryRecord };
}

export async function readIndexManifest(dir: string): Promise<IndexManifest> {
  const file = indexPath(dir, "manifest");
  if (!existsSync(dir)) throw new InputError(`${dir}: index folder not found`);
  if (!existsSync(file)) {
    const interrupted = existsSync(indexPath(dir, "buildState"));
    throw new InputError(
      interrupted
        ? `${dir}: the build of this index did not finish; run \`influence build ... --out ${dir} --resume\``
        : `${file}: missing (${dir} is not an index folder; create one with \`influence build\`)`,
    );
  }
  let manifest: IndexManifest;
  try {
    manifest = JSON.parse(await readFile(file, "utf8"));
  } catch (err) {
    throw new InputError(`${file}: malformed JSON (${(err as Error).message})`);
  }
  if (manifest?.format !== INDEX_FORMAT || manifest.version !== INDEX_VERSION) {
    throw new InputError(`${file}: not an index manifest of version ${INDEX_VERSION} (format ${manifest?.format}, version ${manifest?.version})`);
  }
  return manifest;
}

export async function writeIndexManifest(dir: string, manifest: IndexManifest): Promise<void> {
  await writeJsonAtomic(indexPath(dir, "manifest"), manifest);
}

/** Adds the build's memory (its budget, estimated and reached peak) to a complete index's manifest. */
export async function recordBuildMemory(dir: string, memory: MemoryRecord): Promise<IndexManifest> {
  const manifest = await readIndexManifest(dir);
  const recorded = { ...manifest, build: { ...manifest.build, memory } };
  await writeIndexManifest(dir, recorded);
  return recorded;
}

/** The first parameter that differs between two builds (or two fits), as "name: a vs b", or undefined. */
export function parameterDifference<T extends object>(a: T, b: T): string | undefined {
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)]) as Set<keyof T>) {
    const [x, y] = [JSON.stringify(a[key]), JSON.stringify(b[key])];
    if (x !== y) return `${String(key)}: ${x} vs ${y}`;
  }
  return undefined;
}
