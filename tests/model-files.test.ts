/** Model folders as people have them: sharded, half precision, and broken in the usual ways. */
import { copyFile, cp, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeBatch } from "../src/model/batch.js";
import { loadModel } from "../src/model/load.js";
import type { CausalLM } from "../src/model/model.js";
import { readSafetensors, tensorAsFloat32 } from "../src/safetensors/read.js";
import { type TensorToWrite, encodeSafetensors } from "../src/safetensors/write.js";
import { maxRelError } from "./helpers/compare.js";
import { refusal } from "./helpers/refusal.js";
import { fixturePath, fixtureTrain } from "../support/fixtures.js";
import { tempDir } from "../src/util/temp-dir.js";

const sequence = fixtureTrain("gpt2-tiny")[0].tokens;

/** The logits of the fixture's first sequence; releases the model. */
async function logits(model: CausalLM): Promise<Float32Array> {
  try {
    return await model.logits(makeBatch([sequence], model.config.contextLength, model.config.vocabSize));
  } finally {
    await model.release();
  }
}

/** The fixture's tensors, converted to `dtype`. */
async function fixtureTensors(dtype: TensorToWrite["dtype"]): Promise<Record<string, TensorToWrite>> {
  const st = await readSafetensors(fixturePath("gpt2-tiny", "model.safetensors"));
  return Object.fromEntries([...st.tensors].map(([name, info]) => [name, { dtype, shape: info.shape, data: tensorAsFloat32(st, name) }]));
}

describe("loading Hugging Face GPT-2 folders", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let reference: Float32Array;

  /** A copy of the fixture folder without its weights, to fill in per test. */
  async function folder(name: string): Promise<string> {
    const dir = path.join(tmp.dir, name);
    await cp(fixturePath("gpt2-tiny"), dir, { recursive: true, filter: (src) => !src.endsWith(".safetensors") || src.endsWith("gpt2-tiny") });
    return dir;
  }

  beforeAll(async () => {
    tmp = await tempDir();
    const model = await loadModel(fixturePath("gpt2-tiny"));
    reference = await logits(model);
  });
  afterAll(() => tmp.remove());

  /** A folder whose index lists the fixture's tensors in two shards, of which only those `write` keeps are written. */
  async function shardedFolder(name: string, write: (file: string, names: string[]) => string[]): Promise<string> {
    const dir = await folder(name);
    const tensors = Object.entries(await fixtureTensors("F32"));
    const weightMap: Record<string, string> = {};
    for (const [i, shard] of [tensors.slice(0, 10), tensors.slice(10)].entries()) {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      const kept = write(
        file,
        shard.map(([n]) => n),
      );
      if (kept.length > 0) await writeFile(path.join(dir, file), encodeSafetensors(Object.fromEntries(shard.filter(([n]) => kept.includes(n)))));
      for (const [n] of shard) weightMap[n] = file;
    }
    await writeFile(path.join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    return dir;
  }

  it("reads a sharded checkpoint through model.safetensors.index.json", async () => {
    const model = await loadModel(await shardedFolder("sharded", (_, names) => names));
    expect(maxRelError(await logits(model), reference)).toBe(0);
  });

  it("refuses a sharded checkpoint whose index lists a shard that is missing", async () => {
    const dir = await shardedFolder("missing-shard", (file, names) => (file.startsWith("model-00002") ? [] : names));
    const message = (await refusal(loadModel(dir))).message;
    const secondShard = Object.keys(await fixtureTensors("F32")).slice(10);
    expect(message).toBe(
      `${path.join(dir, "model.safetensors.index.json")}: lists shard model-00002-of-00002.safetensors (holding ${secondShard.length} tensor(s), ` +
        `e.g. ${secondShard[0]}), but ${path.join(dir, "model-00002-of-00002.safetensors")} is missing`,
    );
  });

  it("refuses a shard that lacks a tensor its index says it holds", async () => {
    let dropped = "";
    const dir = await shardedFolder("short-shard", (file, names) => {
      if (file.startsWith("model-00001")) dropped = names[names.length - 1];
      return file.startsWith("model-00001") ? names.slice(0, -1) : names;
    });
    await expect(loadModel(dir)).rejects.toThrow(`model-00001-of-00002.safetensors: the shard index says it holds ${dropped}, but it does not`);
  });

  it.each([
    ["F16", 2e-3],
    ["BF16", 2e-2],
  ] as const)("reads %s tensors (logits within the format's rounding)", async (dtype, tolerance) => {
    const dir = await folder(dtype);
    await writeFile(path.join(dir, "model.safetensors"), encodeSafetensors(await fixtureTensors(dtype)));
    const model = await loadModel(dir);
    const error = maxRelError(await logits(model), reference);
    expect(error).toBeGreaterThan(0);
    expect(error).toBeLessThan(tolerance);
    await model.release();
  });

  describe("refuses broken folders, naming the file and the problem", () => {
    it("missing config.json", async () => {
      const dir = await folder("no-config");
      await copyFile(fixturePath("gpt2-tiny", "model.safetensors"), path.join(dir, "model.safetensors"));
      await rm(path.join(dir, "config.json"));
      await expect(loadModel(dir)).rejects.toThrow(`${path.join(dir, "config.json")}: missing`);
    });

    it("malformed config.json", async () => {
      const dir = await folder("bad-config");
      await writeFile(path.join(dir, "config.json"), "{ not json");
      await expect(loadModel(dir)).rejects.toThrow(new RegExp(`${path.join(dir, "config.json")}: malformed JSON`.replace(/[.]/g, "\\.")));
    });

    it("an unsupported architecture, listing the supported ones", async () => {
      const dir = await folder("falcon");
      const config = JSON.parse(await readFile(path.join(dir, "config.json"), "utf8"));
      await writeFile(path.join(dir, "config.json"), JSON.stringify({ ...config, architectures: ["FalconForCausalLM"], model_type: "falcon" }));
      await expect(loadModel(dir)).rejects.toThrow(
        /config\.json: architecture FalconForCausalLM is not supported \(supported: GPT2LMHeadModel, GPTNeoXForCausalLM, LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM\)/,
      );
    });

    it("a safetensors header that claims more bytes than the file has", async () => {
      const dir = await folder("lying-header");
      const bytes = await readFile(fixturePath("gpt2-tiny", "model.safetensors"));
      await writeFile(path.join(dir, "model.safetensors"), bytes.subarray(0, bytes.length - 1000));
      await expect(loadModel(dir)).rejects.toThrow(/model\.safetensors: tensor .* ends at byte \d+ of the data section, which has only \d+ bytes/);
    });

    it("a tensor whose shape does not match config.json", async () => {
      const dir = await folder("wrong-shape");
      const tensors = await fixtureTensors("F32");
      const fc = tensors["transformer.h.0.mlp.c_fc.weight"];
      tensors["transformer.h.0.mlp.c_fc.weight"] = { ...fc, shape: [64, 64] };
      await writeFile(path.join(dir, "model.safetensors"), encodeSafetensors(tensors));
      await expect(loadModel(dir)).rejects.toThrow(
        /model\.safetensors: tensor transformer\.h\.0\.mlp\.c_fc\.weight has shape \[64, 64\], expected \[32, 128\]/,
      );
    });

    it("token ids outside the vocabulary", async () => {
      const model = await loadModel(fixturePath("gpt2-tiny"));
      expect(() => makeBatch([[1, 2, 50257]], 64, model.config.vocabSize)).toThrow(/token id 50257 at position 2 is outside the vocabulary \(0\.\.50256\)/);
      await model.release();
    });
  });
});

describe("loading GPT-NeoX and Llama-family checkpoints as they are published", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    tmp = await tempDir();
  });
  afterAll(() => tmp.remove());

  /** A copy of a fixture folder whose checkpoint holds the fixture's tensors and `extra`, all F32 but where given. */
  async function withTensors(fixture: string, name: string, extra: (tensors: Record<string, TensorToWrite>) => Record<string, TensorToWrite>): Promise<string> {
    const dir = path.join(tmp.dir, name);
    await cp(fixturePath(fixture), dir, { recursive: true });
    const st = await readSafetensors(fixturePath(fixture, "model.safetensors"));
    const tensors = Object.fromEntries([...st.tensors].map(([n, info]) => [n, { dtype: "F32" as const, shape: info.shape, data: tensorAsFloat32(st, n) }]));
    await writeFile(path.join(dir, "model.safetensors"), encodeSafetensors(extra(tensors)));
    return dir;
  }

  /** The logits of a fixture's first sequence from a folder. */
  async function folderLogits(dir: string, fixture: string): Promise<Float32Array> {
    const model = await loadModel(dir);
    try {
      return await model.logits(makeBatch([fixtureTrain(fixture)[0].tokens], model.config.contextLength, model.config.vocabSize));
    } finally {
      await model.release();
    }
  }

  it("ignores the buffers older Pythia checkpoints carry (attention.bias as BOOL, masked_bias, rotary inv_freq)", async () => {
    const dir = await withTensors("pythia-tiny", "pythia-buffers", (tensors) => {
      const out = { ...tensors };
      for (const layer of [0, 1]) {
        const p = `gpt_neox.layers.${layer}.attention`;
        out[`${p}.bias`] = { dtype: "BOOL", shape: [1, 1, 64, 64], data: Array.from({ length: 64 * 64 }, (_, i) => (i % 64 <= Math.floor(i / 64) ? 1 : 0)) };
        out[`${p}.masked_bias`] = { dtype: "F32", shape: [], data: [-1e9] };
        out[`${p}.rotary_emb.inv_freq`] = { dtype: "F32", shape: [2], data: [1, 0.01] };
      }
      return out;
    });
    expect(maxRelError(await folderLogits(dir, "pythia-tiny"), await folderLogits(fixturePath("pythia-tiny"), "pythia-tiny"))).toBe(0);
  });

  it("ignores an LM head stored beside the embedding it is tied to (Qwen2), and reads F16 weights", async () => {
    const dir = await withTensors("qwen2-tiny", "qwen2-head", (tensors) => {
      const half = Object.fromEntries(Object.entries(tensors).map(([n, t]) => [n, { ...t, dtype: "F16" as const }]));
      return { ...half, "lm_head.weight": { ...tensors["model.embed_tokens.weight"], data: new Float32Array(32000 * 32) } };
    });
    const error = maxRelError(await folderLogits(dir, "qwen2-tiny"), await folderLogits(fixturePath("qwen2-tiny"), "qwen2-tiny"));
    expect(error).toBeGreaterThan(0);
    expect(error).toBeLessThan(2e-3);
  });

  it("refuses an untied checkpoint without its LM head, naming it", async () => {
    const dir = await withTensors("llama-tiny", "llama-headless", ({ "lm_head.weight": _, ...rest }) => rest);
    await expect(loadModel(dir)).rejects.toThrow(/checkpoint lacks 1 tensor\(s\) the config requires: lm_head\.weight/);
  });
});
