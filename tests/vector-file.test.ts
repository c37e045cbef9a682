import { createHash } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { normalGenerator } from "../src/util/random.js";
import {
  type QuantizedVectorFile,
  type SignVectorFile,
  mergeVectorFiles,
  readStoredVectors,
  readVectorFile,
  readVectorFileHeader,
  VectorFileWriter,
  writeVectorFile,
} from "../src/indexer/vector-file.js";
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

/** `bytes` with float32 `value` written at payload byte `at` and both checksums recomputed as documented: a file the writer would refuse. */
function withFloat(bytes: Buffer, at: number, value: number): Buffer {
  const dataOffset = bytes.readUInt32LE(12);
  bytes.writeFloatLE(value, dataOffset + at);
  createHash("sha256").update(bytes.subarray(dataOffset)).digest().copy(bytes, 40);
  createHash("sha256").update(bytes.subarray(0, 72)).update(bytes.subarray(104, dataOffset)).digest().copy(bytes, 72);
  return bytes;
}

/** NaN at value `index` of a float32 file. */
const withNaN = (bytes: Buffer, index: number): Buffer => withFloat(bytes, index * 4, Number.NaN);

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

/** The file's bytes as format version 1 wrote them: no element type field, so the layout at 104, float32 rows. */
function asVersion1(bytes: Buffer): Buffer {
  const layoutBytes = bytes.readUInt32LE(20);
  const dataOffset = Math.ceil((104 + layoutBytes) / 8) * 8;
  const header = Buffer.alloc(dataOffset);
  bytes.copy(header, 0, 0, 104);
  bytes.copy(header, 104, 112, 112 + layoutBytes);
  header.writeUInt32LE(1, 8);
  header.writeUInt32LE(dataOffset, 12);
  createHash("sha256").update(header.subarray(0, 72)).update(header.subarray(104)).digest().copy(header, 72);
  return Buffer.concat([header, bytes.subarray(bytes.readUInt32LE(12))]);
}

/** Rows written in `elementType` and read back, of that type. */
async function storedFile<T extends "int8" | "sign">(
  elementType: T,
  name: string,
  rows: Float32Array,
  firstOrdinal = 0,
): Promise<Extract<QuantizedVectorFile | SignVectorFile, { elementType: T }>> {
  await writeVectorFile(file(name), { dim: DIM, firstOrdinal, layout: LAYOUT, rows, elementType });
  const read = await readStoredVectors(file(name));
  if (read.elementType !== elementType) throw new Error(`${name}: read back as ${read.elementType}`);
  return read as Extract<QuantizedVectorFile | SignVectorFile, { elementType: T }>;
}

/** Shards of `rows` split at row `split`, merged, equal the file one write of them makes. */
async function expectMergedAsWhole(elementType: "int8" | "sign", rows: Float32Array, split: number, firstOrdinal: number): Promise<void> {
  const name = (part: string) => `${elementType}-${part}.vec`;
  await storedFile(elementType, name("whole"), rows, firstOrdinal);
  await storedFile(elementType, name("a"), rows.subarray(0, split * DIM), firstOrdinal);
  await storedFile(elementType, name("b"), rows.subarray(split * DIM), firstOrdinal + split);
  await mergeVectorFiles([file(name("a")), file(name("b"))], file(name("merged")));
  expect(await readFile(file(name("merged")))).toEqual(await readFile(file(name("whole"))));
}

describe("int8 rows: a quarter of the bytes, each value within half a step of its row's scale", () => {
  const int8File = (name: string, rows: Float32Array, firstOrdinal = 0) => storedFile("int8", name, rows, firstOrdinal);

  it("stores each row as int8 values times a scale max |x| / 127, within half a step of the original", async () => {
    const rows = randomRows(50, 11);
    rows.fill(0, 7 * DIM, 8 * DIM); // a zero row: scale 0
    for (let i = 0; i < DIM; i++) rows[9 * DIM + i] *= 1e-6; // a tiny row keeps its relative precision
    const read = await int8File("int8.vec", rows, 30);
    expect(read).toMatchObject({ dim: DIM, count: 50, firstOrdinal: 30, layout: LAYOUT });
    const bytes = await readFile(file("int8.vec"));
    expect(bytes.length).toBe(bytes.readUInt32LE(12) + 50 * (DIM + 4)); // a scale and DIM bytes per row
    for (let r = 0; r < 50; r++) {
      const row = rows.subarray(r * DIM, (r + 1) * DIM);
      const max = Math.max(...Array.from(row, Math.abs));
      expect(read.scales[r]).toBe(Math.fround(max / 127)); // stored as float32
      for (let i = 0; i < DIM; i++) {
        const value = read.rows[r * DIM + i] * read.scales[r];
        expect(Math.abs(value - row[i])).toBeLessThanOrEqual((max / 127) * 0.5 * (1 + 1e-6));
      }
    }
    expect(read.scales[7]).toBe(0);
    expect(Array.from(read.rows.subarray(7 * DIM, 8 * DIM))).toEqual(new Array(DIM).fill(0));
  });

  it("merges int8 shards into the file one write makes, and refuses shards of both element types", async () => {
    const rows = randomRows(30, 12);
    await expectMergedAsWhole("int8", rows, 12, 4);
    await writeVectorFile(file("float-b.vec"), { dim: DIM, firstOrdinal: 16, layout: LAYOUT, rows: rows.subarray(12 * DIM) });
    await expectRefused(mergeVectorFiles([file("int8-a.vec"), file("float-b.vec")], file("mixed.vec")), file("float-b.vec"), /float32 rows, .* has int8 rows/);
  });

  it("is refused where float32 rows are expected, and checked like float32 rows", async () => {
    await int8File("int8-checked.vec", randomRows(5, 13));
    await expectRefused(readVectorFile(file("int8-checked.vec")), file("int8-checked.vec"), /stores int8 rows where float32 rows are expected/);
    const bytes = await readFile(file("int8-checked.vec"));
    const dataOffset = bytes.readUInt32LE(12);
    const flipped = Buffer.from(bytes);
    flipped[dataOffset + 2 * (DIM + 4) + 9] ^= 0x01;
    await writeFile(file("int8-flipped.vec"), flipped);
    await expectRefused(readStoredVectors(file("int8-flipped.vec")), file("int8-flipped.vec"), /payload checksum mismatch/);
    // A negative scale with consistent checksums: refused, naming the row.
    await writeFile(file("int8-negative.vec"), withFloat(Buffer.from(bytes), 3 * (DIM + 4), -1));
    await expectRefused(readStoredVectors(file("int8-negative.vec")), file("int8-negative.vec"), /row 3 \(ordinal 3\) has an invalid scale \(-1\)/);
  });
});

describe("sign rows: a bit per value and a factor |x|^2 / |x|_1 per row", () => {
  const signFile = (name: string, rows: Float32Array, firstOrdinal = 0) => storedFile("sign", name, rows, firstOrdinal);

  it("stores value j's sign at bit j & 7 of byte j >> 3, and the row's factor", async () => {
    const rows = randomRows(40, 21);
    rows.fill(0, 5 * DIM, 6 * DIM); // a zero row: factor 0, no bit set
    const read = await signFile("sign.vec", rows, 7);
    expect(read).toMatchObject({ dim: DIM, count: 40, firstOrdinal: 7, layout: LAYOUT });
    const bytes = await readFile(file("sign.vec"));
    expect(bytes.length).toBe(bytes.readUInt32LE(12) + 40 * (DIM / 8 + 4)); // a factor and DIM bits per row
    for (let r = 0; r < 40; r++) {
      const row = Array.from(rows.subarray(r * DIM, (r + 1) * DIM));
      const l1 = row.reduce((a, v) => a + Math.abs(v), 0);
      expect(read.scales[r]).toBe(l1 > 0 ? Math.fround(row.reduce((a, v) => a + v * v, 0) / l1) : 0);
      for (let j = 0; j < DIM; j++) expect(((read.rows[r * (DIM / 8) + (j >> 3)] >> (j & 7)) & 1) === 1).toBe(row[j] > 0);
    }
  });

  it("merges sign shards into the file one write makes; is refused where float32 rows are expected; a damaged factor is refused", async () => {
    await expectMergedAsWhole("sign", randomRows(20, 22), 9, 2);
    await expectRefused(readVectorFile(file("sign-whole.vec")), file("sign-whole.vec"), /stores sign rows where float32 rows are expected/);
    const bytes = await readFile(file("sign-whole.vec"));
    await writeFile(file("sign-infinite.vec"), withFloat(Buffer.from(bytes), 4 * (DIM / 8 + 4), Number.POSITIVE_INFINITY));
    await expectRefused(readStoredVectors(file("sign-infinite.vec")), file("sign-infinite.vec"), /row 4 \(ordinal 6\) has an invalid scale \(Infinity\)/);
  });
});

describe("format version 1 (float32 rows, no element type field)", () => {
  it("is still read, row for row", async () => {
    const rows = randomRows(9, 14);
    await writeVectorFile(file("v2.vec"), { dim: DIM, firstOrdinal: 3, layout: LAYOUT, rows });
    await writeFile(file("v1.vec"), asVersion1(await readFile(file("v2.vec"))));
    const read = await readVectorFile(file("v1.vec"));
    expect(read).toMatchObject({ dim: DIM, count: 9, firstOrdinal: 3, layout: LAYOUT });
    expect(read.rows).toEqual(rows);
    expect((await readVectorFileHeader(file("v1.vec"))).elementType).toBe("float32");
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

describe("layouts with pieces of matrices (a sketch stored coarse part first)", () => {
  // c_fc's 2 rows of 4 split: its first row, c_proj's first 2 rows, then the rest of both, and h.1 whole.
  const PIECES: VectorLayout = {
    blocks: [
      { name: "h.0.mlp.c_fc", layer: 0, offset: 0, size: 4, kOut: 1, kIn: 4, firstRow: 0, matrixRows: 2 },
      { name: "h.0.mlp.c_proj", layer: 0, offset: 4, size: 4, kOut: 2, kIn: 2, firstRow: 0, matrixRows: 4 },
      { name: "h.0.mlp.c_fc", layer: 0, offset: 8, size: 4, kOut: 1, kIn: 4, firstRow: 1, matrixRows: 2 },
      { name: "h.0.mlp.c_proj", layer: 0, offset: 12, size: 4, kOut: 2, kIn: 2, firstRow: 2, matrixRows: 4 },
      { name: "h.1.mlp.c_fc", layer: 1, offset: 16, size: 8, kOut: 2, kIn: 4 },
    ],
  };

  it("are written as format version 3 (a whole-block layout stays version 2) and read back", async () => {
    await writeVectorFile(file("pieces.vec"), { dim: DIM, firstOrdinal: 0, layout: PIECES, rows: randomRows(3, 21), elementType: "int8" });
    expect((await readFile(file("pieces.vec"))).readUInt32LE(8)).toBe(3);
    expect((await readStoredVectors(file("pieces.vec"))).layout).toEqual(PIECES);
    await writeVectorFile(file("whole.vec"), { dim: DIM, firstOrdinal: 0, layout: LAYOUT, rows: randomRows(3, 21) });
    expect((await readFile(file("whole.vec"))).readUInt32LE(8)).toBe(2);
  });

  it("are refused in a version 2 header, which older programs would read as whole blocks", async () => {
    const bytes = await readFile(file("pieces.vec"));
    bytes.writeUInt32LE(2, 8);
    const dataOffset = bytes.readUInt32LE(12);
    createHash("sha256").update(bytes.subarray(0, 72)).update(bytes.subarray(104, dataOffset)).digest().copy(bytes, 72);
    await writeFile(file("pieces-v2.vec"), bytes);
    await expectRefused(readStoredVectors(file("pieces-v2.vec")), file("pieces-v2.vec"), /has pieces of matrices, which version 2 cannot/);
  });

  it("refuses pieces that do not hold each row of their matrix once", async () => {
    const rows = randomRows(1, 4);
    const bad = (blocks: VectorLayout["blocks"]) => writeVectorFile(file("pieces-bad.vec"), { dim: DIM, firstOrdinal: 0, layout: { blocks }, rows });
    const [fc0, proj0, fc1, proj1, h1] = PIECES.blocks;
    await expect(bad([fc0, proj0, { ...fc1, firstRow: 0 }, proj1, h1])).rejects.toThrow(/pieces of layout block h.0.mlp.c_fc do not hold rows 0..1 once each/);
    await expect(bad([fc0, proj0, { ...fc1, matrixRows: 3 }, proj1, h1])).rejects.toThrow(/pieces of layout block h.0.mlp.c_fc disagree/);
    await expect(bad([fc0, proj0, { ...fc1, firstRow: 2 }, proj1, h1])).rejects.toThrow(/holds rows 2..2 of a matrix of 2/);
    await expect(bad([fc0, proj0, { ...fc1, firstRow: undefined }, proj1, h1])).rejects.toThrow(/h.0.mlp.c_fc is a piece without a valid firstRow/);
    await expect(bad([fc0, proj0, fc1, proj1, { ...h1, name: "h.0.mlp.c_fc" }])).rejects.toThrow(/h.0.mlp.c_fc appears more than once|disagree/);
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
    await expectRefused(readVectorFile(p, { verify: false }), p, /^truncated vector file .*promises 20 float32 rows of dimension 24/);
    const header = await damaged((b) => b.subarray(0, 60));
    await expectRefused(readVectorFile(header), header, /^truncated vector file/);
  });

  it("detects trailing bytes", async () => {
    const p = await damaged((b) => Buffer.concat([b, Buffer.from("junk")]));
    await expectRefused(readVectorFile(p), p, /4 unexpected bytes after its 20 float32 rows/);
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
      b.writeUInt32LE(4, 8);
      return b;
    });
    await expectRefused(readVectorFile(version), version, /unsupported vector file version 4 \(this program reads versions 1 to 3\)/);
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
