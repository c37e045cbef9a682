/**
 * Times eigh on random symmetric matrices at the widths EK-FAC meets (GPT-2 small's 3,072,
 * TinyLlama's 5,632) side by side with numpy's LAPACK in the same run, with the reconstruction and
 * orthogonality errors of both and the stages of the blocked solver; the GFLOP/s of the float64
 * products it is made of; then the projection's top-k eigenvectors (subspace iteration) on matrices
 * with a PCA-like spectrum.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism as availableCores, loadavg, tmpdir } from "node:os";
import path from "node:path";
import { BLOCKED_MIN_N, eigh } from "../../src/linalg/eigh.js";
import type { Stage } from "../../src/linalg/eigh-blocked.js";
import { SymvTeam } from "../../src/linalg/parallel.js";
import { multiply } from "../../src/linalg/products64.js";
import { capturedVariance, randomSymmetric, symmetricWithSpectrum } from "../../src/linalg/random-symmetric.js";
import { topEigenvectors } from "../../src/linalg/top-eigenvectors.js";
import { HELPERS_MIN_N } from "../../src/linalg/tridiagonal-blocked.js";
import type { BenchSection } from "../bench.js";

const SIZES = [1024, 3072, 5632];
/** The projection's PCA sizes: n of GPT-2's MLP matrices, k of the demo (16) and the default (64). */
const TOP_K_CASES: Array<[n: number, k: number]> = [
  [1024, 16],
  [2048, 16],
  [2048, 64],
  [3072, 16],
  [3072, 64],
];

/** Eigenvalues decaying like the demo model's whitened gradient moments: λ_17/λ_16 ≈ 0.98, λ_49/λ_16 ≈ 0.6. */
const pcaLikeSpectrum = (n: number) => Array.from({ length: n }, (_, i) => 1e5 / (1 + i / 30) ** 1.5);

const PYTHON = "/usr/bin/python3";
/**
 * numpy.linalg.eigh (LAPACK dsyevd) on the float64 matrix in file argv[1] of size argv[2]: wall and
 * CPU seconds and the same two errors, as JSON.
 */
const NUMPY_EIGH = `
import json, sys, time
import numpy as np
n = int(sys.argv[2])
a = np.fromfile(sys.argv[1], dtype=np.float64).reshape(n, n)
t, c = time.perf_counter(), time.process_time()
w, v = np.linalg.eigh(a)
wall, cpu = time.perf_counter() - t, time.process_time() - c
rec = np.linalg.norm(a - (v * w) @ v.T) / np.linalg.norm(a)
orth = np.linalg.norm(v.T @ v - np.eye(n)) / np.sqrt(n)
print(json.dumps({"wall": wall, "cpu": cpu, "reconstruction": rec, "orthogonality": orth, "numpy": np.__version__}))
`;

interface NumpyResult {
  wall: number;
  cpu: number;
  reconstruction: number;
  orthogonality: number;
  numpy: string;
}

/** numpy's eigh of `a`, or undefined when /usr/bin/python3 has no numpy. */
function numpyEigh(a: Float64Array, n: number): NumpyResult | undefined {
  const dir = mkdtempSync(path.join(tmpdir(), "eigh-bench-"));
  try {
    const file = path.join(dir, "a.f64");
    writeFileSync(file, a);
    return JSON.parse(execFileSync(PYTHON, ["-c", NUMPY_EIGH, file, String(n)], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }));
  } catch {
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** ‖A − V diag(w) Vᵀ‖_F / ‖A‖_F and ‖VᵀV − I‖_F / √n, with the products on ONNX Runtime. */
async function errors(a: Float64Array, n: number, w: Float64Array, v: Float64Array): Promise<{ reconstruction: number; orthogonality: number }> {
  const rebuilt = await multiply(
    v.map((x, i) => x * w[i % n]),
    v,
    n,
    n,
    n,
    { transB: true },
  );
  const gram = await multiply(v, v, n, n, n, { transA: true });
  let rec = 0;
  let norm = 0;
  let orth = 0;
  for (let i = 0; i < n * n; i++) {
    rec += (a[i] - rebuilt[i]) ** 2;
    norm += a[i] ** 2;
    orth += (gram[i] - (i % (n + 1) === 0 ? 1 : 0)) ** 2;
  }
  return { reconstruction: Math.sqrt(rec / norm), orthogonality: Math.sqrt(orth / n) };
}

/** C += A B for row-major A [m, k], B [k, n]: four rows by four columns in registers, one thread. */
function registerBlockedProduct(a: Float64Array, b: Float64Array, c: Float64Array, m: number, k: number, n: number): void {
  for (let i = 0; i + 3 < m; i += 4) {
    for (let j = 0; j + 3 < n; j += 4) {
      let c00 = 0,
        c01 = 0,
        c02 = 0,
        c03 = 0,
        c10 = 0,
        c11 = 0,
        c12 = 0,
        c13 = 0,
        c20 = 0,
        c21 = 0,
        c22 = 0,
        c23 = 0,
        c30 = 0,
        c31 = 0,
        c32 = 0,
        c33 = 0;
      for (let p = 0; p < k; p++) {
        const bo = p * n + j;
        const b0 = b[bo];
        const b1 = b[bo + 1];
        const b2 = b[bo + 2];
        const b3 = b[bo + 3];
        const a0 = a[i * k + p];
        const a1 = a[(i + 1) * k + p];
        const a2 = a[(i + 2) * k + p];
        const a3 = a[(i + 3) * k + p];
        c00 += a0 * b0;
        c01 += a0 * b1;
        c02 += a0 * b2;
        c03 += a0 * b3;
        c10 += a1 * b0;
        c11 += a1 * b1;
        c12 += a1 * b2;
        c13 += a1 * b3;
        c20 += a2 * b0;
        c21 += a2 * b1;
        c22 += a2 * b2;
        c23 += a2 * b3;
        c30 += a3 * b0;
        c31 += a3 * b1;
        c32 += a3 * b2;
        c33 += a3 * b3;
      }
      const sums = [c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33];
      for (let r = 0; r < 4; r++) for (let q = 0; q < 4; q++) c[(i + r) * n + j + q] += sums[4 * r + q];
    }
  }
}

/** GFLOP/s of the float64 products at the shapes the blocked solver uses, and of the JavaScript alternative. */
async function productsTable(): Promise<string[]> {
  const random = (length: number) => Float64Array.from({ length }, () => Math.random() - 0.5);
  const rows = [
    "",
    "Float64 products (GFLOP/s = 2·m·k·n / wall time, median of 3 after a warm-up): ONNX Runtime's Gemm (`multiply`, src/linalg/products64.ts) at " +
      "the shapes of the solver's stages, the reduction's matrix-vector product (src/linalg/wasm-kernels.ts, median of 5), and a 4×4 " +
      "register-blocked JavaScript kernel on one thread for comparison.",
    "",
    "| product | m × k × n | GFLOP/s |",
    "| --- | ---: | ---: |",
  ];
  const cases: Array<[string, number, number, number, { transA?: boolean; transB?: boolean }]> = [
    ["square", 1024, 1024, 1024, {}],
    ["divide and conquer, top merge at n = 3,072 (one half)", 1536, 1536, 3072, {}],
    ["tridiagonal panel update at n = 3,072 (64 columns, first row block)", 768, 128, 3072, { transB: true }],
    ["back-transformation at n = 3,072, a group of 256 reflectors on a block of 256 columns", 256, 3072, 256, {}],
  ];
  for (const [name, m, k, n, trans] of cases) {
    const a = random(m * k);
    const b = random(k * n);
    await multiply(a, b, m, k, n, trans);
    const times: number[] = [];
    for (let r = 0; r < 3; r++) {
      const t = performance.now();
      await multiply(a, b, m, k, n, trans);
      times.push((performance.now() - t) / 1000);
    }
    const gflops = (2 * m * k * n) / times.sort((x, y) => x - y)[1] / 1e9;
    console.error(`multiply ${name}: ${gflops.toFixed(1)} GFLOP/s`);
    rows.push(`| ONNX Runtime: ${name} | ${m} × ${k} × ${n} | ${gflops.toFixed(1)} |`);
  }
  rows.push(...symvRows(random));
  const n = 512;
  const [a, b, c] = [random(n * n), random(n * n), new Float64Array(n * n)];
  registerBlockedProduct(a, b, c, n, n, n);
  const t = performance.now();
  registerBlockedProduct(a, b, c, n, n, n);
  const gflops = (2 * n ** 3) / ((performance.now() - t) / 1000) / 1e9;
  console.error(`JavaScript product: ${gflops.toFixed(2)} GFLOP/s`);
  rows.push(`| JavaScript, 4×4 registers, 1 thread: square | ${n} × ${n} × ${n} | ${gflops.toFixed(2)} |`);
  return rows;
}

/**
 * The tridiagonal reduction's other half: its symmetric matrix-vector product (WebAssembly SIMD,
 * one thread, the upper triangle read once) at the first column of n = 3,072 and 5,632, in GFLOP/s
 * (2m² / time) and in GB/s of the triangle read.
 */
function symvRows(random: (length: number) => Float64Array): string[] {
  return [3072, 5632].map((m) => {
    const team = SymvTeam.start(m, 1);
    try {
      team.matrix.set(random(m * m));
      team.x.set(random(m));
      team.symv(m, 0);
      const times: number[] = [];
      for (let r = 0; r < 5; r++) {
        const t = performance.now();
        team.symv(m, 0);
        times.push((performance.now() - t) / 1000);
      }
      const time = times.sort((x, y) => x - y)[2];
      const gflops = (2 * m * m) / time / 1e9;
      const gbs = (4 * m * m) / time / 1e9;
      console.error(`symv m=${m}: ${gflops.toFixed(1)} GFLOP/s, ${gbs.toFixed(1)} GB/s`);
      return `| WebAssembly SIMD, 1 thread: symmetric matrix-vector product, upper triangle (${gbs.toFixed(1)} GB/s) | ${m} × ${m} × 1 | ${gflops.toFixed(1)} |`;
    } finally {
      team.close();
    }
  });
}

/** Smallest |cos| between column j of P and the true eigenvector j. */
function worstCosine(p: Float64Array, n: number, k: number, eigenvector: (i: number) => Float64Array): number {
  let worst = 1;
  for (let j = 0; j < k; j++) {
    const v = eigenvector(j);
    let dot = 0;
    for (let i = 0; i < n; i++) dot += p[i * k + j] * v[i];
    worst = Math.min(worst, Math.abs(dot));
  }
  return worst;
}

async function topKTable(): Promise<string[]> {
  const rows = [
    "",
    `Top-k eigenvectors for the projection's PCA basis (\`topEigenvectors\`, src/linalg/top-eigenvectors.ts): block subspace iteration with a ` +
      `float32 product on the compute engine, until the variance the top k capture changes by less than 1e-6; eigh below n = 1024 or when the ` +
      `block (2k + 16) exceeds n/8. Matrices H diag(λ) H with λ_i = 10^5 (1 + i/30)^-1.5 and H three random reflectors. Captured = tr(PᵀMP) / (λ_1 ` +
      `+ … + λ_k) − 1; cosine = the smallest |cos| between a found and a true eigenvector. Compare the wall time with eigh's above.`,
    "",
    "| n | k | method | steps | wall (CPU) s | captured − 1 | smallest cosine |",
    "| ---: | ---: | --- | ---: | ---: | ---: | ---: |",
  ];
  for (const [n, k] of TOP_K_CASES) {
    const spectrum = pcaLikeSpectrum(n);
    const { matrix, eigenvector } = symmetricWithSpectrum(spectrum, n + k);
    const [top, { text: time }] = await timed(() => topEigenvectors(matrix, n, k));
    const best = spectrum.slice(0, k).reduce((s, x) => s + x, 0);
    const captured = capturedVariance(matrix, top.vectors, n, k) / best - 1;
    const cosine = worstCosine(top.vectors, n, k, eigenvector);
    console.error(
      `topEigenvectors n=${n} k=${k}: ${top.method}, ${top.steps} steps, ${time} s, captured ${captured.toExponential(2)}, cosine ${cosine.toFixed(8)}`,
    );
    rows.push(`| ${n} | ${k} | ${top.method} | ${top.steps} | ${time} | ${captured.toExponential(1)} | ${cosine.toFixed(7)} |`);
  }
  return rows;
}

/** Runs f, returning its result, the wall time and "wall (CPU)" with the CPU time of the process (all threads), in s. */
async function timed<T>(f: () => T | Promise<T>): Promise<[T, { wall: number; text: string }]> {
  const t = performance.now();
  const cpu = process.cpuUsage();
  const result = await f();
  const used = process.cpuUsage(cpu);
  const wall = (performance.now() - t) / 1000;
  return [result, { wall, text: `${seconds(wall)} (${seconds((used.user + used.system) / 1e6)})` }];
}

const seconds = (x: number) => x.toFixed(2);
const STAGES: Stage[] = ["tridiagonal", "divide-and-conquer", "back-transform"];

const section: BenchSection = {
  title: "Symmetric eigensolver (float64) against numpy, and the PCA basis's top-k eigenvectors",
  async run() {
    const rows = [
      `Random symmetric n×n matrices (entries uniform in [-0.5, 0.5)), one run each: \`eigh\` (src/linalg/eigh.ts; from n = ${BLOCKED_MIN_N} the blocked solver: ` +
        `blocked tridiagonalisation, divide and conquer, blocked back-transformation, its matrix products on ONNX Runtime and the reduction's ` +
        `matrix-vector products a WebAssembly SIMD kernel, on two threads from n = ${HELPERS_MIN_N}) and numpy.linalg.eigh ` +
        `(LAPACK dsyevd through OpenBLAS, \`${PYTHON}\`) on the same matrix, one after the other. Errors are ‖A − V diag(w) Vᵀ‖_F / ‖A‖_F and ` +
        `‖VᵀV − I‖_F / √n. Load average when the run started: ${loadavg()[0].toFixed(2)} on ${availableCores()} cores; the machine is shared, so ` +
        `on a busy run the wall times grow and the CPU times (all threads of the process) say more.`,
      "",
      "| n | eigh: wall (CPU) s | stages: tridiagonal / divide and conquer / back-transform, s | numpy: wall (CPU) s | eigh / numpy (wall) | eigh errors: reconstruction, orthogonality | numpy errors | load average after |",
      "| ---: | ---: | --- | ---: | ---: | --- | --- | ---: |",
    ];
    await eigh(randomSymmetric(512, 1), 512); // warm up the JIT and the kernels
    let numpyVersion: string | undefined;
    for (const n of SIZES) {
      const a = randomSymmetric(n, n);
      const stages = new Map<Stage, number>();
      const [result, time] = await timed(() => eigh(a, n, { onStage: (stage, s) => stages.set(stage, s) }));
      const { reconstruction, orthogonality } = await errors(a, n, result.values, result.vectors);
      const numpy = numpyEigh(a, n);
      numpyVersion ??= numpy?.numpy;
      const stageText = STAGES.map((s) => seconds(stages.get(s) ?? 0)).join(" / ");
      const numpyTime = numpy ? `${seconds(numpy.wall)} (${seconds(numpy.cpu)})` : "not installed";
      const ratio = numpy ? (time.wall / numpy.wall).toFixed(2) : "–";
      const numpyErrors = numpy ? `${numpy.reconstruction.toExponential(1)}, ${numpy.orthogonality.toExponential(1)}` : "–";
      console.error(
        `eigh n=${n}: ${time.text} s (${stageText}), numpy ${numpyTime}, errors ${reconstruction.toExponential(2)} ${orthogonality.toExponential(2)}`,
      );
      rows.push(
        `| ${n} | ${time.text} | ${stageText} | ${numpyTime} | ${ratio} | ${reconstruction.toExponential(1)}, ${orthogonality.toExponential(1)} | ${numpyErrors} | ${loadavg()[0].toFixed(1)} |`,
      );
    }
    if (numpyVersion) rows.push("", `numpy ${numpyVersion}.`);
    rows.push(...(await productsTable()));
    rows.push(...(await topKTable()));
    return rows.join("\n");
  },
};

export default section;
