/** Every architecture's layout (parameters, tracked modules, checkpoint buffers), found by a config's architecture. */
import type { ModelConfig } from "./config.js";
import { GPT2_LAYOUT } from "./gpt2-architecture.js";
import { LLAMA_LAYOUT } from "./llama-architecture.js";
import type { ArchitectureLayout } from "./model.js";
import { NEOX_LAYOUT } from "./neox-architecture.js";

/** Each architecture's layout, checked against its own configuration type. */
const LAYOUTS: { [A in ModelConfig["architecture"]]: ArchitectureLayout<Extract<ModelConfig, { architecture: A }>> } = {
  gpt2: GPT2_LAYOUT,
  "gpt-neox": NEOX_LAYOUT,
  llama: LLAMA_LAYOUT,
};

/** The layout of the config's architecture, taking that config. */
export function layoutOf(config: ModelConfig): ArchitectureLayout {
  return LAYOUTS[config.architecture] as ArchitectureLayout;
}
