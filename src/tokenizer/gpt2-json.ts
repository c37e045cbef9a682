import type { Gpt2Bpe } from "./gpt2-files.js";

/** GPT-2's only special token: end of text, also used as bos and unk. */
export const GPT2_EOS_TOKEN = "<|endoftext|>";

const addedTokenFlags = { single_word: false, lstrip: false, rstrip: false, normalized: true };

/**
 * The tokenizer.json that Hugging Face's `tokenizers` writes for GPT-2 (GPT2TokenizerFast), built
 * from vocab.json + merges.txt. Merges use the "left right" string form, which every `tokenizers`
 * release reads (the newer [left, right] form is unknown to releases before 0.20).
 */
export function gpt2TokenizerJson({ vocab, merges }: Gpt2Bpe): Record<string, unknown> {
  const eosId = vocab.get(GPT2_EOS_TOKEN);
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: eosId === undefined ? [] : [{ id: eosId, content: GPT2_EOS_TOKEN, ...addedTokenFlags, special: true }],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, add_prefix_space: true, trim_offsets: false },
    decoder: { ...byteLevel, add_prefix_space: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges: merges.map(([left, right]) => `${left} ${right}`),
    },
  };
}

/**
 * tokenizer_config.json as `save_pretrained` writes it for GPT-2, except that
 * clean_up_tokenization_spaces is false so that decoding gives back the exact text.
 */
export function gpt2TokenizerConfig(eosId: number, modelMaxLength: number): Record<string, unknown> {
  return {
    add_bos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: { [String(eosId)]: { content: GPT2_EOS_TOKEN, ...addedTokenFlags, special: true } },
    bos_token: GPT2_EOS_TOKEN,
    clean_up_tokenization_spaces: false,
    eos_token: GPT2_EOS_TOKEN,
    errors: "replace",
    model_max_length: modelMaxLength,
    pad_token: null,
    tokenizer_class: "GPT2Tokenizer",
    unk_token: GPT2_EOS_TOKEN,
  };
}

export function gpt2SpecialTokensMap(): Record<string, unknown> {
  const token = { content: GPT2_EOS_TOKEN, ...addedTokenFlags };
  return { bos_token: token, eos_token: token, unk_token: token };
}
