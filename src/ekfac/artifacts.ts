/**
 * Saved EK-FAC factors: one safetensors file per stage, as Kronfluence names its artifacts, and a
 * JSON manifest written last (its presence marks a complete fit) that later stages validate.
 *
 *   covariance.safetensors         A.<module>, S.<module>                  (pass 1)
 *   eigendecomposition.safetensors QA.<module>, eigA.<module>, QS.., eigS.. (eigenvectors as columns)
 *   lambda.safetensors             Lambda.<module>, damping.<module>       (pass 2)
 */
import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import type { MemoryRecord } from "../model/memory-estimate.js";
import { type TrackedModule, inputWidth } from "../model/model.js";
import { SafetensorsReader, readSafetensorsHeader, requireFloat } from "../safetensors/read.js";
import { type TensorHeader, type TensorToWrite, writeSafetensors, writeSafetensorsFrom } from "../safetensors/write.js";
import type { Allocate } from "../util/allocate.js";
import { writeJsonAtomic } from "../util/atomic-write.js";
import { InputError } from "../util/errors.js";
import type { ModuleCovariance, StoredCovariance } from "./covariance.js";
import type { ModuleFactors } from "./factors.js";

export const FACTORS_FORMAT = "influence-graph.ekfac";
export const FACTORS_VERSION = 2;

export type FisherMode = "sampled" | "empirical";
export type DampingRule = { rule: "heuristic"; factor: number } | { rule: "fixed"; value: number };

export interface FactorsManifest {
  format: typeof FACTORS_FORMAT;
  version: number;
  createdAt: string;
  model: { fingerprint: string; path: string };
  corpus: { fingerprint: string; path: string; maxSequences: number | null; sequences: number; tokens: number };
  fisher: FisherMode;
  seed: number;
  damping: DampingRule;
  modules: Array<TrackedModule & { damping: number }>;
  timings: { covarianceSeconds: number; eigendecompositionSeconds: number; lambdaSeconds: number };
  /** The fit's memory: its budget, the estimated and the reached peak (added once the files are saved). */
  memory?: MemoryRecord;
}

const files = { manifest: "manifest.json", covariance: "covariance.safetensors", eigen: "eigendecomposition.safetensors", lambda: "lambda.safetensors" };

/** Whether `dir` holds a complete fit: its manifest is written last. */
export const holdsFactors = (dir: string): boolean => existsSync(path.join(dir, files.manifest));

/** The factors files: which file of the folder each holds. */
export type FactorsFile = "covariance" | "eigen" | "lambda";
export const FACTORS_FILES: readonly FactorsFile[] = ["covariance", "eigen", "lambda"];

/** The tensors of each factors file, in the order they are written. */
export function factorTensors(covariance: readonly StoredCovariance[], factors: readonly ModuleFactors[]): Record<FactorsFile, Record<string, TensorToWrite>> {
  const cov: Record<string, TensorToWrite> = {};
  const eig: Record<string, TensorToWrite> = {};
  const lam: Record<string, TensorToWrite> = {};
  for (const { module, A, S } of covariance) {
    const nIn = inputWidth(module);
    cov[`A.${module.name}`] = { dtype: "F32", shape: [nIn, nIn], data: A };
    cov[`S.${module.name}`] = { dtype: "F32", shape: [module.outFeatures, module.outFeatures], data: S };
  }
  for (const f of factors) {
    const { name, outFeatures } = f.module;
    const nIn = inputWidth(f.module);
    eig[`QA.${name}`] = { dtype: "F32", shape: [nIn, nIn], data: f.qA };
    eig[`eigA.${name}`] = { dtype: "F64", shape: [nIn], data: f.eigA };
    eig[`QS.${name}`] = { dtype: "F32", shape: [outFeatures, outFeatures], data: f.qS };
    eig[`eigS.${name}`] = { dtype: "F64", shape: [outFeatures], data: f.eigS };
    lam[`Lambda.${name}`] = { dtype: "F32", shape: [outFeatures, nIn], data: f.lambda };
    lam[`damping.${name}`] = { dtype: "F64", shape: [1], data: [f.damping] };
  }
  return { covariance: cov, eigen: eig, lambda: lam };
}

const factorsMetadata = (manifest: FactorsManifest) => ({ format: FACTORS_FORMAT, model: manifest.model.fingerprint });

export async function saveFactors(dir: string, manifest: FactorsManifest, covariance: readonly StoredCovariance[], factors: ModuleFactors[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  const tensors = factorTensors(covariance, factors);
  for (const file of FACTORS_FILES) await writeSafetensors(path.join(dir, files[file]), tensors[file], factorsMetadata(manifest));
  await writeJsonAtomic(path.join(dir, files.manifest), manifest);
}

/**
 * Saves factors whose tensors are fetched one at a time (a grouped fit's, from its groups' files):
 * each file's tensors named and shaped in `tensors`, in the order factorTensors gives them, then
 * the manifest. The files have the bytes saveFactors writes of the same values.
 */
export async function saveFactorsFrom(
  dir: string,
  manifest: FactorsManifest,
  tensors: Record<FactorsFile, Record<string, TensorHeader>>,
  bytesOf: (file: FactorsFile, name: string) => Promise<Uint8Array>,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const file of FACTORS_FILES) {
    await writeSafetensorsFrom(path.join(dir, files[file]), tensors[file], (name) => bytesOf(file, name), factorsMetadata(manifest));
  }
  await writeJsonAtomic(path.join(dir, files.manifest), manifest);
}

/** Adds the fit's memory to the manifest of a saved fit. */
export async function recordFactorsMemory(dir: string, memory: MemoryRecord): Promise<void> {
  await writeJsonAtomic(path.join(dir, files.manifest), { ...(await readFactorsManifest(dir)), memory });
}

export async function readFactorsManifest(dir: string): Promise<FactorsManifest> {
  const file = path.join(dir, files.manifest);
  if (!existsSync(file)) throw new InputError(`${file}: missing (no completed EK-FAC fit in ${dir}; run \`influence fit\`)`);
  let manifest: FactorsManifest;
  try {
    manifest = JSON.parse(await readFile(file, "utf8"));
  } catch (err) {
    throw new InputError(`${file}: malformed JSON (${(err as Error).message})`);
  }
  if (manifest.format !== FACTORS_FORMAT || manifest.version !== FACTORS_VERSION) {
    throw new InputError(`${file}: not an EK-FAC factors manifest of version ${FACTORS_VERSION} (format ${manifest.format}, version ${manifest.version})`);
  }
  return manifest;
}

/** What a fit must have been made from; a mismatch is refused with both fingerprints. */
export interface FactorsExpectation {
  modelFingerprint: string;
  modules: readonly TrackedModule[];
  corpusFingerprint?: string;
}

function checkManifest(dir: string, manifest: FactorsManifest, expect: FactorsExpectation): void {
  const where = path.join(dir, files.manifest);
  if (manifest.model.fingerprint !== expect.modelFingerprint) {
    throw new InputError(
      `${where}: these factors were fitted on another model (${manifest.model.path}, fingerprint ${manifest.model.fingerprint.slice(0, 12)}; this ` +
        `model is ${expect.modelFingerprint.slice(0, 12)})`,
    );
  }
  if (expect.corpusFingerprint && manifest.corpus.fingerprint !== expect.corpusFingerprint) {
    throw new InputError(
      `${where}: these factors were fitted on another corpus (${manifest.corpus.path}, fingerprint ${manifest.corpus.fingerprint.slice(0, 12)}; ` +
        `expected ${expect.corpusFingerprint.slice(0, 12)})`,
    );
  }
  const shapes = (modules: readonly TrackedModule[]) => modules.map((m) => `${m.name}:${inputWidth(m)}x${m.outFeatures}`).join(",");
  const [names, wanted] = [shapes(manifest.modules), shapes(expect.modules)];
  if (names !== wanted) throw new InputError(`${where}: the fitted modules (${names}) differ from the model's (${wanted})`);
}

/**
 * Opens the named factors files of `dir` to be read a tensor at a time (never whole: an
 * eigendecomposition file of a billion-parameter model holds gigabytes), hands them to `read`, and
 * closes them.
 */
async function readingFactorsFiles<T>(dir: string, names: readonly FactorsFile[], read: (readers: SafetensorsReader[]) => Promise<T>): Promise<T> {
  const readers: SafetensorsReader[] = [];
  try {
    for (const name of names) readers.push(await SafetensorsReader.open(path.join(dir, files[name])));
    return await read(readers);
  } finally {
    await Promise.all(readers.map((r) => r.close()));
  }
}

function requireTensor(st: SafetensorsReader, name: string, shape: number[]): void {
  const info = st.tensors.get(name);
  if (!info) throw new InputError(`${st.path}: tensor ${name} is missing`);
  if (info.shape.join("x") !== shape.join("x")) throw new InputError(`${st.path}: tensor ${name} has shape [${info.shape}], expected [${shape}]`);
  requireFloat(st.path, name, info);
}

/** The files loadFactors reads: only the fit needs the covariances. */
const LOADED_FILES: readonly FactorsFile[] = ["eigen", "lambda"];

/**
 * The factors of a fit, checked against what it must have been made from. Every tensor's name,
 * shape and dtype is checked before any is read; then they are read one at a time, so that loading holds the
 * factors and at most one stored tensor beside them. The matrices (QA, QS, Lambda) are in memory
 * from `allocate` (ordinary by default; shared by serve's engine workers).
 */
export async function loadFactors(
  dir: string,
  expect: FactorsExpectation,
  allocate?: Allocate,
): Promise<{ manifest: FactorsManifest; factors: ModuleFactors[] }> {
  const manifest = await readFactorsManifest(dir);
  checkManifest(dir, manifest, expect);
  const factors = await readingFactorsFiles(dir, LOADED_FILES, async ([eig, lam]) => {
    for (const module of expect.modules) {
      const { name, outFeatures: o } = module;
      const i = inputWidth(module);
      requireTensor(eig, `QA.${name}`, [i, i]);
      requireTensor(eig, `QS.${name}`, [o, o]);
      requireTensor(eig, `eigA.${name}`, [i]);
      requireTensor(eig, `eigS.${name}`, [o]);
      requireTensor(lam, `Lambda.${name}`, [o, i]);
      requireTensor(lam, `damping.${name}`, [1]);
    }
    const loaded: ModuleFactors[] = [];
    for (const module of expect.modules) {
      const { name } = module;
      loaded.push({
        module,
        qA: await eig.float32(`QA.${name}`, allocate),
        eigA: await eig.float64(`eigA.${name}`),
        qS: await eig.float32(`QS.${name}`, allocate),
        eigS: await eig.float64(`eigS.${name}`),
        lambda: await lam.float32(`Lambda.${name}`, allocate),
        damping: (await lam.float64(`damping.${name}`))[0],
      });
    }
    return loaded;
  });
  return { manifest, factors };
}

/** What loadFactors holds of a fit's files: all their tensors as stored, and the largest of them, read beside the others. */
export async function loadedFactorsBytes(dir: string): Promise<{ total: number; largest: number }> {
  let [total, largest] = [0, 0];
  for (const name of LOADED_FILES) {
    for (const { begin, end } of (await readSafetensorsHeader(path.join(dir, files[name]))).tensors.values()) {
      total += end - begin;
      largest = Math.max(largest, end - begin);
    }
  }
  return { total, largest };
}

/** The means A and S of a fit, as float64, read a tensor at a time after every name, shape and dtype is checked. */
export async function loadCovariance(dir: string, modules: readonly TrackedModule[]): Promise<ModuleCovariance[]> {
  return readingFactorsFiles(dir, ["covariance"], async ([st]) => {
    for (const module of modules) {
      requireTensor(st, `A.${module.name}`, [inputWidth(module), inputWidth(module)]);
      requireTensor(st, `S.${module.name}`, [module.outFeatures, module.outFeatures]);
    }
    const covariance: ModuleCovariance[] = [];
    for (const module of modules) covariance.push({ module, A: await st.float64(`A.${module.name}`), S: await st.float64(`S.${module.name}`) });
    return covariance;
  });
}
