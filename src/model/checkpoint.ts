/**
 * Reads the weights of a Hugging Face model folder: `model.safetensors`, or the shards listed in
 * `model.safetensors.index.json`. Tensors come back as float32 whatever their dtype on disk.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { type SafetensorsFile, readSafetensors, tensorAsFloat32 } from "../safetensors/read.js";
import { InputError } from "../util/errors.js";

export interface CheckpointTensor {
  shape: number[];
  /** Where it came from, for error messages. */
  file: string;
  read(): Float32Array;
}

/** All tensors of a checkpoint by their names as stored. */
export type Checkpoint = Map<string, CheckpointTensor>;

function addFile(out: Checkpoint, st: SafetensorsFile, names?: Iterable<string>): void {
  for (const name of names ?? st.tensors.keys()) {
    const info = st.tensors.get(name);
    if (!info) throw new InputError(`${st.path}: the shard index says it holds ${name}, but it does not`);
    out.set(name, { shape: info.shape, file: st.path, read: () => tensorAsFloat32(st, name) });
  }
}

async function readShardIndex(file: string): Promise<Map<string, string[]>> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, "utf8"));
  } catch (err) {
    throw new InputError(`${file}: malformed shard index (${(err as Error).message})`);
  }
  const weightMap = (raw as { weight_map?: unknown })?.weight_map;
  if (typeof weightMap !== "object" || weightMap === null) throw new InputError(`${file}: no "weight_map" object`);
  const byShard = new Map<string, string[]>();
  for (const [name, shard] of Object.entries(weightMap as Record<string, unknown>)) {
    if (typeof shard !== "string" || shard.includes("/") || shard.includes("\\")) {
      throw new InputError(`${file}: tensor ${name} maps to an invalid shard file ${JSON.stringify(shard)}`);
    }
    byShard.set(shard, [...(byShard.get(shard) ?? []), name]);
  }
  return byShard;
}

export async function readCheckpoint(modelDir: string): Promise<Checkpoint> {
  const single = path.join(modelDir, "model.safetensors");
  const index = path.join(modelDir, "model.safetensors.index.json");
  const out: Checkpoint = new Map();
  if (existsSync(single)) {
    addFile(out, await readSafetensors(single));
  } else if (existsSync(index)) {
    for (const [shard, names] of await readShardIndex(index)) {
      const shardFile = path.join(modelDir, shard);
      if (!existsSync(shardFile)) {
        throw new InputError(`${index}: lists shard ${shard} (holding ${names.length} tensor(s), e.g. ${names[0]}), but ${shardFile} is missing`);
      }
      addFile(out, await readSafetensors(shardFile), names);
    }
  } else {
    throw new InputError(`${modelDir}: no model.safetensors or model.safetensors.index.json (only safetensors checkpoints are read)`);
  }
  return out;
}

/** The files whose content defines a model: its config and every checkpoint file. */
export async function modelFiles(modelDir: string): Promise<string[]> {
  const index = path.join(modelDir, "model.safetensors.index.json");
  const shards = existsSync(path.join(modelDir, "model.safetensors"))
    ? ["model.safetensors"]
    : existsSync(index)
      ? ["model.safetensors.index.json", ...(await readShardIndex(index)).keys()]
      : [];
  return ["config.json", ...shards].map((f) => path.join(modelDir, f));
}
