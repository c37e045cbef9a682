import { InputError } from "../util/errors.js";

/** Checks on the fields of one JSONL record; `where` is "file, line N" and starts every message. */

// In a `u` regex a surrogate pair is one code point, so this only matches unpaired halves.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

export function fieldError(where: string, message: string): InputError {
  return new InputError(`${where}: ${message}`);
}

export function has(record: Record<string, unknown>, field: string): boolean {
  return Object.hasOwn(record, field);
}

/** A record id, given as a string or an integer; numbers become their decimal string. */
export function readId(record: Record<string, unknown>, where: string): string {
  const id = record.id;
  if (id === undefined) throw fieldError(where, `missing "id"`);
  if (typeof id === "string" && id !== "") return id;
  if (typeof id === "number" && Number.isSafeInteger(id)) return String(id);
  if (typeof id === "number") {
    // JSON readers round integers above 2^53, so two documents could silently share an id.
    throw fieldError(where, `"id" ${id} is not an integer below 2^53; write it as a string`);
  }
  throw fieldError(where, `"id" must be a non-empty string or an integer, got ${JSON.stringify(id)}`);
}

/** Remembers ids seen so far, to reject a second record with the same id. */
export class UniqueIds {
  private readonly firstLine = new Map<string, number>();

  add(id: string, line: number, where: string): void {
    const first = this.firstLine.get(id);
    if (first !== undefined) throw fieldError(where, `duplicate id ${JSON.stringify(id)} (first used on line ${first})`);
    this.firstLine.set(id, line);
  }
}

export function readText(record: Record<string, unknown>, field: string, where: string): string {
  const text = record[field];
  if (typeof text !== "string") throw fieldError(where, `"${field}" must be a string, got ${JSON.stringify(text)}`);
  const surrogate = LONE_SURROGATE.exec(text);
  if (surrogate) {
    const hex = surrogate[0].charCodeAt(0).toString(16);
    throw fieldError(where, `"${field}" contains an unpaired surrogate \\u${hex}, which is not valid Unicode text`);
  }
  return text;
}

/** Token ids: an array of non-negative integers, each below vocabSize when that is known. */
export function readTokens(record: Record<string, unknown>, field: string, where: string, vocabSize?: number): number[] {
  const tokens = record[field];
  if (!Array.isArray(tokens)) throw fieldError(where, `"${field}" must be an array of token ids, got ${JSON.stringify(tokens)}`);
  tokens.forEach((token: unknown, i) => {
    if (typeof token !== "number" || !Number.isSafeInteger(token) || token < 0) {
      throw fieldError(where, `"${field}"[${i}] is ${JSON.stringify(token)}, expected a non-negative integer token id`);
    }
    if (vocabSize !== undefined && token >= vocabSize) {
      throw fieldError(where, `"${field}"[${i}] is token id ${token}, not below the vocabulary size ${vocabSize}`);
    }
  });
  return tokens as number[];
}
