import { createReadStream } from "node:fs";
import { pipeline } from "node:stream";
import { createGunzip } from "node:zlib";
import { InputError } from "../util/errors.js";

/**
 * Longest line accepted by default. A corpus line is one document, rarely more than a few MB; a
 * longer "line" is most often a file that is not JSONL (one big JSON array, a binary file), which
 * should fail at once rather than be buffered whole.
 */
export const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024;

export interface JsonlOptions {
  /** Longest accepted line in bytes, without its line break. */
  maxLineBytes?: number;
}

export interface JsonlObject {
  /** 1-based line number in the file. */
  line: number;
  value: Record<string, unknown>;
}

// fatal: bytes that are not UTF-8 are an error, not U+FFFD. A leading byte order mark (some
// Windows editors write one) is dropped, as ignoreBOM is false by default.
const utf8 = new TextDecoder("utf-8", { fatal: true });
const JSON_WHITESPACE = /^[ \t\r]*$/;

/** Streams the JSON objects of a JSONL file, one per non-blank line, with their line numbers. A file named `*.gz` is gunzipped as it is read. */
export async function* readJsonlObjects(file: string, options: JsonlOptions = {}): AsyncGenerator<JsonlObject> {
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  if (!Number.isSafeInteger(maxLineBytes) || maxLineBytes < 1) {
    throw new InputError(`line limit must be a positive number of bytes, got ${maxLineBytes}`);
  }
  for await (const { line, bytes } of readLines(file, maxLineBytes)) {
    const where = `${file}, line ${line}`;
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch {
      throw new InputError(`${where}: not valid UTF-8 text (is this a JSONL text file?)`);
    }
    if (JSON_WHITESPACE.test(text)) continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new InputError(`${where}: not valid JSON (${escapeControls((err as Error).message)})`, { cause: err });
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      const kind = Array.isArray(value) ? "an array" : value === null ? "null" : `a ${typeof value}`;
      throw new InputError(`${where}: expected a JSON object, got ${kind}`);
    }
    yield { line, value: value as Record<string, unknown> };
  }
}

/** Splits a file into lines of raw bytes as it is read, so no more than one line is held at a time. */
async function* readLines(file: string, maxLineBytes: number): AsyncGenerator<{ line: number; bytes: Uint8Array }> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let line = 1;
  const take = (piece: Buffer): void => {
    pendingBytes += piece.length;
    if (pendingBytes > maxLineBytes) {
      throw new InputError(
        `${file}, line ${line}: longer than ${maxLineBytes} bytes; a JSONL file has one JSON object per line (raise the line limit if this ` +
          `document really is that long)`,
      );
    }
    pending.push(piece);
  };
  try {
    for await (const chunk of openBytes(file)) {
      let start = 0;
      for (let end = chunk.indexOf(10, start); end !== -1; end = chunk.indexOf(10, start)) {
        take(chunk.subarray(start, end));
        yield { line, bytes: pending.length === 1 ? pending[0] : Buffer.concat(pending) };
        pending = [];
        pendingBytes = 0;
        line++;
        start = end + 1;
      }
      if (start < chunk.length) take(chunk.subarray(start));
    }
  } catch (err) {
    if (err instanceof InputError || !isFileSystemError(err)) throw err;
    if (err.code?.startsWith("Z_")) throw new InputError(`${file}: not valid gzip data (${err.message})`, { cause: err });
    throw new InputError(`${file}: cannot read (${err.message})`, { cause: err });
  }
  if (pending.length > 0) yield { line, bytes: Buffer.concat(pending) };
}

/** The file's bytes, decompressed for `.gz`; pipeline passes a read error on to the gunzip stream, where pipe() would lose it. */
function openBytes(file: string): AsyncIterable<Buffer> {
  const raw = createReadStream(file);
  if (!file.endsWith(".gz")) return raw;
  return pipeline(raw, createGunzip(), () => {
    // Errors reach the consumer through the returned stream.
  });
}

/** The parser quotes the bad input; control characters from a binary line would garble a terminal. */
function escapeControls(text: string): string {
  return text.replace(/\p{Cc}/gu, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

function isFileSystemError(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === "string";
}
