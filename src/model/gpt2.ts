/**
 * GPT-2's forward pass on tfjs, as Hugging Face's GPT2LMHeadModel computes it (pre-LayerNorm
 * blocks, gelu_new, tied LM head), for the demo model's trainer only (src/training/), which
 * differentiates it with tfjs autodiff until training moves to the ONNX Runtime engine. Every
 * influence computation runs the graphs of onnx/gpt2.ts.
 */
import { tf } from "../backend/backend.js";
import type { Batch } from "./batch.js";
import type { Gpt2Config } from "./config.js";
import { gpt2ParameterShapes } from "./gpt2-architecture.js";
import { batchedMatMul } from "./ops.js";

/** The trainer's imports (src/training/, scripts/train-demo.ts) name this module. */
export { gpt2ParameterShapes };
type T1 = tf.Tensor1D;
type T2 = tf.Tensor2D;

/** y = x W + b, with W in Conv1D layout [in, out]. */
interface Linear {
  w: T2;
  b: T1;
}
interface Norm {
  gain: T1;
  bias: T1;
}
interface Block {
  ln1: Norm;
  attn: Linear;
  attnProj: Linear;
  ln2: Norm;
  fc: Linear;
  proj: Linear;
}
export interface Gpt2Params {
  /** wte^T in vocabulary blocks of the tied LM head (see HEAD_BLOCK). */
  head: T2[];
  wte: T2;
  wpe: T2;
  blocks: Block[];
  lnF: Norm;
}

/** Builds the parameter tensors from float32 arrays named as in gpt2ParameterShapes. */
export function gpt2Params(cfg: Gpt2Config, get: (name: string) => Float32Array): Gpt2Params {
  const shapes = gpt2ParameterShapes(cfg);
  return gpt2ParamsFromTensors(cfg, (name) => tf.tensor(get(name), shapes.get(name)));
}

/**
 * Builds the parameters from tensors named as in gpt2ParameterShapes, adding the head's transposed
 * blocks. Training calls it inside a gradient tape with tf.Variables, so that gradients flow
 * through the transposes to the variables.
 */
export function gpt2ParamsFromTensors(cfg: Gpt2Config, get: (name: string) => tf.Tensor): Gpt2Params {
  const t2 = (name: string) => get(name) as T2;
  const t1 = (name: string) => get(name) as T1;
  const linear = (name: string): Linear => ({ w: t2(`${name}.weight`), b: t1(`${name}.bias`) });
  const norm = (name: string): Norm => ({ gain: t1(`${name}.weight`), bias: t1(`${name}.bias`) });
  const wte = t2("wte.weight");
  return {
    wte,
    head: headBlocks(wte),
    wpe: t2("wpe.weight"),
    lnF: norm("ln_f"),
    blocks: Array.from({ length: cfg.nLayer }, (_, i) => ({
      ln1: norm(`h.${i}.ln_1`),
      attn: linear(`h.${i}.attn.c_attn`),
      attnProj: linear(`h.${i}.attn.c_proj`),
      ln2: norm(`h.${i}.ln_2`),
      fc: linear(`h.${i}.mlp.c_fc`),
      proj: linear(`h.${i}.mlp.c_proj`),
    })),
  };
}

const linear = (x: T2, l: Linear): T2 => tf.add(tf.matMul(x, l.w), l.b);

/**
 * Vocabulary columns per block of the LM head. XNNPACK (wasm) runs [512, 768] x [768, 50257] at
 * about 10 GFLOP/s but each [768, 4096] block at 26: products over the whole vocabulary are
 * split into blocks.
 */
const HEAD_BLOCK = 4096;

/** wte^T in column blocks, [C, <=HEAD_BLOCK] each. */
function headBlocks(wte: T2): T2[] {
  const V = wte.shape[0];
  const sizes = Array.from({ length: Math.ceil(V / HEAD_BLOCK) }, (_, i) => Math.min(HEAD_BLOCK, V - i * HEAD_BLOCK));
  const rows = sizes.length === 1 ? [wte] : (tf.split(wte, sizes, 0) as T2[]);
  return rows.map((r) => tf.transpose(r));
}

/** logits = x wte^T, block by block. */
function headForward(x: T2, head: T2[]): T2 {
  const blocks = head.map((c): T2 => tf.matMul(x, c));
  return blocks.length === 1 ? blocks[0] : tf.concat(blocks, 1);
}

function layerNorm(x: T2, p: Norm, eps: number): T2 {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), p.gain), p.bias);
}

// gelu_new: 0.5 h (1 + tanh(z)), z = sqrt(2/pi) (h + 0.044715 h^3), computed as h sigmoid(2z) (the
// same function): wasm's Sigmoid runs through XNNPACK, 8x faster than its scalar Tanh.
const GELU_SCALE = Math.sqrt(2 / Math.PI);
const GELU_CUBIC = 0.044715;
function gelu(h: T2): T2 {
  return tf.mul(h, tf.sigmoid(tf.mul(2 * GELU_SCALE, tf.add(h, tf.mul(GELU_CUBIC, tf.mul(h, tf.mul(h, h)))))));
}

/** Heads of all sequences as [batch * heads, T, D] slices of the flattened [B*T, C] activations. */
function splitHeads(x: T2, batch: number, length: number, heads: number): tf.Tensor3D {
  const D = x.shape[1] / heads;
  return tf.reshape(tf.transpose(tf.reshape(x, [batch, length, heads, D]), [0, 2, 1, 3]), [batch * heads, length, D]);
}
function mergeHeads(x: tf.Tensor3D, batch: number, heads: number): T2 {
  const [, T, D] = x.shape;
  return tf.reshape(tf.transpose(tf.reshape(x, [batch, heads, T, D]), [0, 2, 1, 3]), [batch * T, heads * D]);
}

/** Causal self-attention: softmax(q k^T / sqrt(D) + mask) v, all heads of all sequences. */
function attention(qkv: T2, batch: Batch, heads: number, causalMask: T2): T2 {
  const C = qkv.shape[1] / 3;
  const [q, k, v] = (tf.split(qkv, 3, 1) as [T2, T2, T2]).map((x) => splitHeads(x, batch.size, batch.length, heads));
  const scores = tf.add(tf.mul(batchedMatMul(q, tf.transpose(k, [0, 2, 1])), 1 / Math.sqrt(C / heads)), causalMask);
  return mergeHeads(batchedMatMul(tf.softmax(scores) as tf.Tensor3D, v), batch.size, heads);
}

export class Gpt2 {
  constructor(
    readonly config: Gpt2Config,
    private readonly params: Gpt2Params,
  ) {}

  /** logits [B*T, V] of every row of the flattened, right-padded batch; call inside a tidy or a gradient tape. */
  forward(batch: Batch): { logits: T2 } {
    const { params, config } = this;
    const eps = config.layerNormEps;
    const T = batch.length;
    const positions = tf.tile(tf.range(0, T, 1, "int32"), [batch.size]);
    let x = tf.add(tf.gather(params.wte, tf.tensor1d(batch.ids, "int32")), tf.gather(params.wpe, positions)) as T2;
    const causalMask = tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([T, T]), -1, 0)), -1e9) as T2;
    for (const block of params.blocks) {
      const mid = tf.add(x, linear(attention(linear(layerNorm(x, block.ln1, eps), block.attn), batch, config.nHead, causalMask), block.attnProj)) as T2;
      x = tf.add(mid, linear(gelu(linear(layerNorm(mid, block.ln2, eps), block.fc)), block.proj)) as T2;
    }
    return { logits: headForward(layerNorm(x, params.lnF, eps), params.head) };
  }

  dispose(): void {
    const { params } = this;
    const linears = params.blocks.flatMap((b) => [b.attn, b.attnProj, b.fc, b.proj]).flatMap((l) => [l.w, l.b]);
    const norms = [params.lnF, ...params.blocks.flatMap((b) => [b.ln1, b.ln2])].flatMap((n) => [n.gain, n.bias]);
    tf.dispose([params.wte, params.wpe, ...params.head, ...linears, ...norms]);
  }
}
