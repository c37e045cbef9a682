import { readFile } from "node:fs/promises";
import { InputError } from "../util/errors.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Reads a UTF-8 text file; bytes that are not UTF-8 are an error rather than U+FFFD in a token. */
export async function readTextFile(file: string): Promise<string> {
  const bytes = await readFile(file);
  try {
    return utf8.decode(bytes);
  } catch {
    throw new InputError(`${file}: not valid UTF-8 text`);
  }
}

export async function readJsonFile(file: string): Promise<unknown> {
  const text = await readTextFile(file);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InputError(`${file}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
