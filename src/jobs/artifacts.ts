/**
 * Intermediate results of a fit kept on disk (shard sums, covariances, eigenbases): what a
 * distributed build's jobs hand to later jobs, stored under the job's name where every worker can
 * reach it, and what a single-machine fit keeps to continue after a crash (fit-checkpoint.ts).
 * Files are float64 safetensors (eigenvectors float32, as the factors keep them), so a value read
 * back has the bits it was written with.
 *
 * ArtifactStore is the whole interface the jobs use for these, so that an object store can stand
 * in for the shared folder later. The index's own files (factors, projection, vector shards, HNSW
 * graphs) are still written by their writers into the shared folder.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, readdir, rm } from "node:fs/promises";
import path from "node:path";
import type { ModuleCovariance } from "../ekfac/covariance.js";
import type { ModuleEigenbasis } from "../ekfac/eigenbasis.js";
import type { PartialSums } from "../ekfac/partial-sums.js";
import type { TrackedModule } from "../model/model.js";
import { parseSafetensors, tensorAsFloat32, tensorAsFloat64 } from "../safetensors/read.js";
import { safetensorsPieces, type TensorToWrite } from "../safetensors/write.js";
import { writeFileAtomic } from "../util/atomic-write.js";

export interface ArtifactStore {
  /** Replaces the artifact atomically: readers see the old bytes or the new, never a part. The bytes may come in pieces. */
  write(name: string, bytes: Uint8Array | Iterable<Uint8Array>): Promise<void>;
  read(name: string): Promise<Uint8Array>;
  has(name: string): Promise<boolean>;
  /** Removes every artifact: the build is complete and they were only for its jobs. */
  clear(): Promise<void>;
}

/** Artifacts as files of a folder every worker mounts (NFS, a cluster file system, one machine's disk). */
export class SharedFolder implements ArtifactStore {
  constructor(readonly dir: string) {}

  async write(name: string, bytes: Uint8Array | Iterable<Uint8Array>): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeFileAtomic(this.file(name), bytes);
  }

  async read(name: string): Promise<Uint8Array> {
    return new Uint8Array(await readFile(this.file(name)));
  }

  async has(name: string): Promise<boolean> {
    return existsSync(this.file(name));
  }

  async clear(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }

  /** Removes the artifacts whose names start with `prefix`. */
  async removeStartingWith(prefix: string): Promise<void> {
    const names = existsSync(this.dir) ? await readdir(this.dir) : [];
    await Promise.all(names.filter((f) => f.startsWith(prefix) && f.endsWith(".safetensors")).map((f) => rm(path.join(this.dir, f), { force: true })));
  }

  /** The file that holds an artifact. */
  file(name: string): string {
    if (!/^[a-z0-9][a-z0-9.-]*$/.test(name)) throw new RangeError(`invalid artifact name ${JSON.stringify(name)}`);
    return path.join(this.dir, `${name}.safetensors`);
  }
}

/** A shard or module number in a name, zero-padded so that names sort in number order. */
export const padded = (n: number): string => String(n).padStart(6, "0");

const f64 = (data: Float64Array): TensorToWrite => ({ dtype: "F64", shape: [data.length], data });
const f32 = (data: Float32Array): TensorToWrite => ({ dtype: "F32", shape: [data.length], data });

export async function writePartialSums(store: ArtifactStore, name: string, partial: PartialSums, metadata: Record<string, string> = {}): Promise<void> {
  const tensors = Object.fromEntries(partial.sums.map((s, i) => [`sum.${i}`, f64(s)]));
  await store.write(name, safetensorsPieces(tensors, { ...metadata, count: String(partial.count) }));
}

/** The sums and the metadata they were written with. */
export async function readPartialSums(store: ArtifactStore, name: string): Promise<PartialSums & { metadata: Record<string, string> }> {
  const st = parseSafetensors(name, await store.read(name));
  const sums = Array.from({ length: st.tensors.size }, (_, i) => tensorAsFloat64(st, `sum.${i}`));
  return { sums, count: Number(st.metadata.count), metadata: st.metadata };
}

export async function writeCovariance(store: ArtifactStore, name: string, cov: ModuleCovariance): Promise<void> {
  await store.write(name, safetensorsPieces({ A: f64(cov.A), S: f64(cov.S) }, { module: cov.module.name }));
}

export async function readCovariance(store: ArtifactStore, name: string, module: TrackedModule): Promise<ModuleCovariance> {
  const st = parseSafetensors(name, await store.read(name));
  return { module, A: tensorAsFloat64(st, "A"), S: tensorAsFloat64(st, "S") };
}

export async function writeEigenbasis(store: ArtifactStore, name: string, basis: ModuleEigenbasis): Promise<void> {
  await store.write(name, safetensorsPieces({ qA: f32(basis.qA), eigA: f64(basis.eigA), qS: f32(basis.qS), eigS: f64(basis.eigS) }));
}

export async function readEigenbasis(store: ArtifactStore, name: string): Promise<ModuleEigenbasis> {
  const st = parseSafetensors(name, await store.read(name));
  return { qA: tensorAsFloat32(st, "qA"), eigA: tensorAsFloat64(st, "eigA"), qS: tensorAsFloat32(st, "qS"), eigS: tensorAsFloat64(st, "eigS") };
}
