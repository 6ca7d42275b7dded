/**
 * One optimizer step of fine-tuning through the ONNX → tfjs executor: gradients of the batch's
 * per-token loss (loss.ts) summed over its micro-batches on the host, clipped by global norm, then
 * AdamW with its moments on the host (optim.ts `HostAdamW`; the wasm heap cannot hold them for
 * BERT-base) and decoupled weight decay on matrices only (rank ≥ 2: projection and embedding
 * weights; not biases, LayerNorm scales or CRF scores, as BERT fine-tuning recipes and
 * fixtures/teacher/train_teacher.py do).
 *
 * The CRF transitions, start and end scores are tfjs variables of their own, trained with the
 * encoder when the loss is the CRF negative log-likelihood.
 */
import * as tf from '@tensorflow/tfjs';
import { GraphError, isRanercError, UsageError } from '../../errors.js';
import type { OptimParam } from './optim.js';
import type { CrfParams } from '../../ner/types.js';
import type { OnnxExecutor } from '../executor.js';
import { batchFeeds, type MicroBatch } from './data.js';
import { tokenLoss, type CrfTensors, type LossKind } from './loss.js';
import { HostAdamW } from './optim.js';

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

/** A backend allocation failure as a usage error saying how to fit (other errors unchanged). */
function outOfMemory(e: unknown, mb: MicroBatch): unknown {
  if (isRanercError(e) && !(e.cause instanceof Error && OOM.test(e.cause.message))) return e;
  const msg = e instanceof Error ? e.message : String(e);
  const causeMsg = isRanercError(e) && e.cause instanceof Error ? e.cause.message : msg;
  if (!OOM.test(msg) && !OOM.test(causeMsg)) return e;
  return new UsageError(`the tfjs backend ran out of memory on a micro-batch of ${mb.rows} × ${mb.seq} tokens (${causeMsg})`, {
    hint: 'lower --max-batch-tokens (rows per micro-batch) or --max-length (window length); the wasm heap is capped at 4 GiB and an aborted wasm backend stays unusable in this process',
    cause: e,
  });
}

const OOM = /Aborted\(\)|out of memory|Cannot enlarge memory|allocation failed|memory access out of bounds/i;

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
  private readonly optimizer: HostAdamW;
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
    this.optimizer = new HostAdamW(params, adam);
    this.defaults = new Set(executor.inputs.map((i) => i.name).filter((n) => executor.variables.has(n)));
  }

  /** Optimizer steps taken. */
  get steps(): number {
    return this.optimizer.steps;
  }

  /** Tokens the loss of these micro-batches is divided by (the batch's counted tokens). */
  denominator(micro: readonly MicroBatch[]): number {
    let n = 0;
    for (const m of micro) n += this.opts.loss === 'crf' ? m.windowTokens : m.ceTokens;
    return n;
  }

  /**
   * The batch's per-token loss and its gradients summed over the micro-batches, keyed by parameter
   * name, as host arrays (parameters the loss does not reach are absent). Each micro-batch's
   * gradients are downloaded and freed as soon as the backward pass returns them, so the device holds
   * one set of gradients at a time (on the 4 GiB wasm heap a device-side sum would hold a second copy
   * of every gradient while the next micro-batch's activations are alive).
   */
  gradients(micro: readonly MicroBatch[]): { loss: number; grads: Map<string, Float32Array> } {
    this.check();
    const denom = this.denominator(micro);
    const sums = new Map<string, Float32Array>();
    if (denom === 0) return { loss: 0, grads: sums };
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
        try {
          loss += (value.dataSync() as Float32Array)[0];
          for (const [varName, t] of Object.entries(g)) {
            const name = this.byVarName.get(varName);
            if (name === undefined) continue;
            const d = t.dataSync() as Float32Array;
            const acc = sums.get(name);
            if (acc) {
              for (let i = 0; i < acc.length; i++) acc[i] += d[i];
            } else {
              sums.set(name, Float32Array.from(d));
            }
            t.dispose();
          }
        } finally {
          tf.dispose([value, ...Object.values(g)]);
        }
      } catch (e) {
        throw outOfMemory(e, mb);
      } finally {
        for (const t of Object.values(feeds)) t.dispose();
      }
    }
    return { loss, grads: sums };
  }

  /**
   * One optimizer step on a batch (its micro-batches) at learning rate `lr`: the gradients are
   * clipped to a global norm of `clipNorm` (factor clipNorm / (norm + 1e-6) when below 1, as
   * torch.nn.utils.clip_grad_norm_) and AdamW updates one parameter at a time.
   */
  step(micro: readonly MicroBatch[], lr: number): StepResult {
    const { loss, grads } = this.gradients(micro);
    const gradNorm = this.optimizer.step(grads, lr, this.opts.clipNorm);
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
    this.optimizer.dispose();
    if (this.crfT) tf.dispose([this.crfT.transitions, this.crfT.start, this.crfT.end]);
  }

  private check(): void {
    if (this.disposed) throw new Error('this trainer was disposed');
  }
}
