/**
 * Linear-chain CRF negative log-likelihood and its exact gradient (forward–backward), as pure
 * functions over Float32Array emissions, in the parameterisation ranerc's decoder and
 * fixtures/tools/bert_ner.py `CRF` use (pytorch-crf): score(y) = start[y₀] + Σₜ em[t][yₜ] +
 * Σₜ trans[yₜ₋₁][yₜ] + end[y_last]; NLL = log Σ_y exp score(y) − score(gold).
 *
 * The gradient of the NLL is "expected counts minus gold counts": ∂/∂em[t][j] = P(yₜ = j) − [goldₜ = j],
 * ∂/∂trans[i][j] = Σₜ P(yₜ₋₁ = i, yₜ = j) − [gold pair], and likewise for start/end with the first/last
 * marginals. Computed in float64 log space.
 */
import type { CrfParams } from '../ner/types.js';

/** CRF parameters as flat arrays (trans row-major [from][to]). */
export interface CrfArrays {
  L: number;
  trans: ArrayLike<number>;
  start: ArrayLike<number>;
  end: ArrayLike<number>;
}

/** Gradients of a summed NLL w.r.t. the CRF parameters (accumulated in place). */
export interface CrfGrads {
  trans: Float64Array;
  start: Float64Array;
  end: Float64Array;
}

export function crfArrays(crf: CrfParams): CrfArrays {
  const L = crf.start.length;
  const trans = new Float64Array(L * L);
  for (let i = 0; i < L; i++) for (let j = 0; j < L; j++) trans[i * L + j] = crf.transitions[i][j];
  return { L, trans, start: Float64Array.from(crf.start), end: Float64Array.from(crf.end) };
}

export function zeroCrfGrads(L: number): CrfGrads {
  return { trans: new Float64Array(L * L), start: new Float64Array(L), end: new Float64Array(L) };
}

function logSumExp(v: Float64Array, n: number): number {
  let m = -Infinity;
  for (let i = 0; i < n; i++) if (v[i] > m) m = v[i];
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.exp(v[i] - m);
  return m + Math.log(s);
}

/**
 * NLL of one sequence. `em` holds the sequence's emission rows: row t (0 ≤ t < n) starts at
 * `em[offset + t·stride]` and has L scores. When `gradEm` is given, P(yₜ = j) − [tagsₜ = j] times `scale`
 * is added at the same positions; when `grads` is given, the parameter gradients (times `scale`) are
 * added to it. Returns the NLL (not scaled). n = 0 gives 0.
 */
export function crfSequenceNll(
  em: ArrayLike<number>,
  offset: number,
  stride: number,
  n: number,
  tags: ArrayLike<number>,
  crf: CrfArrays,
  gradEm?: Float32Array | Float64Array,
  grads?: CrfGrads,
  scale = 1,
): number {
  if (n === 0) return 0;
  const L = crf.L;
  const { trans, start, end } = crf;
  for (let t = 0; t < n; t++) {
    const y = tags[t];
    if (!(Number.isInteger(y) && y >= 0 && y < L)) throw new RangeError(`tag ${y} at position ${t} is outside [0, ${L})`);
  }
  // gold score
  let gold = start[tags[0]] + em[offset + tags[0]];
  for (let t = 1; t < n; t++) gold += trans[tags[t - 1] * L + tags[t]] + em[offset + t * stride + tags[t]];
  gold += end[tags[n - 1]];
  // forward
  const alpha = new Float64Array(n * L);
  const tmp = new Float64Array(L);
  for (let j = 0; j < L; j++) alpha[j] = start[j] + em[offset + j];
  for (let t = 1; t < n; t++) {
    const e = offset + t * stride;
    for (let j = 0; j < L; j++) {
      for (let i = 0; i < L; i++) tmp[i] = alpha[(t - 1) * L + i] + trans[i * L + j];
      alpha[t * L + j] = logSumExp(tmp, L) + em[e + j];
    }
  }
  for (let j = 0; j < L; j++) tmp[j] = alpha[(n - 1) * L + j] + end[j];
  const logZ = logSumExp(tmp, L);
  if (!gradEm && !grads) return logZ - gold;
  // backward: beta[t][i] = log Σ over continuations from label i at t (incl. end)
  const beta = new Float64Array(n * L);
  for (let i = 0; i < L; i++) beta[(n - 1) * L + i] = end[i];
  for (let t = n - 2; t >= 0; t--) {
    const e = offset + (t + 1) * stride;
    for (let i = 0; i < L; i++) {
      for (let j = 0; j < L; j++) tmp[j] = trans[i * L + j] + em[e + j] + beta[(t + 1) * L + j];
      beta[t * L + i] = logSumExp(tmp, L);
    }
  }
  if (gradEm) {
    for (let t = 0; t < n; t++) {
      const e = offset + t * stride;
      for (let j = 0; j < L; j++) {
        const p = Math.exp(alpha[t * L + j] + beta[t * L + j] - logZ);
        gradEm[e + j] += scale * (p - (tags[t] === j ? 1 : 0));
      }
    }
  }
  if (grads) {
    for (let j = 0; j < L; j++) {
      grads.start[j] += scale * (Math.exp(alpha[j] + beta[j] - logZ) - (tags[0] === j ? 1 : 0));
      grads.end[j] += scale * (Math.exp(alpha[(n - 1) * L + j] + end[j] - logZ) - (tags[n - 1] === j ? 1 : 0));
    }
    for (let t = 1; t < n; t++) {
      const e = offset + t * stride;
      for (let i = 0; i < L; i++) {
        const a = alpha[(t - 1) * L + i];
        for (let j = 0; j < L; j++) {
          grads.trans[i * L + j] += scale * Math.exp(a + trans[i * L + j] + em[e + j] + beta[t * L + j] - logZ);
        }
      }
      grads.trans[tags[t - 1] * L + tags[t]] -= scale;
    }
  }
  return logZ - gold;
}

/** Every label path of the CRF with its score (start + emissions + transitions + end), by enumeration (tests only: Lⁿ paths). */
export function crfBruteForcePaths(em: number[][], crf: CrfArrays): Array<{ path: number[]; score: number }> {
  const n = em.length;
  const L = crf.L;
  const out: Array<{ path: number[]; score: number }> = [];
  const total = L ** n;
  for (let k = 0; k < total; k++) {
    const path = new Array<number>(n);
    let r = k;
    for (let t = n - 1; t >= 0; t--) {
      path[t] = r % L;
      r = Math.floor(r / L);
    }
    let s = crf.start[path[0]] + em[0][path[0]];
    for (let t = 1; t < n; t++) s += crf.trans[path[t - 1] * L + path[t]] + em[t][path[t]];
    out.push({ path, score: s + crf.end[path[n - 1]] });
  }
  return out;
}

/** log Σ over all label paths of exp(score) by enumeration (tests only: Lⁿ paths). */
export function crfBruteForceLogZ(em: number[][], crf: CrfArrays): number {
  const scores = crfBruteForcePaths(em, crf).map((p) => p.score);
  const m = Math.max(...scores);
  return m + Math.log(scores.reduce((a, s) => a + Math.exp(s - m), 0));
}
