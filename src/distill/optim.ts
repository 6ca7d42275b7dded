/**
 * AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", 2019) and gradient clipping by
 * global norm, for tfjs variables.
 *
 * One step, as torch.optim.AdamW computes it: θ ← θ − lr·λ·θ (decoupled decay, only for parameters
 * marked `decay`); m ← β₁m + (1 − β₁)g; v ← β₂v + (1 − β₂)g²; θ ← θ − lr · (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε).
 */
import * as tf from '@tensorflow/tfjs';

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled weight decay λ (default 0.01). */
  weightDecay?: number;
}

export interface OptimParam {
  name: string;
  variable: tf.Variable;
  /** Whether weight decay applies. */
  decay: boolean;
}

export class AdamW {
  private t = 0;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly eps: number;
  private readonly weightDecay: number;

  constructor(
    private readonly params: readonly OptimParam[],
    opts: AdamWOptions = {},
  ) {
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
    for (const p of params) {
      this.m.set(p.name, tf.variable(tf.zerosLike(p.variable), false));
      this.v.set(p.name, tf.variable(tf.zerosLike(p.variable), false));
    }
  }

  /** Steps taken so far. */
  get steps(): number {
    return this.t;
  }

  /** Apply one update with learning rate `lr`; `grads` maps parameter name → gradient. */
  step(grads: ReadonlyMap<string, tf.Tensor>, lr: number): void {
    this.t += 1;
    const c1 = 1 - this.beta1 ** this.t;
    const c2 = 1 - this.beta2 ** this.t;
    tf.tidy(() => {
      for (const p of this.params) {
        const g = grads.get(p.name);
        if (!g) continue;
        const m = this.m.get(p.name)!;
        const v = this.v.get(p.name)!;
        const mNew = tf.add(tf.mul(m, this.beta1), tf.mul(g, 1 - this.beta1));
        const vNew = tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(g), 1 - this.beta2));
        m.assign(mNew);
        v.assign(vNew);
        let theta: tf.Tensor = p.variable;
        if (p.decay && this.weightDecay > 0) theta = tf.mul(theta, 1 - lr * this.weightDecay);
        const update = tf.div(tf.div(mNew, c1), tf.add(tf.sqrt(tf.div(vNew, c2)), this.eps));
        p.variable.assign(tf.sub(theta, tf.mul(update, lr)));
      }
    });
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}

/**
 * Scale gradients so their global L2 norm is at most `maxNorm` (torch.nn.utils.clip_grad_norm_:
 * factor maxNorm / (norm + 1e-6) when it is below 1). Returns new tensors (the caller disposes both
 * maps) and the norm before clipping.
 */
export function clipByGlobalNorm(grads: ReadonlyMap<string, tf.Tensor>, maxNorm: number): { grads: Map<string, tf.Tensor>; norm: number } {
  let sq = 0;
  tf.tidy(() => {
    const parts = [...grads.values()].map((g) => tf.sum(tf.square(g)));
    sq = parts.length === 0 ? 0 : (tf.addN(parts).dataSync() as Float32Array)[0];
  });
  const norm = Math.sqrt(sq);
  const factor = maxNorm / (norm + 1e-6);
  const out = new Map<string, tf.Tensor>();
  for (const [k, g] of grads) out.set(k, factor < 1 ? tf.mul(g, factor) : tf.clone(g));
  return { grads: out, norm };
}
