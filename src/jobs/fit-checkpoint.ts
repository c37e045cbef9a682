/**
 * A fit's checkpoint: what ekfac/fit.ts keeps as it goes, in a folder beside the factors, so that a
 * killed `influence fit` (or a build's factors phase) continues where it stopped.
 *
 *   checkpoints/fit.json                      the settings of the fit, written before anything else
 *   checkpoints/covariance-shards.safetensors  sums of pass 1 over its first `shards` shards
 *   checkpoints/eigen-000000.safetensors       eigenbasis of module 0, one file per finished module
 *   checkpoints/lambda-shards.safetensors      sums of pass 2 over its first `shards` shards
 *
 * A fit in groups of layers (jobs/fit-groups.ts) keeps these files for the group in progress under
 * its name (group-000001-covariance-shards.safetensors, ...) and each finished group's factors in
 * checkpoints/group-000001.safetensors, whose progress files are then removed.
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
import { SafetensorsReader } from "../safetensors/read.js";
import { type TensorToWrite, safetensorsPieces } from "../safetensors/write.js";
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
  /** The layers of each group, "0-6" (one group: all layers at once); a group's files hold its own modules only. */
  groups: string[];
}

/** The checkpoint folder of the factors in `factorsDir`. */
export const checkpointDir = (factorsDir: string): string => path.join(factorsDir, "checkpoints");

const SETTINGS_FILE = "fit.json";
const passName = (kind: FisherPass["kind"]) => `${kind}-shards`;
const eigenName = (module: number) => `eigen-${padded(module)}`;
const groupName = (group: number) => `group-${padded(group)}`;

/**
 * What to do with an unfinished fit found in the folder: "resume" requires one (`--resume`),
 * "refuse" stops rather than overwrite it, "continue" resumes one if there is one (a build's
 * factors phase, which its own --resume already guards).
 */
export type UnfinishedFit = "resume" | "refuse" | "continue";

export class FitCheckpointFolder implements FitCheckpoint {
  /** `prefix` names the files of one group of a grouped fit. */
  private constructor(
    private readonly store: SharedFolder,
    private readonly prefix = "",
  ) {}

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
      // A fit started before groups existed fitted all layers at once: one group, from the first layer to the last.
      saved.groups ??= [`${settings.groups[0].split("-")[0]}-${settings.groups[settings.groups.length - 1].split("-")[1]}`];
      const difference = parameterDifference(saved, settings);
      if (difference?.startsWith("groups:")) {
        const groups = (g: string[]) => `${g.length} group${g.length > 1 ? "s" : ""} of layers (${g.join(", ")})`;
        throw new InputError(
          `${factorsDir}: the unfinished fit there fits its layers in ${groups(saved.groups)} and this one would fit them in ${groups(settings.groups)}: ` +
            "resume it with the --memory it was started with, or fit into another folder (nothing was changed)",
        );
      }
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
    const name = this.prefix + passName(kind);
    if (!(await this.store.has(name))) return undefined;
    const { metadata, ...sums } = await readPartialSums(this.store, name);
    return { shards: Number(metadata.shards), sums };
  }

  savePassProgress(kind: FisherPass["kind"], progress: PassProgress): Promise<void> {
    return writePartialSums(this.store, this.prefix + passName(kind), progress.sums, { shards: String(progress.shards) });
  }

  async eigenbasis(module: number): Promise<ModuleEigenbasis | undefined> {
    const name = this.prefix + eigenName(module);
    return (await this.store.has(name)) ? readEigenbasis(this.store, name) : undefined;
  }

  saveEigenbasis(module: number, basis: ModuleEigenbasis): Promise<void> {
    return writeEigenbasis(this.store, this.prefix + eigenName(module), basis);
  }

  /** The checkpoint of group `group` of a grouped fit (its modules numbered from 0). */
  group(group: number): FitCheckpoint {
    return new FitCheckpointFolder(this.store, `${groupName(group)}-`);
  }

  /** Whether group `group` is finished: its factors are saved. */
  hasGroupFactors(group: number): Promise<boolean> {
    return this.store.has(groupName(group));
  }

  /** Saves a finished group's factors, then removes the files of its progress. */
  async saveGroupFactors(group: number, tensors: Record<string, TensorToWrite>, metadata: Record<string, string>): Promise<void> {
    await this.store.write(groupName(group), safetensorsPieces(tensors, metadata));
    await this.discardGroupProgress(group);
  }

  /** Removes a finished group's progress files (left behind if a fit was killed as it saved the group). */
  discardGroupProgress(group: number): Promise<void> {
    return this.store.removeStartingWith(`${groupName(group)}-`);
  }

  /** A finished group's factors file, to read a tensor at a time. */
  openGroupFactors(group: number): Promise<SafetensorsReader> {
    return SafetensorsReader.open(this.store.file(groupName(group)));
  }

  /** Removes the checkpoint: the fit is complete and saved. */
  clear(): Promise<void> {
    return this.store.clear();
  }
}
