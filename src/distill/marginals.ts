/**
 * Structure-aware soft targets: per-token CRF marginals P(yₜ = j | x) by forward–backward, and the
 * KL divergence between a teacher's per-token posteriors and a CRF student's marginals with its exact
 * gradient w.r.t. the student's emissions AND its transitions / start / end scores — pure functions in
 * float64 log space, in the parameterisation of crf.ts (pytorch-crf).
 *
 * Temperature: the tempered CRF divides every score (emissions, transitions, start, end) by T, so its
 * marginals soften like softmax(z/T) does for a token classifier (T = 1: the CRF itself).
 *
 * The gradient. With q = marginals of the tempered CRF, log Z its log-partition and w the teacher's
 * posteriors (constants, rows summing to 1), the loss is KL(w ‖ q) = Σₜⱼ wₜⱼ (log wₜⱼ − log qₜⱼ).
 * Since qₜⱼ = ∂ log Z / ∂eₜⱼ, for any CRF score θ:
 *
 *   ∂/∂θ Σₜⱼ wₜⱼ log qₜⱼ = Σₜⱼ (wₜⱼ / qₜⱼ) ∂²log Z / ∂eₜⱼ ∂θ = (H v)_θ,   vₜⱼ = wₜⱼ / qₜⱼ,
 *
 * a Hessian–vector product of log Z, i.e. the directional derivative, along v on the emissions, of
 * log Z's gradient (the unary marginals for emission scores, the pairwise marginals Σₜ ξₜ(i, j) for
 * transitions, q₀ for start, qₙ₋₁ for end). That derivative is computed exactly by forward-mode
 * differentiation of forward–backward (tangents of the log-α and log-β recursions): O(n·L²), the cost of
 * forward–backward itself. The raw-score gradient carries the extra 1/T of the tempered scores.
 */
import { crfBruteForcePaths, type CrfArrays, type CrfGrads } from './crf.js';

/** Forward–backward tables of the tempered CRF over n rows of emissions (log space, float64). */
interface Tables {
  /** log α [n·L], log β [n·L]. */
  a: Float64Array;
  b: Float64Array;
  logZ: number;
  /** Tempered emissions [n·L] and transitions [L·L], start, end. */
  e: Float64Array;
  tr: Float64Array;
  st: Float64Array;
  en: Float64Array;
}

function lse(v: Float64Array, n: number): number {
  let m = -Infinity;
  for (let i = 0; i < n; i++) if (v[i] > m) m = v[i];
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.exp(v[i] - m);
  return m + Math.log(s);
}

function forwardBackward(em: ArrayLike<number>, offset: number, stride: number, n: number, crf: CrfArrays, T: number): Tables {
  const L = crf.L;
  const e = new Float64Array(n * L);
  for (let t = 0; t < n; t++) for (let j = 0; j < L; j++) e[t * L + j] = em[offset + t * stride + j] / T;
  const tr = Float64Array.from(crf.trans, (x) => x / T);
  const st = Float64Array.from(crf.start, (x) => x / T);
  const en = Float64Array.from(crf.end, (x) => x / T);
  const a = new Float64Array(n * L);
  const b = new Float64Array(n * L);
  const tmp = new Float64Array(L);
  for (let j = 0; j < L; j++) a[j] = st[j] + e[j];
  for (let t = 1; t < n; t++) {
    for (let j = 0; j < L; j++) {
      for (let i = 0; i < L; i++) tmp[i] = a[(t - 1) * L + i] + tr[i * L + j];
      a[t * L + j] = lse(tmp, L) + e[t * L + j];
    }
  }
  for (let j = 0; j < L; j++) tmp[j] = a[(n - 1) * L + j] + en[j];
  const logZ = lse(tmp, L);
  for (let i = 0; i < L; i++) b[(n - 1) * L + i] = en[i];
  for (let t = n - 2; t >= 0; t--) {
    for (let i = 0; i < L; i++) {
      for (let j = 0; j < L; j++) tmp[j] = tr[i * L + j] + e[(t + 1) * L + j] + b[(t + 1) * L + j];
      b[t * L + i] = lse(tmp, L);
    }
  }
  return { a, b, logZ, e, tr, st, en };
}

/**
 * Per-token marginals P(yₜ = j) [n·L] of the CRF with all scores divided by `T`; row t of the emissions
 * starts at `em[offset + t·stride]`. Each row sums to 1.
 */
export function crfMarginals(em: ArrayLike<number>, offset: number, stride: number, n: number, crf: CrfArrays, T = 1): Float64Array {
  const L = crf.L;
  const q = new Float64Array(n * L);
  if (n === 0) return q;
  const { a, b, logZ } = forwardBackward(em, offset, stride, n, crf, T);
  for (let k = 0; k < n * L; k++) q[k] = Math.exp(a[k] + b[k] - logZ);
  return q;
}

/** softmax(x/T) of each of n rows [n·L] (row t at `x[offset + t·stride]`). */
export function softmaxRows(x: ArrayLike<number>, offset: number, stride: number, n: number, L: number, T = 1): Float64Array {
  const p = new Float64Array(n * L);
  for (let t = 0; t < n; t++) {
    const o = offset + t * stride;
    let m = -Infinity;
    for (let j = 0; j < L; j++) m = Math.max(m, x[o + j] / T);
    let s = 0;
    for (let j = 0; j < L; j++) {
      p[t * L + j] = Math.exp(x[o + j] / T - m);
      s += p[t * L + j];
    }
    for (let j = 0; j < L; j++) p[t * L + j] /= s;
  }
  return p;
}

/** Below this a student marginal counts as this (v = w / q stays finite; KL to an impossible label is huge anyway). */
const Q_FLOOR = 1e-30;

/**
 * KL(w ‖ q) summed over the n tokens, q = marginals of the student CRF at temperature T, w = `target`
 * [n·L] (teacher posteriors, rows summing to 1). With `gradEm`, scale·∂KL/∂(raw emission) is added at
 * the emission positions (same layout as `em`); with `grads`, scale·∂KL/∂(raw transition, start, end).
 */
export function crfMarginalKl(
  em: ArrayLike<number>,
  offset: number,
  stride: number,
  n: number,
  target: ArrayLike<number>,
  crf: CrfArrays,
  T: number,
  gradEm?: Float32Array | Float64Array,
  grads?: CrfGrads,
  scale = 1,
): number {
  if (n === 0) return 0;
  const L = crf.L;
  const { a, b, logZ, e, tr, en } = forwardBackward(em, offset, stride, n, crf, T);
  const q = new Float64Array(n * L);
  const v = new Float64Array(n * L);
  let kl = 0;
  for (let k = 0; k < n * L; k++) {
    q[k] = Math.exp(a[k] + b[k] - logZ);
    const w = target[k];
    if (w > 0) {
      const qk = Math.max(q[k], Q_FLOOR);
      kl += w * (Math.log(w) - Math.log(qk));
      v[k] = w / qk;
    }
  }
  if (!gradEm && !grads) return kl;
  // forward-mode tangents along v (on the tempered emissions)
  const da = new Float64Array(n * L);
  const db = new Float64Array(n * L);
  for (let j = 0; j < L; j++) da[j] = v[j];
  for (let t = 1; t < n; t++) {
    for (let j = 0; j < L; j++) {
      const lz = a[t * L + j] - e[t * L + j]; // log Σᵢ exp(a[t−1][i] + tr[i][j])
      let s = 0;
      for (let i = 0; i < L; i++) s += Math.exp(a[(t - 1) * L + i] + tr[i * L + j] - lz) * da[(t - 1) * L + i];
      da[t * L + j] = s + v[t * L + j];
    }
  }
  let dlogZ = 0;
  for (let j = 0; j < L; j++) dlogZ += Math.exp(a[(n - 1) * L + j] + en[j] - logZ) * da[(n - 1) * L + j];
  for (let t = n - 2; t >= 0; t--) {
    for (let i = 0; i < L; i++) {
      const bi = b[t * L + i];
      let s = 0;
      for (let j = 0; j < L; j++) {
        const k = (t + 1) * L + j;
        s += Math.exp(tr[i * L + j] + e[k] + b[k] - bi) * (v[k] + db[k]);
      }
      db[t * L + i] = s;
    }
  }
  // ∂KL/∂(raw score) = −(1/T) · d(marginal)
  const c = -scale / T;
  if (gradEm) {
    for (let t = 0; t < n; t++) {
      const o = offset + t * stride;
      for (let j = 0; j < L; j++) {
        const k = t * L + j;
        gradEm[o + j] += c * q[k] * (da[k] + db[k] - dlogZ);
      }
    }
  }
  if (grads) {
    for (let j = 0; j < L; j++) {
      grads.start[j] += c * q[j] * (da[j] + db[j] - dlogZ);
      const k = (n - 1) * L + j;
      grads.end[j] += c * q[k] * (da[k] + db[k] - dlogZ);
    }
    for (let t = 1; t < n; t++) {
      for (let i = 0; i < L; i++) {
        const ai = a[(t - 1) * L + i];
        const dai = da[(t - 1) * L + i];
        for (let j = 0; j < L; j++) {
          const k = t * L + j;
          const xi = Math.exp(ai + tr[i * L + j] + e[k] + b[k] - logZ);
          grads.trans[i * L + j] += c * xi * (dai + v[k] + db[k] - dlogZ);
        }
      }
    }
  }
  return kl;
}

/**
 * Per-token marginals by enumerating all Lⁿ label paths of the CRF at temperature T (tests only).
 */
export function crfBruteForceMarginals(em: number[][], crf: CrfArrays, T = 1): number[][] {
  const all = crfBruteForcePaths(em, crf);
  const scores = all.map((p) => p.score / T);
  const m = Math.max(...scores);
  const z = scores.reduce((acc, s) => acc + Math.exp(s - m), 0);
  const out = Array.from({ length: em.length }, () => new Array<number>(crf.L).fill(0));
  scores.forEach((s, k) => {
    const p = Math.exp(s - m) / z;
    for (let t = 0; t < em.length; t++) out[t][all[k].path[t]] += p;
  });
  return out;
}
