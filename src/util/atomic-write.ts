import { randomBytes } from "node:crypto";
import { open, rename, rm } from "node:fs/promises";
import path from "node:path";
import { InputError } from "./errors.js";

/** Temporary sibling of `target`, so that the final rename stays within one file system. */
export function tempPathFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(6).toString("hex")}.tmp`);
}

/** Write failures the user fixes outside this program (free space, give permissions). */
const ENVIRONMENT_CODES = new Set(["ENOSPC", "EDQUOT", "EACCES", "EPERM", "EROFS"]);

/**
 * `err` of a write to `target`, with the target named: Node's errors for writes through a file
 * handle name no file ("ENOSPC: no space left on device, write"). Disk full, quota and permission
 * errors become InputErrors (the CLI shows them without a stack trace); others keep their class.
 */
export function writeError(target: string, err: unknown): Error {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (err instanceof InputError || typeof code !== "string") return err as Error;
  const message = `cannot write ${target}: ${(err as Error).message}`;
  const error = ENVIRONMENT_CODES.has(code) ? new InputError(message, { cause: err }) : new Error(message, { cause: err });
  return Object.assign(error, { code });
}

/**
 * Write a file so that readers see either the old content or the complete new one, never a part:
 * write to a temporary sibling, fsync, then rename over the target. The content may come in
 * pieces (`Iterable<Uint8Array>`, or `AsyncIterable` when they are read from elsewhere), written
 * one after another: a large file need not exist whole in memory.
 */
export async function writeFileAtomic(target: string, data: string | Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<void> {
  const tmp = tempPathFor(target);
  try {
    const handle = await open(tmp, "w");
    try {
      if (typeof data === "string" || data instanceof Uint8Array) await handle.writeFile(data);
      else for await (const piece of data) await handle.write(piece);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { force: true });
    throw writeError(target, err);
  }
}

/** Same as writeFileAtomic for a JSON value, pretty-printed. */
export async function writeJsonAtomic(target: string, value: unknown): Promise<void> {
  await writeFileAtomic(target, `${JSON.stringify(value, null, 2)}\n`);
}
