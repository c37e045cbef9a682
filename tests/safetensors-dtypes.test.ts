/** Half-precision checkpoints as published (F16, BF16): read as float32, exactly where the value is representable. */
import { describe, expect, it } from "vitest";
import { parseSafetensors, tensorAsFloat32 } from "../src/safetensors/read.js";
import { encodeSafetensors } from "../src/safetensors/write.js";

/** Every finite value of a binary float format with `mantissaBits` and exponents from `minExp` to `maxExp`, both signs. */
function representable(mantissaBits: number, minExp: number, maxExp: number): number[] {
  const steps = 2 ** mantissaBits;
  const values: number[] = [0];
  // Subnormals: m / steps * 2^minExp.
  for (let m = 1; m < steps; m++) values.push((m / steps) * 2 ** minExp);
  for (let e = minExp; e <= maxExp; e++) for (let m = 0; m < steps; m++) values.push((1 + m / steps) * 2 ** e);
  return [...values, ...values.map((v) => -v), Infinity, -Infinity];
}

/** A safetensors file written by hand: one tensor of `dtype` and `shape` with these raw little-endian bytes. */
function handWritten(dtype: string, shape: number[], bytes: number[], claimed = bytes.length): Uint8Array {
  const header = Buffer.from(JSON.stringify({ w: { dtype, shape, data_offsets: [0, claimed] } }));
  const out = Buffer.alloc(8 + header.length + bytes.length);
  out.writeBigUInt64LE(BigInt(header.length), 0);
  header.copy(out, 8);
  Buffer.from(bytes).copy(out, 8 + header.length);
  return new Uint8Array(out);
}

describe("F16 and BF16 tensors", () => {
  it.each([
    { dtype: "F16", values: representable(10, -14, 15) },
    { dtype: "BF16", values: representable(7, -126, 127) },
  ] as const)("$dtype: every representable value reads back as itself", ({ dtype, values }) => {
    const st = parseSafetensors("x.safetensors", encodeSafetensors({ w: { dtype, shape: [values.length], data: values } }));
    const read = Array.from(tensorAsFloat32(st, "w"));
    expect(read.length).toBe(values.length);
    // Object.is tells -0 from 0.
    expect(read.every((v, i) => Object.is(v, values[i]))).toBe(true);
  });

  it("reads bytes written by hand with the IEEE bit patterns", () => {
    // F16: 1 = 0x3C00, -2 = 0xC000, 65504 (the largest) = 0x7BFF, 2^-24 (the smallest subnormal) = 0x0001.
    const f16 = parseSafetensors("f16.safetensors", handWritten("F16", [2, 2], [0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00]));
    expect(Array.from(tensorAsFloat32(f16, "w"))).toEqual([1, -2, 65504, 2 ** -24]);
    // BF16, the high half of a float32: 1 = 0x3F80, -2 = 0xC000, 3.140625 = 0x4049, 2^-133 (the smallest subnormal) = 0x0001.
    const bf16 = parseSafetensors("bf16.safetensors", handWritten("BF16", [4], [0x80, 0x3f, 0x00, 0xc0, 0x49, 0x40, 0x01, 0x00]));
    expect(Array.from(tensorAsFloat32(bf16, "w"))).toEqual([1, -2, 3.140625, 2 ** -133]);
    expect(f16.tensors.get("w")?.shape).toEqual([2, 2]);
  });

  it("refuses a BF16 tensor whose byte length does not match its shape, naming the tensor and both lengths", () => {
    const bytes = handWritten("BF16", [3], [0x80, 0x3f, 0x80, 0x3f, 0x80, 0x3f, 0x80, 0x3f]);
    expect(() => parseSafetensors("model.safetensors", bytes)).toThrow("model.safetensors: tensor w claims 8 bytes but its shape [3] of BF16 needs 6");
  });
});
