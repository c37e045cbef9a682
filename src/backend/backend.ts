/**
 * Compute backend selection. Order of preference: tfjs-node-gpu (CUDA), tfjs-node (native
 * TensorFlow), then WebAssembly. The native packages are optional dependencies: their install
 * downloads libtensorflow, which fails offline, so they may simply be absent. The pure-JS `cpu`
 * backend is about 40x slower than wasm and is only used when asked for by name.
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import { isMainThread } from "node:worker_threads";
import { InputError, errorMessage } from "../util/errors.js";
import { registerWasmKernels } from "./wasm-kernels.js";

export type BackendName = "tensorflow" | "wasm" | "cpu";
const choices: readonly BackendName[] = ["tensorflow", "wasm", "cpu"];

let chosen: Promise<BackendName> | undefined;

/** Loads a native tfjs package by name; returns the reason when it is not usable here. */
async function tryNative(pkg: string): Promise<string | undefined> {
  try {
    await import(pkg);
    return undefined;
  } catch (err) {
    return errorMessage(err).split("\n")[0];
  }
}

async function activate(name: BackendName): Promise<boolean> {
  return (await tf.setBackend(name)) && tf.getBackend() === name;
}

async function select(requested: string | undefined): Promise<{ name: BackendName; why: string }> {
  if (requested !== undefined && !choices.includes(requested as BackendName)) {
    throw new InputError(`INFLUENCE_BACKEND=${requested} is not a backend; use one of ${choices.join(", ")}`);
  }
  const want = requested as BackendName | undefined;
  const nativeFailures: string[] = [];
  if (want === undefined || want === "tensorflow") {
    for (const pkg of ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"]) {
      const failure = await tryNative(pkg);
      if (failure === undefined && (await activate("tensorflow"))) return { name: "tensorflow", why: pkg };
      nativeFailures.push(`${pkg}: ${failure ?? "backend did not initialise"}`);
    }
    if (want === "tensorflow") {
      throw new InputError(`INFLUENCE_BACKEND=tensorflow, but no native TensorFlow is usable (${nativeFailures.join("; ")})`);
    }
  }
  const name: BackendName = want ?? "wasm";
  if (!(await activate(name))) throw new Error(`the ${name} backend failed to initialise`);
  const why = want ? "INFLUENCE_BACKEND" : "native TensorFlow packages not installed";
  return { name, why };
}

/**
 * Chooses and initialises the backend once per thread (INFLUENCE_BACKEND forces one) and logs the
 * choice once, on stderr, from the main thread.
 */
export function initBackend(): Promise<BackendName> {
  chosen ??= select(process.env.INFLUENCE_BACKEND || undefined).then(async ({ name, why }) => {
    await tf.ready();
    if (name === "wasm") registerWasmKernels();
    if (isMainThread && process.env.INFLUENCE_QUIET !== "1") console.error(`influence: tfjs backend ${name} for the products around the model passes (${why})`);
    return name;
  });
  return chosen;
}

export { tf };

/**
 * Copies a tensor's values out and disposes it. Use as `download(tf.tidy(() => ...))`: a typed
 * array must never be returned from tf.tidy itself, which walks every element of its result.
 */
export function download(t: tf.Tensor): Float32Array {
  try {
    return t.dataSync() as Float32Array;
  } finally {
    t.dispose();
  }
}

/** tf.tidy for a function whose result holds its tensors inside typed objects. */
export function tidy<T>(fn: () => T): T {
  return tf.tidy(fn as () => tf.TensorContainer) as T;
}
