/**
 * A WebAssembly assembler small enough to read: LEB128 numbers, one function's body at a time
 * (locals and instructions by name where the kernels use them often, any other by its bytes), and
 * a module's sections. The kernels (wasm-kernels.ts, indexer/sign-kernels.ts) are assembled with it
 * byte by byte at start-up, with no toolchain.
 */

export const I32 = 0x7f;
export const F64 = 0x7c;
export const V128 = 0x7b;

export const uleb = (value: number): number[] => {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
  return out;
};
const sleb = (value: number): number[] => {
  const out: number[] = [];
  for (;;) {
    const byte = value & 0x7f;
    value >>= 7;
    if ((value === 0 && (byte & 0x40) === 0) || (value === -1 && (byte & 0x40) !== 0)) return [...out, byte];
    out.push(byte | 0x80);
  }
};

/** The SIMD opcodes (after the 0xfd prefix) that the kernels use beyond Assembler's named ones. */
export const SIMD = {
  i8x16Shuffle: 0x0d,
  i32x4Splat: 0x11,
  i32x4ExtractLane: 0x1b,
  f32x4Gt: 0x44,
  v128And: 0x4e,
  f64x2PromoteLowF32x4: 0x5f,
  i8x16Bitmask: 0x64,
  i8x16NarrowI16x8S: 0x65,
  i8x16Shl: 0x6b,
  i16x8NarrowI32x4S: 0x85,
  i32x4Sub: 0xb1,
  i32x4MinS: 0xb6,
  i32x4MaxS: 0xb8,
  f32x4Abs: 0xe0,
  f32x4Pmax: 0xeb,
  f64x2Abs: 0xec,
  f64x2Div: 0xf3,
  i32x4TruncSatF64x2SZero: 0xfc,
} as const;

/** One function's body: its locals (after its `params` parameters) and the instructions used. */
export class Assembler {
  readonly bytes: number[] = [];
  private readonly types: number[] = [];
  constructor(private readonly params: number) {}
  /** A new local of `type`, by index. */
  local(type: number): number {
    this.types.push(type);
    return this.params + this.types.length - 1;
  }
  locals = (count: number, type: number) => Array.from({ length: count }, () => this.local(type));
  /** Any instruction, as its bytes. */
  emit(...b: number[]): this {
    this.bytes.push(...b);
    return this;
  }
  /** A SIMD instruction (prefix 0xfd) and its immediate bytes. */
  simd = (code: number, ...immediates: number[]) => this.emit(0xfd, ...uleb(code), ...immediates);
  /** Pushes the v128 at local[base] + (local[index] << shift) + offset: element `index` of an array of 2^shift-byte elements. */
  v128Element = (base: number, index: number, shift: number, offset = 0) => this.get(base).get(index).i32(shift).shl().add().v128Load(offset);
  /** Pushes a v128 of these two float64 lanes. */
  f64x2 = (a: number, b = a) => this.simd(0x0c, ...new Uint8Array(Float64Array.of(a, b).buffer));
  get = (i: number) => this.emit(0x20, ...uleb(i));
  /** Pushes local[base] + local[offset], an address. */
  at = (base: number, offset: number) => this.get(base).get(offset).add();
  set = (i: number) => this.emit(0x21, ...uleb(i));
  i32 = (v: number) => this.emit(0x41, ...sleb(v));
  add = () => this.emit(0x6a);
  mul = () => this.emit(0x6c);
  shl = () => this.emit(0x74);
  gtS = () => this.emit(0x4a);
  geS = () => this.emit(0x4e);
  ltS = () => this.emit(0x48);
  f64Load = (offset = 0) => this.emit(0x2b, 3, ...uleb(offset));
  f64Store = (offset = 0) => this.emit(0x39, 3, ...uleb(offset));
  f64Add = () => this.emit(0xa0);
  f64Mul = () => this.emit(0xa2);
  f64Zero = () => this.emit(0x44, 0, 0, 0, 0, 0, 0, 0, 0);
  /** v128.load and v128.store at the address on the stack plus `offset` (alignment hint 8 bytes). */
  v128Load = (offset = 0) => this.simd(0x00, 3, ...uleb(offset));
  v128Store = (offset = 0) => this.simd(0x0b, 3, ...uleb(offset));
  splat = () => this.emit(0xfd, 0x14);
  lane = (i: number) => this.emit(0xfd, 0x21, i);
  vAdd = () => this.emit(0xfd, ...uleb(0xf0));
  vMul = () => this.emit(0xfd, ...uleb(0xf2));
  block = () => this.emit(0x02, 0x40);
  loop = () => this.emit(0x03, 0x40);
  if = () => this.emit(0x04, 0x40);
  end = () => this.emit(0x0b);
  br = (depth: number) => this.emit(0x0c, depth);
  brIf = (depth: number) => this.emit(0x0d, depth);
  /** local[i] += the value that `body` leaves (f64, or f64x2 if `vector`). */
  accumulate(i: number, vector: boolean, body: () => void): this {
    this.get(i);
    body();
    vector ? this.vAdd() : this.f64Add();
    return this.set(i);
  }
  /** while (local[i] + step <= local[limit]) { body; local[i] += step }, with i32 locals. */
  whileFits(i: number, step: number, limit: number, body: () => void): this {
    this.block().loop();
    this.get(i).i32(step).add().get(limit).gtS().brIf(1);
    body();
    this.get(i).i32(step).add().set(i);
    return this.br(0).end().end();
  }
  /** rows[i] = local[base] + (local[index] + i) * local[stride], for each of the `count` first rows: the addresses of consecutive matrix rows. */
  rowAddresses(rows: readonly number[], base: number, index: number, stride: number, count: number): this {
    this.get(base).get(index).get(stride).mul().add().set(rows[0]);
    for (let i = 1; i < count; i++)
      this.get(rows[i - 1])
        .get(stride)
        .add()
        .set(rows[i]);
    return this;
  }
  /** The encoded body, locals first. */
  encode(): number[] {
    const body = [...uleb(this.types.length), ...this.types.flatMap((type) => [1, type]), ...this.bytes, 0x0b];
    return [...uleb(body.length), ...body];
  }
}

export const section = (id: number, content: number[]): number[] => [id, ...uleb(content.length), ...content];
export const name = (s: string): number[] => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
