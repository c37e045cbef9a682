/**
 * GPT-NeoX's architecture (GPTNeoXForCausalLM, the Pythia models) as data: the parameters of a
 * checkpoint, nn.Linear weights [out, in], and the MLP matrices influence tracks. The ONNX graphs
 * (onnx/neox.ts) read their weights by these names.
 */
import type { NeoxConfig } from "./config.js";
import type { ArchitectureLayout, TrackedModule } from "./model.js";

/** Parameter names (without `gpt_neox.`) and shapes of a GPT-NeoX checkpoint. */
export function neoxParameterShapes(cfg: NeoxConfig): Map<string, number[]> {
  const [C, I] = [cfg.nEmbd, cfg.nInner];
  const shapes = new Map<string, number[]>([
    ["embed_in.weight", [cfg.vocabSize, C]],
    ["final_layer_norm.weight", [C]],
    ["final_layer_norm.bias", [C]],
  ]);
  if (!cfg.tieWordEmbeddings) shapes.set("embed_out.weight", [cfg.vocabSize, C]);
  for (let i = 0; i < cfg.nLayer; i++) {
    const p = `layers.${i}.`;
    for (const norm of ["input_layernorm", "post_attention_layernorm"]) {
      shapes.set(`${p}${norm}.weight`, [C]);
      shapes.set(`${p}${norm}.bias`, [C]);
    }
    const linears: Array<[string, number, number, boolean]> = [
      ["attention.query_key_value", C, 3 * C, cfg.attentionBias],
      ["attention.dense", C, C, cfg.attentionBias],
      ["mlp.dense_h_to_4h", C, I, true],
      ["mlp.dense_4h_to_h", I, C, true],
    ];
    for (const [name, fanIn, fanOut, bias] of linears) {
      shapes.set(`${p}${name}.weight`, [fanOut, fanIn]);
      if (bias) shapes.set(`${p}${name}.bias`, [fanOut]);
    }
  }
  return shapes;
}

/** The tracked matrices of a GPT-NeoX: each layer's dense_h_to_4h and dense_4h_to_h. */
export function neoxModules(config: NeoxConfig): TrackedModule[] {
  const [C, I] = [config.nEmbd, config.nInner];
  return Array.from({ length: config.nLayer }, (_, layer) => [
    { name: `layers.${layer}.mlp.dense_h_to_4h`, layer, inFeatures: C, outFeatures: I, bias: true },
    { name: `layers.${layer}.mlp.dense_4h_to_h`, layer, inFeatures: I, outFeatures: C, bias: true },
  ]).flat();
}

export const NEOX_LAYOUT: ArchitectureLayout<NeoxConfig> = {
  prefix: "gpt_neox.",
  // Buffers older Pythia checkpoints carry (the causal mask as BOOL, its fill value, the rotary
  // frequencies), and an LM head tied to embed_in.
  ignored: (cfg) => [/^layers\.\d+\.attention\.(bias|masked_bias|rotary_emb\.inv_freq)$/, ...(cfg.tieWordEmbeddings ? [/^embed_out\.weight$/] : [])],
  parameterShapes: neoxParameterShapes,
  modules: neoxModules,
};
