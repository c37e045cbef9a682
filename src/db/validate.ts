import { InputError } from "../util/errors.js";

/** Largest value of a PostgreSQL integer column (ordinals, offsets, token ids, ids). */
export const INT4_MAX = 2_147_483_647;

export function requireInt(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new InputError(`${name} must be an integer from ${min} to ${max} (got ${describe(value)})`);
  }
  return value;
}

/** A non-empty string without NUL characters (PostgreSQL text cannot hold them). */
export function requireText(name: string, value: unknown, maxLength = 10_000): string {
  if (typeof value !== "string" || value === "") throw new InputError(`${name} must be a non-empty string (got ${describe(value)})`);
  return requireStorableText(name, value, maxLength);
}

export function requireStorableText(name: string, value: string, maxLength = Number.MAX_SAFE_INTEGER): string {
  if (value.length > maxLength) throw new InputError(`${name} is longer than ${maxLength} characters`);
  if (value.includes("\0")) throw new InputError(`${name} contains a NUL character, which PostgreSQL text cannot store`);
  return value;
}

/** An object of finite numbers, e.g. timings in seconds or counts. */
export function requireNumberRecord(name: string, value: Record<string, number>): Record<string, number> {
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== "number" || !Number.isFinite(v)) throw new InputError(`${name}.${key} must be a finite number (got ${describe(v)})`);
  }
  return value;
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return String(value);
}
