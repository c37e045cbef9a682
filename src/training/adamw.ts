/**
 * AdamW (Loshchilov & Hutter): Adam with weight decay decoupled from the gradient, and global-norm
 * clipping, on host Float32Arrays updated in place (one pass of a few flops per parameter: for the
 * demo model about 2M, small beside the training graph's run).
 */

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
  param: Float32Array;
  m: Float32Array;
  v: Float32Array;
  decay: boolean;
}

/** One parameter's update, in place; a plain function of typed arrays, which V8 compiles to a tight loop. */
function update(
  { param, m, v }: Slot,
  grad: Float32Array,
  k: { beta1: number; beta2: number; epsilon: number; scale: number; lr: number; decay: number; c1: number; c2: number },
): void {
  const { beta1, beta2, epsilon, scale, lr, decay } = k;
  const [mScale, vScale] = [1 / k.c1, 1 / k.c2];
  for (let i = 0; i < param.length; i++) {
    const g = grad[i] * scale;
    const mi = beta1 * m[i] + (1 - beta1) * g;
    const vi = beta2 * v[i] + (1 - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] -= lr * ((mi * mScale) / (Math.sqrt(vi * vScale) + epsilon) + decay * param[i]);
  }
}

export class AdamW {
  private readonly slots = new Map<string, Slot>();
  private t = 0;

  /**
   * `params` are updated in place. `decay` says which parameters are decayed (GPT-2 practice:
   * matrices and embeddings, not biases or LayerNorm gains).
   */
  constructor(
    params: ReadonlyMap<string, Float32Array>,
    private readonly options: AdamWOptions,
    decay: (name: string) => boolean,
  ) {
    for (const [name, param] of params) {
      this.slots.set(name, { param, m: new Float32Array(param.length), v: new Float32Array(param.length), decay: decay(name) });
    }
  }

  get step(): number {
    return this.t;
  }

  /** Applies one update from gradients keyed by parameter name; returns the gradient norm before clipping. */
  apply(grads: ReadonlyMap<string, Float32Array>, lr: number): number {
    const { beta1, beta2, epsilon, weightDecay, clipNorm } = this.options;
    const list = [...this.slots].map(([name, slot]) => {
      const grad = grads.get(name);
      if (!grad) throw new Error(`no gradient for parameter ${name}`);
      if (grad.length !== slot.param.length) throw new Error(`gradient of ${name} has ${grad.length} entries, the parameter ${slot.param.length}`);
      return { slot, grad };
    });
    let squares = 0;
    for (const { grad } of list) for (let i = 0; i < grad.length; i++) squares += grad[i] * grad[i];
    const norm = Math.sqrt(squares);
    const scale = norm > clipNorm ? clipNorm / norm : 1;
    this.t++;
    const c1 = 1 - beta1 ** this.t;
    const c2 = 1 - beta2 ** this.t;
    for (const { slot, grad } of list) {
      update(slot, grad, { beta1, beta2, epsilon, scale, lr, decay: slot.decay ? weightDecay : 0, c1, c2 });
    }
    return norm;
  }

  /** Copies of the moments, and the step count. */
  state(): AdamWState {
    const read = (pick: (s: Slot) => Float32Array) => new Map([...this.slots].map(([name, s]) => [name, pick(s).slice()]));
    return { step: this.t, m: read((s) => s.m), v: read((s) => s.v) };
  }

  restore(state: AdamWState): void {
    for (const [name, slot] of this.slots) {
      const m = state.m.get(name);
      const v = state.v.get(name);
      if (!m || !v) throw new Error(`optimizer state lacks parameter ${name}`);
      if (m.length !== slot.param.length || v.length !== slot.param.length) {
        throw new Error(`optimizer state of ${name} has ${m.length} and ${v.length} entries, the parameter ${slot.param.length}`);
      }
      slot.m.set(m);
      slot.v.set(v);
    }
    this.t = state.step;
  }
}
