/**
 * The float64 matrix products of the blocked eigensolver, as ONNX Runtime kernels on host arrays.
 * Measured on this machine's 2 cores (load average 5.5): ONNX Runtime's float64 Gemm (MLAS) runs at
 * 22 to 32 GFLOP/s on square products of 1,024 to 3,072, a 4×4 register-blocked JavaScript kernel
 * at 1.8 GFLOP/s on one thread; so every product of some size goes to ONNX Runtime, and only the
 * tiny ones of the divide-and-conquer's lowest levels stay here, where a call would cost more.
 */
import { floatAttr } from "../runtime/graph.js";
import { gemmKernel, type HostTensor64, runKernel64 } from "../runtime/kernels.js";

/** Products of fewer multiply-adds than this are done in JavaScript (a kernel call costs ~0.1 ms). */
const HOST_MAX_MULTIPLY_ADDS = 1 << 18;

/** op(a) op(b) for row-major a and b, where op transposes when asked: [m, n] from op(a) [m, k] and op(b) [k, n]. */
export async function multiply(
  a: Float64Array,
  b: Float64Array,
  m: number,
  k: number,
  n: number,
  { transA = false, transB = false }: { transA?: boolean; transB?: boolean } = {},
): Promise<Float64Array> {
  if (m * k * n < HOST_MAX_MULTIPLY_ADDS) return multiplyOnHost(a, b, m, k, n, transA, transB);
  const { key, build } = gemmKernel("float64", transA, transB);
  const [out] = await runKernel64(key, build, { a: { data: a, dims: transA ? [k, m] : [m, k] }, b: { data: b, dims: transB ? [n, k] : [k, n] } }, ["out"]);
  return out;
}

/** c − x yᵀ for c [rows, width], x [rows, k] and y [width, k], in one kernel call. */
export async function subtractProduct(c: Float64Array, x: Float64Array, y: Float64Array, rows: number, k: number, width: number): Promise<Float64Array> {
  const [out] = await runKernel64(
    "float64.subtract-product",
    (g) => {
      const cc = g.input("c", "float64", ["rows", "width"]);
      const xx = g.input("x", "float64", ["rows", "k"]);
      const yy = g.input("y", "float64", ["width", "k"]);
      g.output(g.op("Gemm", [xx, yy, cc], { transB: 1, alpha: floatAttr(-1), beta: floatAttr(1) }), "out", "float64", ["rows", "width"]);
    },
    { c: { data: c, dims: [rows, width] }, x: { data: x, dims: [rows, k] }, y: { data: y, dims: [width, k] } },
    ["out"],
  );
  return out;
}

/** A group of reflectors in compact WY form, I − Vᵀ T V: v [b, m] one Householder vector a row, t [b, b]. */
export interface ReflectorBlock {
  v: Float64Array;
  t: Float64Array;
  b: number;
  m: number;
}

/**
 * (I − V_0ᵀ T_0 V_0) … (I − V_{G−1}ᵀ T_{G−1} V_{G−1}) z for z [n, c], in one kernel call: group g
 * acts on the last m_g rows (m_g ascending in g), the last group first. The kernel is made for the
 * groups' shapes, so one is compiled per size of matrix; z's columns may be any number.
 */
export async function applyReflectorGroups(groups: readonly ReflectorBlock[], z: Float64Array, n: number, c: number): Promise<Float64Array> {
  const feeds: Record<string, HostTensor64> = { z: { data: z, dims: [n, c] } };
  groups.forEach(({ v, t, b, m }, g) => {
    feeds[`v${g}`] = { data: v, dims: [b, m] };
    feeds[`t${g}`] = { data: t, dims: [b, b] };
  });
  const shapes = groups.map(({ b, m }) => `${b}x${m}`).join(",");
  const [out] = await runKernel64(
    `float64.reflector-groups.${n}.${shapes}`,
    (gb) => {
      const zz = gb.input("z", "float64", [n, "c"]);
      const rows = (from: number, to: number) => gb.op("Slice", [zz, gb.constant("int64", [from]), gb.constant("int64", [to]), gb.constant("int64", [0])]);
      let tail = "";
      for (let g = groups.length - 1; g >= 0; g--) {
        const { b, m } = groups[g];
        const vv = gb.input(`v${g}`, "float64", [b, m]);
        const tt = gb.input(`t${g}`, "float64", [b, b]);
        // Rows n − m … of z: the rows this group reaches and the previous ones did not, then those.
        const upper = g === groups.length - 1 ? n : n - groups[g + 1].m;
        tail = tail === "" ? rows(n - m, upper) : gb.op("Concat", [rows(n - m, upper), tail], { axis: 0 });
        const tvz = gb.op("MatMul", [tt, gb.op("MatMul", [vv, tail])]);
        tail = gb.op("Gemm", [vv, tvz, tail], { transA: 1, alpha: floatAttr(-1), beta: floatAttr(1) });
      }
      const first = n - groups[0].m;
      gb.output(first === 0 ? tail : gb.op("Concat", [rows(0, first), tail], { axis: 0 }), "out", "float64", [n, "c"]);
    },
    feeds,
    ["out"],
  );
  return out;
}

function multiplyOnHost(a: Float64Array, b: Float64Array, m: number, k: number, n: number, transA: boolean, transB: boolean): Float64Array {
  const out = new Float64Array(m * n);
  const [aRow, aCol] = transA ? [1, m] : [k, 1];
  const [bRow, bCol] = transB ? [1, k] : [n, 1];
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const aip = a[i * aRow + p * aCol];
      if (aip === 0) continue;
      const o = i * n;
      for (let j = 0; j < n; j++) out[o + j] += aip * b[p * bRow + j * bCol];
    }
  }
  return out;
}
