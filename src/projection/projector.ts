/** Sequence vectors from per-token captures (projection.ts derives the products). */
import { capturedTokens } from "../ekfac/products.js";
import { type GradientCapture, inputWidth } from "../model/model.js";
import { type HostTensor, runKernel } from "../runtime/kernels.js";
import type { ModuleProjection, Projection } from "./projection.js";

/**
 * sum_r sum_t (L_r g_t)(R_r a_t)^T per sequence, [B, kOut, kIn]: the tokens projected by every
 * term's sides at once ([B, T, rank x k]), then one [kOut, T] x [T, kIn] product per term.
 */
async function projectTokens(p: ModuleProjection, tokens: { a: HostTensor; g: HostTensor }, left: HostTensor, right: HostTensor): Promise<Float32Array> {
  const { rank, kOut, kIn } = p;
  const [out] = await runKernel(
    `projection.vectors.${rank}x${kOut}x${kIn}`,
    (g) => {
      const a = g.input("a", "float32", ["batch", "tokens", "in"]);
      const grad = g.input("g", "float32", ["batch", "tokens", "out"]);
      // [B, T, rank x k] -> [B, T, rank, k], zero keeps an axis's size.
      const terms = (x: string, side: string, k: number) =>
        g.op("Reshape", [g.op("MatMul", [x, g.input(side, "float32", [side === "left" ? "out" : "in", rank * k])]), g.constant("int64", [0, 0, rank, k])]);
      const gl = g.op("Transpose", [terms(grad, "left", kOut)], { perm: [0, 2, 3, 1] }); // [B, rank, kOut, T]
      const ar = g.op("Transpose", [terms(a, "right", kIn)], { perm: [0, 2, 1, 3] }); // [B, rank, T, kIn]
      const perTerm = g.op("MatMul", [gl, ar]); // [B, rank, kOut, kIn]
      g.output(g.op("ReduceSum", [perTerm, g.constant("int64", [1])], { keepdims: 0 }), "out", "float32", ["batch", kOut, kIn]);
    },
    { ...tokens, left, right },
    ["out"],
  );
  return out;
}

export class Projector {
  private readonly sides: Array<{ left: HostTensor; right: HostTensor }>;

  constructor(readonly projection: Projection) {
    this.sides = projection.modules.map((p) => ({
      left: { data: p.left, dims: [p.module.outFeatures, p.rank * p.kOut] },
      right: { data: p.right, dims: [inputWidth(p.module), p.rank * p.kIn] },
    }));
  }

  get dim(): number {
    return this.projection.dim;
  }

  /** One vector per sequence of the capture, [batch.size x dim] row-major. */
  async vectors(capture: GradientCapture): Promise<Float32Array> {
    const { batch } = capture;
    const dim = this.projection.dim;
    const out = new Float32Array(batch.size * dim);
    for (const [i, p] of this.projection.modules.entries()) {
      const block = p.kOut * p.kIn;
      const projected = await projectTokens(p, capturedTokens(capture, i), this.sides[i].left, this.sides[i].right);
      for (let b = 0; b < batch.size; b++) out.set(projected.subarray(b * block, (b + 1) * block), b * dim + p.offset);
    }
    return out;
  }
}
