/** projection.safetensors: the per-module projection matrices, with their settings as metadata. */
import { readSafetensors, tensorAsFloat32 } from "../safetensors/read.js";
import { type TensorToWrite, writeSafetensors } from "../safetensors/write.js";
import { type TrackedModule, inputWidth } from "../model/model.js";
import type { Allocate } from "../util/allocate.js";
import { InputError } from "../util/errors.js";
import type { ModuleProjection, Projection, ProjectionSettings } from "./projection.js";

interface StoredModule {
  name: string;
  kOut: number;
  kIn: number;
  rank: number;
  offset: number;
  scalingError: number;
}

export async function saveProjection(file: string, projection: Projection): Promise<void> {
  const tensors: Record<string, TensorToWrite> = {};
  for (const p of projection.modules) {
    tensors[`left.${p.module.name}`] = { dtype: "F32", shape: [p.module.outFeatures, p.rank * p.kOut], data: p.left };
    tensors[`right.${p.module.name}`] = { dtype: "F32", shape: [inputWidth(p.module), p.rank * p.kIn], data: p.right };
  }
  const modules: StoredModule[] = projection.modules.map(({ module, kOut, kIn, rank, offset, scalingError }) => ({
    name: module.name,
    kOut,
    kIn,
    rank,
    offset,
    scalingError,
  }));
  await writeSafetensors(file, tensors, { settings: JSON.stringify(projection.settings), modules: JSON.stringify(modules), dim: String(projection.dim) });
}

/** The projection saved in `file`, checked against the model's modules; its matrices in memory from `allocate` (ordinary by default). */
export async function loadProjection(file: string, modules: readonly TrackedModule[], allocate?: Allocate): Promise<Projection> {
  const st = await readSafetensors(file);
  let settings: ProjectionSettings;
  let stored: StoredModule[];
  try {
    settings = JSON.parse(st.metadata.settings);
    stored = JSON.parse(st.metadata.modules);
  } catch {
    throw new InputError(`${file}: missing or malformed projection metadata`);
  }
  if (stored.length !== modules.length || stored.some((s, i) => s.name !== modules[i].name)) {
    throw new InputError(`${file}: projected modules (${stored.map((s) => s.name).join(", ")}) differ from the model's`);
  }
  const projected = modules.map((module, i): ModuleProjection => {
    const s = stored[i];
    const left = tensorAsFloat32(st, `left.${module.name}`, allocate);
    const right = tensorAsFloat32(st, `right.${module.name}`, allocate);
    if (left.length !== module.outFeatures * s.rank * s.kOut || right.length !== inputWidth(module) * s.rank * s.kIn) {
      throw new InputError(`${file}: projection matrices of ${module.name} do not match its dims ${s.kOut}x${s.kIn} at rank ${s.rank}`);
    }
    return { module, kOut: s.kOut, kIn: s.kIn, rank: s.rank, offset: s.offset, scalingError: s.scalingError, left, right };
  });
  // Blocks follow one another in module order (buildProjection), as the projector concatenates them.
  let end = 0;
  for (const p of projected) {
    if (p.offset !== end) throw new InputError(`${file}: the block of ${p.module.name} starts at ${p.offset}, not where the block before it ends (${end})`);
    end += p.kOut * p.kIn;
  }
  const dim = Number(st.metadata.dim);
  if (dim !== end) throw new InputError(`${file}: dimension ${st.metadata.dim} is not the blocks' ${end}`);
  return { settings, modules: projected, dim };
}
