/**
 * GPT-2's architecture as data: the parameters of a checkpoint and the matrices influence tracks.
 * The ONNX graphs (onnx/gpt2.ts) read their weights by these names.
 */
import type { Gpt2Config } from "./config.js";
import type { ArchitectureLayout, TrackedModule } from "./model.js";

/** Parameter names (without `transformer.`) and shapes of a GPT-2 checkpoint; Conv1D weights are [in, out]. */
export function gpt2ParameterShapes(cfg: Gpt2Config): Map<string, number[]> {
  const C = cfg.nEmbd;
  const shapes = new Map<string, number[]>([
    ["wte.weight", [cfg.vocabSize, C]],
    ["wpe.weight", [cfg.contextLength, C]],
    ["ln_f.weight", [C]],
    ["ln_f.bias", [C]],
  ]);
  for (let i = 0; i < cfg.nLayer; i++) {
    const p = `h.${i}.`;
    for (const ln of ["ln_1", "ln_2"]) {
      shapes.set(`${p}${ln}.weight`, [C]);
      shapes.set(`${p}${ln}.bias`, [C]);
    }
    const linears: Array<[string, number, number]> = [
      ["attn.c_attn", C, 3 * C],
      ["attn.c_proj", C, C],
      ["mlp.c_fc", C, cfg.nInner],
      ["mlp.c_proj", cfg.nInner, C],
    ];
    for (const [name, fanIn, fanOut] of linears) {
      shapes.set(`${p}${name}.weight`, [fanIn, fanOut]);
      shapes.set(`${p}${name}.bias`, [fanOut]);
    }
  }
  return shapes;
}

/** The tracked matrices of a GPT-2: each block's c_fc and c_proj. */
export function gpt2Modules(config: Gpt2Config): TrackedModule[] {
  const C = config.nEmbd;
  return Array.from({ length: config.nLayer }, (_, layer) => [
    { name: `h.${layer}.mlp.c_fc`, layer, inFeatures: C, outFeatures: config.nInner, bias: true },
    { name: `h.${layer}.mlp.c_proj`, layer, inFeatures: config.nInner, outFeatures: C, bias: true },
  ]).flat();
}

export const GPT2_LAYOUT: ArchitectureLayout<Gpt2Config> = {
  prefix: "transformer.",
  // The causal-mask buffers of older checkpoints, and the LM head tied to wte.
  ignored: () => [/^h\.\d+\.attn\.(masked_)?bias$/, /^lm_head\.weight$/],
  parameterShapes: gpt2ParameterShapes,
  modules: gpt2Modules,
};
