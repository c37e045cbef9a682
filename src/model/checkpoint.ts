/**
 * Reads the weights of a Hugging Face model folder: `model.safetensors`, or the shards listed in
 * `model.safetensors.index.json`. The files are opened and their tensors read one at a time, as
 * float32 whatever their dtype on disk: a checkpoint is never in memory whole.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { SafetensorsReader, readSafetensorsHeader } from "../safetensors/read.js";
import { InputError } from "../util/errors.js";

export interface CheckpointTensor {
  shape: number[];
  /** Where it came from, for error messages. */
  file: string;
  /** The tensor as float32, read from its file now. */
  read(): Promise<Float32Array>;
}

/** All tensors of a checkpoint by their names as stored, in files open until `close`. */
export interface Checkpoint {
  tensors: Map<string, CheckpointTensor>;
  close(): Promise<void>;
}

function addFile(out: Map<string, CheckpointTensor>, st: SafetensorsReader, names?: Iterable<string>): void {
  for (const name of names ?? st.tensors.keys()) {
    const info = st.tensors.get(name);
    if (!info) throw new InputError(`${st.path}: the shard index says it holds ${name}, but it does not`);
    out.set(name, { shape: info.shape, file: st.path, read: () => st.float32(name) });
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

/** The checkpoint files of a model folder, each with the tensors to take from it (every one when absent). */
async function checkpointShards(modelDir: string): Promise<Array<{ file: string; names?: string[] }>> {
  const single = path.join(modelDir, "model.safetensors");
  const index = path.join(modelDir, "model.safetensors.index.json");
  if (existsSync(single)) return [{ file: single }];
  if (!existsSync(index)) {
    throw new InputError(`${modelDir}: no model.safetensors or model.safetensors.index.json (only safetensors checkpoints are read)`);
  }
  const shards = [];
  for (const [shard, names] of await readShardIndex(index)) {
    const file = path.join(modelDir, shard);
    if (!existsSync(file)) {
      throw new InputError(`${index}: lists shard ${shard} (holding ${names.length} tensor(s), e.g. ${names[0]}), but ${file} is missing`);
    }
    shards.push({ file, names });
  }
  return shards;
}

/** Opens the checkpoint of a model folder: every file's header read, no tensor yet. */
export async function openCheckpoint(modelDir: string): Promise<Checkpoint> {
  const tensors = new Map<string, CheckpointTensor>();
  const readers: SafetensorsReader[] = [];
  const close = async () => {
    await Promise.all(readers.map((r) => r.close()));
  };
  try {
    for (const { file, names } of await checkpointShards(modelDir)) {
      readers.push(await SafetensorsReader.open(file));
      addFile(tensors, readers[readers.length - 1], names);
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { tensors, close };
}

/**
 * Bytes of the largest tensor of a model folder's checkpoint files as stored: what loading holds
 * beside the float32 weights, since tensors are read one at a time.
 */
export async function largestTensorBytes(modelDir: string): Promise<number> {
  let largest = 0;
  for (const { file, names } of await checkpointShards(modelDir)) {
    const { tensors } = await readSafetensorsHeader(file);
    for (const name of names ?? tensors.keys()) {
      const info = tensors.get(name);
      if (info) largest = Math.max(largest, info.end - info.begin);
    }
  }
  return largest;
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
