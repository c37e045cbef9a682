/**
 * The Llama family's architecture (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM) as
 * data: the parameters of a checkpoint, nn.Linear weights [out, in], and the SwiGLU MLP matrices
 * influence tracks (no biases). The ONNX graphs (onnx/llama.ts) read their weights by these names.
 */
import type { LlamaConfig } from "./config.js";
import type { ArchitectureLayout, TrackedModule } from "./model.js";

/** Parameter names (without `model.`) and shapes of a Llama-family checkpoint. */
export function llamaParameterShapes(cfg: LlamaConfig): Map<string, number[]> {
  const [C, I] = [cfg.nEmbd, cfg.nInner];
  const [q, kv] = [cfg.nHead * cfg.headDim, cfg.nKvHead * cfg.headDim];
  const shapes = new Map<string, number[]>([
    ["embed_tokens.weight", [cfg.vocabSize, C]],
    ["norm.weight", [C]],
  ]);
  if (!cfg.tieWordEmbeddings) shapes.set("lm_head.weight", [cfg.vocabSize, C]);
  for (let i = 0; i < cfg.nLayer; i++) {
    const p = `layers.${i}.`;
    shapes.set(`${p}input_layernorm.weight`, [C]);
    shapes.set(`${p}post_attention_layernorm.weight`, [C]);
    const linears: Array<[string, number, number, boolean]> = [
      ["self_attn.q_proj", C, q, cfg.qkvBias],
      ["self_attn.k_proj", C, kv, cfg.qkvBias],
      ["self_attn.v_proj", C, kv, cfg.qkvBias],
      ["self_attn.o_proj", q, C, cfg.outputBias],
      ["mlp.gate_proj", C, I, false],
      ["mlp.up_proj", C, I, false],
      ["mlp.down_proj", I, C, false],
    ];
    for (const [name, fanIn, fanOut, bias] of linears) {
      shapes.set(`${p}${name}.weight`, [fanOut, fanIn]);
      if (bias) shapes.set(`${p}${name}.bias`, [fanOut]);
    }
  }
  return shapes;
}

/** The tracked matrices of a Llama-family model: each layer's gate_proj, up_proj (which reads gate_proj's input) and down_proj. */
export function llamaModules(config: LlamaConfig): TrackedModule[] {
  const [C, I] = [config.nEmbd, config.nInner];
  return Array.from({ length: config.nLayer }, (_, layer) => [
    { name: `layers.${layer}.mlp.gate_proj`, layer, inFeatures: C, outFeatures: I, bias: false },
    { name: `layers.${layer}.mlp.up_proj`, layer, inFeatures: C, outFeatures: I, bias: false, sameInputAs: `layers.${layer}.mlp.gate_proj` },
    { name: `layers.${layer}.mlp.down_proj`, layer, inFeatures: I, outFeatures: C, bias: false },
  ]).flat();
}

export const LLAMA_LAYOUT: ArchitectureLayout<LlamaConfig> = {
  prefix: "model.",
  // The rotary frequencies some older checkpoints carry as a buffer, and an LM head tied to embed_tokens.
  ignored: (cfg) => [/^layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/, ...(cfg.tieWordEmbeddings ? [/^lm_head\.weight$/] : [])],
  parameterShapes: llamaParameterShapes,
  modules: llamaModules,
};
