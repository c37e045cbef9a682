/**
 * A causal language model run by ONNX Runtime: the architecture's forward and capture graphs,
 * compiled once each (per variant) and reused, fed the weights as inputs from one set of
 * Float32Arrays. onnxruntime-node reads input buffers in place (a run reading 1 GiB of input costs
 * about 1 ms, not a copy), so every session and run shares those arrays, and no graph carries the
 * weights (no protobuf 2 GB limit).
 *
 * Sampled labels are drawn inside the capture graph from uniforms the host generates (one per
 * loss position from the sequence's seed, samplingUniforms): the labels need the forward pass's
 * softmax, and drawing them in the graph keeps forward, loss and backward one run.
 */
import ort from "onnxruntime-node";
import { GraphBuildError, GraphBuilder, type Value } from "../../runtime/graph.js";
import { type RuntimeOptions, SessionCache } from "../../runtime/session.js";
import { uniformGenerator } from "../../util/random.js";
import { type Batch, makeBatch } from "../batch.js";
import { lossWeights, rowsWithLoss, trueLabels } from "../capture.js";
import type { ModelConfig } from "../config.js";
import { GPT2_LAYOUT } from "../gpt2-architecture.js";
import { LLAMA_LAYOUT } from "../llama-architecture.js";
import { type ArchitectureLayout, type CausalLM, type GradientCapture, type LossSpec, type TrackedModule, inputWidth } from "../model.js";
import { NEOX_LAYOUT } from "../neox-architecture.js";
import { gpt2Capture, gpt2Forward } from "./gpt2.js";
import type { CaptureHead, CaptureInputs, EmitCapture, GraphInputs } from "./graph-inputs.js";
import { moduleInput } from "./layers.js";
import { llamaCapture, llamaForward } from "./llama.js";
import { sampleLabels, softmaxCrossEntropy } from "./loss.js";
import { neoxCapture, neoxForward } from "./neox.js";

export type GraphVariant = "forward" | "capture" | "capture-sampled";

/** An architecture as graphs: its layout, and the forward and capture graphs the engine builds, feeds and reads. */
export interface OnnxArchitecture<C extends ModelConfig = ModelConfig> extends ArchitectureLayout<C> {
  forward(g: GraphBuilder, config: C, inputs: GraphInputs): Value;
  capture(g: GraphBuilder, config: C, inputs: CaptureInputs, head: CaptureHead, emit: EmitCapture): void;
}

/** Each architecture's graphs, checked against its own configuration type. */
export const ARCHITECTURES: { [A in ModelConfig["architecture"]]: OnnxArchitecture<Extract<ModelConfig, { architecture: A }>> } = {
  gpt2: { ...GPT2_LAYOUT, forward: gpt2Forward, capture: gpt2Capture },
  "gpt-neox": { ...NEOX_LAYOUT, forward: neoxForward, capture: neoxCapture },
  llama: { ...LLAMA_LAYOUT, forward: llamaForward, capture: llamaCapture },
};

/** The graphs of the config's architecture, taking that config. */
function architectureOf(config: ModelConfig): OnnxArchitecture {
  return ARCHITECTURES[config.architecture] as OnnxArchitecture;
}

/** The graph of one variant; inputs and outputs are named as OnnxCausalLM feeds and reads them. */
export function buildGraph(config: ModelConfig, variant: GraphVariant): GraphBuilder {
  const arch = architectureOf(config);
  const g = new GraphBuilder(config.architecture, variant);
  const V = config.vocabSize;
  const ids = g.input("ids", "int64", ["batch", "tokens"]);
  const rows = g.input("rows", "int64", ["rows"]);
  const weights = new Map([...arch.parameterShapes(config)].map(([name, dims]) => [name, g.input(name, "float32", dims)]));
  const weight = (name: string): Value => {
    const value = weights.get(name);
    if (value === undefined)
      throw new GraphBuildError(config.architecture, variant, undefined, `the model code reads parameter ${name}, which the architecture does not declare`);
    return value;
  };
  if (variant === "forward") {
    g.output(arch.forward(g, config, { ids, rows, weight }), "logits", "float32", ["rows", V]);
    return g;
  }
  const mask = g.input("mask", "float32", ["batch", "tokens"]);
  const labelInput = variant === "capture-sampled" ? g.input("uniforms", "float64", ["rows"]) : g.input("labels", "int64", ["rows"]);
  const head = (logits: Value): Value =>
    g.scope("loss", () => {
      const { loss, dlogits, labels } = softmaxCrossEntropy(g, logits, (p) => (variant === "capture-sampled" ? sampleLabels(g, p, labelInput, V) : labelInput));
      g.output(loss, "loss", "float32", ["rows"]);
      if (variant === "capture-sampled") g.output(labels, "labels", "int64", ["rows"]);
      return dlogits;
    });
  const modules = new Map(arch.modules(config).map((m) => [m.name, m]));
  const emit = (name: string, x: Value, grad: Value) => {
    const m = modules.get(name) as TrackedModule;
    const flat = (v: Value, width: number) => g.op("Reshape", [v, g.constant("int64", [-1, width])]);
    g.output(flat(moduleInput(g, x, mask, m.bias), inputWidth(m)), `a.${name}`, "float32", ["positions", inputWidth(m)]);
    g.output(flat(grad, m.outFeatures), `g.${name}`, "float32", ["positions", m.outFeatures]);
  };
  arch.capture(g, config, { ids, rows, mask, weight }, head, emit);
  return g;
}

/** An int64 tensor of the given values (ids, rows, labels). */
export const int64 = (values: ArrayLike<number>, dims: number[]) => new ort.Tensor("int64", BigInt64Array.from(Array.from(values, (v) => BigInt(v))), dims);

export class OnnxCausalLM implements CausalLM {
  readonly modules: readonly TrackedModule[];
  private readonly sessions: SessionCache<GraphVariant>;
  private readonly weightFeeds: Record<string, ort.Tensor>;

  /** `weights`: every parameter by checkpoint name (without the base model's prefix); read in place, never copied. */
  constructor(
    readonly config: ModelConfig,
    weights: ReadonlyMap<string, Float32Array>,
    options: RuntimeOptions = {},
  ) {
    const arch = architectureOf(config);
    this.modules = arch.modules(config);
    this.weightFeeds = Object.fromEntries(
      [...arch.parameterShapes(config)].map(([name, dims]) => {
        const data = weights.get(name);
        if (!data) throw new Error(`${config.architecture}: weight ${name} is missing`);
        return [name, new ort.Tensor("float32", data, dims)];
      }),
    );
    this.sessions = new SessionCache((variant) => buildGraph(config, variant), options);
  }

  /** logits [R, V] of the given rows of the flattened batch (every row when absent), row-major. */
  async logits(batch: Batch, rows?: Int32Array): Promise<Float32Array> {
    const chosen = rows ?? Int32Array.from({ length: batch.size * batch.length }, (_, i) => i);
    const session = await this.sessions.get("forward");
    const out = await session.run({ ...this.weightFeeds, ids: int64(batch.ids, [batch.size, batch.length]), rows: int64(chosen, [chosen.length]) }, ["logits"]);
    return out.logits.data as Float32Array;
  }

  /** Forward, loss and backward passes: per-token a and g of every tracked matrix, and the losses. */
  async capture(sequences: readonly (readonly number[])[], spec: LossSpec): Promise<GradientCapture> {
    const batch = makeBatch(sequences, this.config.contextLength, this.config.vocabSize);
    const rows = rowsWithLoss(lossWeights(batch, spec));
    const sampled = spec.kind === "sampled";
    const feeds: Record<string, ort.Tensor> = {
      ...this.weightFeeds,
      ids: int64(batch.ids, [batch.size, batch.length]),
      mask: new ort.Tensor("float32", batch.mask, [batch.size, batch.length]),
      rows: int64(rows, [rows.length]),
    };
    const labels = spec.kind === "sampled" ? undefined : trueLabels(batch, rows);
    if (labels) feeds.labels = int64(labels, [rows.length]);
    else if (spec.kind === "sampled") feeds.uniforms = new ort.Tensor("float64", samplingUniforms(batch, rows, spec.seeds), [rows.length]);
    const fetches = ["loss", ...(sampled ? ["labels"] : []), ...this.modules.flatMap((m) => [`a.${m.name}`, `g.${m.name}`])];
    const session = await this.sessions.get(sampled ? "capture-sampled" : "capture");
    const out = await session.run(feeds, fetches);
    const rowLoss = out.loss.data as Float32Array;
    const losses = new Float64Array(batch.size);
    rows.forEach((row, k) => (losses[Math.floor(row / batch.length)] += rowLoss[k]));
    return {
      batch,
      rows,
      labels: labels ?? Int32Array.from(out.labels.data as BigInt64Array, Number),
      losses,
      modules: this.modules.map((module) => ({ module, a: out[`a.${module.name}`].data as Float32Array, g: out[`g.${module.name}`].data as Float32Array })),
    };
  }

  release(): Promise<void> {
    return this.sessions.release();
  }
}

/** One uniform per loss row from its sequence's generator, in row order (as capture.ts draws them). */
export function samplingUniforms(batch: Batch, rows: Int32Array, seeds: readonly number[]): Float64Array {
  if (seeds.length !== batch.size) throw new Error(`sampled labels need one seed per sequence (${seeds.length} for ${batch.size})`);
  const uniforms = seeds.map((seed) => uniformGenerator(seed));
  return Float64Array.from(rows, (row) => uniforms[Math.floor(row / batch.length)]());
}
