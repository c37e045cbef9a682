/**
 * Times eigh on random symmetric matrices up to GPT-2 small's MLP size (n = 3072) on one thread and
 * on all threads, and measures the reconstruction and orthogonality errors of the result; then
 * the projection's top-k eigenvectors (subspace iteration) on matrices with a PCA-like spectrum.
 */
import { availableParallelism, loadavg } from "node:os";
import { eigh } from "../../src/linalg/eigh.js";
import type { BenchSection } from "../bench.js";
import { capturedVariance, randomSymmetric, symmetricWithSpectrum } from "../../src/linalg/random-symmetric.js";
import { topEigenvectors } from "../../src/linalg/top-eigenvectors.js";

const SIZES = [256, 512, 1024, 2048, 3072];
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

/**
 * ||target - X Y^T||_F for row-major n×n X, Y where X Y^T is symmetric: only the lower triangle is
 * computed, two rows by two rows so that each loaded element serves two dot products.
 */
function gramError(x: Float64Array, y: Float64Array, n: number, target: (i: number, j: number) => number): number {
  let sum = 0;
  const add = (i: number, j: number, dot: number) => {
    if (j > i) return;
    const d = target(i, j) - dot;
    sum += (i === j ? 1 : 2) * d * d;
  };
  for (let i = 0; i < n; i += 2) {
    const i1 = Math.min(i + 1, n - 1);
    for (let j = 0; j <= i1; j += 2) {
      const j1 = Math.min(j + 1, n - 1);
      let s00 = 0,
        s01 = 0,
        s10 = 0,
        s11 = 0;
      for (let k = 0; k < n; k++) {
        const a0 = x[i * n + k],
          a1 = x[i1 * n + k],
          b0 = y[j * n + k],
          b1 = y[j1 * n + k];
        s00 += a0 * b0;
        s01 += a0 * b1;
        s10 += a1 * b0;
        s11 += a1 * b1;
      }
      add(i, j, s00);
      if (j1 !== j) add(i, j1, s01);
      if (i1 !== i) {
        add(i1, j, s10);
        if (j1 !== j) add(i1, j1, s11);
      }
    }
  }
  return Math.sqrt(sum);
}

function errors(a: Float64Array, n: number, w: Float64Array, v: Float64Array): { reconstruction: number; orthogonality: number } {
  const scaled = v.map((x, i) => x * w[i % n]);
  const vt = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) vt[j * n + i] = v[i * n + j];
  const norm = Math.sqrt(a.reduce((s, x) => s + x * x, 0));
  return {
    reconstruction: gramError(scaled, v, n, (i, j) => a[i * n + j]) / norm,
    orthogonality: gramError(vt, vt, n, (i, j) => (i === j ? 1 : 0)) / Math.sqrt(n),
  };
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
    const [top, time] = await timed(() => topEigenvectors(matrix, n, k));
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

/** Runs f, returning its result, the wall time and the CPU time of the process (all threads), in s. */
async function timed<T>(f: () => T | Promise<T>): Promise<[T, string]> {
  const t = performance.now();
  const cpu = process.cpuUsage();
  const result = await f();
  const used = process.cpuUsage(cpu);
  return [result, `${((performance.now() - t) / 1000).toFixed(2)} (${((used.user + used.system) / 1e6).toFixed(2)})`];
}

const section: BenchSection = {
  title: "Symmetric eigensolver (float64) and the PCA basis's top-k eigenvectors",
  async run() {
    const threads = Math.min(4, availableParallelism());
    const rows = [
      `Random symmetric n×n matrices (entries uniform in [-0.5, 0.5)); \`eigh\` from src/linalg/eigh.ts, one run each. Errors are ‖A − V diag(w) ` +
        `Vᵀ‖_F / ‖A‖_F and ‖VᵀV − I‖_F / √n. Load average when the run started: ${loadavg()[0].toFixed(2)}; on a busy machine the wall times grow, ` +
        `and the CPU time of one thread is closer to the wall time of an idle one.`,
      "",
      `| n | 1 thread: wall (CPU) s | ${threads} threads: wall (CPU) s | reconstruction | orthogonality |`,
      "| ---: | ---: | ---: | ---: | ---: |",
    ];
    eigh(randomSymmetric(128, 1), 128); // warm up the JIT
    for (const n of SIZES) {
      const a = randomSymmetric(n, n);
      const [, serial] = await timed(() => eigh(a, n, { threads: 1 }));
      const [result, parallel] = await timed(() => eigh(a, n, { threads }));
      const { reconstruction, orthogonality } = errors(a, n, result.values, result.vectors);
      console.error(`eigh n=${n}: ${serial} s / ${parallel} s, errors ${reconstruction.toExponential(2)} ${orthogonality.toExponential(2)}`);
      rows.push(`| ${n} | ${serial} | ${parallel} | ${reconstruction.toExponential(1)} | ${orthogonality.toExponential(1)} |`);
    }
    rows.push(...(await topKTable()));
    return rows.join("\n");
  },
};

export default section;
