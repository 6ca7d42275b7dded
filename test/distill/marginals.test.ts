/**
 * CRF marginals and the marginal KD loss against independent facts: brute-force enumeration of all
 * label paths (marginals, and the KL computed from enumerated marginals) and central finite differences
 * of that enumerated KL (gradients w.r.t. emissions, transitions, start and end).
 */
import { describe, expect, it } from 'vitest';
import { zeroCrfGrads, type CrfArrays } from '../../src/distill/crf.js';
import { crfBruteForceMarginals, crfMarginalKl, crfMarginals, softmaxRows } from '../../src/distill/marginals.js';
import { mulberry32 } from '../../src/runtime/bench.js';

function randomCrf(L: number, r: () => number, spread = 2): CrfArrays {
  return {
    L,
    trans: Float64Array.from({ length: L * L }, () => spread * (r() - 0.5)),
    start: Float64Array.from({ length: L }, () => spread * (r() - 0.5)),
    end: Float64Array.from({ length: L }, () => spread * (r() - 0.5)),
  };
}

/** KL(w ‖ brute-force marginals), summed over tokens — independent of the forward–backward code. */
function bruteKl(em: number[][], crf: CrfArrays, w: ArrayLike<number>, T: number): number {
  const q = crfBruteForceMarginals(em, crf, T);
  let s = 0;
  q.forEach((row, t) => row.forEach((x, j) => {
    const p = w[t * crf.L + j];
    if (p > 0) s += p * Math.log(p / x);
  }));
  return s;
}

function rows(flat: ArrayLike<number>, n: number, L: number): number[][] {
  return Array.from({ length: n }, (_, t) => Array.from({ length: L }, (_, j) => flat[t * L + j]));
}

describe('CRF marginals', () => {
  it('each token row sums to 1 and equals enumeration over all label paths (several T)', () => {
    const r = mulberry32(11);
    for (const [L, n, T] of [[2, 1, 1], [3, 2, 1], [3, 4, 2], [4, 3, 0.5], [5, 3, 4], [7, 3, 1]]) {
      const crf = randomCrf(L, r, 4);
      const em = Float64Array.from({ length: n * L }, () => 6 * r() - 3);
      const q = crfMarginals(em, 0, L, n, crf, T);
      const ref = crfBruteForceMarginals(rows(em, n, L), crf, T);
      for (let t = 0; t < n; t++) {
        let s = 0;
        for (let j = 0; j < L; j++) {
          s += q[t * L + j];
          expect(q[t * L + j]).toBeCloseTo(ref[t][j], 12);
        }
        expect(s).toBeCloseTo(1, 12);
      }
    }
  });

  it('reads rows at offset + t·stride (padded batch layout)', () => {
    const r = mulberry32(2);
    const L = 3;
    const crf = randomCrf(L, r);
    const em = Float64Array.from({ length: 4 * L }, () => r());
    const padded = new Float64Array(100).fill(99);
    for (let t = 0; t < 4; t++) for (let j = 0; j < L; j++) padded[7 + t * 5 + j] = em[t * L + j];
    expect(Array.from(crfMarginals(padded, 7, 5, 4, crf))).toEqual(Array.from(crfMarginals(em, 0, L, 4, crf)));
  });

  it('with zero transitions/start/end the marginals are the per-token softmax', () => {
    const L = 4;
    const crf: CrfArrays = { L, trans: new Float64Array(L * L), start: new Float64Array(L), end: new Float64Array(L) };
    const em = Float64Array.from([1, 2, 0, -1, 0.5, 0.5, 3, 0]);
    const q = crfMarginals(em, 0, L, 2, crf, 2);
    const p = softmaxRows(em, 0, L, 2, L, 2);
    for (let k = 0; k < 8; k++) expect(q[k]).toBeCloseTo(p[k], 14);
  });
});

describe('marginal KL (teacher posteriors ‖ student CRF marginals)', () => {
  it('value equals the KL to enumerated marginals; zero when the target is the student itself', () => {
    const r = mulberry32(5);
    const L = 4;
    const n = 3;
    const crf = randomCrf(L, r);
    const em = Float64Array.from({ length: n * L }, () => 4 * r() - 2);
    const w = softmaxRows(Float64Array.from({ length: n * L }, () => 4 * r() - 2), 0, L, n, L);
    for (const T of [1, 3]) expect(crfMarginalKl(em, 0, L, n, w, crf, T)).toBeCloseTo(bruteKl(rows(em, n, L), crf, w, T), 12);
    const self = crfMarginals(em, 0, L, n, crf, 2);
    expect(crfMarginalKl(em, 0, L, n, self, crf, 2)).toBeCloseTo(0, 12);
  });

  it('gradients w.r.t. emissions, transitions, start and end equal finite differences of the enumerated KL', () => {
    const r = mulberry32(17);
    for (const [L, n, T] of [[3, 4, 1], [4, 3, 2.5], [2, 1, 1], [5, 2, 0.7]]) {
      const crf = randomCrf(L, r, 3);
      const em = Float64Array.from({ length: n * L }, () => 4 * r() - 2);
      // a teacher with a zero somewhere (an impossible label) and a peaked row
      const w = softmaxRows(Float64Array.from({ length: n * L }, () => 8 * r() - 4), 0, L, n, L);
      w[0] += w[1];
      w[1] = 0;
      const gEm = new Float64Array(n * L);
      const g = zeroCrfGrads(L);
      const scale = 0.37;
      crfMarginalKl(em, 0, L, n, w, crf, T, gEm, g, scale);
      const h = 1e-5;
      const f = (e: Float64Array, c: CrfArrays) => scale * bruteKl(rows(e, n, L), c, w, T);
      for (let i = 0; i < n * L; i++) {
        const p = Float64Array.from(em);
        const m = Float64Array.from(em);
        p[i] += h;
        m[i] -= h;
        expect(gEm[i]).toBeCloseTo((f(p, crf) - f(m, crf)) / (2 * h), 7);
      }
      for (const key of ['trans', 'start', 'end'] as const) {
        const size = key === 'trans' ? L * L : L;
        for (let i = 0; i < size; i++) {
          const p = { ...crf, [key]: Float64Array.from(crf[key]) };
          const m = { ...crf, [key]: Float64Array.from(crf[key]) };
          (p[key] as Float64Array)[i] += h;
          (m[key] as Float64Array)[i] -= h;
          expect(g[key][i]).toBeCloseTo((f(em, p) - f(em, m)) / (2 * h), 7);
        }
      }
    }
  });

  it('the transition gradient is not zero: the soft term trains the CRF', () => {
    const r = mulberry32(1);
    const L = 3;
    const crf = randomCrf(L, r);
    const em = Float64Array.from({ length: 3 * L }, () => r());
    const w = Float64Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1]);
    const g = zeroCrfGrads(L);
    crfMarginalKl(em, 0, L, 3, w, crf, 1, undefined, g);
    expect(Math.max(...Array.from(g.trans, Math.abs))).toBeGreaterThan(1e-3);
  });
});

describe('distillLossValues with kd = marginal', () => {
  it('soft term = Σ KL(teacher CRF marginals ‖ student CRF marginals) / real tokens, by enumeration; α = 1 trains the CRF', async () => {
    const { distillLossValues } = await import('../../src/distill/loss.js');
    const r = mulberry32(23);
    const L = 3;
    const lens = [3, 2];
    const S = 5;
    const student = randomCrf(L, r);
    const teacher = randomCrf(L, r, 4);
    const logits = Float32Array.from({ length: 2 * S * L }, () => 4 * r() - 2);
    const tl = Float32Array.from({ length: 2 * S * L }, () => 4 * r() - 2);
    const batch = { rows: 2, seq: S, lens: Int32Array.from(lens), teacher: tl };
    const T = 2;
    const grad = { logits: new Float32Array(logits.length), crf: zeroCrfGrads(L) };
    const v = distillLossValues(logits, L, batch, { alpha: 1, temperature: T, kd: 'marginal', hard: 'crf', teacherCrf: teacher }, student, grad);
    let kl = 0;
    lens.forEach((n, b) => {
      const em = Array.from({ length: n }, (_, t) => Array.from(logits.slice((b * S + 1 + t) * L, (b * S + 2 + t) * L)));
      const tem = Array.from({ length: n }, (_, t) => Array.from(tl.slice((b * S + 1 + t) * L, (b * S + 2 + t) * L)));
      kl += bruteKl(em, student, crfBruteForceMarginals(tem, teacher, T).flat(), T);
    });
    expect(v.tokens).toBe(5);
    expect(v.soft).toBeCloseTo(kl / 5, 6);
    expect(v.loss).toBeCloseTo(T * T * v.soft, 10);
    expect(Math.max(...Array.from(grad.crf.trans, Math.abs))).toBeGreaterThan(1e-4);
    // [CLS], [SEP] and padding get no gradient
    for (const pos of [0, 4, S, S + 3, S + 4]) for (let j = 0; j < L; j++) expect(grad.logits[pos * L + j]).toBe(0);
  });
});
