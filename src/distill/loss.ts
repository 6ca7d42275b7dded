/**
 * Distillation losses, as pure functions of Float32Array logits plus one tfjs custom-gradient op.
 *
 *   loss = α · T² · KD(teacher/T ‖ student/T) + (1 − α) · hard
 *
 * - KD is computed over real tokens only: the `logitsMask` of TextBrewer's distiller — padding,
 *   [CLS] and [SEP] never contribute. The default `marginal` is KL(teacher posterior ‖ student
 *   posterior) per token, a posterior being the CRF's marginals (forward–backward at temperature T) for
 *   a model with a CRF and softmax(logits/T) without: for CRF students the soft term reaches the
 *   transitions, and a CRF teacher's targets are what it believes, not its raw emissions.
 *   `kl` (the emission KL) is KL(softmax(teacher/T) ‖ softmax(student/T)) on the emissions;
 *   `ce` (TextBrewer's `kd_ce_loss`) differs from it by the teacher's entropy, a constant, so it has
 *   the same gradient; `mse` is TextBrewer's `kd_mse_loss` (mean squared difference of logits/T).
 * - Why T²: Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network", §2: the
 *   gradient of the soft term w.r.t. a student logit is (q − p)/T, which for large T is about
 *   (z − v)/(N·T²) — it shrinks as 1/T². Multiplying by T² keeps the soft term's share of the gradient
 *   roughly unchanged when T (or a temperature schedule) changes, so α means the same at any T.
 * - hard: the CRF negative log-likelihood of the hard labels (gold tags in the teacher's scheme, or
 *   the teacher's decoded path on unlabelled text) for CRF students; token cross-entropy otherwise.
 * - Both terms are sums over the batch divided by the number of real tokens (per-token means), so α
 *   balances like quantities (a per-sequence CRF mean would be ~sentence-length times larger).
 */
import * as tf from '@tensorflow/tfjs';
import { hostLossOp, type CrfTensors } from '../autodiff/train/loss.js';
import { crfSequenceNll, type CrfArrays, type CrfGrads } from './crf.js';
import { crfMarginalKl, crfMarginals, softmaxRows } from './marginals.js';

export type { CrfTensors };

/** One KD loss per token: returns the loss of one token and adds scale·∂loss/∂student to `grad`. */
export type KdLossFn = (
  student: ArrayLike<number>,
  teacher: ArrayLike<number>,
  offset: number,
  L: number,
  T: number,
  grad: Float32Array | undefined,
  scale: number,
) => number;

function softmaxInto(x: ArrayLike<number>, offset: number, L: number, T: number, out: Float64Array): number {
  let m = -Infinity;
  for (let j = 0; j < L; j++) m = Math.max(m, x[offset + j] / T);
  let s = 0;
  for (let j = 0; j < L; j++) {
    out[j] = Math.exp(x[offset + j] / T - m);
    s += out[j];
  }
  for (let j = 0; j < L; j++) out[j] /= s;
  return m + Math.log(s); // log-partition of x/T
}

/** Σₜ KL(wₜ ‖ softmax(xₜ/T)) over n rows at `offset` (stride L); adds scale·∂/∂x to `grad`. */
function softmaxKl(x: ArrayLike<number>, offset: number, n: number, L: number, w: Float64Array, T: number, grad: Float32Array | undefined, scale: number): number {
  const q = softmaxRows(x, offset, L, n, L, T);
  let kl = 0;
  for (let k = 0; k < n * L; k++) if (w[k] > 0) kl += w[k] * (Math.log(w[k]) - Math.log(Math.max(q[k], 1e-300)));
  if (grad) for (let k = 0; k < n * L; k++) grad[offset + k] += (scale * (q[k] - w[k])) / T;
  return kl;
}

const P = new Float64Array(256);
const Q = new Float64Array(256);

function klOrCe(withEntropy: boolean): KdLossFn {
  return (student, teacher, offset, L, T, grad, scale) => {
    const p = L <= 256 ? P : new Float64Array(L);
    const q = L <= 256 ? Q : new Float64Array(L);
    const lzT = softmaxInto(teacher, offset, L, T, p);
    const lzS = softmaxInto(student, offset, L, T, q);
    let loss = 0;
    for (let j = 0; j < L; j++) {
      if (p[j] === 0) continue;
      const logQ = student[offset + j] / T - lzS;
      loss -= p[j] * logQ;
      if (withEntropy) loss += p[j] * (teacher[offset + j] / T - lzT);
    }
    if (grad) for (let j = 0; j < L; j++) grad[offset + j] += (scale * (q[j] - p[j])) / T;
    return loss;
  };
}

/** KD losses by name (cf. TextBrewer's `KD_LOSS_MAP`). */
export const KD_LOSSES = {
  /** KL(softmax(teacher/T) ‖ softmax(student/T)). */
  kl: klOrCe(true),
  /** Cross-entropy −Σ softmax(teacher/T)·log softmax(student/T) (TextBrewer kd_ce_loss). */
  ce: klOrCe(false),
  /** mean over labels of (student/T − teacher/T)² (TextBrewer kd_mse_loss). */
  mse: ((student, teacher, offset, L, T, grad, scale) => {
    let loss = 0;
    for (let j = 0; j < L; j++) {
      const d = (student[offset + j] - teacher[offset + j]) / T;
      loss += (d * d) / L;
      if (grad) grad[offset + j] += (scale * 2 * d) / (L * T);
    }
    return loss;
  }) as KdLossFn,
} satisfies Record<string, KdLossFn>;
/** Per-token KD losses on the student's emissions (softmax of each token's logits). */
export type EmissionKdLossName = keyof typeof KD_LOSSES;
/**
 * `marginal`: KL(teacher posteriors ‖ student posteriors) per token, where a posterior is the CRF's
 * marginal P(yₜ = j | x) (forward–backward at temperature T, marginals.ts) for a model with a CRF and
 * softmax(logits/T) otherwise — for a CRF student the soft term then trains its emissions and its
 * transitions together. The others compare emissions token by token (softmax of the student's logits,
 * which the CRF never sees, against softmax of the teacher's logits).
 */
export type KdLossName = 'marginal' | EmissionKdLossName;
export const KD_LOSS_NAMES: readonly KdLossName[] = ['marginal', 'kl', 'ce', 'mse'];

/**
 * Temperature schedules: T at progress p ∈ [0, 1] of the decay phase (the last 40 % of the steps, when
 * the learning rate decays too; see train.ts) — cf. TextBrewer's temperature schedulers.
 */
export const TEMPERATURE_SCHEDULES = {
  /** T throughout. */
  constant: (T: number, _progress: number): number => T,
  /** T, then linear decay to 1 at the end of training. */
  linear: (T: number, progress: number): number => T + (1 - T) * Math.min(1, Math.max(0, progress)),
} satisfies Record<string, (T: number, progress: number) => number>;
export type TemperatureScheduleName = keyof typeof TEMPERATURE_SCHEDULES;

/** The targets of one padded batch [B, S] (row r: [CLS] n_r tokens [SEP] padding). */
export interface LossBatch {
  rows: number;
  seq: number;
  /** Real tokens per row (without [CLS]/[SEP]); they sit at positions 1 … n_r. */
  lens: Int32Array;
  /** Teacher logits [B, S, L] aligned with the student's positions (only real positions are read). */
  teacher?: Float32Array;
  /** Hard label per position [B, S] (only real positions are read). */
  tags?: Int32Array;
}

export interface LossOptions {
  /** Weight of the soft (KD) term, α ∈ [0, 1]. */
  alpha: number;
  /** Temperature T > 0. */
  temperature: number;
  kd: KdLossName;
  /** CRF students: the hard term is the CRF NLL; otherwise token cross-entropy. */
  hard: 'crf' | 'ce';
  /** The teacher's CRF (`marginal`: its posteriors are its CRF marginals; without it, softmax). */
  teacherCrf?: CrfArrays;
}

export interface LossValues {
  /** α·T²·soft + (1 − α)·hard. */
  loss: number;
  /** Per-token KD loss (without α, T²). */
  soft: number;
  /** Per-token hard loss (without 1 − α). */
  hard: number;
  /** Real tokens in the batch. */
  tokens: number;
}

/**
 * The distillation loss of one batch from the student's logits [B, S, L] (pure). With `grad`, the
 * gradient w.r.t. the logits is written into `grad.logits` (same layout; zero at non-real positions)
 * and, for CRF students, the CRF parameter gradients into `grad.crf`.
 */
export function distillLossValues(
  logits: ArrayLike<number>,
  L: number,
  batch: LossBatch,
  opts: LossOptions,
  crf?: CrfArrays,
  grad?: { logits: Float32Array; crf?: CrfGrads },
): LossValues {
  const { rows: B, seq: S, lens } = batch;
  const { alpha, temperature: T } = opts;
  if (!(alpha >= 0 && alpha <= 1)) throw new RangeError(`alpha must be in [0, 1], got ${alpha}`);
  if (!(T > 0)) throw new RangeError(`temperature must be > 0, got ${T}`);
  if (logits.length !== B * S * L) throw new RangeError(`logits have ${logits.length} values, ${B * S * L} expected`);
  let N = 0;
  for (let r = 0; r < B; r++) {
    if (lens[r] < 0 || lens[r] + 2 > S) throw new RangeError(`row ${r}: ${lens[r]} tokens do not fit [CLS] … [SEP] in ${S} positions`);
    N += lens[r];
  }
  if (N === 0) return { loss: 0, soft: 0, hard: 0, tokens: 0 };
  const useSoft = alpha > 0;
  const useHard = alpha < 1;
  if (useSoft && !batch.teacher) throw new RangeError('alpha > 0 needs teacher logits');
  if (useHard && !batch.tags) throw new RangeError('alpha < 1 needs hard labels');
  if (useHard && opts.hard === 'crf' && !crf) throw new RangeError('the CRF hard loss needs CRF parameters');
  const marginal = opts.kd === 'marginal';
  const kd = marginal ? undefined : KD_LOSSES[opts.kd as EmissionKdLossName];
  if (!marginal && !kd) throw new RangeError(`unknown KD loss "${opts.kd}"`);
  const studentCrf = opts.hard === 'crf' ? crf : undefined;
  if (useSoft && marginal && opts.hard === 'crf' && !crf) throw new RangeError('the marginal KD loss of a CRF student needs its CRF parameters');
  const softScale = (alpha * T * T) / N;
  const hardScale = (1 - alpha) / N;
  let soft = 0;
  let hard = 0;
  const g = grad?.logits;
  if (g) g.fill(0);
  const tagBuf = new Int32Array(S);
  const P2 = new Float64Array(L);
  for (let r = 0; r < B; r++) {
    const n = lens[r];
    if (n === 0) continue;
    const base = (r * S + 1) * L; // position 1
    if (useSoft && kd) {
      for (let t = 0; t < n; t++) soft += kd(logits, batch.teacher!, base + t * L, L, T, g, softScale);
    } else if (useSoft) {
      const te = batch.teacher!;
      const w = opts.teacherCrf ? crfMarginals(te, base, L, n, opts.teacherCrf, T) : softmaxRows(te, base, L, n, L, T);
      if (studentCrf) soft += crfMarginalKl(logits, base, L, n, w, studentCrf, T, g, grad?.crf, softScale);
      else soft += softmaxKl(logits, base, n, L, w, T, g, softScale);
    }
    if (useHard) {
      const tags = batch.tags!;
      for (let t = 0; t < n; t++) tagBuf[t] = tags[r * S + 1 + t];
      if (opts.hard === 'crf') {
        hard += crfSequenceNll(logits, base, L, n, tagBuf, crf!, g, grad?.crf, hardScale);
      } else {
        for (let t = 0; t < n; t++) {
          const o = base + t * L;
          const lz = softmaxInto(logits, o, L, 1, P2);
          const y = tagBuf[t];
          if (!(y >= 0 && y < L)) throw new RangeError(`tag ${y} is outside [0, ${L})`);
          hard += lz - logits[o + y];
          if (g) for (let j = 0; j < L; j++) g[o + j] += hardScale * (P2[j] - (j === y ? 1 : 0));
        }
      }
    }
  }
  soft /= N;
  hard /= N;
  return { loss: alpha * T * T * soft + (1 - alpha) * hard, soft, hard, tokens: N };
}


/**
 * The distillation loss as a differentiable tfjs scalar: w.r.t. `logits` [B, S, L] and, when given,
 * the CRF tensors. The loss parts are written to `out` (for logging).
 */
export function distillLoss(
  logits: tf.Tensor,
  batch: LossBatch,
  opts: LossOptions,
  crfT: CrfTensors | undefined,
  out?: { values?: LossValues },
): tf.Scalar {
  const useCrf = opts.hard === 'crf' && crfT !== undefined;
  return hostLossOp(logits, useCrf ? crfT : undefined, (lg, L, crf, grad) => {
    const values = distillLossValues(lg, L, batch, opts, crf, grad);
    if (out) out.values = values;
    return values.loss;
  });
}
