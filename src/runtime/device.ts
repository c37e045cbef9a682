/**
 * The execution provider ONNX Runtime runs on: the CPU by default, CUDA when asked for by name
 * (`INFLUENCE_DEVICE=cuda`). The CPU provider ships inside onnxruntime-node; the CUDA provider is a
 * separate download that `npm ci` skips (see .npmrc), so asking for it says how to install it.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { InputError } from "../util/errors.js";

export const DEVICES = ["cpu", "cuda"] as const;
export type Device = (typeof DEVICES)[number];

export const CUDA_INSTALL = "npm install onnxruntime-node --onnxruntime-node-install=cuda12";

/** The device named by `INFLUENCE_DEVICE` (cpu when unset). */
export function deviceFromEnv(env: NodeJS.ProcessEnv = process.env): Device {
  return parseDevice(env.INFLUENCE_DEVICE ?? "cpu", "INFLUENCE_DEVICE");
}

/** Checks a device name given by the user; `source` names where it came from (flag or variable). */
export function parseDevice(name: string, source: string): Device {
  const device = DEVICES.find((d) => d === name.trim().toLowerCase());
  if (!device) throw new InputError(`${source}: unknown device "${name}" (choose one of: ${DEVICES.join(", ")})`);
  return device;
}

/** The folder of onnxruntime-node's native libraries, where its installer puts the CUDA provider. */
export function nativeLibraryDir(): string {
  const packageJson = createRequire(import.meta.url).resolve("onnxruntime-node/package.json");
  return path.join(path.dirname(packageJson), "bin", "napi-v6", process.platform, process.arch);
}

const CUDA_PROVIDER = { linux: "libonnxruntime_providers_cuda.so", win32: "onnxruntime_providers_cuda.dll" } as Partial<Record<NodeJS.Platform, string>>;

/**
 * The execution providers of a session on `device`. Throws, saying what is missing and how to
 * install it, when the device's provider library is absent.
 */
export function executionProviders(device: Device, libraryDir = nativeLibraryDir()): string[] {
  if (device === "cpu") return ["cpu"];
  const library = CUDA_PROVIDER[process.platform];
  if (!library || process.arch !== "x64") {
    throw new InputError(
      `device cuda: ONNX Runtime has no CUDA provider for ${process.platform}/${process.arch} (only linux/x64 and win32/x64); use --device cpu`,
    );
  }
  if (!existsSync(path.join(libraryDir, library))) {
    throw new InputError(
      `device cuda: ONNX Runtime's CUDA provider is not installed (${library} is missing from ${libraryDir}). ` +
        `Install it with \`${CUDA_INSTALL}\` (needs an NVIDIA driver, CUDA 12 and cuDNN 9), or use --device cpu.`,
    );
  }
  return ["cuda", "cpu"];
}
