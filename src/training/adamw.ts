/** AdamW (Loshchilov & Hutter): Adam with weight decay decoupled from the gradient, and global-norm clipping. */
import { download, tf } from "../backend/backend.js";

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
  /** Gradients are scaled down so that their global L2 norm is at most this. */
  clipNorm: number;
}

export const DEFAULT_ADAMW: AdamWOptions = { beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: 0.1, clipNorm: 1 };

/** Moment estimates and step count: what a resumed run needs besides the weights. */
export interface AdamWState {
  step: number;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
}

interface Slot {
  param: tf.Variable;
  m: tf.Variable;
  v: tf.Variable;
  decay: boolean;
}

export class AdamW {
  private readonly slots = new Map<string, Slot>();
  private t = 0;

  /** `decay` says which parameters are decayed (GPT-2 practice: matrices and embeddings, not biases or LayerNorm gains). */
  constructor(
    params: ReadonlyMap<string, tf.Variable>,
    private readonly options: AdamWOptions,
    decay: (name: string) => boolean,
  ) {
    for (const [name, param] of params) {
      this.slots.set(name, { param, m: tf.variable(tf.zerosLike(param), false), v: tf.variable(tf.zerosLike(param), false), decay: decay(name) });
    }
  }

  get step(): number {
    return this.t;
  }

  /** Applies one update from gradients keyed by parameter name; returns the gradient norm before clipping. */
  apply(grads: ReadonlyMap<string, tf.Tensor>, lr: number): number {
    const { beta1, beta2, epsilon, weightDecay, clipNorm } = this.options;
    const norm = Math.sqrt(download(tf.tidy(() => tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g))))))[0]);
    const scale = norm > clipNorm ? clipNorm / norm : 1;
    this.t++;
    const c1 = 1 - beta1 ** this.t;
    const c2 = 1 - beta2 ** this.t;
    tf.tidy(() => {
      for (const [name, slot] of this.slots) {
        const grad = grads.get(name);
        if (!grad) throw new Error(`no gradient for parameter ${name}`);
        const g = tf.mul(grad, scale);
        slot.m.assign(tf.add(tf.mul(slot.m, beta1), tf.mul(g, 1 - beta1)));
        slot.v.assign(tf.add(tf.mul(slot.v, beta2), tf.mul(tf.square(g), 1 - beta2)));
        let update = tf.div(tf.div(slot.m, c1), tf.add(tf.sqrt(tf.div(slot.v, c2)), epsilon));
        if (slot.decay) update = tf.add(update, tf.mul(slot.param, weightDecay));
        slot.param.assign(tf.sub(slot.param, tf.mul(update, lr)));
      }
    });
    return norm;
  }

  state(): AdamWState {
    const read = (pick: (s: Slot) => tf.Variable) => new Map([...this.slots].map(([name, s]) => [name, pick(s).dataSync() as Float32Array]));
    return { step: this.t, m: read((s) => s.m), v: read((s) => s.v) };
  }

  restore(state: AdamWState): void {
    for (const [name, slot] of this.slots) {
      const m = state.m.get(name);
      const v = state.v.get(name);
      if (!m || !v) throw new Error(`optimizer state lacks parameter ${name}`);
      tf.tidy(() => {
        slot.m.assign(tf.tensor(m, slot.param.shape));
        slot.v.assign(tf.tensor(v, slot.param.shape));
      });
    }
    this.t = state.step;
  }

  dispose(): void {
    for (const slot of this.slots.values()) tf.dispose([slot.m, slot.v]);
  }
}
