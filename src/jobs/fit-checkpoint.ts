/**
 * A fit's checkpoint: what ekfac/fit.ts keeps as it goes, in a folder beside the factors, so that a
 * killed `influence fit` (or a build's factors phase) continues where it stopped.
 *
 *   checkpoints/fit.json                      the settings of the fit, written before anything else
 *   checkpoints/covariance-shards.safetensors  sums of pass 1 over its first `shards` shards
 *   checkpoints/eigen-000000.safetensors       eigenbasis of module 0, one file per finished module
 *   checkpoints/lambda-shards.safetensors      sums of pass 2 over its first `shards` shards
 *
 * Each file is replaced atomically (artifacts.ts, the distributed build's format), and a resume
 * with other settings is refused: the sums are only valid for the same model, corpus, labels,
 * shards and batches.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import type { DampingRule, FisherMode } from "../ekfac/artifacts.js";
import type { ModuleEigenbasis } from "../ekfac/eigenbasis.js";
import type { FisherPass, FitCheckpoint, PassProgress } from "../ekfac/fit.js";
import { parameterDifference } from "../indexer/index-manifest.js";
import { writeJsonAtomic } from "../util/atomic-write.js";
import { InputError } from "../util/errors.js";
import { SharedFolder, padded, readEigenbasis, readPartialSums, writeEigenbasis, writePartialSums } from "./artifacts.js";

/** Everything the bits of a fit depend on. */
export interface FitSettings {
  modelFingerprint: string;
  corpusFingerprint: string;
  maxSequences: number | null;
  sequences: number;
  fisher: FisherMode;
  seed: number;
  damping: DampingRule;
  shardSize: number;
  /** Padded tokens per batch, after the memory cap: float32 batch sums differ with the batches. */
  batchTokens: number;
}

/** The checkpoint folder of the factors in `factorsDir`. */
export const checkpointDir = (factorsDir: string): string => path.join(factorsDir, "checkpoints");

const SETTINGS_FILE = "fit.json";
const passName = (kind: FisherPass["kind"]) => `${kind}-shards`;
const eigenName = (module: number) => `eigen-${padded(module)}`;

/**
 * What to do with an unfinished fit found in the folder: "resume" requires one (`--resume`),
 * "refuse" stops rather than overwrite it, "continue" resumes one if there is one (a build's
 * factors phase, which its own --resume already guards).
 */
export type UnfinishedFit = "resume" | "refuse" | "continue";

export class FitCheckpointFolder implements FitCheckpoint {
  private constructor(private readonly store: SharedFolder) {}

  /** The checkpoint of a fit into `factorsDir` with these settings, started or found again. */
  static async open(factorsDir: string, settings: FitSettings, unfinished: UnfinishedFit): Promise<FitCheckpointFolder> {
    const dir = checkpointDir(factorsDir);
    const file = path.join(dir, SETTINGS_FILE);
    if (existsSync(file)) {
      if (unfinished === "refuse") {
        throw new InputError(`${factorsDir} holds an unfinished fit (${dir}): continue it with --resume, or fit into another folder (nothing was changed)`);
      }
      let saved: FitSettings;
      try {
        saved = JSON.parse(await readFile(file, "utf8"));
      } catch (err) {
        throw new InputError(`${file}: malformed fit settings (${(err as Error).message})`);
      }
      const difference = parameterDifference(saved, settings);
      if (difference) {
        throw new InputError(
          `${factorsDir}: the unfinished fit there has other settings (${difference}); resume it with its own, or fit into another folder (nothing was changed)`,
        );
      }
    } else {
      if (unfinished === "resume") throw new InputError(`${factorsDir}: no unfinished fit to resume (start one without --resume)`);
      await mkdir(dir, { recursive: true });
      await writeJsonAtomic(file, settings);
    }
    return new FitCheckpointFolder(new SharedFolder(dir));
  }

  async passProgress(kind: FisherPass["kind"]): Promise<PassProgress | undefined> {
    if (!(await this.store.has(passName(kind)))) return undefined;
    const { metadata, ...sums } = await readPartialSums(this.store, passName(kind));
    return { shards: Number(metadata.shards), sums };
  }

  savePassProgress(kind: FisherPass["kind"], progress: PassProgress): Promise<void> {
    return writePartialSums(this.store, passName(kind), progress.sums, { shards: String(progress.shards) });
  }

  async eigenbasis(module: number): Promise<ModuleEigenbasis | undefined> {
    return (await this.store.has(eigenName(module))) ? readEigenbasis(this.store, eigenName(module)) : undefined;
  }

  saveEigenbasis(module: number, basis: ModuleEigenbasis): Promise<void> {
    return writeEigenbasis(this.store, eigenName(module), basis);
  }

  /** Removes the checkpoint: the fit is complete and saved. */
  clear(): Promise<void> {
    return this.store.clear();
  }
}
