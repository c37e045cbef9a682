/**
 * The WebAssembly SIMD kernels of sign sketches (sign-bits.ts), assembled here, and their entry
 * points: a row's signs and factor (packSigns, every sketch row of a build and a first pass's
 * query), and a query stretch's values rounded with one scale, max |v| / QUERY_MAX, to
 * QUERY_BITS-bit integers stored as bit planes (signPlanes). A served query makes the planes of all
 * its sketch coordinates (526,848 on the demo) on its critical path; the kernels take the maximum
 * four values at a time, round two float64 lanes at a time, and gather each plane's (or the signs')
 * bits of 16 values by one i8x16.bitmask: about 1 ms where JavaScript loops took about 5. The
 * rounding is int8.ts roundToStep's to the bit (x / scale in float64, plus QUERY_MAX, plus 0.5,
 * truncated and clamped), which the tests check against brute force.
 */
import { Assembler, F64, I32, SIMD, V128, name, section } from "../linalg/wasm-assembler.js";

/** Scalar opcodes the kernels emit: i32.store, i32.store16 (their memory arguments follow), i32.shr_u. */
const [I32_STORE, I32_STORE16, I32_SHR_U] = [0x36, 0x3b, 0x76];
/** Shuffle lanes that bring a v128's high 8 bytes to its low half. */
const HIGH_HALF = [8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7];

/**
 * Bits of a query value: q in [-15, 15] rounds each value within 1/30 of the stretch's largest
 * (about 5 standard deviations of a stretch of Gaussian values), an error of variance step^2 / 12
 * per value that adds about 2 % to the signs' own error (sign-bits.ts). The planes are q's low 4
 * bits and its sign bit (two's complement).
 */
export const QUERY_BITS = 5;
const QUERY_MAX = 2 ** (QUERY_BITS - 1) - 1;

/** Bytes of one row of `dim` signs. */
export const signBytes = (dim: number): number => Math.ceil(dim / 8);

/** The row bytes that coordinates [offset, offset + count) lie in: [first, first + bytes). */
export const bytesOver = (offset: number, count: number): { first: number; bytes: number } => ({
  first: offset >> 3,
  bytes: signBytes(offset + count) - (offset >> 3),
});

/** maxAbs(values, count, out): the 4 lanes at `out` hold max |v| over each fourth of `count` (a multiple of 4) floats; NaN is passed over. */
function maxAbs(): number[] {
  const [values, count, out] = [0, 1, 2];
  const a = new Assembler(3);
  const i = a.local(I32);
  const max = a.local(V128);
  a.f64x2(0).set(max);
  a.i32(0).set(i);
  // pmax(m, v) = m < v ? v : m keeps m where v is NaN, as largestMagnitude's comparison does.
  a.whileFits(i, 4, count, () => a.get(max).v128Element(values, i, 2).simd(SIMD.f32x4Abs).simd(SIMD.f32x4Pmax).set(max));
  a.get(out).get(max).v128Store();
  return a.encode();
}

/**
 * round(values, count, q, scale): q[i] (a byte, its low QUERY_BITS bits) = roundToStep(v_i, scale,
 * QUERY_MAX), for `count` (a multiple of 4) floats, four at a time.
 */
function round(): number[] {
  const [values, count, q, scale] = [0, 1, 2, 3];
  const a = new Assembler(4);
  const i = a.local(I32);
  const v = a.local(V128);
  const step = a.local(V128);
  const halves = [a.local(V128), a.local(V128)];
  a.get(scale).splat().set(step);
  a.i32(0).set(i);
  a.whileFits(i, 4, count, () => {
    a.v128Element(values, i, 2).set(v);
    // Lanes 0, 1 and lanes 2, 3 as float64 pairs: x / scale + QUERY_MAX + 0.5, truncated to int32 lanes 0, 1.
    a.get(v).simd(SIMD.f64x2PromoteLowF32x4).set(halves[0]);
    a.get(v)
      .get(v)
      .simd(SIMD.i8x16Shuffle, ...HIGH_HALF)
      .simd(SIMD.f64x2PromoteLowF32x4)
      .set(halves[1]);
    for (const h of halves) a.get(h).get(step).simd(SIMD.f64x2Div).f64x2(QUERY_MAX).vAdd().f64x2(0.5).vAdd().simd(SIMD.i32x4TruncSatF64x2SZero).set(h);
    a.at(q, i);
    // The four int32s, clamped to [0, 2 QUERY_MAX], less QUERY_MAX, their low QUERY_BITS bits; each lane's low byte, stored as 4 bytes.
    a.get(halves[0]).get(halves[1]).simd(SIMD.i8x16Shuffle, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
    a.i32(0).simd(SIMD.i32x4Splat).simd(SIMD.i32x4MaxS);
    a.i32(2 * QUERY_MAX)
      .simd(SIMD.i32x4Splat)
      .simd(SIMD.i32x4MinS);
    a.i32(QUERY_MAX).simd(SIMD.i32x4Splat).simd(SIMD.i32x4Sub);
    a.i32((1 << QUERY_BITS) - 1)
      .simd(SIMD.i32x4Splat)
      .simd(SIMD.v128And)
      .set(v);
    a.get(v).get(v).simd(SIMD.i8x16Shuffle, 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12).simd(SIMD.i32x4ExtractLane, 0).emit(I32_STORE, 0, 0);
  });
  return a.encode();
}

/** pack(q, chunks, out, stride): plane k's bits of q's 16 bytes of chunk c (bit k of each) at out + k stride + 2c, for `chunks` chunks. */
function pack(): number[] {
  const [q, chunks, out, stride] = [0, 1, 2, 3];
  const a = new Assembler(4);
  const c = a.local(I32);
  const v = a.local(V128);
  a.i32(0).set(c);
  a.whileFits(c, 1, chunks, () => {
    a.v128Element(q, c, 4).set(v);
    for (let k = 0; k < QUERY_BITS; k++) {
      a.get(out).get(stride).i32(k).mul().add().get(c).i32(1).shl().add();
      // Bit k to each byte's top (i8x16.shl), then the 16 tops as a 16-bit mask, stored little-endian: value j at bit j.
      a.get(v)
        .i32(7 - k)
        .simd(SIMD.i8x16Shl)
        .simd(SIMD.i8x16Bitmask)
        .emit(I32_STORE16, 0, 0);
    }
  });
  return a.encode();
}

/**
 * signs(values, count, out, sums): the signs of `count` (a multiple of 16) floats, bit j of byte
 * j >> 3 at `out` set where value j > 0, 16 values at a time; sum v^2 and sum |v| in float64 as two
 * pairs of lanes at `sums` (squares, then sizes).
 */
function signs(): number[] {
  const [values, count, out, sums] = [0, 1, 2, 3];
  const a = new Assembler(4);
  const i = a.local(I32);
  const v = a.locals(4, V128);
  const [squares, sizes, half] = [a.local(V128), a.local(V128), a.local(V128)];
  a.f64x2(0).set(squares);
  a.f64x2(0).set(sizes);
  a.i32(0).set(i);
  a.whileFits(i, 16, count, () => {
    for (let j = 0; j < 4; j++) {
      a.v128Element(values, i, 2, 16 * j).set(v[j]);
      for (const high of [false, true]) {
        a.get(v[j]);
        if (high) a.get(v[j]).simd(SIMD.i8x16Shuffle, ...HIGH_HALF);
        a.simd(SIMD.f64x2PromoteLowF32x4).set(half);
        a.get(squares).get(half).get(half).vMul().vAdd().set(squares);
        a.get(sizes).get(half).simd(SIMD.f64x2Abs).vAdd().set(sizes);
      }
    }
    // v > 0 as lane masks, narrowed to 16 bytes (saturating keeps -1), their top bits as 16 bits.
    a.get(out).get(i).i32(3).emit(I32_SHR_U).add();
    for (let j = 0; j < 4; j++) a.get(v[j]).f64x2(0).simd(SIMD.f32x4Gt);
    a.simd(SIMD.i16x8NarrowI32x4S)
      .set(v[2])
      .simd(SIMD.i16x8NarrowI32x4S)
      .get(v[2])
      .simd(SIMD.i8x16NarrowI16x8S)
      .simd(SIMD.i8x16Bitmask)
      .emit(I32_STORE16, 0, 0);
  });
  a.get(sums).get(squares).v128Store();
  a.get(sums).get(sizes).v128Store(16);
  return a.encode();
}

/** The kernels, one instance and memory per thread (the build's and the engine's workers each make their own). */
interface Kernels {
  memory: WebAssembly.Memory;
  maxAbs(values: number, count: number, out: number): void;
  round(values: number, count: number, q: number, scale: number): void;
  pack(q: number, chunks: number, out: number, stride: number): void;
  signs(values: number, count: number, out: number, sums: number): void;
}

let kernels: Kernels | undefined;

function instance(): Kernels {
  if (kernels) return kernels;
  // Function types (0x60: parameters, no results): maxAbs's three i32; round's three i32 and an f64; pack's and signs' four i32.
  const types = [3, 0x60, 3, I32, I32, I32, 0, 0x60, 4, I32, I32, I32, F64, 0, 0x60, 4, I32, I32, I32, I32, 0];
  const exports = [...name("memory"), 0x02, 0, ...["maxAbs", "round", "pack", "signs"].flatMap((n, i) => [...name(n), 0x00, i])];
  const bytes = Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, types),
    ...section(3, [4, 0, 1, 2, 2]),
    // One page to start with; grown to the largest stretch.
    ...section(5, [1, 0x00, 1]),
    ...section(7, [5, ...exports]),
    ...section(10, [4, ...maxAbs(), ...round(), ...pack(), ...signs()]),
  ]);
  kernels = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports as unknown as Kernels;
  return kernels;
}

/** `values` into the kernels' memory `buffer` from byte `at`: `before` zeros, the values, then zeros to `total` floats. */
function placeValues(buffer: ArrayBuffer, at: number, values: Float32Array, before: number, total: number): void {
  const floats = new Float32Array(buffer, at, total);
  floats.fill(0, 0, before);
  floats.set(values, before);
  floats.fill(0, before + values.length);
}

/** The kernels' memory, at least `bytes` long. */
function memoryOf(k: Kernels, bytes: number): ArrayBuffer {
  if (k.memory.buffer.byteLength < bytes) k.memory.grow(Math.ceil((bytes - k.memory.buffer.byteLength) / 65_536));
  return k.memory.buffer;
}

/**
 * Writes the signs of `values` into `out` (signBytes(firstBit + values.length) bytes: value j at bit
 * b & 7 of byte b >> 3, b = firstBit + j, set where it is positive; the other bits zero) and returns
 * the factor |x|_2^2 / |x|_1 (0 for values of zeros).
 */
export function packSigns(values: Float32Array, out: Uint8Array, firstBit = 0): number {
  const k = instance();
  // Memory: the sums' 4 lanes, then the values from float firstBit (zeros before, and after to a multiple of 16), then their bits.
  const [sumsAt, valuesAt] = [0, 32];
  const count = (firstBit + values.length + 15) & ~15;
  const bitsAt = valuesAt + 4 * count;
  const buffer = memoryOf(k, bitsAt + count / 8);
  placeValues(buffer, valuesAt, values, firstBit, count);
  k.signs(valuesAt, count, bitsAt, sumsAt);
  out.set(new Uint8Array(buffer, bitsAt, out.length));
  const sums = new Float64Array(buffer, sumsAt, 4);
  const [squares, sizes] = [sums[0] + sums[1], sums[2] + sums[3]];
  return sizes > 0 ? Math.fround(squares / sizes) : 0;
}

/**
 * The query stretch `values`, coordinates [offset, offset + values.length) of a row, rounded with
 * one scale (max |v| / QUERY_MAX, float32, returned) to QUERY_BITS-bit integers, as bit planes over
 * the row bytes the stretch lies in (bytesOver; value j at bit (offset & 7) + j of them, the other
 * bits zero), back to back; undefined for a stretch of zeros.
 */
export function signPlanes(values: Float32Array, offset: number): { planes: Uint8Array; scale: number } | undefined {
  const k = instance();
  const count = values.length;
  const padded = (count + 3) & ~3;
  const { bytes } = bytesOver(offset, count);
  const chunks = Math.ceil(bytes / 2);
  // Memory: the maximum's 4 lanes, the values (zeros to a multiple of 4), q from bit offset & 7 of
  // its first byte (16 a chunk; round's last store may spill 3 bytes into the planes, written after), the planes (2 bytes a chunk each).
  const [maxAt, valuesAt] = [0, 16];
  const qAt = valuesAt + 4 * padded;
  const planesAt = qAt + 16 * chunks;
  const end = planesAt + QUERY_BITS * 2 * chunks;
  const buffer = memoryOf(k, end);
  placeValues(buffer, valuesAt, values, 0, padded);
  k.maxAbs(valuesAt, padded, maxAt);
  const lanes = new Float32Array(buffer, maxAt, 4);
  const scale = Math.fround(Math.max(lanes[0], lanes[1], lanes[2], lanes[3]) / QUERY_MAX);
  if (!(scale > 0)) return undefined;
  const memory = new Uint8Array(buffer);
  memory.fill(0, qAt, planesAt);
  k.round(valuesAt, padded, qAt + (offset & 7), scale);
  k.pack(qAt, chunks, planesAt, 2 * chunks);
  const planes = new Uint8Array(QUERY_BITS * bytes);
  for (let p = 0; p < QUERY_BITS; p++) planes.set(memory.subarray(planesAt + 2 * chunks * p, planesAt + 2 * chunks * p + bytes), p * bytes);
  return { planes, scale };
}
