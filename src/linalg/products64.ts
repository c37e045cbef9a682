/**
 * The float64 matrix products of the blocked eigensolver, as ONNX Runtime kernels on host arrays.
 * Measured on this machine's 2 cores (load average 5.5): ONNX Runtime's float64 Gemm (MLAS) runs at
 * 22 to 32 GFLOP/s on square products of 1,024 to 3,072, a 4×4 register-blocked JavaScript kernel
 * at 1.8 GFLOP/s on one thread; so every product of some size goes to ONNX Runtime, and only the
 * tiny ones of the divide-and-conquer's lowest levels stay here, where a call would cost more.
 */
import { floatAttr } from "../runtime/graph.js";
import { gemmKernel, runKernel64 } from "../runtime/kernels.js";

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

/**
 * (I - Vᵀ T V) z for a block reflector given by v [b, m] (one Householder vector a row) and its
 * triangular factor t [b, b], applied to z [m, n]: three products in one kernel call.
 */
export async function reflectBlock(v: Float64Array, t: Float64Array, z: Float64Array, b: number, m: number, n: number): Promise<Float64Array> {
  const [out] = await runKernel64(
    "float64.block-reflector",
    (g) => {
      const vv = g.input("v", "float64", ["b", "m"]);
      const tt = g.input("t", "float64", ["b", "b"]);
      const zz = g.input("z", "float64", ["m", "n"]);
      const tvz = g.op("MatMul", [tt, g.op("MatMul", [vv, zz])]);
      g.output(g.op("Gemm", [vv, tvz, zz], { transA: 1, alpha: floatAttr(-1), beta: floatAttr(1) }), "out", "float64", ["m", "n"]);
    },
    { v: { data: v, dims: [b, m] }, t: { data: t, dims: [b, b] }, z: { data: z, dims: [m, n] } },
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
