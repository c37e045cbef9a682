/**
 * The products around the model passes (covariances, rotations into eigenbases, preconditioning,
 * projection, scoring) as small ONNX graphs on host arrays. A kernel is a graph-building function
 * named by a key that includes its static sizes; each key is compiled once per thread and reused
 * with any symbolic sizes. Inputs are read in place (onnxruntime-node does not copy a typed array it
 * is given), except those in shared memory (see {@link inPlaceOrCopied}); outputs come back as typed
 * arrays of the kernel's element type: float32, or float64 for the eigensolver's products
 * ({@link runKernel64}).
 */
import ort from "onnxruntime-node";
import { GraphBuilder } from "./graph.js";
import { type RuntimeOptions, SessionCache } from "./session.js";

/** A float32 array with its shape, row-major. */
export interface HostTensor {
  data: Float32Array;
  dims: readonly number[];
}

/** A float64 array with its shape, row-major. */
export interface HostTensor64 {
  data: Float64Array;
  dims: readonly number[];
}

type AnyHostTensor = HostTensor | HostTensor64;

/** Declares a kernel's inputs and outputs on `g` and builds its nodes. */
export type KernelBuilder = (g: GraphBuilder) => void;

/**
 * An input as onnxruntime-node takes it: in place, or copied into ordinary memory when it is backed by
 * a SharedArrayBuffer, which onnxruntime-node 1.30 refuses ("Invalid argument": it reads an input's
 * buffer with napi_get_arraybuffer_info, which Node 20 answers for an ArrayBuffer only). The index
 * arrays that `influence serve` shares among its workers (engine/index-arrays.ts) are copied this
 * way, one run's inputs at a time: a module's factors, which exact scoring feeds (the projections,
 * which every query feeds, are held in ordinary memory).
 */
function inPlaceOrCopied<T extends Float32Array | Float64Array>(data: T): T {
  return data.buffer instanceof SharedArrayBuffer ? (data.slice() as T) : data;
}

function hostToOrt({ data, dims }: AnyHostTensor): ort.Tensor {
  if (data instanceof Float64Array) return new ort.Tensor("float64", inPlaceOrCopied(data), [...dims]);
  return new ort.Tensor("float32", inPlaceOrCopied(data), [...dims]);
}

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

  async run(key: string, build: KernelBuilder, feeds: Record<string, AnyHostTensor>, fetches: readonly string[]): Promise<ort.Tensor[]> {
    if (!this.builders.has(key)) this.builders.set(key, build);
    const session = await this.sessions.get(key);
    const tensors = Object.fromEntries(Object.entries(feeds).map(([name, t]) => [name, hostToOrt(t)]));
    const out = await session.run(tensors, fetches);
    return fetches.map((name) => out[name]);
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

/** Runs kernel `key` (built by `build` on its first use) and returns the fetched outputs, float32, in order. */
export async function runKernel(key: string, build: KernelBuilder, feeds: Record<string, HostTensor>, fetches: readonly string[]): Promise<Float32Array[]> {
  current ??= new KernelSessions(configured);
  return (await current.run(key, build, feeds, fetches)).map((t) => t.data as Float32Array);
}

/** {@link runKernel} for a kernel whose inputs and outputs are float64. */
export async function runKernel64(key: string, build: KernelBuilder, feeds: Record<string, HostTensor64>, fetches: readonly string[]): Promise<Float64Array[]> {
  current ??= new KernelSessions(configured);
  return (await current.run(key, build, feeds, fetches)).map((t) => t.data as Float64Array);
}

/** The kernel op(a) op(b) of inputs `a`, `b` and output `out`, where op transposes when asked; its key names the element type and the transposes. */
export function gemmKernel(type: "float32" | "float64", transposeA: boolean, transposeB: boolean): { key: string; build: KernelBuilder } {
  return {
    key: `gemm.${type}.${transposeA ? "T" : "N"}${transposeB ? "T" : "N"}`,
    build: (g) => {
      const x = g.input("a", type, ["a0", "a1"]);
      const y = g.input("b", type, ["b0", "b1"]);
      g.output(g.op("Gemm", [x, y], { transA: transposeA ? 1 : 0, transB: transposeB ? 1 : 0 }), "out", type, ["m", "n"]);
    },
  };
}

/** a b for a [m, k] and b [k, n] (either given transposed), [m, n]. */
export async function matMul(a: HostTensor, b: HostTensor, transposeA = false, transposeB = false): Promise<Float32Array> {
  const { key, build } = gemmKernel("float32", transposeA, transposeB);
  const [out] = await runKernel(key, build, { a, b }, ["out"]);
  return out;
}
