/**
 * Resumable training state: weights, AdamW moments and step, and the log so far. Resuming from it
 * continues the same run bit for bit, since the batch order depends only on the seed and step.
 */
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { readSafetensors, tensorAsFloat32 } from "../safetensors/read.js";
import { type TensorToWrite, writeSafetensors } from "../safetensors/write.js";
import { writeJsonAtomic } from "../util/atomic-write.js";
import type { AdamWState } from "./adamw.js";
import type { TrainingLog } from "./training-log.js";

export interface TrainingState {
  weights: Map<string, Float32Array>;
  optimizer: AdamWState;
  log: TrainingLog;
}

const TENSORS_FILE = "state.safetensors";
const LOG_FILE = "state-log.json";
const GROUPS = ["param", "m", "v"] as const;

export async function saveTrainingState(dir: string, state: TrainingState): Promise<void> {
  const tensors: Record<string, TensorToWrite> = {};
  const groups = { param: state.weights, m: state.optimizer.m, v: state.optimizer.v };
  for (const group of GROUPS) {
    for (const [name, data] of groups[group]) tensors[`${group}.${name}`] = { dtype: "F32", shape: [data.length], data };
  }
  await mkdir(dir, { recursive: true });
  await writeSafetensors(path.join(dir, TENSORS_FILE), tensors, { step: String(state.optimizer.step) });
  await writeJsonAtomic(path.join(dir, LOG_FILE), state.log);
}

export async function loadTrainingState(dir: string): Promise<TrainingState> {
  const st = await readSafetensors(path.join(dir, TENSORS_FILE));
  const groups = { param: new Map<string, Float32Array>(), m: new Map<string, Float32Array>(), v: new Map<string, Float32Array>() };
  for (const key of st.tensors.keys()) {
    const dot = key.indexOf(".");
    groups[key.slice(0, dot) as (typeof GROUPS)[number]].set(key.slice(dot + 1), tensorAsFloat32(st, key));
  }
  const log = JSON.parse(await readFile(path.join(dir, LOG_FILE), "utf8")) as TrainingLog;
  return { weights: groups.param, optimizer: { step: Number(st.metadata.step), m: groups.m, v: groups.v }, log };
}
