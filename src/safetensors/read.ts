/**
 * Reader for the safetensors format: an 8-byte little-endian header length, a JSON header naming
 * every tensor's dtype, shape and byte range, then the raw little-endian data. Every claim of the
 * header is checked against the file before any tensor is handed out. A file is read whole
 * (readSafetensors), or opened and read a tensor at a time at its offset (SafetensorsReader), so
 * that a model's weights or a fit's factors never sit in memory twice over.
 */
import { type FileHandle, open, readFile, stat } from "node:fs/promises";
import { type Allocate, float32Array, ordinaryMemory } from "../util/allocate.js";
import { InputError } from "../util/errors.js";
import { DTYPE_BYTES, type Dtype, halfToFloat, isDtype } from "./dtype.js";

export interface TensorInfo {
  dtype: Dtype;
  shape: number[];
  /** Byte range within the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsFile {
  path: string;
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
  /** Raw data section. */
  data: Uint8Array;
}

const MAX_HEADER_BYTES = 100 * 2 ** 20;

function parseHeader(file: string, headerText: string, dataBytes: number): Pick<SafetensorsFile, "tensors" | "metadata"> {
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch (err) {
    throw new InputError(`${file}: safetensors header is not valid JSON (${(err as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw new InputError(`${file}: safetensors header is not a JSON object`);
  }
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  const ranges: Array<[number, number, string]> = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      // Readers index it as strings (JSON.parse(metadata.settings), Number(metadata.step)): a number
      // or an array here was handed out as metadata and failed later, far from the file's name.
      if (raw !== null && (typeof raw !== "object" || Array.isArray(raw) || !Object.values(raw).every((v) => typeof v === "string"))) {
        throw new InputError(`${file}: safetensors __metadata__ is not an object of strings`);
      }
      metadata = (raw ?? {}) as Record<string, string>;
      continue;
    }
    const entry = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!isDtype(entry?.dtype)) throw new InputError(`${file}: tensor ${name} has unsupported dtype ${JSON.stringify(entry?.dtype)}`);
    const shape = entry.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new InputError(`${file}: tensor ${name} has an invalid shape ${JSON.stringify(shape)}`);
    }
    const offsets = entry.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      throw new InputError(`${file}: tensor ${name} has invalid data_offsets ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    const expected = shape.reduce((a: number, b: number) => a * b, 1) * DTYPE_BYTES[entry.dtype];
    if (end - begin !== expected) {
      throw new InputError(`${file}: tensor ${name} claims ${end - begin} bytes but its shape [${shape.join(", ")}] of ${entry.dtype} needs ${expected}`);
    }
    if (end > dataBytes) {
      throw new InputError(`${file}: tensor ${name} ends at byte ${end} of the data section, which has only ${dataBytes} bytes (truncated file?)`);
    }
    ranges.push([begin, end, name]);
    tensors.set(name, { dtype: entry.dtype, shape: shape as number[], begin, end });
  }
  ranges.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i][0] < ranges[i - 1][1]) throw new InputError(`${file}: tensors ${ranges[i - 1][2]} and ${ranges[i][2]} overlap`);
  }
  return { tensors, metadata };
}

/** Reads and validates a whole safetensors file. */
export async function readSafetensors(file: string): Promise<SafetensorsFile> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new InputError(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return parseSafetensors(file, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
}

/** Validates safetensors bytes already in memory; `file` names them in errors. */
export function parseSafetensors(file: string, bytes: Uint8Array): SafetensorsFile {
  if (bytes.byteLength < 8) throw new InputError(`${file}: too short to be a safetensors file (${bytes.byteLength} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > bytes.byteLength) {
    throw new InputError(`${file}: safetensors header length ${headerLength} exceeds the file size ${bytes.byteLength}`);
  }
  const headerText = new TextDecoder("utf-8", { fatal: false }).decode(bytes.subarray(8, 8 + headerLength));
  const data = bytes.subarray(8 + headerLength);
  return { path: file, data, ...parseHeader(file, headerText, data.byteLength) };
}

/** The header of an open safetensors file of `size` bytes, and where its data section starts. */
async function readHeader(file: string, handle: FileHandle, size: number): Promise<Pick<SafetensorsFile, "tensors" | "metadata"> & { dataStart: number }> {
  const lengthBytes = Buffer.alloc(8);
  if (size >= 8) await readFully(file, handle, lengthBytes, 0);
  const headerLength = Number(lengthBytes.readBigUInt64LE(0));
  if (size < 8 || headerLength > MAX_HEADER_BYTES || 8 + headerLength > size) {
    throw new InputError(`${file}: safetensors header length ${headerLength} exceeds the file size ${size}`);
  }
  const header = Buffer.alloc(headerLength);
  await readFully(file, handle, header, 8);
  return { ...parseHeader(file, header.toString("utf8"), size - 8 - headerLength), dataStart: 8 + headerLength };
}

/** Reads only the header of a safetensors file (for fingerprints and listings). */
export async function readSafetensorsHeader(file: string): Promise<Pick<SafetensorsFile, "tensors" | "metadata">> {
  const handle = await openForReading(file);
  try {
    const { tensors, metadata } = await readHeader(file, handle, (await handle.stat()).size);
    return { tensors, metadata };
  } finally {
    await handle.close();
  }
}

/** Bytes per read call: Linux returns at most about 2 GiB per read(2). */
const READ_CHUNK = 2 ** 30;

/** Fills `into` from the file at `position`, in as many reads as it takes; `file` names it in errors. */
async function readFully(file: string, handle: FileHandle, into: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < into.byteLength; ) {
    const { bytesRead } = await handle.read(into, done, Math.min(READ_CHUNK, into.byteLength - done), position + done);
    if (bytesRead === 0) throw new InputError(`${file}: unexpected end of file at byte ${position + done} (truncated while being read?)`);
    done += bytesRead;
  }
}

async function openForReading(file: string): Promise<FileHandle> {
  try {
    return await open(file, "r");
  } catch (err) {
    throw new InputError(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/**
 * A safetensors file opened for reading a tensor at a time: its header is parsed at open, and each
 * tensor is read from disk at its offset when asked for, so that only that tensor is in memory.
 * A file rewritten after it was opened (its size or modification time changed) is refused rather
 * than read as a mix of two files. Close it when done.
 */
export class SafetensorsReader {
  private constructor(
    readonly path: string,
    readonly tensors: Map<string, TensorInfo>,
    readonly metadata: Record<string, string>,
    private readonly handle: FileHandle,
    private readonly dataStart: number,
    private readonly opened: { size: number; mtimeMs: number },
  ) {}

  static async open(file: string): Promise<SafetensorsReader> {
    const handle = await openForReading(file);
    try {
      const { size, mtimeMs } = await handle.stat();
      const { tensors, metadata, dataStart } = await readHeader(file, handle, size);
      return new SafetensorsReader(file, tensors, metadata, handle, dataStart, { size, mtimeMs });
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  /** The named tensor's raw little-endian bytes, read from the file. */
  async bytes(name: string): Promise<Uint8Array> {
    const info = this.info(name);
    await this.checkUnchanged();
    const out = new Uint8Array(info.end - info.begin);
    await readFully(this.path, this.handle, out, this.dataStart + info.begin);
    return out;
  }

  /** The named tensor converted to float32 (from F32, F16, BF16 or F64). */
  async float32(name: string, allocate?: Allocate): Promise<Float32Array> {
    return decodeFloat32(this.path, name, this.info(name), await this.bytes(name), allocate);
  }

  /** The named tensor as float64 (from F64, or converted from F32, F16 or BF16). */
  async float64(name: string): Promise<Float64Array> {
    return decodeFloat64(this.path, name, this.info(name), await this.bytes(name));
  }

  close(): Promise<void> {
    return this.handle.close();
  }

  private info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new InputError(`${this.path}: no tensor named ${name}`);
    return info;
  }

  /** Refuses a file whose size or modification time changed since it was opened, in place or replaced. */
  private async checkUnchanged(): Promise<void> {
    const [held, named] = await Promise.all([this.handle.stat(), stat(this.path).catch(() => undefined)]);
    for (const now of [held, named]) {
      if (!now || now.size !== this.opened.size || now.mtimeMs !== this.opened.mtimeMs) {
        const what = now
          ? `${this.opened.size} bytes modified ${new Date(this.opened.mtimeMs).toISOString()}, now ${now.size} bytes modified ${new Date(now.mtimeMs).toISOString()}`
          : "it was removed";
        throw new InputError(`${this.path}: the file changed after it was opened (${what}): it was rewritten while being read; load it again`);
      }
    }
  }
}

let halfValues: Float32Array | undefined;

/** Every half's value by its bits: a lookup is ~15x faster than decoding each of a checkpoint's hundreds of millions. */
function halfTable(): Float32Array {
  if (!halfValues) {
    halfValues = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfValues[h] = halfToFloat(h);
  }
  return halfValues;
}

/** The dtypes float32() and float64() convert. */
const FLOAT_DTYPES: readonly Dtype[] = ["F64", "F32", "F16", "BF16"];

/** Refuses a tensor (described by `info`) that is not of a floating-point dtype; `file` and `name` name it. */
export function requireFloat(file: string, name: string, info: TensorInfo): void {
  if (!FLOAT_DTYPES.includes(info.dtype)) throw new InputError(`${file}: tensor ${name} has dtype ${info.dtype}, expected a floating-point type`);
}

/** A tensor's little-endian `bytes` (described by `info`) as float32 in memory from `allocate`; `file` and `name` name it in errors. */
function decodeFloat32(file: string, name: string, info: TensorInfo, bytes: Uint8Array, allocate: Allocate = ordinaryMemory): Float32Array {
  requireFloat(file, name, info);
  const count = bytes.byteLength / DTYPE_BYTES[info.dtype];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = float32Array(allocate, count);
  switch (info.dtype) {
    case "F32":
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
      return out;
    case "F64":
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, true);
      return out;
    case "F16": {
      const table = halfTable();
      for (let i = 0; i < count; i++) out[i] = table[view.getUint16(2 * i, true)];
      return out;
    }
  }
  // BF16, the high half of a float32: the bits move over unchanged.
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < count; i++) bits[i] = view.getUint16(2 * i, true) << 16;
  return out;
}

/** The named tensor converted to float32 (from F32, F16, BF16 or F64), in memory from `allocate` (ordinary by default). */
export function tensorAsFloat32(st: SafetensorsFile, name: string, allocate?: Allocate): Float32Array {
  const info = st.tensors.get(name);
  if (!info) throw new InputError(`${st.path}: no tensor named ${name}`);
  return decodeFloat32(st.path, name, info, st.data.subarray(info.begin, info.end), allocate);
}

/** A tensor's little-endian `bytes` (described by `info`) as float64; `file` and `name` name it in errors. */
function decodeFloat64(file: string, name: string, info: TensorInfo, bytes: Uint8Array): Float64Array {
  if (info.dtype !== "F64") return Float64Array.from(decodeFloat32(file, name, info, bytes));
  const count = bytes.byteLength / 8;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, true);
  return out;
}

/** The named tensor as float64 (from F64 or F32), for factors and reference values. */
export function tensorAsFloat64(st: SafetensorsFile, name: string): Float64Array {
  const info = st.tensors.get(name);
  if (!info) throw new InputError(`${st.path}: no tensor named ${name}`);
  return decodeFloat64(st.path, name, info, st.data.subarray(info.begin, info.end));
}
