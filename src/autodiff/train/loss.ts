/**
 * The fine-tuning objective on the executor's logits [rows, seq, labels]:
 *
 * - `ce`: token cross-entropy −log softmax(z)[gold] over the positions `ceMask` marks (first pieces of
 *   words that their window owns; [CLS], [SEP], padding and later pieces never count);
 * - `crf`: the linear-chain CRF negative log-likelihood of each row's window tokens (positions
 *   1 … lens[r], exactly the emissions eval's Viterbi decodes) — src/distill/crf.ts
 *   `crfSequenceNll`, forward–backward in float64 — with gradients for the emissions and for the CRF
 *   transitions, start and end scores.
 *
 * Both are sums divided by `denominator`: the number of counted tokens of the whole optimizer batch
 * (ce: Σ ceMask, crf: Σ lens), so the gradients of a batch's micro-batches add up to the gradient of
 * the batch's per-token mean. The math runs on the host (the logits are small: labels per token),
 * wrapped in a tfjs custom-gradient op so the executor's backward pass continues from it.
 */
import * as tf from '@tensorflow/tfjs';
import { crfSequenceNll, zeroCrfGrads, type CrfArrays, type CrfGrads } from '../../distill/crf.js';

export type LossKind = 'ce' | 'crf';

/** What the loss reads of a micro-batch (see data.ts MicroBatch). */
export interface LossTargets {
  rows: number;
  seq: number;
  /** Window tokens per row, at positions 1 … lens[r]. */
  lens: Int32Array;
  /** Gold label per position [rows · seq]. */
  tags: Int32Array;
  /** 1 where cross-entropy counts [rows · seq]. */
  ceMask: Uint8Array;
}

/**
 * Σ loss / denominator of one micro-batch from its logits (pure). With `grad`, ∂loss/∂logits is added
 * to `grad.logits` (same layout) and, for `crf`, the CRF parameter gradients to `grad.crf`.
 */
export function tokenLossValue(
  logits: ArrayLike<number>,
  L: number,
  t: LossTargets,
  kind: LossKind,
  denominator: number,
  crf?: CrfArrays,
  grad?: { logits: Float32Array; crf?: CrfGrads },
): number {
  const { rows: B, seq: S } = t;
  if (logits.length !== B * S * L) throw new RangeError(`logits have ${logits.length} values, ${B * S * L} expected`);
  if (!(denominator > 0)) throw new RangeError(`the loss denominator must be > 0, got ${denominator}`);
  const scale = 1 / denominator;
  let sum = 0;
  if (kind === 'crf') {
    if (!crf) throw new RangeError('the CRF loss needs CRF parameters');
    if (crf.L !== L) throw new RangeError(`the CRF has ${crf.L} labels, the logits ${L}`);
    const tags = new Int32Array(S);
    for (let r = 0; r < B; r++) {
      const n = t.lens[r];
      if (n < 0 || n + 2 > S) throw new RangeError(`row ${r}: ${n} tokens do not fit [CLS] … [SEP] in ${S} positions`);
      if (n === 0) continue;
      for (let k = 0; k < n; k++) tags[k] = t.tags[r * S + 1 + k];
      sum += crfSequenceNll(logits, (r * S + 1) * L, L, n, tags, crf, grad?.logits, grad?.crf, scale);
    }
    return sum * scale;
  }
  const p = new Float64Array(L);
  for (let i = 0; i < B * S; i++) {
    if (t.ceMask[i] === 0) continue;
    const o = i * L;
    const y = t.tags[i];
    if (!(Number.isInteger(y) && y >= 0 && y < L)) throw new RangeError(`tag ${y} at position ${i} is outside [0, ${L})`);
    let m = -Infinity;
    for (let j = 0; j < L; j++) if (logits[o + j] > m) m = logits[o + j];
    let z = 0;
    for (let j = 0; j < L; j++) {
      p[j] = Math.exp(logits[o + j] - m);
      z += p[j];
    }
    sum += m + Math.log(z) - logits[o + y];
    if (grad) {
      const g = grad.logits;
      for (let j = 0; j < L; j++) g[o + j] += scale * (p[j] / z - (j === y ? 1 : 0));
    }
  }
  return sum * scale;
}

/** CRF parameters as tfjs tensors: transitions [L, L] (from × to), start [L], end [L]. */
export interface CrfTensors {
  transitions: tf.Tensor;
  start: tf.Tensor;
  end: tf.Tensor;
}

/**
 * The loss as a differentiable tfjs scalar: w.r.t. `logits` and, for `crf`, the CRF tensors. The
 * logits are read back once (a synchronous download of rows · seq · labels floats).
 */
export function tokenLoss(logits: tf.Tensor, t: LossTargets, kind: LossKind, denominator: number, crfT?: CrfTensors): tf.Scalar {
  if (logits.rank !== 3 || logits.shape[0] !== t.rows || logits.shape[1] !== t.seq) {
    throw new RangeError(`logits have shape [${logits.shape}], expected [${t.rows}, ${t.seq}, labels]`);
  }
  const useCrf = kind === 'crf';
  if (useCrf && !crfT) throw new RangeError('the CRF loss needs CRF tensors');
  return hostLossOp(logits, useCrf ? crfT : undefined, (lg, L, crf, grad) => tokenLossValue(lg, L, t, kind, denominator, crf, grad));
}

/** Gradient buffers a host loss fills: d loss / d logits, and the CRF's when the op has CRF inputs. */
export interface HostLossGrads {
  logits: Float32Array;
  crf?: CrfGrads;
}

/**
 * A differentiable tfjs scalar whose value and gradients are computed on the host: the logits
 * [rows, seq, L] (and, when `crfT` is given, the CRF tensors) are read back once, `compute` returns the
 * loss and fills `grad`, and the backward pass scales those gradients by the upstream one. Shared by
 * `tokenLoss` (finetune) and `distillLoss` (distill).
 */
export function hostLossOp(
  logits: tf.Tensor,
  crfT: CrfTensors | undefined,
  compute: (lg: Float32Array, L: number, crf: CrfArrays | undefined, grad: HostLossGrads) => number,
): tf.Scalar {
  const L = logits.shape[2] as number;
  const inputs = crfT ? [logits, crfT.transitions, crfT.start, crfT.end] : [logits];
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const ts = args.slice(0, inputs.length) as tf.Tensor[];
    const lg = ts[0].dataSync() as Float32Array;
    const crf: CrfArrays | undefined = crfT
      ? { L, trans: ts[1].dataSync() as Float32Array, start: ts[2].dataSync() as Float32Array, end: ts[3].dataSync() as Float32Array }
      : undefined;
    const grad: HostLossGrads = { logits: new Float32Array(lg.length), crf: crfT ? zeroCrfGrads(L) : undefined };
    const value = compute(lg, L, crf, grad);
    const gradFunc = (dy: tf.Tensor): tf.Tensor[] => {
      const s = (dy.dataSync() as Float32Array)[0];
      const scaled = (a: Float32Array | Float64Array): Float32Array => Float32Array.from(a, (v) => v * s);
      const res: tf.Tensor[] = [tf.tensor(scaled(grad.logits), ts[0].shape, 'float32')];
      if (grad.crf) {
        res.push(tf.tensor(scaled(grad.crf.trans), [L, L]), tf.tensor(scaled(grad.crf.start), [L]), tf.tensor(scaled(grad.crf.end), [L]));
      }
      return res;
    };
    return { value: tf.scalar(value), gradFunc };
  });
  return op(...inputs) as tf.Scalar;
}
