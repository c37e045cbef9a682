/**
 * GPT-2 as Hugging Face's GPT2LMHeadModel computes it (pre-LayerNorm blocks, gelu_new, tied LM
 * head), with a hand-written backward pass. The backward pass only propagates activation
 * gradients, down to the lowest MLP, and captures for every MLP matrix what EK-FAC needs:
 *
 *   block:  u = LN2(x);  h = u Wfc + bfc;  act = gelu(h);  m = act Wproj + bproj;  x' = x + m
 *   c_fc:   a = [u, 1],   g = dL/dh
 *   c_proj: a = [act, 1], g = dL/dm
 *
 * Every matrix product is laid out as (rows x in)(in x out) with pre-transposed weights: on the
 * wasm backend a transposed operand is 6-15x slower.
 */
import { tf, tidy } from "../backend/backend.js";
import type { Batch } from "./batch.js";
import type { Gpt2Config } from "./config.js";
import type { CausalLM, ForwardPass, ModuleCapture, TrackedModule } from "./model.js";
import { batchedMatMul } from "./ops.js";

type T1 = tf.Tensor1D;
type T2 = tf.Tensor2D;

/** y = x W + b, with W in Conv1D layout [in, out] and its transpose kept for the backward pass. */
interface Linear {
  w: T2;
  wT: T2;
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
  wte: T2;
  /** The tied LM head in vocabulary blocks (see HEAD_BLOCK). */
  head: { columns: T2[]; rows: T2[] };
  wpe: T2;
  blocks: Block[];
  lnF: Norm;
}

/** Parameter names (without `transformer.`) and shapes of a GPT-2 checkpoint. */
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

/** Builds the parameter tensors from float32 arrays named as in gpt2ParameterShapes. */
export function gpt2Params(cfg: Gpt2Config, get: (name: string) => Float32Array): Gpt2Params {
  const shapes = gpt2ParameterShapes(cfg);
  return gpt2ParamsFromTensors(cfg, (name) => tf.tensor(get(name), shapes.get(name)));
}

/**
 * Builds the parameters from tensors named as in gpt2ParameterShapes, adding the transposed
 * copies the backward pass uses. Training calls it inside a gradient tape with tf.Variables, so
 * that gradients flow through the transposes to the variables.
 */
export function gpt2ParamsFromTensors(cfg: Gpt2Config, get: (name: string) => tf.Tensor): Gpt2Params {
  const t2 = (name: string) => get(name) as T2;
  const t1 = (name: string) => get(name) as T1;
  const linear = (name: string): Linear => {
    const w = t2(`${name}.weight`);
    return { w, wT: tf.transpose(w), b: t1(`${name}.bias`) };
  };
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

/** wte^T in column blocks ([C, <=HEAD_BLOCK] each) and wte in the matching row blocks. */
function headBlocks(wte: T2): { columns: T2[]; rows: T2[] } {
  const V = wte.shape[0];
  const sizes = Array.from({ length: Math.ceil(V / HEAD_BLOCK) }, (_, i) => Math.min(HEAD_BLOCK, V - i * HEAD_BLOCK));
  const rows = sizes.length === 1 ? [wte] : (tf.split(wte, sizes, 0) as T2[]);
  return { rows, columns: rows.map((r) => tf.transpose(r)) };
}

/** logits = x wte^T, block by block. */
function headForward(x: T2, head: Gpt2Params["head"]): T2 {
  const blocks = head.columns.map((c): T2 => tf.matMul(x, c));
  return blocks.length === 1 ? blocks[0] : tf.concat(blocks, 1);
}

/**
 * dL/dx = dlogits wte, summing the products of matching vocabulary blocks. The blocks of the
 * row-major [rows, V] gradient are cut in JS: the backend's Slice of a column block costs half
 * as much as the block's product.
 */
function headBackward(dlogits: Float32Array, rows: number, head: Gpt2Params["head"]): T2 {
  if (head.rows.length === 1) return tf.matMul<T2>(tf.tensor2d(dlogits, [rows, head.rows[0].shape[0]]), head.rows[0]);
  const V = dlogits.length / rows;
  let start = 0;
  return tf.addN<T2>(
    head.rows.map((r): T2 => {
      const width = r.shape[0];
      const block = new Float32Array(rows * width);
      for (let i = 0; i < rows; i++) block.set(dlogits.subarray(i * V + start, i * V + start + width), i * width);
      start += width;
      return tf.matMul(tf.tensor2d(block, [rows, width]), r);
    }),
  );
}

interface NormSaved {
  xhat: T2;
  rstd: T2;
}
function layerNorm(x: T2, p: Norm, eps: number): { y: T2; saved: NormSaved } {
  const { mean, variance } = tf.moments(x, -1, true);
  const rstd = tf.rsqrt(tf.add(variance, eps)) as T2;
  const xhat = tf.mul(tf.sub(x, mean), rstd) as T2;
  return { y: tf.add(tf.mul(xhat, p.gain), p.bias), saved: { xhat, rstd } };
}
/** dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), with dxhat = dy * gain. */
function layerNormBackward(dy: T2, s: NormSaved, p: Norm): T2 {
  const dxhat = tf.mul(dy, p.gain);
  const meanD = tf.mean(dxhat, -1, true);
  const meanDx = tf.mean(tf.mul(dxhat, s.xhat), -1, true);
  return tf.mul(s.rstd, tf.sub(tf.sub(dxhat, meanD), tf.mul(s.xhat, meanDx)));
}

// gelu_new: 0.5 h (1 + tanh(z)), z = sqrt(2/pi) (h + 0.044715 h^3), computed as h sigmoid(2z) (the
// same function): wasm's Sigmoid runs through XNNPACK, 8x faster than its scalar Tanh.
const GELU_SCALE = Math.sqrt(2 / Math.PI);
const GELU_CUBIC = 0.044715;
function gelu(h: T2): { y: T2; sigmoid: T2 } {
  const s = tf.sigmoid(tf.mul(2 * GELU_SCALE, tf.add(h, tf.mul(GELU_CUBIC, tf.mul(h, tf.mul(h, h)))))) as T2;
  return { y: tf.mul(h, s), sigmoid: s };
}
/** d gelu / dh = s + 2 h s (1 - s) dz/dh, with s = sigmoid(2z). */
function geluBackward(dy: T2, h: T2, s: T2): T2 {
  const dInner = tf.mul(GELU_SCALE, tf.add(1, tf.mul(3 * GELU_CUBIC, tf.mul(h, h))));
  const grad = tf.add(s, tf.mul(tf.mul(tf.mul(2, h), tf.mul(s, tf.sub(1, s))), dInner));
  return tf.mul(dy, grad);
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
const transposeLast = (x: tf.Tensor3D): tf.Tensor3D => tf.transpose(x, [0, 2, 1]);

interface AttentionSaved {
  q: tf.Tensor3D;
  kT: tf.Tensor3D;
  vT: tf.Tensor3D;
  probs: tf.Tensor3D;
}

/** Causal self-attention: softmax(q k^T / sqrt(D) + mask) v, all heads of all sequences. */
function attention(qkv: T2, batch: Batch, heads: number, causalMask: T2): { y: T2; saved: AttentionSaved } {
  const C = qkv.shape[1] / 3;
  const [qAll, kAll, vAll] = tf.split(qkv, 3, 1) as [T2, T2, T2];
  const q = splitHeads(qAll, batch.size, batch.length, heads);
  const k = splitHeads(kAll, batch.size, batch.length, heads);
  const v = splitHeads(vAll, batch.size, batch.length, heads);
  const kT = transposeLast(k);
  const scores = tf.add(tf.mul(batchedMatMul(q, kT), 1 / Math.sqrt(C / heads)), causalMask);
  const probs = tf.softmax(scores) as tf.Tensor3D;
  const y = mergeHeads(batchedMatMul(probs, v), batch.size, heads);
  return { y, saved: { q, kT, vT: transposeLast(v), probs } };
}

/** Gradient with respect to qkv, given dL/dy of the merged heads. */
function attentionBackward(dy: T2, s: AttentionSaved, batch: Batch, heads: number): T2 {
  const dyh = splitHeads(dy, batch.size, batch.length, heads);
  const D = dy.shape[1] / heads;
  const dProbs = batchedMatMul(dyh, s.vT);
  const dv = batchedMatMul(transposeLast(s.probs), dyh);
  // softmax backward: ds = p * (dp - sum(dp * p)), then the 1/sqrt(D) scale
  const dScores: tf.Tensor3D = tf.mul(tf.mul(s.probs, tf.sub(dProbs, tf.sum(tf.mul(dProbs, s.probs), -1, true))), 1 / Math.sqrt(D));
  const dq = batchedMatMul(dScores, transposeLast(s.kT));
  const dk = batchedMatMul(transposeLast(dScores), s.q);
  const merge = (t: tf.Tensor3D) => mergeHeads(t, batch.size, heads);
  return tf.concat([merge(dq), merge(dk), merge(dv)], 1);
}

interface BlockSaved {
  ln1: NormSaved;
  attn: AttentionSaved;
  ln2: NormSaved;
  /** LN2 output: the input of c_fc. */
  u: T2;
  /** c_fc pre-activation. */
  h: T2;
  /** sigmoid(2z) of gelu. */
  sigmoid: T2;
  /** gelu output: the input of c_proj. */
  act: T2;
}

/** The tracked matrices of a GPT-2: each block's c_fc and c_proj. */
export function gpt2Modules(config: Gpt2Config): TrackedModule[] {
  const C = config.nEmbd;
  return Array.from({ length: config.nLayer }, (_, layer) => [
    { name: `h.${layer}.mlp.c_fc`, layer, inFeatures: C, outFeatures: config.nInner },
    { name: `h.${layer}.mlp.c_proj`, layer, inFeatures: config.nInner, outFeatures: C },
  ]).flat();
}

export class Gpt2 implements CausalLM {
  readonly modules: readonly TrackedModule[];

  constructor(
    readonly config: Gpt2Config,
    private readonly params: Gpt2Params,
  ) {
    this.modules = gpt2Modules(config);
  }

  forward(batch: Batch, lossRows?: Int32Array): ForwardPass {
    const { params, config } = this;
    const eps = config.layerNormEps;
    const T = batch.length;
    // One tidy per block: only the residual stream and what backward needs outlive a block.
    let x = tf.tidy(() => {
      const positions = tf.tile(tf.range(0, T, 1, "int32"), [batch.size]);
      return tf.add(tf.gather(params.wte, tf.tensor1d(batch.ids, "int32")), tf.gather(params.wpe, positions)) as T2;
    });
    const causalMask = tf.tidy(() => tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([T, T]), -1, 0)), -1e9) as T2);
    const saved: BlockSaved[] = [];
    for (const block of params.blocks) {
      const input = x;
      const out = tidy(() => {
        const ln1 = layerNorm(input, block.ln1, eps);
        const attn = attention(linear(ln1.y, block.attn), batch, config.nHead, causalMask);
        const mid = tf.add(input, linear(attn.y, block.attnProj)) as T2;
        const ln2 = layerNorm(mid, block.ln2, eps);
        const h = linear(ln2.y, block.fc);
        const { y: act, sigmoid } = gelu(h);
        const next = tf.add(mid, linear(act, block.proj)) as T2;
        return { next, saved: { ln1: ln1.saved, attn: attn.saved, ln2: ln2.saved, u: ln2.y, h, sigmoid, act } };
      });
      input.dispose();
      x = out.next;
      saved.push(out.saved);
    }
    causalMask.dispose();
    const final = tidy(() => {
      const { y, saved: lnF } = layerNorm(x, params.lnF, eps);
      const headInput = lossRows ? tf.gather(y, tf.tensor1d(lossRows, "int32")) : y;
      return { logits: headForward(headInput, params.head), lnF };
    });
    x.dispose();
    const release = () => tf.dispose(tensorsOf([saved, final.lnF]));
    return {
      logits: final.logits,
      dispose: release,
      backward: (dlogits) => {
        try {
          return this.backward(dlogits, batch, lossRows, saved, final.lnF);
        } finally {
          release();
        }
      },
    };
  }

  private backward(dlogits: Float32Array, batch: Batch, lossRows: Int32Array | undefined, saved: BlockSaved[], lnF: NormSaved): ModuleCapture[] {
    const { params, config } = this;
    const captures: ModuleCapture[] = [];
    const rows = batch.size * batch.length;
    const mask = tf.tensor2d(batch.mask, [batch.mask.length, 1]);
    const withOne = (t: T2) => tf.mul(tf.concat([t, tf.onesLike(tf.slice(t, [0, 0], [-1, 1]))], 1), mask) as T2;
    // dL/dx of the residual stream, from the top down; one tidy per block as in forward.
    let dx = tf.tidy(() => {
      const dHead = headBackward(dlogits, lossRows?.length ?? rows, params.head);
      return layerNormBackward(lossRows ? spreadRows(dHead, lossRows, rows) : dHead, lnF, params.lnF);
    });
    for (let i = params.blocks.length - 1; i >= 0; i--) {
      const block = params.blocks[i];
      const s = saved[i];
      const [fcModule, projModule] = [this.modules[2 * i], this.modules[2 * i + 1]];
      const dOut = dx;
      const step = tidy(() => {
        const dh = geluBackward(tf.matMul(dOut, block.proj.wT), s.h, s.sigmoid);
        const fc = { a: withOne(s.u), g: dh };
        const proj = { a: withOne(s.act), g: tf.clone(dOut) };
        if (i === 0) return { fc, proj }; // nothing below the lowest MLP is tracked
        const dMid = tf.add(dOut, layerNormBackward(tf.matMul(dh, block.fc.wT), s.ln2, block.ln2)) as T2;
        const dAttnY: T2 = tf.matMul(dMid, block.attnProj.wT);
        const dqkv = attentionBackward(dAttnY, s.attn, batch, config.nHead);
        return { fc, proj, dIn: tf.add(dMid, layerNormBackward(tf.matMul(dqkv, block.attn.wT), s.ln1, block.ln1)) as T2 };
      });
      dOut.dispose();
      captures.unshift({ module: fcModule, ...step.fc }, { module: projModule, ...step.proj });
      if (step.dIn) dx = step.dIn;
    }
    mask.dispose();
    return captures;
  }

  dispose(): void {
    tf.dispose(tensorsOf([this.params]));
  }
}

/** The [rows.length, C] gradient of the loss rows placed at their rows of a [total, C] zero matrix. */
function spreadRows(d: T2, lossRows: Int32Array, total: number): T2 {
  // Row r takes slot k when lossRows[k] = r, else the appended zero row.
  const slot = new Int32Array(total).fill(lossRows.length);
  lossRows.forEach((r, k) => (slot[r] = k));
  return tf.gather(tf.concat([d, tf.zeros([1, d.shape[1]])], 0), tf.tensor1d(slot, "int32")) as T2;
}

/** Every tensor inside a nested structure of objects and arrays. */
function tensorsOf(value: unknown): tf.Tensor[] {
  if (value instanceof tf.Tensor) return [value];
  if (Array.isArray(value)) return value.flatMap(tensorsOf);
  if (typeof value === "object" && value !== null) return Object.values(value).flatMap(tensorsOf);
  return [];
}
