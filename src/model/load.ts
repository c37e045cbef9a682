/** Opens a Hugging Face model folder as a CausalLM on ONNX Runtime: config, checkpoint, and validated weights. */
import path from "node:path";
import { configureKernels } from "../runtime/kernels.js";
import type { RuntimeOptions } from "../runtime/session.js";
import { InputError } from "../util/errors.js";
import { type Checkpoint, openCheckpoint } from "./checkpoint.js";
import { type ModelConfig, readConfig } from "./config.js";
import { layoutOf } from "./architectures.js";
import { OnnxCausalLM } from "./onnx/causal-lm.js";
import type { CausalLM } from "./model.js";

/**
 * Maps stored names to canonical ones (without the base model's prefix), checking names and shapes
 * against the layout of the config's architecture; buffers and a tied head that it ignores are skipped unread.
 */
export async function canonicalWeights(modelDir: string, checkpoint: Checkpoint, config: ModelConfig): Promise<Map<string, Float32Array>> {
  const layout = layoutOf(config);
  const expected = layout.parameterShapes(config);
  const ignored = layout.ignored(config);
  const found = new Map<string, Float32Array>();
  const unexpected: string[] = [];
  for (const [stored, tensor] of checkpoint.tensors) {
    const name = stored.startsWith(layout.prefix) ? stored.slice(layout.prefix.length) : stored;
    if (ignored.some((re) => re.test(name))) continue;
    const shape = expected.get(name);
    if (!shape) {
      unexpected.push(stored);
      continue;
    }
    if (tensor.shape.length !== shape.length || tensor.shape.some((d, i) => d !== shape[i])) {
      throw new InputError(`${tensor.file}: tensor ${stored} has shape [${tensor.shape.join(", ")}], expected [${shape.join(", ")}] from config.json`);
    }
    if (found.has(name)) throw new InputError(`${tensor.file}: tensor ${name} is stored twice (with and without the ${layout.prefix} prefix)`);
    found.set(name, await tensor.read());
  }
  const missing = [...expected.keys()].filter((n) => !found.has(n));
  if (missing.length) {
    throw new InputError(
      `${modelDir}: checkpoint lacks ${missing.length} tensor(s) the config requires: ${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ", ..." : ""}`,
    );
  }
  if (unexpected.length) {
    throw new InputError(
      `${modelDir}: checkpoint has tensors this architecture does not use: ${unexpected.slice(0, 5).join(", ")}${unexpected.length > 5 ? ", ..." : ""}`,
    );
  }
  for (const [name, data] of found) {
    const bad = data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new InputError(`${modelDir}: tensor ${name} holds a non-finite value (${data[bad]}) at element ${bad}`);
  }
  return found;
}

/** The config and every weight of a model folder, checked, in host memory. */
export async function readModel(modelDir: string): Promise<{ config: ModelConfig; weights: Map<string, Float32Array> }> {
  const dir = path.resolve(modelDir);
  const config: ModelConfig = await readConfig(dir);
  const checkpoint = await openCheckpoint(dir);
  try {
    return { config, weights: await canonicalWeights(dir, checkpoint, config) };
  } finally {
    await checkpoint.close();
  }
}

/**
 * The model of a folder, its sessions on the device and threads of `options` (INFLUENCE_DEVICE and
 * every core by default); the products around its passes (runtime/kernels.ts) run there too.
 */
export async function loadModel(modelDir: string, options: RuntimeOptions = {}): Promise<CausalLM> {
  await configureKernels(options);
  const { config, weights } = await readModel(modelDir);
  return new OnnxCausalLM(config, weights, options);
}
