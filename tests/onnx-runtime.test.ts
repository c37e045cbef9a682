import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { CUDA_INSTALL, deviceFromEnv, executionProviders, nativeLibraryDir } from "../src/runtime/device.js";
import { GraphBuildError, GraphBuilder } from "../src/runtime/graph.js";
import { GraphSession, SessionCache, runtimeSummary, workerRuntime } from "../src/runtime/session.js";

const W = [1, 2, 3, 4, 5, 6];

/** y = x W for x [n, 3] and W holding 1..6, shaped [3, 2] (right) or left a flat [6] (wrong). */
function product(wellShaped: boolean): GraphBuilder {
  const g = new GraphBuilder("toy", "product");
  const x = g.input("x", "float32", ["n", 3]);
  const flat = g.constant("float32", W);
  const w = wellShaped ? g.op("Reshape", [flat, g.constant("int64", [3, 2])]) : flat;
  g.output(
    g.scope("layer", () => g.op("MatMul", [x, w])),
    "y",
    "float32",
    ["n", 2],
  );
  return g;
}

describe("ONNX graphs built in TypeScript", () => {
  it("run with a symbolic dimension and give the product computed by hand", async () => {
    const session = await GraphSession.create(product(true), { device: "cpu", threads: 1 });
    for (const n of [1, 4]) {
      const xs = Float32Array.from({ length: 3 * n }, (_, i) => i - 2);
      const out = await session.run({ x: new ort.Tensor("float32", xs, [n, 3]) }, ["y"]);
      const expected = Array.from({ length: 2 * n }, (_, k) => {
        const [r, c] = [Math.floor(k / 2), k % 2];
        return [0, 1, 2].reduce((s, i) => s + xs[3 * r + i] * W[2 * i + c], 0);
      });
      expect(Array.from(out.y.data as Float32Array)).toEqual(expected);
    }
    await session.release();
  });

  it("name the architecture, graph and node when ONNX Runtime rejects a node", async () => {
    // MatMul of x [n, 3] with a [6] vector: shape inference fails at that node.
    const err = await GraphSession.create(product(false), { device: "cpu" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GraphBuildError);
    expect((err as GraphBuildError).node).toBe("layer/MatMul_0");
    expect((err as Error).message).toMatch(/^toy graph "product", node layer\/MatMul_0: ONNX Runtime rejected the graph/);
  });

  it("name the node that reads a value no earlier node defines", () => {
    const g = new GraphBuilder("toy", "dangling");
    g.input("x", "float32", [2]);
    expect(() => g.scope("block", () => g.op("Add", ["x", "y"]))).toThrow(/^toy graph "dangling", node block\/Add_0: input "y" is not defined/);
  });

  it("are compiled once per variant by the session cache, and a failed build is retried", async () => {
    let builds = 0;
    const cache = new SessionCache<"good" | "bad">(
      (variant) => {
        builds++;
        return product(variant === "good");
      },
      { device: "cpu" },
    );
    const [a, b] = await Promise.all([cache.get("good"), cache.get("good")]);
    expect(a).toBe(b);
    await expect(cache.get("bad")).rejects.toThrow(GraphBuildError);
    await expect(cache.get("bad")).rejects.toThrow(GraphBuildError);
    expect(builds).toBe(3);
    await cache.release();
  });
});

describe("execution providers", () => {
  it("default to the CPU and read INFLUENCE_DEVICE", () => {
    expect(deviceFromEnv({})).toBe("cpu");
    expect(deviceFromEnv({ INFLUENCE_DEVICE: "CUDA" })).toBe("cuda");
    expect(() => deviceFromEnv({ INFLUENCE_DEVICE: "tpu" })).toThrow(/INFLUENCE_DEVICE: unknown device "tpu" \(choose one of: cpu, cuda\)/);
    expect(executionProviders("cpu")).toEqual(["cpu"]);
  });

  it("share the cores out among a pool's workers, at least one thread each", () => {
    expect([1, 2, 3, 8].map((workers) => workerRuntime("cpu", workers, 8).threads)).toEqual([8, 4, 2, 1]);
    expect(workerRuntime("cpu", 3, 2).threads).toBe(1);
    expect(workerRuntime(undefined, 1, 2).device).toBe(deviceFromEnv());
    expect(runtimeSummary(workerRuntime("cpu", 2, 2), 2)).toBe("model passes on ONNX Runtime, device cpu, 2 workers x 1 thread each");
    expect(runtimeSummary(workerRuntime("cpu", 1, 2))).toBe("model passes on ONNX Runtime, device cpu, 2 threads");
  });

  it("say what is missing and how to install it when CUDA is asked for without its provider", async () => {
    const empty = mkdtempSync(path.join(os.tmpdir(), "ort-bin-"));
    expect(() => executionProviders("cuda", empty)).toThrow(`libonnxruntime_providers_cuda.so is missing from ${empty}`);
    expect(() => executionProviders("cuda", empty)).toThrow(CUDA_INSTALL);
    // This machine has no CUDA provider installed: a session asked to use it fails the same way.
    await expect(GraphSession.create(product(true), { device: "cuda" })).rejects.toThrow(
      `device cuda: ONNX Runtime's CUDA provider is not installed (libonnxruntime_providers_cuda.so is missing from ${nativeLibraryDir()}). Install it with \`npm install onnxruntime-node --onnxruntime-node-install=cuda12\``,
    );
  });
});
