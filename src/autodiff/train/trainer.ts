/**
 * One optimizer step of fine-tuning through the ONNX → tfjs executor: gradients of the batch's
 * per-token loss (loss.ts) accumulated over its micro-batches, clipped by global norm, then AdamW
 * (src/distill/optim.ts) with decoupled weight decay on matrices only (rank ≥ 2: projection and
 * embedding weights; not biases, LayerNorm scales or CRF scores, as BERT fine-tuning recipes and
 * fixtures/teacher/train_teacher.py do).
 *
 * The CRF transitions, start and end scores are tfjs variables of their own, trained with the
 * encoder when the loss is the CRF negative log-likelihood.
 */
import * as tf from '@tensorflow/tfjs';
import { GraphError } from '../../errors.js';
import { AdamW, clipByGlobalNorm, type OptimParam } from '../../distill/optim.js';
import type { CrfParams } from '../../ner/types.js';
import type { OnnxExecutor } from '../executor.js';
import { batchFeeds, type MicroBatch } from './data.js';
import { tokenLoss, type CrfTensors, type LossKind } from './loss.js';

export interface TrainerOptions {
  /** Token cross-entropy, or the CRF negative log-likelihood (needs `crf`). */
  loss: LossKind;
  /** Starting CRF parameters (trained with the loss `crf`). */
  crf?: CrfParams;
  /** Decoupled weight decay λ on matrices (default 0.01). */
  weightDecay?: number;
  /** Clip the global gradient norm to this (default 1; 0 or Infinity: no clipping). */
  clipNorm?: number;
  /** AdamW β₁, β₂, ε (defaults 0.9, 0.999, 1e-8). */
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Graph output holding the logits (default: the first graph output). */
  output?: string;
}

export interface StepResult {
  /** The batch's per-token loss (before the update). */
  loss: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Tokens the model ran on (attention mask 1, with [CLS]/[SEP]). */
  tokens: number;
  /** Padded positions the model ran on. */
  paddedTokens: number;
  /** Tokens the loss counted. */
  lossTokens: number;
  /** Micro-batches the batch was split into. */
  microBatches: number;
}

/** Weights (and CRF) at one moment of training. */
export interface Checkpoint {
  weights: Map<string, Float32Array>;
  crf?: CrfParams;
}

/** Names the CRF variables have in the optimizer (never an initializer name: ONNX names have no NUL). */
export const CRF_PARAM = { transitions: '\u0000crf.transitions', start: '\u0000crf.start', end: '\u0000crf.end' } as const;

export class Trainer {
  /** Everything the optimizer updates (trainable initializers, then the CRF scores). */
  readonly params: readonly OptimParam[];
  readonly output: string;
  private readonly opts: Required<Pick<TrainerOptions, 'loss' | 'clipNorm'>> & TrainerOptions;
  private readonly crfT?: CrfTensors & { transitions: tf.Variable; start: tf.Variable; end: tf.Variable };
  private readonly labels?: string[];
  private readonly byVarName = new Map<string, string>();
  /** One AdamW per parameter: the same math as one over all (step counts advance together), with each update's temporaries freed before the next parameter's. */
  private readonly optimizers: Map<string, AdamW>;
  private readonly defaults: ReadonlySet<string>;
  private disposed = false;

  constructor(
    readonly executor: OnnxExecutor,
    opts: TrainerOptions,
  ) {
    this.opts = { ...opts, clipNorm: opts.clipNorm ?? 1 };
    const out = opts.output ?? executor.outputs[0]?.name;
    if (!out) throw new GraphError('the model has no output', { hint: 'export the token classifier with a logits output' });
    this.output = out;
    if (opts.loss === 'crf') {
      const crf = opts.crf;
      if (!crf) throw new RangeError('the CRF loss needs the CRF parameters');
      const L = crf.labels.length;
      this.labels = [...crf.labels];
      this.crfT = {
        transitions: tf.variable(tf.tensor2d(crf.transitions.flat(), [L, L], 'float32'), true),
        start: tf.variable(tf.tensor1d(crf.start, 'float32'), true),
        end: tf.variable(tf.tensor1d(crf.end, 'float32'), true),
      };
    }
    const params: OptimParam[] = [];
    for (const [name, v] of executor.variables) {
      if (!v.trainable) continue;
      params.push({ name, variable: v, decay: v.rank >= 2 });
      this.byVarName.set(v.name, name);
    }
    if (this.crfT) {
      for (const [k, name] of Object.entries(CRF_PARAM) as Array<[keyof CrfTensors, string]>) {
        const v = this.crfT[k];
        params.push({ name, variable: v, decay: false });
        this.byVarName.set(v.name, name);
      }
    }
    if (params.length === 0) {
      throw new GraphError('nothing to train: every float initializer is frozen', {
        hint: 'freeze fewer initializers (check --freeze), or give a model with float weights',
      });
    }
    this.params = params;
    const adam = { weightDecay: opts.weightDecay ?? 0.01, beta1: opts.beta1, beta2: opts.beta2, eps: opts.eps };
    this.optimizers = new Map(params.map((p) => [p.name, new AdamW([p], adam)]));
    this.defaults = new Set(executor.inputs.map((i) => i.name).filter((n) => executor.variables.has(n)));
  }

  /** Optimizer steps taken. */
  get steps(): number {
    return this.optimizers.values().next().value?.steps ?? 0;
  }

  /** Tokens the loss of these micro-batches is divided by (the batch's counted tokens). */
  denominator(micro: readonly MicroBatch[]): number {
    let n = 0;
    for (const m of micro) n += this.opts.loss === 'crf' ? m.windowTokens : m.ceTokens;
    return n;
  }

  /**
   * The batch's per-token loss and its gradients, accumulated over the micro-batches, keyed by
   * parameter name (the caller disposes them). Parameters the loss does not reach are absent.
   */
  gradients(micro: readonly MicroBatch[]): { loss: number; grads: Map<string, tf.Tensor> } {
    this.check();
    const denom = this.denominator(micro);
    const grads = new Map<string, tf.Tensor>();
    if (denom === 0) return { loss: 0, grads };
    const vars = this.params.map((p) => p.variable);
    let loss = 0;
    for (const mb of micro) {
      const feeds = batchFeeds(this.executor.inputs, mb, this.defaults);
      try {
        const { value, grads: g } = tf.variableGrads(() => {
          const logits = this.executor.run(feeds, { outputs: [this.output] })[this.output];
          if (logits.rank !== 3 || logits.shape[2] === undefined) {
            throw new GraphError(`output "${this.output}" has shape [${logits.shape}], expected [batch, sequence, labels]`, {
              node: this.output,
              hint: 'fine-tuning needs a token classifier whose first output is the logits',
            });
          }
          if (this.labels && logits.shape[2] !== this.labels.length) {
            throw new GraphError(`the model gives ${logits.shape[2]} logits per token but crf.json has ${this.labels.length} labels`, {
              node: this.output,
              hint: 'make crf.json and config.json id2label list the labels the classifier was trained with',
            });
          }
          return tokenLoss(logits, mb, this.opts.loss, denom, this.crfT);
        }, vars);
        loss += (value.dataSync() as Float32Array)[0];
        value.dispose();
        for (const [varName, t] of Object.entries(g)) {
          const name = this.byVarName.get(varName);
          if (name === undefined) {
            t.dispose();
            continue;
          }
          const prev = grads.get(name);
          if (prev) {
            grads.set(name, tf.add(prev, t));
            prev.dispose();
            t.dispose();
          } else {
            grads.set(name, t);
          }
        }
      } catch (e) {
        for (const t of grads.values()) t.dispose();
        throw e;
      } finally {
        for (const t of Object.values(feeds)) t.dispose();
      }
    }
    return { loss, grads };
  }

  /** One optimizer step on a batch (its micro-batches) at learning rate `lr`. */
  step(micro: readonly MicroBatch[], lr: number): StepResult {
    const { loss, grads } = this.gradients(micro);
    let gradNorm = 0;
    try {
      if (grads.size > 0) {
        const limit = this.opts.clipNorm > 0 ? this.opts.clipNorm : Infinity;
        const clipped = clipByGlobalNorm(grads, limit);
        gradNorm = clipped.norm;
        for (const t of grads.values()) t.dispose();
        grads.clear();
        try {
          for (const [name, g] of clipped.grads) this.optimizers.get(name)!.step(new Map([[name, g]]), lr);
        } finally {
          for (const t of clipped.grads.values()) t.dispose();
        }
      }
    } finally {
      for (const t of grads.values()) t.dispose();
    }
    let tokens = 0;
    let padded = 0;
    for (const m of micro) {
      tokens += m.tokens;
      padded += m.rows * m.seq;
    }
    return { loss, gradNorm, tokens, paddedTokens: padded, lossTokens: this.denominator(micro), microBatches: micro.length };
  }

  /** The CRF as it is now (undefined without a CRF loss). */
  crf(): CrfParams | undefined {
    if (!this.crfT || !this.labels) return undefined;
    const L = this.labels.length;
    const tr = this.crfT.transitions.dataSync() as Float32Array;
    const transitions: number[][] = [];
    for (let i = 0; i < L; i++) transitions.push(Array.from(tr.subarray(i * L, (i + 1) * L)));
    return {
      labels: [...this.labels],
      transitions,
      start: Array.from(this.crfT.start.dataSync() as Float32Array),
      end: Array.from(this.crfT.end.dataSync() as Float32Array),
    };
  }

  /** Copies of the current weights (every float initializer) and CRF. */
  checkpoint(): Checkpoint {
    const crf = this.crf();
    return crf ? { weights: this.executor.exportInitializers(), crf } : { weights: this.executor.exportInitializers() };
  }

  /** Free the optimizer state and the CRF variables (the executor stays the caller's). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const o of this.optimizers.values()) o.dispose();
    if (this.crfT) tf.dispose([this.crfT.transitions, this.crfT.start, this.crfT.end]);
  }

  private check(): void {
    if (this.disposed) throw new Error('this trainer was disposed');
  }
}
