/**
 * The vector kernels of the blocked tridiagonal reduction (the symmetric matrix-vector product and
 * the panel's corrections, bound by memory rather than arithmetic) as WebAssembly SIMD, assembled
 * here byte by byte with no toolchain: two float64 lanes per instruction where V8's JavaScript does
 * one. Measured at n = 3,072 on this machine, one thread: the product at 6.5 GFLOP/s against 1.3 for
 * the JavaScript loop it replaced. The kernels work on a shared WebAssembly memory that the calling
 * thread and the helper threads (parallel.ts) all instantiate them over; their arguments are byte
 * addresses in it, and counts.
 */

import { Assembler, F64, I32, V128, name, section, uleb } from "./wasm-assembler.js";

/**
 * symv(b, m, r0, r1, x, y): y[j] += (B x)_j contributions of rows [r0, r1) of the m×m row-major
 * matrix B at b, of which only the upper triangle is read, each element serving its row and (below
 * the diagonal) its column. Rows go four at a time, so that each loaded x and y serves four.
 */
function symv(): number[] {
  const [b, m, r0, r1, x, y] = [0, 1, 2, 3, 4, 5];
  const a = new Assembler(6);
  const r = a.local(I32);
  const rowBytes = a.local(I32);
  const k = a.local(I32);
  const row = a.locals(4, I32);
  const xs = a.locals(4, F64);
  const ss = a.locals(4, F64);
  const t = a.local(F64);
  const xv = a.locals(4, V128);
  const sv = a.locals(4, V128);
  const av = a.locals(4, V128);
  const yv = a.local(V128);
  const xj = a.local(V128);

  /** Rows [r, r + count): the diagonal block in scalars, columns r + count.. two at a time, an odd last one, then y[r + i] += the row sums. */
  const rows = (count: number) => {
    const idx = Array.from({ length: count }, (_, i) => i);
    a.rowAddresses(row, b, r, rowBytes, count);
    a.get(r).i32(3).shl().set(k);
    for (const i of idx)
      a.at(x, k)
        .f64Load(8 * i)
        .set(xs[i]);
    for (const i of idx)
      a.at(row[i], k)
        .f64Load(8 * i)
        .get(xs[i])
        .f64Mul()
        .set(ss[i]);
    for (const i of idx) {
      for (let l = i + 1; l < count; l++) {
        a.at(row[i], k)
          .f64Load(8 * l)
          .set(t);
        a.accumulate(ss[i], false, () => a.get(t).get(xs[l]).f64Mul());
        a.accumulate(ss[l], false, () => a.get(t).get(xs[i]).f64Mul());
      }
    }
    for (const i of idx) {
      a.get(xs[i]).splat().set(xv[i]);
      a.f64Zero().splat().set(sv[i]);
    }
    a.get(k)
      .i32(8 * count)
      .add()
      .set(k);
    a.whileFits(k, 16, rowBytes, () => {
      for (const i of idx) a.at(row[i], k).v128Load().set(av[i]);
      a.at(x, k).v128Load().set(xj);
      for (const i of idx) a.accumulate(sv[i], true, () => a.get(av[i]).get(xj).vMul());
      a.at(y, k).v128Load().set(yv);
      for (const i of idx) a.accumulate(yv, true, () => a.get(av[i]).get(xv[i]).vMul());
      a.at(y, k).get(yv).v128Store();
    });
    a.get(k).get(rowBytes).ltS().if();
    a.at(x, k).f64Load().set(t);
    for (const i of idx) a.accumulate(ss[i], false, () => a.at(row[i], k).f64Load().get(t).f64Mul());
    a.at(y, k);
    a.at(y, k).f64Load();
    for (const i of idx) a.at(row[i], k).f64Load().get(xs[i]).f64Mul().f64Add();
    a.f64Store();
    a.end();
    a.get(r).i32(3).shl().set(k);
    for (const i of idx) {
      a.at(y, k);
      a.at(y, k).f64Load(8 * i);
      a.get(ss[i]).f64Add().get(sv[i]).lane(0).f64Add().get(sv[i]).lane(1).f64Add();
      a.f64Store(8 * i);
    }
  };

  a.get(m).i32(3).shl().set(rowBytes);
  a.get(r0).set(r);
  // The loops add the step themselves: rows() leaves r as it was.
  a.whileFits(r, 4, r1, () => rows(4));
  a.whileFits(r, 1, r1, () => rows(1));
  return a.encode();
}

/**
 * The two kernels over `count` rows of a row-major matrix at `rows` (`stride` numbers apart),
 * restricted to columns [c0, c1):
 * - dots(rows, stride, count, x, out, c0, c1): out[q] = Σ_c row_q[c] x[c];
 * - combine(rows, stride, count, coef, y, c0, c1): y[c] += Σ_q coef[q] row_q[c].
 * Four rows at a time, so that each loaded x or y serves four.
 */
function rowKernel(kind: "dots" | "combine"): number[] {
  const [rows, stride, count, vec, out, c0, c1] = [0, 1, 2, 3, 4, 5, 6];
  const a = new Assembler(7);
  const q = a.local(I32);
  const strideBytes = a.local(I32);
  const k = a.local(I32);
  const end = a.local(I32);
  const row = a.locals(4, I32);
  const s = a.locals(4, F64);
  const t = a.local(F64);
  const cv = a.locals(4, V128);
  const v = a.local(V128);

  const block = (n: number) => {
    const idx = Array.from({ length: n }, (_, i) => i);
    a.rowAddresses(row, rows, q, strideBytes, n);
    a.get(c0).i32(3).shl().set(k);
    if (kind === "dots") {
      for (const i of idx) a.f64Zero().splat().set(cv[i]);
      a.whileFits(k, 16, end, () => {
        a.at(vec, k).v128Load().set(v);
        for (const i of idx) a.accumulate(cv[i], true, () => a.at(row[i], k).v128Load().get(v).vMul());
      });
      for (const i of idx) a.f64Zero().set(s[i]);
      a.get(k).get(end).ltS().if();
      a.at(vec, k).f64Load().set(t);
      for (const i of idx) a.at(row[i], k).f64Load().get(t).f64Mul().set(s[i]);
      a.end();
      a.get(q).i32(3).shl().set(k);
      for (const i of idx) {
        a.at(out, k);
        a.get(s[i]).get(cv[i]).lane(0).f64Add().get(cv[i]).lane(1).f64Add();
        a.f64Store(8 * i);
      }
    } else {
      a.get(q).i32(3).shl().set(k);
      for (const i of idx)
        a.at(vec, k)
          .f64Load(8 * i)
          .set(s[i]);
      for (const i of idx) a.get(s[i]).splat().set(cv[i]);
      a.get(c0).i32(3).shl().set(k);
      a.whileFits(k, 16, end, () => {
        a.at(out, k);
        a.at(out, k).v128Load();
        for (const i of idx) a.at(row[i], k).v128Load().get(cv[i]).vMul().vAdd();
        a.v128Store();
      });
      a.get(k).get(end).ltS().if();
      a.at(out, k);
      a.at(out, k).f64Load();
      for (const i of idx) a.at(row[i], k).f64Load().get(s[i]).f64Mul().f64Add();
      a.f64Store();
      a.end();
    }
  };

  a.get(stride).i32(3).shl().set(strideBytes);
  a.get(c1).i32(3).shl().set(end);
  a.i32(0).set(q);
  a.whileFits(q, 4, count, () => block(4));
  a.whileFits(q, 1, count, () => block(1));
  return a.encode();
}

/** The module: imports a shared memory as env.memory (any size), exports the kernels. */
function moduleBytes(): Uint8Array<ArrayBuffer> {
  const types = [2, 0x60, 6, I32, I32, I32, I32, I32, I32, 0, 0x60, 7, I32, I32, I32, I32, I32, I32, I32, 0];
  // Shared memory limits: flag 3, minimum 1 page, maximum 65,536 (4 GiB).
  const memoryImport = [1, ...name("env"), ...name("memory"), 0x02, 0x03, ...uleb(1), ...uleb(65536)];
  const exports = ["symv", "dots", "combine"].flatMap((n, i) => [...name(n), 0x00, i]);
  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, types),
    ...section(2, memoryImport),
    ...section(3, [3, 0, 1, 1]),
    ...section(7, [3, ...exports]),
    ...section(10, [3, ...symv(), ...rowKernel("dots"), ...rowKernel("combine")]),
  ]);
}

let compiled: WebAssembly.Module | undefined;

/** The compiled kernels, to instantiate over a shared memory on any thread. */
export function wasmKernelModule(): WebAssembly.Module {
  compiled ??= new WebAssembly.Module(moduleBytes());
  return compiled;
}

export interface WasmKernels {
  symv(b: number, m: number, r0: number, r1: number, x: number, y: number): void;
  dots(rows: number, stride: number, count: number, x: number, out: number, c0: number, c1: number): void;
  combine(rows: number, stride: number, count: number, coef: number, y: number, c0: number, c1: number): void;
}

/** The kernels over `memory` (shared, as the module requires). */
export function wasmKernels(memory: WebAssembly.Memory): WasmKernels {
  return new WebAssembly.Instance(wasmKernelModule(), { env: { memory } }).exports as unknown as WasmKernels;
}
