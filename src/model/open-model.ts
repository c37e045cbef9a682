/** A model folder opened for influence work: the network, its tokenizer and its fingerprint. */
import path from "node:path";
import { modelFiles } from "./checkpoint.js";
import { layoutOf } from "./architectures.js";
import { readConfig } from "./config.js";
import { loadModel, readModel } from "./load.js";
import type { CausalLM } from "./model.js";
import type { RuntimeOptions } from "../runtime/session.js";
import { openTokenizer } from "../tokenizer/open-tokenizer.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { fingerprintFiles } from "../util/fingerprint.js";

/** A model folder's config and tokenizer, its weights unread: what reading a corpus for it needs. */
export interface ModelTokenizer {
  dir: string;
  model: Pick<CausalLM, "config" | "modules">;
  tokenizer: Tokenizer;
}

/** A model folder without its sessions: what coordinating work (a build's main thread) needs. */
export interface ModelDescription extends ModelTokenizer {
  /** sha256 of config.json and the checkpoint files. */
  fingerprint: string;
}

export interface OpenedModel extends ModelDescription {
  model: CausalLM;
}

/** A model folder's fingerprint: sha256 of config.json and the checkpoint files, streamed (the weights are hashed, not held). */
export const modelFingerprint = (dir: string): Promise<string> => modelFiles(dir).then(fingerprintFiles);

async function tokenizerAndFingerprint(dir: string, vocabSize: number): Promise<Pick<ModelDescription, "tokenizer" | "fingerprint">> {
  const [tokenizer, fingerprint] = await Promise.all([openTokenizer(dir, vocabSize), modelFingerprint(dir)]);
  return { tokenizer, fingerprint };
}

export async function openModel(modelDir: string, options: RuntimeOptions = {}): Promise<OpenedModel> {
  const dir = path.resolve(modelDir);
  const model = await loadModel(dir, options);
  return { dir, model, ...(await tokenizerAndFingerprint(dir, model.config.vocabSize)) };
}

/**
 * The folder checked as openModel checks it (config, every weight, tokenizer) without keeping the
 * weights: worker threads load their own, and a copy on this thread would hold GPT-2 small's
 * 0.5 GB for nothing.
 */
export async function describeModel(modelDir: string): Promise<ModelDescription> {
  const dir = path.resolve(modelDir);
  const { config } = await readModel(dir);
  return { dir, model: { config, modules: layoutOf(config).modules(config) }, ...(await tokenizerAndFingerprint(dir, config.vocabSize)) };
}

/** The config and tokenizer of a model folder, without reading (or checking) its weights: for estimates made before loading anything. */
export async function modelTokenizer(modelDir: string): Promise<ModelTokenizer> {
  const dir = path.resolve(modelDir);
  const config = await readConfig(dir);
  return { dir, model: { config, modules: layoutOf(config).modules(config) }, tokenizer: await openTokenizer(dir, config.vocabSize) };
}

/** The tokenizer limited to the ids the model can embed. */
export function modelVocabulary(opened: ModelTokenizer): Pick<Tokenizer, "encodeSequence" | "encodeContinuation" | "decode" | "vocabSize"> {
  const { tokenizer, model } = opened;
  return {
    encodeSequence: (t) => tokenizer.encodeSequence(t),
    encodeContinuation: (t) => tokenizer.encodeContinuation(t),
    decode: (ids) => tokenizer.decode(ids),
    vocabSize: Math.min(tokenizer.vocabSize, model.config.vocabSize),
  };
}
