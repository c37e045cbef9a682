/**
 * Two wasm kernels registered when the wasm backend starts: UnsortedSegmentSum, which the
 * gradient of `gather` (embedding lookups, in training) calls and wasm lacks, and a faster
 * Unpack (attention over long sequences unstacks its heads). The stock wasm Unpack slices each
 * output with readSync, which copies the whole input every time: unstacking [128, 64, 64]
 * attention probabilities took 127 ms, against 1.3 ms with one copy per slice.
 */
import * as tf from "@tensorflow/tfjs-core";

/** The parts of tfjs-backend-wasm's BackendWasm used here. */
interface WasmBackend {
  /** A view on the wasm heap: valid until the next allocation, which may grow (and move) the heap. */
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: Float32Array): tf.TensorInfo;
}

interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  attrs?: tf.NamedAttrMap;
  backend: unknown;
}

/** out[segmentIds[i], ...] += x[i, ...], in index order (deterministic); ids out of range are dropped, as in TensorFlow. */
function unsortedSegmentSum({ inputs, attrs, backend }: KernelArgs): tf.TensorInfo {
  const x = inputs.x as tf.TensorInfo;
  const segmentIds = inputs.segmentIds as tf.TensorInfo;
  const numSegments = attrs?.numSegments as number;
  const wasm = backend as WasmBackend;
  const values = wasm.typedArrayFromHeap(x);
  const ids = wasm.typedArrayFromHeap(segmentIds);
  const innerShape = x.shape.slice(segmentIds.shape.length);
  const inner = innerShape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(numSegments * inner);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (id < 0 || id >= numSegments) continue;
    for (let j = 0; j < inner; j++) out[id * inner + j] += values[i * inner + j];
  }
  return wasm.makeOutput([numSegments, ...innerShape], x.dtype, undefined, out);
}

/** Unstacks along axis 0 with one copy of each slice; other axes go to the stock kernel. */
function fastUnpack(stock: tf.KernelFunc) {
  return (args: KernelArgs): tf.TensorInfo[] => {
    const value = args.inputs.value as tf.TensorInfo;
    const axis = args.attrs?.axis as number;
    if ((axis !== 0 && axis !== -value.shape.length) || value.dtype !== "float32") return stock(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo[];
    const wasm = args.backend as WasmBackend;
    const [count, ...outShape] = value.shape;
    const inner = outShape.reduce((a, b) => a * b, 1);
    return Array.from({ length: count }, (_, i) => {
      const out = wasm.makeOutput(outShape, value.dtype);
      wasm.typedArrayFromHeap(out).set(wasm.typedArrayFromHeap(value).subarray(i * inner, (i + 1) * inner));
      return out;
    });
  };
}

/** Called once, by initBackend, after the wasm backend is chosen. */
export function registerWasmKernels(): void {
  if (!tf.getKernel("UnsortedSegmentSum", "wasm")) {
    tf.registerKernel({ kernelName: "UnsortedSegmentSum", backendName: "wasm", kernelFunc: unsortedSegmentSum as tf.KernelFunc });
  }
  const unpack = tf.getKernel("Unpack", "wasm");
  if (unpack) {
    tf.unregisterKernel("Unpack", "wasm");
    tf.registerKernel({ kernelName: "Unpack", backendName: "wasm", kernelFunc: fastUnpack(unpack.kernelFunc) as tf.KernelFunc });
  }
}
