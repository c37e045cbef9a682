/**
 * Safetensors files read a tensor at a time (SafetensorsReader): a 2.25 GiB file, sparse on disk,
 * whose real tensors sit after 2.25 GiB of a placeholder, is read tensor by tensor where reading it
 * whole is impossible; a file rewritten after it was opened is refused.
 */
import { open, rename, stat, utimes, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SafetensorsReader, readSafetensors } from "../src/safetensors/read.js";
import { encodeSafetensors } from "../src/safetensors/write.js";
import { tempDir } from "../src/util/temp-dir.js";

const GiB = 2 ** 30;
const PLACEHOLDER_BYTES = 2.25 * GiB;

let tmp: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  tmp = await tempDir("safetensors-read-");
});
afterAll(() => tmp.remove());

/** Values of the real tensors, beyond the placeholder. */
const weight = Float32Array.from({ length: 6 }, (_, i) => (i - 2.5) / 4);
const halves = [1, -2, 0.5, 65504];

/**
 * A file of 2.25 GiB of U8 placeholder (never written: a hole), then an F32 tensor [2, 3] and an
 * F16 tensor [4], written by hand at their offsets.
 */
async function sparseFile(file: string): Promise<number> {
  const weightBytes = Buffer.from(weight.buffer);
  const halfBytes = Buffer.from([0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38, 0xff, 0x7b]);
  const header = {
    placeholder: { dtype: "U8", shape: [PLACEHOLDER_BYTES], data_offsets: [0, PLACEHOLDER_BYTES] },
    weight: { dtype: "F32", shape: [2, 3], data_offsets: [PLACEHOLDER_BYTES, PLACEHOLDER_BYTES + 24] },
    halves: { dtype: "F16", shape: [4], data_offsets: [PLACEHOLDER_BYTES + 24, PLACEHOLDER_BYTES + 32] },
  };
  const text = Buffer.from(JSON.stringify(header));
  const start = 8 + text.length;
  const size = start + PLACEHOLDER_BYTES + 32;
  const handle = await open(file, "w");
  try {
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(text.length));
    await handle.write(length, 0, 8, 0);
    await handle.write(text, 0, text.length, 8);
    await handle.truncate(size);
    await handle.write(weightBytes, 0, 24, start + PLACEHOLDER_BYTES);
    await handle.write(halfBytes, 0, 8, start + PLACEHOLDER_BYTES + 24);
  } finally {
    await handle.close();
  }
  return size;
}

describe("a safetensors file read a tensor at a time", () => {
  it("reads the tensors after 2.25 GiB of a sparse file, which cannot be read whole", async () => {
    const file = path.join(tmp.dir, "large.safetensors");
    const size = await sparseFile(file);
    const onDisk = await stat(file);
    expect(onDisk.size).toBe(size);
    // Sparse: the placeholder takes no blocks, so the test costs no disk.
    expect(onDisk.blocks * 512).toBeLessThan(GiB);
    // Whole, the file exceeds what one read can return.
    await expect(readSafetensors(file)).rejects.toThrow(/cannot read/);

    const reader = await SafetensorsReader.open(file);
    try {
      expect([...reader.tensors.keys()].sort()).toEqual(["halves", "placeholder", "weight"]);
      expect(reader.tensors.get("weight")).toMatchObject({ dtype: "F32", shape: [2, 3] });
      const before = process.memoryUsage().arrayBuffers;
      expect(Array.from(await reader.float32("weight"))).toEqual(Array.from(weight));
      // F16 bits 0x3C00, 0xC000, 0x3800, 0x7BFF.
      expect(Array.from(await reader.float32("halves"))).toEqual(halves);
      expect(Array.from(await reader.bytes("halves"))).toEqual([0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38, 0xff, 0x7b]);
      // Nothing of the placeholder's size was allocated to read them.
      expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 2 ** 20);
      await expect(reader.float32("missing")).rejects.toThrow(`${file}: no tensor named missing`);
    } finally {
      await reader.close();
    }
  });

  it("refuses a file rewritten in place after it was opened, naming the file and the change", async () => {
    const file = path.join(tmp.dir, "rewritten.safetensors");
    await writeFile(file, encodeSafetensors({ w: { dtype: "F32", shape: [3], data: [1, 2, 3] } }));
    const reader = await SafetensorsReader.open(file);
    try {
      expect(Array.from(await reader.float32("w"))).toEqual([1, 2, 3]);
      await writeFile(file, encodeSafetensors({ w: { dtype: "F32", shape: [4], data: [4, 5, 6, 7] } }));
      await expect(reader.float32("w")).rejects.toThrow(
        new RegExp(
          `^${file.replace(/[.]/g, "\\.")}: the file changed after it was opened \\(\\d+ bytes modified .*, now \\d+ bytes modified .*\\): it was rewritten while being read; load it again$`,
        ),
      );
    } finally {
      await reader.close();
    }
  });

  it("refuses a file replaced after it was opened, even with the same size", async () => {
    const file = path.join(tmp.dir, "replaced.safetensors");
    await writeFile(file, encodeSafetensors({ w: { dtype: "F32", shape: [3], data: [1, 2, 3] } }));
    const reader = await SafetensorsReader.open(file);
    try {
      const other = path.join(tmp.dir, "other.safetensors");
      await writeFile(other, encodeSafetensors({ w: { dtype: "F32", shape: [3], data: [7, 8, 9] } }));
      // Another modification time than the opened file's, whatever the clock's resolution.
      await utimes(other, new Date(0), new Date(1000));
      await rename(other, file);
      await expect(reader.float32("w")).rejects.toThrow(/the file changed after it was opened/);
    } finally {
      await reader.close();
    }
  });
});
