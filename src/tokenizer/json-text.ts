import { isPlainObject } from "./read-files.js";

/**
 * JSON indented by two spaces, like JSON.stringify(value, null, 2), except that a Map is written as
 * an object in the Map's own order: a plain object lists integer-like keys ("0", "15") first, which
 * would scramble a vocabulary meant to be listed by id, as Hugging Face writes it.
 */
export function toJsonText(value: unknown, indent = ""): string {
  const inner = indent + "  ";
  const block = (open: string, items: string[], close: string): string =>
    items.length === 0 ? open + close : `${open}\n${inner}${items.join(`,\n${inner}`)}\n${indent}${close}`;
  if (Array.isArray(value))
    return block(
      "[",
      value.map((item) => toJsonText(item, inner)),
      "]",
    );
  if (value instanceof Map || isPlainObject(value)) {
    const entries: [unknown, unknown][] = value instanceof Map ? [...value] : Object.entries(value);
    return block(
      "{",
      entries.map(([key, item]) => `${JSON.stringify(String(key))}: ${toJsonText(item, inner)}`),
      "}",
    );
  }
  return JSON.stringify(value);
}
