/** A model folder opened for influence work: the network, its tokenizer and its fingerprint. */
import path from "node:path";
import { modelFiles } from "../model/checkpoint.js";
import { loadModel } from "../model/load.js";
import type { CausalLM } from "../model/model.js";
import { type Tokenizer, loadTokenizer } from "../tokenizer/tokenizer.js";
import { fingerprintFiles } from "../util/fingerprint.js";

export interface OpenedModel {
  dir: string;
  model: CausalLM;
  tokenizer: Tokenizer;
  /** sha256 of config.json and the checkpoint files. */
  fingerprint: string;
}

export async function openModel(modelDir: string): Promise<OpenedModel> {
  const dir = path.resolve(modelDir);
  const model = await loadModel(dir);
  const [tokenizer, fingerprint] = await Promise.all([loadTokenizer(dir), modelFiles(dir).then(fingerprintFiles)]);
  return { dir, model, tokenizer, fingerprint };
}

/** The tokenizer limited to the ids the model can embed. */
export function modelVocabulary(opened: OpenedModel): Pick<Tokenizer, "encode" | "decode" | "vocabSize"> {
  const { tokenizer, model } = opened;
  return { encode: (t) => tokenizer.encode(t), decode: (ids) => tokenizer.decode(ids), vocabSize: Math.min(tokenizer.vocabSize, model.config.vocabSize) };
}
