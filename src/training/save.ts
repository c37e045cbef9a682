/** Writes trained GPT-2 weights as a Hugging Face model folder, the layout `save_pretrained` gives. */
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { type Gpt2Config, toHfConfig } from "../model/config.js";
import { gpt2ParameterShapes } from "../model/gpt2-architecture.js";
import { type TensorToWrite, writeSafetensors } from "../safetensors/write.js";
import { writeJsonAtomic } from "../util/atomic-write.js";

/** HF's parameter order: embeddings, blocks, final LayerNorm. */
function hfOrder(names: string[]): string[] {
  const rank = (name: string) => (name.startsWith("ln_f.") ? 2 : name.startsWith("h.") ? 1 : 0);
  return [...names].sort((a, b) => rank(a) - rank(b));
}

/**
 * config.json, generation_config.json and model.safetensors (float32, keys `transformer.*`, no
 * lm_head.weight: it is tied to transformer.wte.weight, and `save_pretrained` leaves it out too).
 */
export async function saveHfGpt2(dir: string, cfg: Gpt2Config, weights: ReadonlyMap<string, Float32Array>, eosTokenId: number): Promise<void> {
  const shapes = gpt2ParameterShapes(cfg);
  const tensors: Record<string, TensorToWrite> = {};
  for (const name of hfOrder([...shapes.keys()])) {
    const data = weights.get(name);
    if (!data) throw new Error(`weights lack ${name}`);
    tensors[`transformer.${name}`] = { dtype: "F32", shape: shapes.get(name) as number[], data };
  }
  await mkdir(dir, { recursive: true });
  await writeJsonAtomic(path.join(dir, "config.json"), toHfConfig(cfg, eosTokenId));
  await writeJsonAtomic(path.join(dir, "generation_config.json"), { bos_token_id: eosTokenId, eos_token_id: eosTokenId });
  // transformers refuses a safetensors checkpoint whose metadata does not name its framework.
  await writeSafetensors(path.join(dir, "model.safetensors"), tensors, { format: "pt" });
}
