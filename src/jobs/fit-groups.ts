/**
 * A fit in groups of consecutive layers (ekfac/layer-groups.ts), for a model whose factors do not
 * fit in memory all at once: each group runs the covariance pass, the eigendecompositions and the
 * Lambda pass for its layers' modules only, continuing from its checkpoint files, and saves its
 * factors to checkpoints/group-NNNNNN.safetensors before the next group starts. The factors files
 * are then assembled a tensor at a time from the groups' files, in the order a fit of all layers at
 * once writes them, with the same bytes.
 */
import { type FactorsFile, type FactorsManifest, FACTORS_FILES, factorTensors, saveFactors, saveFactorsFrom } from "../ekfac/artifacts.js";
import { type FitOptions, type FitResult, type PassRunner, fitEkfac } from "../ekfac/fit.js";
import { type LayerGroup, groupLayers, groupModules } from "../ekfac/layer-groups.js";
import type { TrackedModule } from "../model/model.js";
import type { SafetensorsReader } from "../safetensors/read.js";
import type { TensorHeader, TensorToWrite } from "../safetensors/write.js";
import type { ProgressListener } from "../util/progress.js";
import type { FitCheckpointFolder } from "./fit-checkpoint.js";

/** What the manifest takes of a fit: its counts and timings, and each module's damping. */
export type FitSummary = Pick<FitResult, "sequences" | "tokens" | "timings"> & { factors: Array<{ module: TrackedModule; damping: number }> };

/** A factors file's tensor in a group's file: "eigen:QA.h.0.mlp.c_fc". */
const groupTensorName = (file: FactorsFile, name: string) => `${file}:${name}`;

/** A group's factors as its file keeps them: every factors file's tensors, and the counts and timings in the metadata. */
function groupFile(result: FitResult): { tensors: Record<string, TensorToWrite>; metadata: Record<string, string> } {
  const byFile = factorTensors(result.covariance, result.factors);
  const tensors: Record<string, TensorToWrite> = {};
  for (const file of FACTORS_FILES) for (const [name, t] of Object.entries(byFile[file])) tensors[groupTensorName(file, name)] = t;
  const { sequences, tokens, timings } = result;
  return { tensors, metadata: { sequences: String(sequences), tokens: String(tokens), timings: JSON.stringify(timings) } };
}

/**
 * Fits the modules in `groups` and saves the factors files into outDir with the manifest
 * `manifestOf` makes of the fit: one group is the fit of all layers at once, its passes run by
 * `passesFor()`; several are fitted one after another (fitGroups) and their files assembled.
 */
export async function fitAndSave(
  outDir: string,
  modules: readonly TrackedModule[],
  groups: readonly LayerGroup[],
  passesFor: (group?: LayerGroup, onProgress?: ProgressListener) => PassRunner,
  checkpoint: FitCheckpointFolder,
  manifestOf: (fit: FitSummary) => FactorsManifest,
  opts: FitOptions,
): Promise<FactorsManifest> {
  if (groups.length === 1) {
    const result = await fitEkfac(modules, passesFor(), { ...opts, checkpoint });
    const manifest = manifestOf(result);
    await saveFactors(outDir, manifest, result.covariance, result.factors);
    return manifest;
  }
  await fitGroups(modules, groups, passesFor, checkpoint, { ...opts, checkpoint });
  const manifest = manifestOf(await groupsSummary(groups, modules, checkpoint));
  opts.onProgress?.({ phase: "assembling", done: 0, total: 3, unit: "files" });
  await assembleGroups(outDir, manifest, groups.length, checkpoint);
  opts.onProgress?.({ phase: "assembling", done: 3, total: 3, unit: "files" });
  return manifest;
}

/**
 * Fits each group not yet saved in the checkpoint, its passes run by `passesFor(group, onProgress)`;
 * progress is reported per group ("covariance 2/4", the group's layers as the item where there is none).
 */
export async function fitGroups(
  modules: readonly TrackedModule[],
  groups: readonly LayerGroup[],
  passesFor: (group: LayerGroup, onProgress?: ProgressListener) => PassRunner,
  checkpoint: FitCheckpointFolder,
  opts: FitOptions,
): Promise<void> {
  for (const [g, group] of groups.entries()) {
    if (await checkpoint.hasGroupFactors(g)) {
      await checkpoint.discardGroupProgress(g);
      continue;
    }
    const listener = opts.onProgress;
    const onProgress: ProgressListener | undefined =
      listener && ((e) => listener({ ...e, phase: `${e.phase} ${g + 1}/${groups.length}`, item: e.item ?? groupLayers(group) }));
    await fitGroup(g, groupModules(modules, group), passesFor(group, onProgress), checkpoint, { ...opts, onProgress });
  }
}

/**
 * Fits and saves one group. Its own function so that its factors are let go when it returns: a
 * suspended async function keeps the values of its locals until they are overwritten, and a loop
 * holding `result` would keep one group's factors through the whole next group.
 */
async function fitGroup(g: number, modules: readonly TrackedModule[], passes: PassRunner, checkpoint: FitCheckpointFolder, opts: FitOptions): Promise<void> {
  const { tensors, metadata } = groupFile(await fitEkfac(modules, passes, { ...opts, checkpoint: checkpoint.group(g) }));
  await checkpoint.saveGroupFactors(g, tensors, metadata);
}

/**
 * The summary of a grouped fit from its groups' files: each module's damping, the counts (every
 * group's passes ran over the same sequences) and the timings added up over the groups.
 */
export async function groupsSummary(groups: readonly LayerGroup[], modules: readonly TrackedModule[], checkpoint: FitCheckpointFolder): Promise<FitSummary> {
  const summary: FitSummary = { sequences: 0, tokens: 0, timings: { covarianceSeconds: 0, eigendecompositionSeconds: 0, lambdaSeconds: 0 }, factors: [] };
  for (const [g, group] of groups.entries()) {
    const reader = await checkpoint.openGroupFactors(g);
    try {
      const timings = JSON.parse(reader.metadata.timings) as FitSummary["timings"];
      summary.sequences = Number(reader.metadata.sequences);
      summary.tokens = Number(reader.metadata.tokens);
      summary.timings.covarianceSeconds += timings.covarianceSeconds;
      summary.timings.eigendecompositionSeconds += timings.eigendecompositionSeconds;
      summary.timings.lambdaSeconds += timings.lambdaSeconds;
      for (const module of groupModules(modules, group)) {
        summary.factors.push({ module, damping: (await reader.float64(groupTensorName("lambda", `damping.${module.name}`)))[0] });
      }
    } finally {
      await reader.close();
    }
  }
  return summary;
}

/** Writes the factors files and the manifest from the groups' files, a tensor at a time. */
export async function assembleGroups(outDir: string, manifest: FactorsManifest, groups: number, checkpoint: FitCheckpointFolder): Promise<void> {
  const readers: SafetensorsReader[] = [];
  try {
    for (let g = 0; g < groups; g++) readers.push(await checkpoint.openGroupFactors(g));
    const tensors: Record<FactorsFile, Record<string, TensorHeader>> = { covariance: {}, eigen: {}, lambda: {} };
    const source = new Map<string, SafetensorsReader>();
    for (const reader of readers) {
      for (const [stored, info] of reader.tensors) {
        const colon = stored.indexOf(":");
        const [file, name] = [stored.slice(0, colon) as FactorsFile, stored.slice(colon + 1)];
        tensors[file][name] = { dtype: info.dtype as TensorHeader["dtype"], shape: info.shape };
        source.set(stored, reader);
      }
    }
    await saveFactorsFrom(outDir, manifest, tensors, (file, name) => {
      const stored = groupTensorName(file, name);
      return (source.get(stored) as SafetensorsReader).bytes(stored);
    });
  } finally {
    await Promise.all(readers.map((r) => r.close()));
  }
}
