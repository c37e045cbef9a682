/**
 * The products around the model passes (covariances, rotations into eigenbases, preconditioning,
 * projection, scoring) as small ONNX graphs on host arrays. A kernel is a graph-building function
 * named by a key that includes its static sizes; each key is compiled once per thread and reused
 * with any symbolic sizes. Inputs are read in place (onnxruntime-node does not copy a Float32Array
 * it is given), outputs come back as Float32Arrays.
 */
import ort from "onnxruntime-node";
import { GraphBuilder } from "./graph.js";
import { type RuntimeOptions, SessionCache } from "./session.js";

/** A float32 array with its shape, row-major. */
export interface HostTensor {
  data: Float32Array;
  dims: readonly number[];
}

/** Declares a kernel's inputs and outputs on `g` and builds its nodes. */
export type KernelBuilder = (g: GraphBuilder) => void;

class KernelSessions {
  private readonly builders = new Map<string, KernelBuilder>();
  readonly sessions: SessionCache<string>;

  constructor(options: RuntimeOptions) {
    this.sessions = new SessionCache((key) => {
      const g = new GraphBuilder("kernel", key);
      (this.builders.get(key) as KernelBuilder)(g);
      return g;
    }, options);
  }

  async run(key: string, build: KernelBuilder, feeds: Record<string, HostTensor>, fetches: readonly string[]): Promise<Float32Array[]> {
    if (!this.builders.has(key)) this.builders.set(key, build);
    const session = await this.sessions.get(key);
    const tensors = Object.fromEntries(Object.entries(feeds).map(([name, t]) => [name, new ort.Tensor("float32", t.data, [...t.dims])]));
    const out = await session.run(tensors, fetches);
    return fetches.map((name) => out[name].data as Float32Array);
  }
}

let current: KernelSessions | undefined;
let configured: RuntimeOptions = {};

/**
 * Where this thread's kernels run: the device and threads of the thread's model (loadModel sets
 * them). Sessions already compiled for other options are released.
 */
export async function configureKernels(options: RuntimeOptions): Promise<void> {
  if (current && options.device === configured.device && options.threads === configured.threads) return;
  const previous = current;
  configured = { ...options };
  current = undefined;
  await previous?.sessions.release();
}

/** Runs kernel `key` (built by `build` on its first use) and returns the fetched outputs in order. */
export function runKernel(key: string, build: KernelBuilder, feeds: Record<string, HostTensor>, fetches: readonly string[]): Promise<Float32Array[]> {
  current ??= new KernelSessions(configured);
  return current.run(key, build, feeds, fetches);
}

/** a b for a [m, k] and b [k, n] (either given transposed), [m, n]. */
export async function matMul(a: HostTensor, b: HostTensor, transposeA = false, transposeB = false): Promise<Float32Array> {
  const key = `matmul.${transposeA ? "T" : "N"}${transposeB ? "T" : "N"}`;
  const [out] = await runKernel(
    key,
    (g) => {
      const x = g.input("a", "float32", ["a0", "a1"]);
      const y = g.input("b", "float32", ["b0", "b1"]);
      g.output(g.op("Gemm", [x, y], { transA: transposeA ? 1 : 0, transB: transposeB ? 1 : 0 }), "out", "float32", ["m", "n"]);
    },
    { a, b },
    ["out"],
  );
  return out;
}
