/** Writer for the safetensors format (see read.ts), atomically replacing the target file. */
import os from "node:os";
import { writeFileAtomic } from "../util/atomic-write.js";
import { DTYPE_BYTES, type Dtype, floatToBf16, floatToHalf } from "./dtype.js";

export interface TensorToWrite {
  /** BOOL: non-zero values are written as 1 (the causal-mask buffers of some checkpoints). */
  dtype: Extract<Dtype, "F64" | "F32" | "F16" | "BF16" | "BOOL">;
  shape: number[];
  data: ArrayLike<number>;
}

/** What the header says of a tensor. */
export type TensorHeader = Pick<TensorToWrite, "dtype" | "shape">;

const elements = (t: TensorHeader): number => t.shape.reduce((a, b) => a * b, 1);

/** The header piece of a safetensors file: its length, then the JSON header padded to a multiple of 8. */
function headerBytes(tensors: Record<string, TensorHeader>, metadata: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const bytes = elements(t) * DTYPE_BYTES[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  // The format pads the header with spaces to a multiple of 8 so that the data is aligned.
  let headerText = JSON.stringify(header);
  headerText += " ".repeat((8 - ((8 + Buffer.byteLength(headerText)) % 8)) % 8);
  const text = Buffer.from(headerText, "utf8");
  const out = new Uint8Array(8 + text.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  return out;
}

const littleEndian = os.endianness() === "LE";

/** A tensor's data as little-endian bytes: a view of its own memory when it already is (float64 or float32 data of that dtype). */
function tensorBytes(t: TensorToWrite): Uint8Array {
  if (littleEndian && ((t.dtype === "F64" && t.data instanceof Float64Array) || (t.dtype === "F32" && t.data instanceof Float32Array))) {
    return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  }
  const n = t.data.length;
  const out = new Uint8Array(n * DTYPE_BYTES[t.dtype]);
  const view = new DataView(out.buffer);
  for (let i = 0; i < n; i++) {
    const x = t.data[i];
    switch (t.dtype) {
      case "F64":
        view.setFloat64(8 * i, x, true);
        break;
      case "F32":
        view.setFloat32(4 * i, x, true);
        break;
      case "F16":
        view.setUint16(2 * i, floatToHalf(x), true);
        break;
      case "BF16":
        view.setUint16(2 * i, floatToBf16(x), true);
        break;
      case "BOOL":
        view.setUint8(i, x ? 1 : 0);
        break;
    }
  }
  return out;
}

/**
 * Tensors (in the order given) and string metadata as the pieces of a safetensors file: the
 * header, then each tensor's bytes, made one at a time as they are asked for, so that a file
 * larger than memory (or than one Uint8Array) can be written.
 */
export function* safetensorsPieces(tensors: Record<string, TensorToWrite>, metadata: Record<string, string> = {}): Generator<Uint8Array> {
  for (const [name, t] of Object.entries(tensors)) {
    if (elements(t) !== t.data.length) throw new Error(`tensor ${name}: shape [${t.shape.join(", ")}] needs ${elements(t)} values, got ${t.data.length}`);
  }
  yield headerBytes(tensors, metadata);
  for (const t of Object.values(tensors)) yield tensorBytes(t);
}

/** Encodes tensors (in the order given) and string metadata into safetensors bytes. */
export function encodeSafetensors(tensors: Record<string, TensorToWrite>, metadata: Record<string, string> = {}): Uint8Array {
  const pieces = [...safetensorsPieces(tensors, metadata)];
  const out = new Uint8Array(pieces.reduce((s, p) => s + p.length, 0));
  let pos = 0;
  for (const p of pieces) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

export async function writeSafetensors(file: string, tensors: Record<string, TensorToWrite>, metadata?: Record<string, string>): Promise<void> {
  await writeFileAtomic(file, safetensorsPieces(tensors, metadata));
}

/**
 * Writes a safetensors file whose tensors' little-endian bytes are fetched one at a time, in the
 * order given, by `bytesOf` (copied from other files): only one tensor is in memory at a time.
 */
export async function writeSafetensorsFrom(
  file: string,
  tensors: Record<string, TensorHeader>,
  bytesOf: (name: string) => Promise<Uint8Array>,
  metadata: Record<string, string> = {},
): Promise<void> {
  async function* pieces(): AsyncGenerator<Uint8Array> {
    yield headerBytes(tensors, metadata);
    for (const [name, t] of Object.entries(tensors)) {
      const bytes = await bytesOf(name);
      const expected = elements(t) * DTYPE_BYTES[t.dtype];
      if (bytes.byteLength !== expected) throw new Error(`tensor ${name}: ${t.dtype} [${t.shape.join(", ")}] needs ${expected} bytes, got ${bytes.byteLength}`);
      yield bytes;
    }
  }
  await writeFileAtomic(file, pieces());
}
