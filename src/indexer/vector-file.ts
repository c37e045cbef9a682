/**
 * The vector file: one row per training sequence, row i holding the projected, whitened gradient
 * of the sequence with ordinal `firstOrdinal + i`, stored as float32 values, or (a sketch, which
 * only sums products of its rows) as int8 values with one float32 scale per row: value x is
 * stored as round(x / scale), scale = max |x| / 127, a quarter of the bytes, whose rounding errs by
 * at most scale / 2 per coordinate (far below what a sketch resolves: docs/research); or as signs,
 * a bit per value, with one float32 factor |x|_2^2 / |x|_1 per row (indexer/sign-bits.ts).
 *
 * Layout (integers little-endian):
 *
 *   offset  size  field
 *        0     8  magic "IGVECT01"
 *        8     4  u32 format version: 3 when the layout has pieces of matrices (a sketch stored coarse
 *                 part first), else 2; version 1 is read too (float32 rows, no element type field)
 *       12     4  u32 dataOffset: where the rows start (the header length, a multiple of 8)
 *       16     4  u32 dim
 *       20     4  u32 L: byte length of the layout JSON
 *       24     8  u64 count (rows)
 *       32     8  u64 firstOrdinal
 *       40    32  sha256 of the rows (the payload checksum; also names the vectors in the HNSW sidecar)
 *       72    32  sha256 of the header without this field: bytes [0, 72) and [104, dataOffset)
 *      104     4  u32 element type: 1 float32, 2 int8, 3 sign (versions 2 and 3)
 *      108     4  zero
 *      112     L  layout JSON (UTF-8), { blocks: [{ name, layer, offset, size, kOut, kIn, firstRow?, matrixRows? }] }
 *    112+L        zero padding up to dataOffset
 *   dataOffset    count rows: dim float32 values, a float32 scale then dim int8 values, or a float32
 *                 factor then ceil(dim / 8) bytes of signs (value j at bit j & 7 of byte j >> 3)
 *
 * The header checksum covers the payload checksum, so together they cover every byte that matters.
 * sha256 (OpenSSL) reads well over 500 MB/s here, so verifying a 40 MB file costs well under 0.1 s.
 */
import { createHash, type Hash } from "node:crypto";
import { open, type FileHandle } from "node:fs/promises";
import { type Allocate, float32Array, ordinaryMemory } from "../util/allocate.js";
import { InputError } from "../util/errors.js";
import { AtomicFileWriter, bytesOf, readFully } from "./binary-io.js";
import { quantizeInt8 } from "./int8.js";
import { packSigns, signBytes } from "./sign-kernels.js";
import { type ElementType, hasPieces, layoutProblem, type VectorLayout } from "../projection/vector-layout.js";

const MAGIC = "IGVECT01";
/**
 * The version written: 3 only for a layout with pieces, which a program reading versions 1 and 2
 * must refuse (it would take them for whole blocks and score the coordinates in the wrong places).
 */
const versionOf = (layout: VectorLayout): number => (hasPieces(layout) ? 3 : 2);
const NEWEST_VERSION = 3;
/** Header bytes before the layout JSON, by format version. */
const FIXED_HEADER_BYTES: Record<number, number> = { 1: 104, 2: 112, 3: 112 };
/** Where the header checksum's second range starts (and version 1's layout). */
const HASHED_TAIL_AT = 104;
const ELEMENT_TYPE_AT = 104;
const HEADER_CHECKSUM_AT = 72;
const PAYLOAD_CHECKSUM_AT = 40;
/** Bigger layouts are not plausible: a corrupt length field must not make us allocate gigabytes. */
const MAX_LAYOUT_BYTES = 16 << 20;
/** Rows are read, hashed and merged in chunks of about this many bytes. */
const CHUNK_BYTES = 16 << 20;

const ELEMENT_CODES: Record<ElementType, number> = { float32: 1, int8: 2, sign: 3 };

/** Bytes of a row's values in memory: dim float32 values, dim int8 values, or dim signs. */
const valueBytes = (dim: number, elementType: ElementType): number => ({ float32: 4 * dim, int8: dim, sign: signBytes(dim) })[elementType];

/** Bytes of one stored row: its values, after a float32 scale (factor) unless they are float32. */
export const rowBytes = (dim: number, elementType: ElementType): number => valueBytes(dim, elementType) + (elementType === "float32" ? 0 : 4);

export interface VectorFileHeader {
  elementType: ElementType;
  dim: number;
  count: number;
  firstOrdinal: number;
  layout: VectorLayout;
  /** sha256 (hex) of the rows, as recorded in the header. */
  checksum: string;
  /** Byte offset of the first row. */
  dataOffset: number;
}

type StoredRowsOf = Omit<VectorFileHeader, "dataOffset" | "elementType">;

/** A file of float32 rows (the first tier's vectors, and float32 sketches). */
export interface VectorFile extends StoredRowsOf {
  elementType?: "float32";
  rows: Float32Array;
}

/** A file of int8 rows: row i's values are rows[i dim, (i+1) dim) x scales[i]. */
export interface QuantizedVectorFile extends StoredRowsOf {
  elementType: "int8";
  rows: Int8Array;
  scales: Float32Array;
}

/** A file of signs: row i's bits are rows[i signBytes(dim), (i+1) signBytes(dim)), its factor scales[i] (indexer/sign-bits.ts). */
export interface SignVectorFile extends StoredRowsOf {
  elementType: "sign";
  rows: Uint8Array;
  scales: Float32Array;
}

/** Any kind of file, as a sketch may be stored. */
export type StoredVectors = VectorFile | QuantizedVectorFile | SignVectorFile;

export interface VectorFileMeta {
  dim: number;
  firstOrdinal: number;
  layout: VectorLayout;
  /** float32 when absent. */
  elementType?: ElementType;
}

const align8 = (n: number): number => Math.ceil(n / 8) * 8;

function encodeHeader(meta: VectorFileMeta, count: number, payloadChecksum: Uint8Array): Uint8Array {
  const layoutJson = Buffer.from(JSON.stringify(meta.layout), "utf8");
  const version = versionOf(meta.layout);
  const fixed = FIXED_HEADER_BYTES[version];
  const dataOffset = align8(fixed + layoutJson.length);
  const header = new Uint8Array(dataOffset);
  const view = new DataView(header.buffer);
  header.set(Buffer.from(MAGIC, "ascii"), 0);
  view.setUint32(8, version, true);
  view.setUint32(12, dataOffset, true);
  view.setUint32(16, meta.dim, true);
  view.setUint32(20, layoutJson.length, true);
  view.setBigUint64(24, BigInt(count), true);
  view.setBigUint64(32, BigInt(meta.firstOrdinal), true);
  header.set(payloadChecksum, PAYLOAD_CHECKSUM_AT);
  view.setUint32(ELEMENT_TYPE_AT, ELEMENT_CODES[meta.elementType ?? "float32"], true);
  header.set(layoutJson, fixed);
  header.set(headerChecksum(header), HEADER_CHECKSUM_AT);
  return header;
}

function headerChecksum(header: Uint8Array): Uint8Array {
  return createHash("sha256").update(header.subarray(0, HEADER_CHECKSUM_AT)).update(header.subarray(HASHED_TAIL_AT)).digest();
}

function checkMeta(meta: VectorFileMeta): void {
  if (!Number.isSafeInteger(meta.dim) || meta.dim < 1 || meta.dim > 0xffffffff) throw new RangeError(`invalid vector dimension ${meta.dim}`);
  if (!Number.isSafeInteger(meta.firstOrdinal) || meta.firstOrdinal < 0) throw new RangeError(`invalid first ordinal ${meta.firstOrdinal}`);
  const problem = layoutProblem(meta.layout, meta.dim);
  if (problem) throw new RangeError(`invalid vector layout: ${problem}`);
}

/** Index of the first NaN or infinite value, or -1. */
function firstNonFinite(values: Float32Array): number {
  for (let i = 0; i < values.length; i++) {
    // v - v is 0 for finite v and NaN for NaN and +-Infinity: one comparison per value.
    const v = values[i];
    if (v - v !== 0) return i;
  }
  return -1;
}

/** Rows (finite) in a file's stored form: as they are, or each row's int8 values or signs after its scale (factor). */
function encodeRows(rows: Float32Array, dim: number, elementType: ElementType): Uint8Array {
  if (elementType === "float32") return bytesOf(rows);
  const count = rows.length / dim;
  const stride = rowBytes(dim, elementType);
  const stored = new Uint8Array(count * stride);
  const view = new DataView(stored.buffer);
  for (let r = 0; r < count; r++) {
    const base = r * stride;
    const row = rows.subarray(r * dim, (r + 1) * dim);
    const scale =
      elementType === "int8" ? quantizeInt8(row, new Int8Array(stored.buffer, base + 4, dim)) : packSigns(row, stored.subarray(base + 4, base + stride));
    view.setFloat32(base, scale, true);
  }
  return stored;
}

/**
 * Streams rows into a new vector file, e.g. while merging shards, without holding them all in
 * memory. Nothing is visible at `path` until finish(); abort() leaves the previous file untouched.
 */
export class VectorFileWriter {
  private count = 0;
  private readonly hash = createHash("sha256");
  private readonly elementType: ElementType;

  private constructor(
    private readonly file: AtomicFileWriter,
    private readonly meta: VectorFileMeta,
  ) {
    this.elementType = meta.elementType ?? "float32";
  }

  static async open(path: string, meta: VectorFileMeta): Promise<VectorFileWriter> {
    checkMeta(meta);
    const file = await AtomicFileWriter.open(path);
    try {
      // Placeholder header of the final length; rewritten with the count and checksums at finish.
      await file.append(encodeHeader(meta, 0, new Uint8Array(32)));
    } catch (err) {
      await file.abort();
      throw err;
    }
    return new VectorFileWriter(file, meta);
  }

  /**
   * Appends `rows.length / dim` rows, in the file's element type. Refuses NaN and infinities: they
   * would poison every score.
   */
  async append(rows: Float32Array): Promise<void> {
    const { dim } = this.meta;
    if (rows.length % dim !== 0) throw new RangeError(`${this.file.target}: ${rows.length} values are not whole rows of dimension ${dim}`);
    const bad = firstNonFinite(rows);
    if (bad >= 0) {
      const row = this.count + Math.floor(bad / dim);
      throw new RangeError(
        `${this.file.target}: row ${row} (ordinal ${this.meta.firstOrdinal + row}) has a non-finite value (${rows[bad]}) at coordinate ${bad % dim}`,
      );
    }
    await this.appendStored(encodeRows(rows, dim, this.elementType));
  }

  /** Appends whole rows already in this file's stored form (a merge's verified chunk). */
  private async appendStored(bytes: Uint8Array): Promise<void> {
    this.hash.update(bytes);
    await this.file.append(bytes);
    this.count += bytes.length / rowBytes(this.meta.dim, this.elementType);
  }

  /** Writes the final header and renames the file into place. */
  async finish(): Promise<{ count: number; checksum: string }> {
    const digest = this.hash.digest();
    try {
      await this.file.writeAt(encodeHeader(this.meta, this.count, digest), 0);
      await this.file.commit();
    } catch (err) {
      await this.file.abort();
      throw err;
    }
    return { count: this.count, checksum: digest.toString("hex") };
  }

  abort(): Promise<void> {
    return this.file.abort();
  }

  /** Copies the rows of shard files, each verified, into this file: they share its meta, checked by the caller. */
  async appendFiles(paths: readonly string[], headers: readonly VectorFileHeader[]): Promise<void> {
    const stride = rowBytes(this.meta.dim, this.elementType);
    const buffer = new Uint8Array(chunkRows(stride) * stride);
    for (const [i, path] of paths.entries()) {
      await withFile(path, async (handle) => {
        const header = headers[i];
        const verifier = new RowVerifier(path, header);
        const total = header.count * stride;
        for (let start = 0; start < total; start += buffer.length) {
          const chunk = buffer.subarray(0, Math.min(buffer.length, total - start));
          if (!(await readFully(handle, chunk, header.dataOffset + start))) throw new InputError(`truncated vector file ${path}`);
          verifier.update(chunk);
          // After a non-finite value, only hash the rest: finish() then says whether it is damage.
          if (verifier.clean) await this.appendStored(chunk);
        }
        verifier.finish();
      });
    }
  }
}

/** Writes a whole vector file atomically. */
export async function writeVectorFile(path: string, data: VectorFileMeta & { rows: Float32Array }): Promise<{ count: number; checksum: string }> {
  const { rows, ...meta } = data;
  const writer = await VectorFileWriter.open(path, meta);
  try {
    await writer.append(rows);
  } catch (err) {
    await writer.abort();
    throw err;
  }
  return writer.finish();
}

/** Reads and checks the header; the file's size must match it exactly. */
async function readHeader(handle: FileHandle, path: string): Promise<VectorFileHeader> {
  const { size } = await handle.stat();
  const start = new Uint8Array(FIXED_HEADER_BYTES[1]);
  const complete = await readFully(handle, start, 0);
  if (Buffer.from(start.subarray(0, 8)).toString("latin1") !== MAGIC) {
    throw new InputError(`${path} is not a vector file (it does not start with "${MAGIC}")`);
  }
  if (!complete) throw new InputError(`truncated vector file ${path}: ${size} bytes is shorter than the header`);
  const view = new DataView(start.buffer);
  const version = view.getUint32(8, true);
  const fixed = FIXED_HEADER_BYTES[version];
  if (fixed === undefined) throw new InputError(`${path}: unsupported vector file version ${version} (this program reads versions 1 to ${NEWEST_VERSION})`);
  const dataOffset = view.getUint32(12, true);
  const layoutBytes = view.getUint32(20, true);
  if (layoutBytes > MAX_LAYOUT_BYTES || dataOffset !== align8(fixed + layoutBytes)) {
    throw new InputError(`corrupt vector file ${path}: inconsistent header lengths`);
  }
  const header = new Uint8Array(dataOffset);
  header.set(start);
  if (!(await readFully(handle, header.subarray(start.length), start.length))) {
    throw new InputError(`truncated vector file ${path}: ${size} bytes is shorter than the header`);
  }
  if (!Buffer.from(headerChecksum(header)).equals(header.subarray(HEADER_CHECKSUM_AT, HASHED_TAIL_AT))) {
    throw new InputError(`corrupt vector file ${path}: header checksum mismatch`);
  }
  const code = version === 1 ? ELEMENT_CODES.float32 : new DataView(header.buffer).getUint32(ELEMENT_TYPE_AT, true);
  const elementType = (Object.keys(ELEMENT_CODES) as ElementType[]).find((type) => ELEMENT_CODES[type] === code);
  if (!elementType) throw new InputError(`${path}: unknown element type ${code}`);

  const dim = view.getUint32(16, true);
  const count = Number(view.getBigUint64(24, true));
  const firstOrdinal = Number(view.getBigUint64(32, true));
  let layout: VectorLayout;
  try {
    layout = JSON.parse(Buffer.from(header.subarray(fixed, fixed + layoutBytes)).toString("utf8"));
  } catch {
    throw new InputError(`corrupt vector file ${path}: the layout is not JSON`);
  }
  const problem =
    layoutProblem(layout, dim) ?? (hasPieces(layout) && version < 3 ? `its layout has pieces of matrices, which version ${version} cannot` : undefined);
  if (problem) throw new InputError(`invalid vector file ${path}: ${problem}`);

  const expected = dataOffset + count * rowBytes(dim, elementType);
  const rowsText = `${count} ${elementType} rows of dimension ${dim}`;
  if (size < expected)
    throw new InputError(`truncated vector file ${path}: the header promises ${rowsText} (${expected} bytes) but the file has ${size} bytes`);
  if (size > expected) throw new InputError(`vector file ${path} has ${size - expected} unexpected bytes after its ${rowsText}`);
  const checksum = Buffer.from(header.subarray(PAYLOAD_CHECKSUM_AT, HEADER_CHECKSUM_AT)).toString("hex");
  return { elementType, dim, count, firstOrdinal, layout, checksum, dataOffset };
}

async function withFile<T>(path: string, use: (handle: FileHandle) => Promise<T>): Promise<T> {
  let handle: FileHandle;
  try {
    handle = await open(path, "r");
  } catch (err) {
    throw new InputError(`cannot open vector file ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return await use(handle);
  } finally {
    await handle.close();
  }
}

/**
 * Checks stored rows chunk by chunk as they are read: the payload checksum, and that values (of
 * an int8 or sign file, scales) are finite (scales also not negative). A bad value is reported only at
 * finish(), once the checksum says whether it is damage.
 */
class RowVerifier {
  private readonly hash: Hash = createHash("sha256");
  private readonly stride: number;
  private row = 0;
  private bad?: { row: number; what: string };

  constructor(
    private readonly path: string,
    private readonly header: VectorFileHeader,
  ) {
    this.stride = rowBytes(header.dim, header.elementType);
  }

  /** No bad value seen so far. */
  get clean(): boolean {
    return this.bad === undefined;
  }

  /** `chunk`: whole stored rows (of a float32 file, 4-byte aligned). */
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    if (this.clean) this.bad = this.firstBad(chunk);
    this.row += chunk.length / this.stride;
  }

  private firstBad(chunk: Uint8Array): { row: number; what: string } | undefined {
    const { dim, elementType } = this.header;
    if (elementType === "float32") {
      const values = new Float32Array(chunk.buffer, chunk.byteOffset, chunk.length / 4);
      const bad = firstNonFinite(values);
      return bad < 0 ? undefined : { row: this.row + Math.floor(bad / dim), what: `a non-finite value (${values[bad]}) at coordinate ${bad % dim}` };
    }
    const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.length);
    for (let r = 0; r * this.stride < chunk.length; r++) {
      const scale = view.getFloat32(r * this.stride, true);
      if (!(scale >= 0 && scale < Infinity)) return { row: this.row + r, what: `an invalid scale (${scale})` };
    }
    return undefined;
  }

  finish(): void {
    if (this.hash.digest("hex") !== this.header.checksum) throw new InputError(`corrupt vector file ${this.path}: payload checksum mismatch`);
    if (this.bad) {
      const { row, what } = this.bad;
      throw new InputError(`invalid vector file ${this.path}: row ${row} (ordinal ${this.header.firstOrdinal + row}) has ${what}`);
    }
  }
}

/** Rows per read of rows of `stride` bytes: whole rows, about CHUNK_BYTES. */
const chunkRows = (stride: number): number => Math.max(1, Math.floor(CHUNK_BYTES / stride));

/** Header only (checked, including the file size against it); cheap. */
export function readVectorFileHeader(path: string): Promise<VectorFileHeader> {
  return withFile(path, (handle) => readHeader(handle, path));
}

interface ReadOptions {
  /** Check the payload checksum and refuse non-finite values (the default); the header and file size are always checked. */
  verify?: boolean;
  /** Where the rows go (ordinary memory by default). */
  allocate?: Allocate;
}

/** Reads a whole vector file of either element type, its rows (and scales) into memory from `allocate`. */
export function readStoredVectors(path: string, { verify = true, allocate = ordinaryMemory }: ReadOptions = {}): Promise<StoredVectors> {
  return withFile(path, async (handle) => {
    const header = await readHeader(handle, path);
    const { elementType, dim, count, dataOffset, ...rest } = header;
    const verifier = verify ? new RowVerifier(path, header) : undefined;
    const stride = rowBytes(dim, elementType);
    const step = chunkRows(stride);
    const readRows = async (chunk: Uint8Array, start: number): Promise<void> => {
      if (!(await readFully(handle, chunk, dataOffset + start * stride))) throw new InputError(`truncated vector file ${path}`);
      verifier?.update(chunk);
    };
    if (elementType === "float32") {
      const rows = float32Array(allocate, count * dim);
      for (let start = 0; start < count; start += step) await readRows(bytesOf(rows.subarray(start * dim, (start + step) * dim)), start);
      verifier?.finish();
      return { ...rest, dim, count, rows };
    }
    // int8 or signs: each row's scale and values read together, then apart.
    const values = valueBytes(dim, elementType);
    const bytes = new Uint8Array(allocate(count * values));
    const scales = float32Array(allocate, count);
    const buffer = new Uint8Array(step * stride);
    const view = new DataView(buffer.buffer);
    for (let start = 0; start < count; start += step) {
      const n = Math.min(step, count - start);
      await readRows(buffer.subarray(0, n * stride), start);
      for (let r = 0; r < n; r++) {
        scales[start + r] = view.getFloat32(r * stride, true);
        bytes.set(buffer.subarray(r * stride + 4, (r + 1) * stride), (start + r) * values);
      }
    }
    verifier?.finish();
    const stored = { ...rest, dim, count, scales };
    return elementType === "int8" ? { ...stored, elementType, rows: new Int8Array(bytes.buffer, 0, count * dim) } : { ...stored, elementType, rows: bytes };
  });
}

/** Reads a whole vector file of float32 rows (see readStoredVectors); a file of int8 rows is refused. */
export async function readVectorFile(path: string, options: ReadOptions = {}): Promise<VectorFile> {
  const file = await readStoredVectors(path, options);
  if (file.elementType !== undefined && file.elementType !== "float32")
    throw new InputError(`${path} stores ${file.elementType} rows where float32 rows are expected`);
  return file;
}

/**
 * Concatenates shard files (given in ordinal order) into one vector file at `outPath`, streaming:
 * shards must have the same element type, dimension and layout and contiguous ordinals, and each
 * is verified.
 */
export async function mergeVectorFiles(shardPaths: readonly string[], outPath: string): Promise<{ count: number; checksum: string }> {
  if (shardPaths.length === 0) throw new RangeError("mergeVectorFiles needs at least one shard");
  const headers = await Promise.all(shardPaths.map(readVectorFileHeader));
  const first = headers[0];
  const layoutJson = JSON.stringify(first.layout);
  let nextOrdinal = first.firstOrdinal;
  for (const [i, h] of headers.entries()) {
    const path = shardPaths[i];
    if (h.elementType !== first.elementType) throw new InputError(`${path}: ${h.elementType} rows, ${shardPaths[0]} has ${first.elementType} rows`);
    if (h.dim !== first.dim) throw new InputError(`${path}: dimension ${h.dim} differs from ${shardPaths[0]} (${first.dim})`);
    if (JSON.stringify(h.layout) !== layoutJson) throw new InputError(`${path}: vector layout differs from ${shardPaths[0]}`);
    if (h.firstOrdinal !== nextOrdinal) {
      throw new InputError(`${path}: starts at ordinal ${h.firstOrdinal}, but the previous shards end before ordinal ${nextOrdinal}`);
    }
    nextOrdinal += h.count;
  }

  const writer = await VectorFileWriter.open(outPath, first);
  try {
    await writer.appendFiles(shardPaths, headers);
  } catch (err) {
    await writer.abort();
    throw err;
  }
  return writer.finish();
}
