import { existsSync } from "node:fs";
import path from "node:path";
import { InputError } from "../util/errors.js";
import { isPlainObject, readJsonFile } from "./read-files.js";

export const TOKENIZER_CONFIG_FILE = "tokenizer_config.json";

/** A folder's tokenizer_config.json ({} when absent), with the file's path for error messages. */
export interface TokenizerConfig {
  file: string;
  json: Record<string, unknown>;
}

export async function readTokenizerConfig(modelDir: string): Promise<TokenizerConfig> {
  const file = path.join(modelDir, TOKENIZER_CONFIG_FILE);
  if (!existsSync(file)) return { file, json: {} };
  const json = await readJsonFile(file);
  if (!isPlainObject(json)) throw new InputError(`${file}: expected a JSON object`);
  return { file, json };
}

/** A special token named by the config (`bos_token`, `eos_token`): a string or an AddedToken object. */
export function specialTokenName({ json }: TokenizerConfig, key: "bos_token" | "eos_token"): string | undefined {
  const token = json[key];
  if (typeof token === "string") return token;
  if (isPlainObject(token) && typeof token.content === "string") return token.content;
  return undefined;
}

/** The config's add_bos_token: true, false, or undefined when the config does not say. */
export function addBosToken({ file, json }: TokenizerConfig): boolean | undefined {
  const flag = json.add_bos_token;
  if (flag === undefined || flag === null) return undefined;
  if (typeof flag !== "boolean") throw new InputError(`${file}: add_bos_token is ${JSON.stringify(flag)}, expected true or false`);
  return flag;
}
