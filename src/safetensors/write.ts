/** Writer for the safetensors format (see read.ts), atomically replacing the target file. */
import { writeFileAtomic } from "../util/atomic-write.js";
import { DTYPE_BYTES, type Dtype, floatToBf16, floatToHalf } from "./dtype.js";

export interface TensorToWrite {
  /** BOOL: non-zero values are written as 1 (the causal-mask buffers of some checkpoints). */
  dtype: Extract<Dtype, "F64" | "F32" | "F16" | "BF16" | "BOOL">;
  shape: number[];
  data: ArrayLike<number>;
}

/** Encodes tensors (in the order given) and string metadata into safetensors bytes. */
export function encodeSafetensors(tensors: Record<string, TensorToWrite>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new Error(`tensor ${name}: shape [${t.shape.join(", ")}] needs ${count} values, got ${t.data.length}`);
    const bytes = count * DTYPE_BYTES[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  // The format pads the header with spaces to a multiple of 8 so that the data is aligned.
  let headerText = JSON.stringify(header);
  headerText += " ".repeat((8 - ((8 + Buffer.byteLength(headerText)) % 8)) % 8);
  const headerBytes = Buffer.from(headerText, "utf8");
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const t of Object.values(tensors)) {
    const n = t.data.length;
    for (let i = 0; i < n; i++) {
      const x = t.data[i];
      switch (t.dtype) {
        case "F64":
          view.setFloat64(pos + 8 * i, x, true);
          break;
        case "F32":
          view.setFloat32(pos + 4 * i, x, true);
          break;
        case "F16":
          view.setUint16(pos + 2 * i, floatToHalf(x), true);
          break;
        case "BF16":
          view.setUint16(pos + 2 * i, floatToBf16(x), true);
          break;
        case "BOOL":
          view.setUint8(pos + i, x ? 1 : 0);
          break;
      }
    }
    pos += n * DTYPE_BYTES[t.dtype];
  }
  return out;
}

export async function writeSafetensors(file: string, tensors: Record<string, TensorToWrite>, metadata?: Record<string, string>): Promise<void> {
  await writeFileAtomic(file, encodeSafetensors(tensors, metadata));
}
