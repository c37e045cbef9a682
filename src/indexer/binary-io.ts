/**
 * Positional binary I/O shared by the indexer's file formats: a writer that streams a large file to
 * a temporary sibling and renames it into place only when complete, and exact reads.
 */
import { open, rename, rm, type FileHandle } from "node:fs/promises";
import { endianness } from "node:os";
import { tempPathFor, writeError } from "../util/atomic-write.js";

// The formats store typed arrays as they are in memory, and say little-endian.
if (endianness() !== "LE") throw new Error("influence-graph's index files need a little-endian machine");

/** Bytes of a typed array, without copying. */
export function bytesOf(array: ArrayBufferView): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

/** Writes all of `bytes` at `position` (a single write may be partial). */
async function writeFully(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}

/** Fills `bytes` from `position`; returns false if the file ends first. */
export async function readFully(handle: FileHandle, bytes: Uint8Array, position: number): Promise<boolean> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesRead } = await handle.read(bytes, done, bytes.length - done, position + done);
    if (bytesRead === 0) return false;
    done += bytesRead;
  }
  return true;
}

/**
 * A file written front to back (plus rewrites of earlier bytes, e.g. a header whose counts and
 * checksums are known only at the end) that readers see only once complete: it lives under a
 * temporary name until commit() fsyncs it and renames it over the target.
 */
export class AtomicFileWriter {
  private position = 0;
  private closed = false;

  private constructor(
    readonly target: string,
    readonly tempPath: string,
    private readonly handle: FileHandle,
  ) {}

  static async open(target: string): Promise<AtomicFileWriter> {
    const tempPath = tempPathFor(target);
    try {
      return new AtomicFileWriter(target, tempPath, await open(tempPath, "wx"));
    } catch (err) {
      throw writeError(target, err);
    }
  }

  /** Bytes appended so far. */
  get size(): number {
    return this.position;
  }

  async append(bytes: Uint8Array): Promise<void> {
    this.assertOpen();
    await writeFully(this.handle, bytes, this.position).catch((err) => Promise.reject(writeError(this.target, err)));
    this.position += bytes.length;
  }

  /** Overwrites already appended bytes. */
  async writeAt(bytes: Uint8Array, position: number): Promise<void> {
    this.assertOpen();
    if (position + bytes.length > this.position) throw new RangeError("writeAt must stay within the bytes already written");
    await writeFully(this.handle, bytes, position).catch((err) => Promise.reject(writeError(this.target, err)));
  }

  async commit(): Promise<void> {
    this.assertOpen();
    this.closed = true;
    try {
      await this.handle.sync();
      await this.handle.close();
      await rename(this.tempPath, this.target);
    } catch (err) {
      await this.handle.close().catch(() => {});
      await rm(this.tempPath, { force: true });
      throw writeError(this.target, err);
    }
  }

  /** Drops the temporary file; the target keeps its previous content. Safe to call twice. */
  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close().catch(() => {});
    await rm(this.tempPath, { force: true });
  }

  private assertOpen(): void {
    if (this.closed) throw new Error(`${this.target}: writer already finished or aborted`);
  }
}
