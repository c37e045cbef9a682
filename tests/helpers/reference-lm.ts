/**
 * GPT-NeoX and Llama-family forward passes on the host in float64, written from Hugging Face's
 * modeling code position by position (no graph, no shared code with src/model/onnx): the reference
 * for configurations the fixtures do not cover (sequential residual, rope_scaling), and for finite
 * differences of the loss.
 */
import type { LlamaConfig, NeoxConfig } from "../../src/model/config.js";
import type { RopeScaling } from "../../src/model/rope.js";

/** Parameters by canonical name (without the base model's prefix). */
export type ReferenceWeights = ReadonlyMap<string, ArrayLike<number>>;

/**
 * A transcription of transformers' _compute_default_rope_parameters, _compute_linear_scaling_rope_parameters
 * and _compute_llama3_parameters (modeling_rope_utils.py).
 */
export function hfInverseFrequencies(dim: number, base: number, scaling: RopeScaling | null): number[] {
  const invFreq = Array.from({ length: dim / 2 }, (_, i) => 1 / base ** ((2 * i) / dim));
  if (scaling === null) return invFreq;
  if (scaling.type === "linear") return invFreq.map((f) => f / scaling.factor);
  const { factor, lowFreqFactor: low_freq_factor, highFreqFactor: high_freq_factor, originalContextLength: old_context_len } = scaling;
  const low_freq_wavelen = old_context_len / low_freq_factor;
  const high_freq_wavelen = old_context_len / high_freq_factor;
  const wavelen = invFreq.map((f) => (2 * Math.PI) / f);
  // inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
  const invFreqLlama = invFreq.map((f, i) => (wavelen[i] > low_freq_wavelen ? f / factor : f));
  const smoothFactor = wavelen.map((w) => (old_context_len / w - low_freq_factor) / (high_freq_factor - low_freq_factor));
  const smoothed = invFreqLlama.map((f, i) => ((1 - smoothFactor[i]) * f) / factor + smoothFactor[i] * f);
  const isMediumFreq = wavelen.map((w) => !(w < high_freq_wavelen) && !(w > low_freq_wavelen));
  return invFreqLlama.map((f, i) => (isMediumFreq[i] ? smoothed[i] : f));
}

type Vec = Float64Array;

function param(w: ReferenceWeights, name: string): ArrayLike<number> {
  const p = w.get(name);
  if (!p) throw new Error(`reference: no parameter ${name}`);
  return p;
}

/** y = W x (+ b), W [out, in] row-major (nn.Linear). */
function affine(w: ReferenceWeights, name: string, x: Vec, bias: boolean): Vec {
  const W = param(w, `${name}.weight`);
  const inW = x.length;
  const out = new Float64Array(W.length / inW);
  const b = bias ? param(w, `${name}.bias`) : undefined;
  for (let o = 0; o < out.length; o++) {
    let s = b ? b[o] : 0;
    for (let i = 0; i < inW; i++) s += W[o * inW + i] * x[i];
    out[o] = s;
  }
  return out;
}

const add = (a: Vec, b: Vec): Vec => a.map((x, i) => x + b[i]);

function layerNorm(x: Vec, gain: ArrayLike<number>, bias: ArrayLike<number>, eps: number): Vec {
  const mean = x.reduce((s, v) => s + v, 0) / x.length;
  const variance = x.reduce((s, v) => s + (v - mean) ** 2, 0) / x.length;
  return x.map((v, i) => ((v - mean) / Math.sqrt(variance + eps)) * gain[i] + bias[i]);
}
function rmsNorm(x: Vec, gain: ArrayLike<number>, eps: number): Vec {
  const ms = x.reduce((s, v) => s + v * v, 0) / x.length;
  return x.map((v, i) => (v / Math.sqrt(ms + eps)) * gain[i]);
}

/** erf by its Maclaurin series (|x| < 3) or continued fraction: float64-accurate, as JS has no Math.erf. */
function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 200 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
      term *= (-x * x) / n;
      sum += term / (2 * n + 1);
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(x) = exp(-x^2) / sqrt(pi) * 1 / (x + 1/2 / (x + 1 / (x + 3/2 / (x + ...))))
  let frac = ax;
  for (let n = 60; n >= 1; n--) frac = ax + n / 2 / frac;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / frac;
  return Math.sign(x) * (1 - erfc);
}
const gelu = (h: number) => 0.5 * h * (1 + erf(h / Math.SQRT2));
const silu = (h: number) => h / (1 + Math.exp(-h));

/** Rotate-half rotary embedding of one head's features at position t, on the first 2 * invFreq.length features. */
function rotate(x: Vec, t: number, invFreq: readonly number[]): Vec {
  const half = invFreq.length;
  const y = Float64Array.from(x);
  for (let i = 0; i < half; i++) {
    const [c, s] = [Math.cos(t * invFreq[i]), Math.sin(t * invFreq[i])];
    y[i] = x[i] * c - x[i + half] * s;
    y[i + half] = x[i + half] * c + x[i] * s;
  }
  return y;
}

/** Causal softmax attention of query head h's rows over key/value head kv's rows; returns [T][D]. */
function attend(q: Vec[], k: Vec[], v: Vec[]): Vec[] {
  const D = q[0].length;
  return q.map((qt, t) => {
    const scores = k.slice(0, t + 1).map((ks) => ks.reduce((s, x, d) => s + x * qt[d], 0) / Math.sqrt(D));
    const max = Math.max(...scores);
    const e = scores.map((s) => Math.exp(s - max));
    const z = e.reduce((a, b) => a + b, 0);
    const out = new Float64Array(D);
    e.forEach((p, s) => v[s].forEach((x, d) => (out[d] += (p / z) * x)));
    return out;
  });
}

/** Heads of every row: rows[t] [H*D] -> [H][T][D]. */
const heads = (rows: Vec[], H: number, D: number): Vec[][] => Array.from({ length: H }, (_, h) => rows.map((r) => r.slice(h * D, (h + 1) * D)));
/** [H][T][D] -> rows[t] [H*D] */
const mergeHeads = (perHead: Vec[][]): Vec[] => perHead[0].map((_, t) => Float64Array.from(perHead.flatMap((h) => Array.from(h[t]))));

function headLogits(w: ReferenceWeights, name: string, x: Vec[]): Vec[] {
  return x.map((row) => affine(w, name, row, false));
}

/** logits [T][V] of one sequence under a GPT-NeoX model. */
export function neoxReferenceLogits(cfg: NeoxConfig, w: ReferenceWeights, tokens: readonly number[]): Vec[] {
  const [C, H] = [cfg.nEmbd, cfg.nHead];
  const D = C / H;
  const invFreq = hfInverseFrequencies(cfg.rotaryDims, cfg.rotaryBase, cfg.ropeScaling);
  const embed = param(w, "embed_in.weight");
  let x: Vec[] = tokens.map((id) => Float64Array.from({ length: C }, (_, c) => embed[id * C + c]));
  for (let i = 0; i < cfg.nLayer; i++) {
    const p = (n: string) => `layers.${i}.${n}`;
    const ln = (rows: Vec[], norm: string) => rows.map((r) => layerNorm(r, param(w, p(`${norm}.weight`)), param(w, p(`${norm}.bias`)), cfg.layerNormEps));
    // query_key_value: per head [q | k | v]
    const qkv = ln(x, "input_layernorm").map((r) => affine(w, p("attention.query_key_value"), r, cfg.attentionBias));
    const perHead = heads(qkv, H, 3 * D).map((rows) => {
      const q = rows.map((r, t) => rotate(r.slice(0, D), t, invFreq));
      const k = rows.map((r, t) => rotate(r.slice(D, 2 * D), t, invFreq));
      return attend(
        q,
        k,
        rows.map((r) => r.slice(2 * D)),
      );
    });
    const attn = mergeHeads(perHead).map((r) => affine(w, p("attention.dense"), r, cfg.attentionBias));
    const mlpIn = cfg.parallelResidual ? x : x.map((r, t) => add(r, attn[t]));
    const mlp = ln(mlpIn, "post_attention_layernorm").map((r) => affine(w, p("mlp.dense_4h_to_h"), affine(w, p("mlp.dense_h_to_4h"), r, true).map(gelu), true));
    x = x.map((r, t) => add(add(r, attn[t]), mlp[t]));
  }
  const final = x.map((r) => layerNorm(r, param(w, "final_layer_norm.weight"), param(w, "final_layer_norm.bias"), cfg.layerNormEps));
  return headLogits(w, cfg.tieWordEmbeddings ? "embed_in" : "embed_out", final);
}

/** logits [T][V] of one sequence under a Llama-family model. */
export function llamaReferenceLogits(cfg: LlamaConfig, w: ReferenceWeights, tokens: readonly number[]): Vec[] {
  const [C, H, Hkv, D] = [cfg.nEmbd, cfg.nHead, cfg.nKvHead, cfg.headDim];
  const invFreq = hfInverseFrequencies(D, cfg.ropeTheta, cfg.ropeScaling);
  const embed = param(w, "embed_tokens.weight");
  let x: Vec[] = tokens.map((id) => Float64Array.from({ length: C }, (_, c) => embed[id * C + c]));
  for (let i = 0; i < cfg.nLayer; i++) {
    const p = (n: string) => `layers.${i}.${n}`;
    const n1 = x.map((r) => rmsNorm(r, param(w, p("input_layernorm.weight")), cfg.rmsNormEps));
    const project = (name: string, bias: boolean, rows: Vec[]) => rows.map((r) => affine(w, p(name), r, bias));
    const rope = (perHead: Vec[][]) => perHead.map((rows) => rows.map((r, t) => rotate(r, t, invFreq)));
    const q = rope(heads(project("self_attn.q_proj", cfg.qkvBias, n1), H, D));
    const k = rope(heads(project("self_attn.k_proj", cfg.qkvBias, n1), Hkv, D));
    const v = heads(project("self_attn.v_proj", cfg.qkvBias, n1), Hkv, D);
    // repeat_kv: query head h reads key/value head floor(h / (H / Hkv))
    const attn = project(
      "self_attn.o_proj",
      cfg.outputBias,
      mergeHeads(q.map((qh, h) => attend(qh, k[Math.floor(h / (H / Hkv))], v[Math.floor(h / (H / Hkv))]))),
    );
    const mid = x.map((r, t) => add(r, attn[t]));
    const n2 = mid.map((r) => rmsNorm(r, param(w, p("post_attention_layernorm.weight")), cfg.rmsNormEps));
    const mlp = n2.map((r) => {
      const up = affine(w, p("mlp.up_proj"), r, false);
      return affine(
        w,
        p("mlp.down_proj"),
        affine(w, p("mlp.gate_proj"), r, false).map((gv, j) => silu(gv) * up[j]),
        false,
      );
    });
    x = mid.map((r, t) => add(r, mlp[t]));
  }
  const final = x.map((r) => rmsNorm(r, param(w, "norm.weight"), cfg.rmsNormEps));
  return headLogits(w, cfg.tieWordEmbeddings ? "embed_tokens" : "lm_head", final);
}

/** The summed next-token loss of a sequence from its logits [T][V]. */
export function referenceLoss(logits: Vec[], tokens: readonly number[]): number {
  let loss = 0;
  for (let t = 0; t + 1 < tokens.length; t++) {
    const row = logits[t];
    const max = row.reduce((m, v) => Math.max(m, v), -Infinity);
    loss += max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0)) - row[tokens[t + 1]];
  }
  return loss;
}
