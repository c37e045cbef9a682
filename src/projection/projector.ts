/** Sequence vectors from per-token captures (projection.ts derives the products). */
import { capturedTokens } from "../ekfac/products.js";
import { type GradientCapture, inputWidth } from "../model/model.js";
import type { GraphBuilder, Value } from "../runtime/graph.js";
import { type HostTensor, runKernel } from "../runtime/kernels.js";
import type { ModuleProjection, Projection } from "./projection.js";

/**
 * sum_r sum_t (L_r g_t)(R_r a_t)^T per sequence, [B, kOut x kIn]: the tokens projected by every
 * term's sides at once ([B, T, rank x k]), then one [kOut, T] x [T, kIn] product per term. Module
 * m's inputs are a{m}, g{m}, left{m} and right{m}; its sizes are symbolic but for the projection's.
 */
function projectModule(g: GraphBuilder, m: number, { rank, kOut, kIn }: ModuleProjection): Value {
  const a = g.input(`a${m}`, "float32", ["batch", "tokens", `in${m}`]);
  const grad = g.input(`g${m}`, "float32", ["batch", "tokens", `out${m}`]);
  // [B, T, rank x k] -> [B, T, rank, k], zero keeps an axis's size.
  const terms = (x: Value, side: "left" | "right", k: number) =>
    g.op("Reshape", [
      g.op("MatMul", [x, g.input(`${side}${m}`, "float32", [side === "left" ? `out${m}` : `in${m}`, rank * k])]),
      g.constant("int64", [0, 0, rank, k]),
    ]);
  const gl = g.op("Transpose", [terms(grad, "left", kOut)], { perm: [0, 2, 3, 1] }); // [B, rank, kOut, T]
  const ar = g.op("Transpose", [terms(a, "right", kIn)], { perm: [0, 2, 1, 3] }); // [B, rank, T, kIn]
  const perTerm = g.op("MatMul", [gl, ar]); // [B, rank, kOut, kIn]
  return g.op("Reshape", [g.op("ReduceSum", [perTerm, g.constant("int64", [1])], { keepdims: 0 }), g.constant("int64", [0, kOut * kIn])]); // [B, kOut x kIn]
}

/**
 * Every module's block, side by side in one run ([B, dim]): one ONNX Runtime call a projection
 * rather than one a module, whose fixed cost was most of a query's small first-tier projection.
 * The blocks follow one another in module order (buildProjection places them so, loadProjection
 * refuses a file that does not), so their concatenation is the vector.
 */
export class Projector {
  private readonly sides: Record<string, HostTensor>;
  private readonly key: string;

  constructor(readonly projection: Projection) {
    this.sides = Object.fromEntries(
      projection.modules.flatMap((p, m) => [
        [`left${m}`, { data: p.left, dims: [p.module.outFeatures, p.rank * p.kOut] }],
        [`right${m}`, { data: p.right, dims: [inputWidth(p.module), p.rank * p.kIn] }],
      ]),
    );
    this.key = `projection.vectors.${projection.modules.map((p) => `${p.rank}x${p.kOut}x${p.kIn}`).join(",")}`;
  }

  get dim(): number {
    return this.projection.dim;
  }

  /** One vector per sequence of the capture, [batch.size x dim] row-major. */
  async vectors(capture: GradientCapture): Promise<Float32Array> {
    const tokens: Record<string, HostTensor> = {};
    this.projection.modules.forEach((_, m) => {
      const { a, g } = capturedTokens(capture, m);
      tokens[`a${m}`] = a;
      tokens[`g${m}`] = g;
    });
    const [out] = await runKernel(
      this.key,
      (g) => {
        const blocks = this.projection.modules.map((p, m) => projectModule(g, m, p));
        g.output(g.op("Concat", blocks, { axis: 1 }), "out", "float32", ["batch", this.dim]);
      },
      { ...tokens, ...this.sides },
      ["out"],
    );
    return out;
  }
}
