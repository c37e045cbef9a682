import { createHash } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { normalGenerator } from "../src/util/random.js";
import { mergeVectorFiles, readVectorFile, readVectorFileHeader, VectorFileWriter, writeVectorFile } from "../src/indexer/vector-file.js";
import type { VectorLayout } from "../src/projection/vector-layout.js";
import { expectRefused } from "./helpers/refusal.js";

const DIM = 24;
const LAYOUT: VectorLayout = {
  blocks: [
    { name: "h.0.mlp.c_fc", layer: 0, offset: 0, size: 8, kOut: 2, kIn: 4 },
    { name: "h.0.mlp.c_proj", layer: 0, offset: 8, size: 8, kOut: 4, kIn: 2 },
    { name: "h.1.mlp.c_fc", layer: 1, offset: 16, size: 8, kOut: 2, kIn: 4 },
  ],
};

function randomRows(count: number, seed: number): Float32Array {
  const normal = normalGenerator(seed);
  return Float32Array.from({ length: count * DIM }, () => normal());
}

const dir = mkdtempSync(path.join(tmpdir(), "vector-file-"));
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const file = (name: string): string => path.join(dir, name);
const tempFiles = async (): Promise<string[]> => (await readdir(dir)).filter((f) => f.endsWith(".tmp"));

/** A file the writer would refuse: NaN at value `index`, checksums recomputed as documented. */
function withNaN(bytes: Buffer, index: number): Buffer {
  const dataOffset = bytes.readUInt32LE(12);
  bytes.writeFloatLE(Number.NaN, dataOffset + index * 4);
  createHash("sha256").update(bytes.subarray(dataOffset)).digest().copy(bytes, 40);
  createHash("sha256").update(bytes.subarray(0, 72)).update(bytes.subarray(104, dataOffset)).digest().copy(bytes, 72);
  return bytes;
}

describe("vector file round trip", () => {
  it("returns exactly what was written", async () => {
    const rows = randomRows(50, 1);
    const target = file("round.vec");
    const written = await writeVectorFile(target, { dim: DIM, firstOrdinal: 1000, layout: LAYOUT, rows });
    const read = await readVectorFile(target);
    expect(read.dim).toBe(DIM);
    expect(read.count).toBe(50);
    expect(read.firstOrdinal).toBe(1000);
    expect(read.layout).toEqual(LAYOUT);
    expect(read.rows).toEqual(rows);
    expect(read.checksum).toBe(written.checksum);
    expect(read.checksum).toBe(createHash("sha256").update(Buffer.from(rows.buffer)).digest("hex"));
    expect(written.count).toBe(50);
    expect(await readVectorFileHeader(target)).toMatchObject({ dim: DIM, count: 50, firstOrdinal: 1000, checksum: written.checksum });
  });

  it("writes the same file from one call or from a stream of chunks", async () => {
    const rows = randomRows(37, 2);
    await writeVectorFile(file("whole.vec"), { dim: DIM, firstOrdinal: 5, layout: LAYOUT, rows });
    const writer = await VectorFileWriter.open(file("streamed.vec"), { dim: DIM, firstOrdinal: 5, layout: LAYOUT });
    for (const [start, end] of [
      [0, 10],
      [10, 10],
      [10, 31],
      [31, 37],
    ])
      await writer.append(rows.subarray(start * DIM, end * DIM));
    expect((await writer.finish()).count).toBe(37);
    expect(await readFile(file("streamed.vec"))).toEqual(await readFile(file("whole.vec")));
  });

  it("stores an empty file", async () => {
    await writeVectorFile(file("empty.vec"), { dim: DIM, firstOrdinal: 0, layout: LAYOUT, rows: new Float32Array(0) });
    const read = await readVectorFile(file("empty.vec"));
    expect(read.count).toBe(0);
    expect(read.rows.length).toBe(0);
  });

  it("reads back a 40 MB file exactly", async () => {
    const dim = 1024;
    const rows = Float32Array.from({ length: 10_000 * dim }, (_, i) => (i % 1013) / 1013 - 0.5);
    const layout = { blocks: [{ name: "all", layer: 0, offset: 0, size: dim, kOut: 32, kIn: 32 }] };
    await writeVectorFile(file("big.vec"), { dim, firstOrdinal: 0, layout, rows });
    const read = await readVectorFile(file("big.vec"));
    // Byte for byte: toEqual walks 10 M elements one matcher call at a time (over 100 s on a loaded 2-core machine).
    const bytes = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
    expect(read.rows.length).toBe(rows.length);
    expect(bytes(read.rows).equals(bytes(rows))).toBe(true);
    await rm(file("big.vec"));
  });
});

describe("vector file writer refuses bad input", () => {
  it("refuses NaN and infinities, naming the row", async () => {
    const rows = randomRows(4, 3);
    rows[2 * DIM + 5] = Number.NaN;
    await expect(writeVectorFile(file("nan.vec"), { dim: DIM, firstOrdinal: 10, layout: LAYOUT, rows })).rejects.toThrow(
      /row 2 \(ordinal 12\).*NaN.*coordinate 5/,
    );
    rows[2 * DIM + 5] = Number.POSITIVE_INFINITY;
    await expect(writeVectorFile(file("nan.vec"), { dim: DIM, firstOrdinal: 10, layout: LAYOUT, rows })).rejects.toThrow(/Infinity/);
    await expect(readdir(dir)).resolves.not.toContain("nan.vec");
    expect(await tempFiles()).toEqual([]);
  });

  it("refuses partial rows", async () => {
    await expect(writeVectorFile(file("partial.vec"), { dim: DIM, firstOrdinal: 0, layout: LAYOUT, rows: new Float32Array(DIM + 1) })).rejects.toThrow(
      /whole rows/,
    );
  });

  it("refuses layouts that do not tile [0, dim)", async () => {
    const rows = randomRows(1, 4);
    const bad = (blocks: VectorLayout["blocks"]) => writeVectorFile(file("layout.vec"), { dim: DIM, firstOrdinal: 0, layout: { blocks }, rows });
    const [a, b, c] = LAYOUT.blocks;
    await expect(bad([a, c])).rejects.toThrow(/uncovered/);
    await expect(bad([a, { ...b, size: 9 }, c])).rejects.toThrow(/overlaps/);
    await expect(bad([a, b])).rejects.toThrow(/cover 16 coordinates, but vectors have 24/);
    await expect(bad([a, b, { ...c, kIn: -1 }])).rejects.toThrow(/invalid kIn/);
    // Order in the list does not matter, only the tiling.
    await expect(bad([c, a, b])).resolves.toMatchObject({ count: 1 });
  });
});

describe("vector file reader refuses damaged files", () => {
  let good: Buffer;
  const target = (): string => file("damaged.vec");

  beforeAll(async () => {
    await writeVectorFile(file("good.vec"), { dim: DIM, firstOrdinal: 7, layout: LAYOUT, rows: randomRows(20, 5) });
    good = await readFile(file("good.vec"));
  });

  async function damaged(change: (bytes: Buffer) => Buffer): Promise<string> {
    await writeFile(target(), change(Buffer.from(good)));
    return target();
  }
  const dataOffset = (): number => good.readUInt32LE(12);

  it("detects a flipped payload byte", async () => {
    const p = await damaged((b) => {
      b[dataOffset() + 100] ^= 0x01;
      return b;
    });
    await expectRefused(readVectorFile(p), p, /^corrupt vector file .*payload checksum mismatch/);
    // Without verification the size and header are still checked, but the payload is not.
    await expect(readVectorFile(p, { verify: false })).resolves.toMatchObject({ count: 20 });
  });

  it("detects a flipped header byte (row count) and a flipped layout byte", async () => {
    const count = await damaged((b) => {
      b[24] ^= 0x01;
      return b;
    });
    await expectRefused(readVectorFile(count), count, /^corrupt vector file .*header checksum/);
    const layout = await damaged((b) => {
      b[110] ^= 0x20;
      return b;
    });
    await expectRefused(readVectorFile(layout, { verify: false }), layout, /^corrupt vector file .*header checksum/);
  });

  it("detects truncation, also in the header, and without verification", async () => {
    const p = await damaged((b) => b.subarray(0, b.length - 4));
    await expectRefused(readVectorFile(p, { verify: false }), p, /^truncated vector file .*promises 20 rows of dimension 24/);
    const header = await damaged((b) => b.subarray(0, 60));
    await expectRefused(readVectorFile(header), header, /^truncated vector file/);
  });

  it("detects trailing bytes", async () => {
    const p = await damaged((b) => Buffer.concat([b, Buffer.from("junk")]));
    await expectRefused(readVectorFile(p), p, /4 unexpected bytes after its 20 rows/);
  });

  it("detects a wrong magic, an unknown version and a missing file", async () => {
    const magic = await damaged((b) => {
      b.write("NOTAVECT", 0, "latin1");
      return b;
    });
    await expectRefused(readVectorFile(magic), magic, /is not a vector file/);
    const empty = await damaged(() => Buffer.alloc(0));
    await expectRefused(readVectorFile(empty), empty, /is not a vector file/);
    const version = await damaged((b) => {
      b.writeUInt32LE(2, 8);
      return b;
    });
    await expectRefused(readVectorFile(version), version, /unsupported vector file version 2/);
    await expectRefused(readVectorFile(file("missing.vec")), file("missing.vec"), /cannot open vector file/);
  });

  it("refuses NaN in a file whose checksums are consistent", async () => {
    const p = await damaged((b) => withNaN(b, 3 * DIM + 2));
    await expectRefused(readVectorFile(p), p, /row 3 \(ordinal 10\) has a non-finite value \(NaN\) at coordinate 2/);
  });
});

describe("atomic writes", () => {
  it("an aborted writer leaves the previous file intact and no temporary file", async () => {
    const target = file("atomic.vec");
    const before = randomRows(5, 6);
    await writeVectorFile(target, { dim: DIM, firstOrdinal: 0, layout: LAYOUT, rows: before });
    const writer = await VectorFileWriter.open(target, { dim: DIM, firstOrdinal: 0, layout: LAYOUT });
    await writer.append(randomRows(3, 7));
    expect(await tempFiles()).toHaveLength(1);
    // Until finish(), readers still see the old file.
    expect((await readVectorFile(target)).rows).toEqual(before);
    await writer.abort();
    expect((await readVectorFile(target)).rows).toEqual(before);
    expect(await tempFiles()).toEqual([]);
    await expect(writer.append(randomRows(1, 8))).rejects.toThrow(/already finished or aborted/);
  });

  it("a write that fails midway leaves the previous file intact", async () => {
    const target = file("atomic.vec");
    const before = await readFile(target);
    const writer = await VectorFileWriter.open(target, { dim: DIM, firstOrdinal: 0, layout: LAYOUT });
    await writer.append(randomRows(2, 9));
    const bad = randomRows(2, 10);
    bad[3] = Number.NaN;
    await expect(writer.append(bad)).rejects.toThrow(/non-finite/);
    await writer.abort();
    expect(await readFile(target)).toEqual(before);
    expect(await tempFiles()).toEqual([]);
  });
});

describe("mergeVectorFiles", () => {
  const shardRows = [randomRows(10, 11), randomRows(0, 12), randomRows(7, 13), randomRows(3, 14)];
  const shardPaths = shardRows.map((_, i) => file(`shard-${i}.vec`));

  beforeAll(async () => {
    let ordinal = 100;
    for (const [i, rows] of shardRows.entries()) {
      await writeVectorFile(shardPaths[i], { dim: DIM, firstOrdinal: ordinal, layout: LAYOUT, rows });
      ordinal += rows.length / DIM;
    }
  });

  it("concatenates contiguous shards", async () => {
    const out = file("merged.vec");
    const result = await mergeVectorFiles(shardPaths, out);
    const merged = await readVectorFile(out);
    const expected = new Float32Array(20 * DIM);
    let at = 0;
    for (const rows of shardRows) {
      expected.set(rows, at);
      at += rows.length;
    }
    expect(merged).toMatchObject({ dim: DIM, count: 20, firstOrdinal: 100, layout: LAYOUT, checksum: result.checksum });
    expect(merged.rows).toEqual(expected);
  });

  it("refuses gaps, overlaps and wrong order of ordinals", async () => {
    const out = file("bad-merge.vec");
    await expectRefused(
      mergeVectorFiles([shardPaths[0], shardPaths[3]], out),
      shardPaths[3],
      /starts at ordinal 117, but the previous shards end before ordinal 110/,
    );
    await expectRefused(mergeVectorFiles([shardPaths[2], shardPaths[0]], out), shardPaths[0], /starts at ordinal 100/);
    await expect(readdir(dir)).resolves.not.toContain("bad-merge.vec");
  });

  it("refuses shards of another dimension or layout", async () => {
    const otherDim = file("other-dim.vec");
    const layout16 = { blocks: LAYOUT.blocks.slice(0, 2) };
    await writeVectorFile(otherDim, { dim: 16, firstOrdinal: 110, layout: layout16, rows: new Float32Array(16) });
    await expectRefused(mergeVectorFiles([shardPaths[0], otherDim], file("bad-merge.vec")), otherDim, /dimension 16 differs/);
    const otherLayout = file("other-layout.vec");
    const renamed = { blocks: LAYOUT.blocks.map((b, i) => (i === 2 ? { ...b, layer: 2 } : b)) };
    await writeVectorFile(otherLayout, { dim: DIM, firstOrdinal: 110, layout: renamed, rows: new Float32Array(DIM) });
    await expectRefused(mergeVectorFiles([shardPaths[0], otherLayout], file("bad-merge.vec")), otherLayout, /layout differs/);
  });

  it("refuses a corrupt shard and leaves the previous output intact", async () => {
    const out = file("merged.vec");
    const before = await readFile(out);
    const corrupt = file("corrupt-shard.vec");
    const bytes = await readFile(shardPaths[2]);
    bytes[bytes.length - 1] ^= 0x40;
    await writeFile(corrupt, bytes);
    await expectRefused(mergeVectorFiles([shardPaths[0], shardPaths[1], corrupt, shardPaths[3]], out), corrupt, /^corrupt vector file/);
    const nan = file("nan-shard.vec");
    await writeFile(nan, withNaN(await readFile(shardPaths[2]), DIM + 1));
    await expectRefused(mergeVectorFiles([shardPaths[0], shardPaths[1], nan, shardPaths[3]], out), nan, /row 1 \(ordinal 111\) has a non-finite value/);
    expect(await readFile(out)).toEqual(before);
    expect(await tempFiles()).toEqual([]);
  });
});
