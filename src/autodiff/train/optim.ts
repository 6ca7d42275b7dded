/**
 * AdamW with its state on the host (Float32Arrays), for training tfjs variables whose model barely
 * fits the backend's memory: the wasm backend's heap is capped at 4 GiB, and BERT-base's weights
 * (0.41 GB), the packed copies XNNPACK keeps of them (0.41 GB), a gradient (0.41 GB) and the
 * activations of a 2 × 128-token micro-batch leave no room for Adam's two moments (0.81 GB) on the
 * device. Here each parameter's gradient is downloaded, the moments and the new value are computed
 * in float64 arithmetic on the host, and the new value is uploaded with `Variable.assign` — one
 * parameter at a time, so the device never holds more than one extra parameter-sized tensor.
 *
 * The update is torch.optim.AdamW's (Loshchilov & Hutter 2019, decoupled decay); the one optimizer
 * of both `ranerc finetune` (trainer.ts) and `ranerc distill` (src/distill/train.ts), through `step`:
 *   θ ← θ − lr·λ·θ (only where `decay`);  m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²;
 *   θ ← θ − lr · (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε).
 */
import * as tf from '@tensorflow/tfjs';

/** One trainable parameter. `decay`: whether the weight decay applies (matrices; not biases, norms, CRF). */
export interface OptimParam {
  name: string;
  variable: tf.Variable;
  decay: boolean;
}

export interface HostAdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled weight decay λ for parameters marked `decay` (default 0.01). */
  weightDecay?: number;
}

/** √(Σ g²) over host arrays, in float64. */
export function hostGlobalNorm(grads: Iterable<ArrayLike<number>>): number {
  let sq = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) sq += g[i] * g[i];
  return Math.sqrt(sq);
}

export class HostAdamW {
  private t = 0;
  private readonly m = new Map<string, Float32Array>();
  private readonly v = new Map<string, Float32Array>();
  private readonly byName: Map<string, OptimParam>;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly eps: number;
  private readonly weightDecay: number;

  constructor(params: readonly OptimParam[], opts: HostAdamWOptions = {}) {
    this.byName = new Map(params.map((p) => [p.name, p]));
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
  }

  /** Steps taken. */
  get steps(): number {
    return this.t;
  }

  /** Start a step (advances the bias corrections); then `update` each parameter that has a gradient. */
  beginStep(): void {
    this.t += 1;
  }

  /**
   * Update parameter `name` with gradient `grad` (host values, multiplied by `scale` first, e.g. a
   * clipping factor) at learning rate `lr`.
   */
  update(name: string, grad: ArrayLike<number>, lr: number, scale = 1): void {
    const p = this.byName.get(name);
    if (!p) throw new RangeError(`unknown parameter "${name}"`);
    if (this.t === 0) throw new RangeError('call beginStep() before update()');
    const n = p.variable.size;
    if (grad.length !== n) throw new RangeError(`gradient of "${name}" has ${grad.length} values, the parameter ${n}`);
    let m = this.m.get(name);
    let v = this.v.get(name);
    if (!m || !v) {
      m = new Float32Array(n);
      v = new Float32Array(n);
      this.m.set(name, m);
      this.v.set(name, v);
    }
    const theta = Float32Array.from(p.variable.dataSync() as Float32Array);
    const { beta1: b1, beta2: b2, eps } = this;
    const c1 = 1 - b1 ** this.t;
    const c2 = 1 - b2 ** this.t;
    const decay = p.decay && this.weightDecay > 0 ? 1 - lr * this.weightDecay : 1;
    for (let i = 0; i < n; i++) {
      const g = grad[i] * scale;
      const mi = b1 * m[i] + (1 - b1) * g;
      const vi = b2 * v[i] + (1 - b2) * g * g;
      m[i] = mi;
      v[i] = vi;
      theta[i] = theta[i] * decay - (lr * (mi / c1)) / (Math.sqrt(vi / c2) + eps);
    }
    const next = tf.tensor(theta, p.variable.shape, 'float32');
    p.variable.assign(next);
    next.dispose(); // the variable keeps its own reference to the data
  }

  /**
   * One whole step: the gradients (host values by parameter name) are clipped to a global L2 norm of
   * `clipNorm` (factor clipNorm / (norm + 1e-6) when below 1, as torch.nn.utils.clip_grad_norm_; 0 or
   * Infinity: no clipping), then every parameter with a gradient is updated. Returns the norm before
   * clipping.
   */
  step(grads: ReadonlyMap<string, ArrayLike<number>>, lr: number, clipNorm: number): number {
    if (grads.size === 0) return 0;
    const norm = hostGlobalNorm(grads.values());
    const limit = clipNorm > 0 ? clipNorm : Infinity;
    const factor = limit / (norm + 1e-6);
    this.beginStep();
    for (const [name, g] of grads) this.update(name, g, lr, factor < 1 ? factor : 1);
    return norm;
  }

  /** Drop the moments. */
  dispose(): void {
    this.m.clear();
    this.v.clear();
  }
}
