/**
 * The fine-tuning objective against independent facts: hand-computed cross-entropy, tfjs' own
 * logSoftmax + autodiff, brute-force enumeration of CRF label paths, PyTorch's CRF.nll
 * (test/distill/fixtures/facts.json, made by fixtures/tools/bert_ner.py) and finite differences.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/autodiff/backend.js';
import { tokenLoss, tokenLossValue, type LossTargets } from '../../src/autodiff/train/loss.js';
import { crfBruteForceLogZ, zeroCrfGrads, type CrfArrays } from '../../src/distill/crf.js';
import { mulberry32 } from '../../src/runtime/bench.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface CrfFact {
  B: number;
  T: number;
  L: number;
  lens: number[];
  emissions: number[][][];
  tags: number[][];
  transitions: number[][];
  start: number[];
  end: number[];
  nll_mean: number;
  grad_emissions: number[][][];
  grad_transitions: number[][];
  grad_start: number[];
  grad_end: number[];
}
const FACTS = JSON.parse(readFileSync(join(REPO, 'test/distill/fixtures/facts.json'), 'utf8')) as { crf: CrfFact[] };

beforeAll(async () => {
  await initBackend('cpu');
});

/** A padded batch: row r = [CLS] lens[r] tokens [SEP] padding; random logits everywhere (also on masked positions). */
function randomBatch(lens: number[], L: number, seed: number, firstPiece?: number[][]): { logits: Float32Array; t: LossTargets } {
  const r = mulberry32(seed);
  const B = lens.length;
  const S = Math.max(...lens) + 2;
  const logits = Float32Array.from({ length: B * S * L }, () => 6 * r() - 3);
  const tags = new Int32Array(B * S);
  const ceMask = new Uint8Array(B * S);
  lens.forEach((n, b) => {
    for (let k = 0; k < n; k++) {
      tags[b * S + 1 + k] = Math.floor(r() * L);
      ceMask[b * S + 1 + k] = firstPiece ? firstPiece[b][k] : 1;
    }
  });
  return { logits, t: { rows: B, seq: S, lens: Int32Array.from(lens), tags, ceMask } };
}

function randomCrf(L: number, seed: number): CrfArrays {
  const r = mulberry32(seed);
  return {
    L,
    trans: Float64Array.from({ length: L * L }, () => 2 * r() - 1),
    start: Float64Array.from({ length: L }, () => 2 * r() - 1),
    end: Float64Array.from({ length: L }, () => 2 * r() - 1),
  };
}

describe('token cross-entropy', () => {
  it('equals a hand-computed value: logits [0, ln 3], gold 0 → ln 4', () => {
    const t: LossTargets = { rows: 1, seq: 3, lens: Int32Array.from([1]), tags: Int32Array.from([0, 0, 0]), ceMask: Uint8Array.from([0, 1, 0]) };
    const logits = Float32Array.from([9, -9, 0, Math.log(3), 5, 5]);
    expect(tokenLossValue(logits, 2, t, 'ce', 1)).toBeCloseTo(Math.log(4), 6);
    const grad = { logits: new Float32Array(6) };
    tokenLossValue(logits, 2, t, 'ce', 2, undefined, grad);
    // (softmax − onehot) / denominator at the counted position only
    expect(Array.from(grad.logits)).toEqual([0, 0, expect.closeTo((0.25 - 1) / 2, 6), expect.closeTo(0.75 / 2, 6), 0, 0]);
  });

  it('equals tfjs logSoftmax over the masked positions, and its autodiff gradient', () => {
    const L = 5;
    const first = [
      [1, 0, 1, 1, 0, 1],
      [1, 1, 1, 0],
      [1],
    ];
    const { logits, t } = randomBatch([6, 4, 1], L, 11, first);
    const denom = 17;
    const mine = { logits: new Float32Array(logits.length) };
    const value = tokenLossValue(logits, L, t, 'ce', denom, undefined, mine);
    const shape = [t.rows, t.seq, L];
    const ref = (z: tf.Tensor) =>
      tf.div(
        tf.neg(
          tf.sum(tf.mul(tf.mul(tf.logSoftmax(z), tf.oneHot(tf.tensor(t.tags, [t.rows, t.seq], 'int32'), L)), tf.tensor(t.ceMask, [t.rows, t.seq, 1], 'float32'))),
        ),
        denom,
      ) as tf.Scalar;
    const x = tf.tensor(logits, shape);
    const { value: v, grad } = tf.valueAndGrad(ref)(x);
    expect(value).toBeCloseTo(v.dataSync()[0], 5);
    const g = grad.dataSync();
    for (let i = 0; i < g.length; i++) expect(mine.logits[i]).toBeCloseTo(g[i], 6);
    tf.dispose([x, v, grad]);
  });

  it('[CLS], [SEP], padding and later pieces change neither the loss nor the gradient', () => {
    const L = 4;
    const first = [[1, 0, 1], [1, 1]];
    const a = randomBatch([3, 2], L, 5, first);
    const b = { logits: Float32Array.from(a.logits), t: a.t };
    const S = a.t.seq;
    // perturb every position the loss must not read: [CLS], [SEP], padding, the later piece (row 0, token 2)
    const masked = [0, 2, 4, 5 + 0, 5 + 3, 5 + 4].map((p) => p);
    for (const p of masked) for (let j = 0; j < L; j++) b.logits[p * L + j] += 7 * (j + 1);
    expect(S).toBe(5);
    const ga = { logits: new Float32Array(a.logits.length) };
    const gb = { logits: new Float32Array(a.logits.length) };
    expect(tokenLossValue(b.logits, L, b.t, 'ce', 3, undefined, gb)).toBeCloseTo(tokenLossValue(a.logits, L, a.t, 'ce', 3, undefined, ga), 10);
    expect(Array.from(gb.logits)).toEqual(Array.from(ga.logits));
    for (const p of masked) for (let j = 0; j < L; j++) expect(ga.logits[p * L + j]).toBe(0);
  });
});

describe('CRF negative log-likelihood', () => {
  it('is Σ over rows of (brute-force log Z − gold path score) ÷ denominator, over positions 1 … len', () => {
    const L = 3;
    const { logits, t } = randomBatch([4, 2, 5], L, 21);
    const crf = randomCrf(L, 22);
    let sum = 0;
    for (let r = 0; r < t.rows; r++) {
      const n = t.lens[r];
      const em = Array.from({ length: n }, (_, k) => Array.from(logits.subarray((r * t.seq + 1 + k) * L, (r * t.seq + 2 + k) * L)));
      const y = Array.from({ length: n }, (_, k) => t.tags[r * t.seq + 1 + k]);
      let gold = crf.start[y[0]] + crf.end[y[n - 1]];
      for (let k = 0; k < n; k++) gold += em[k][y[k]] + (k > 0 ? crf.trans[y[k - 1] * L + y[k]] : 0);
      sum += crfBruteForceLogZ(em, crf) - gold;
    }
    expect(tokenLossValue(logits, L, t, 'crf', 11, crf)).toBeCloseTo(sum / 11, 5);
  });

  it("equals PyTorch's CRF.nll and its autograd gradients (bert_ner.py, facts.json)", () => {
    expect(FACTS.crf.length).toBeGreaterThan(0);
    for (const f of FACTS.crf) {
      const S = f.T + 2;
      const logits = new Float32Array(f.B * S * f.L);
      const tags = new Int32Array(f.B * S);
      for (let b = 0; b < f.B; b++) {
        for (let k = 0; k < f.lens[b]; k++) {
          for (let j = 0; j < f.L; j++) logits[(b * S + 1 + k) * f.L + j] = f.emissions[b][k][j];
          tags[b * S + 1 + k] = f.tags[b][k];
        }
      }
      const t: LossTargets = { rows: f.B, seq: S, lens: Int32Array.from(f.lens), tags, ceMask: new Uint8Array(f.B * S) };
      const crf: CrfArrays = { L: f.L, trans: Float64Array.from(f.transitions.flat()), start: Float64Array.from(f.start), end: Float64Array.from(f.end) };
      // PyTorch averages over sequences: denominator B gives the same number (facts.json's gradients are of the sum, B × mean)
      const grad = { logits: new Float32Array(logits.length), crf: zeroCrfGrads(f.L) };
      expect(tokenLossValue(logits, f.L, t, 'crf', f.B, crf, grad)).toBeCloseTo(f.nll_mean, 5);
      for (let b = 0; b < f.B; b++) {
        for (let k = 0; k < f.lens[b]; k++) {
          for (let j = 0; j < f.L; j++) expect(grad.logits[(b * S + 1 + k) * f.L + j] * f.B).toBeCloseTo(f.grad_emissions[b][k][j], 5);
        }
      }
      f.grad_transitions.flat().forEach((x, i) => expect(grad.crf.trans[i] * f.B).toBeCloseTo(x, 6));
      f.grad_start.forEach((x, i) => expect(grad.crf.start[i] * f.B).toBeCloseTo(x, 6));
      f.grad_end.forEach((x, i) => expect(grad.crf.end[i] * f.B).toBeCloseTo(x, 6));
    }
  });
});

describe('tokenLoss (the tfjs op)', () => {
  it('CRF: value and gradients w.r.t. logits, transitions, start and end equal central finite differences', () => {
    const L = 3;
    const { logits, t } = randomBatch([3, 1, 2], L, 31);
    const crf = randomCrf(L, 32);
    const shape = [t.rows, t.seq, L];
    const inputs = [tf.tensor(logits, shape), tf.tensor(Float32Array.from(crf.trans), [L, L]), tf.tensor(Float32Array.from(crf.start), [L]), tf.tensor(Float32Array.from(crf.end), [L])];
    const f = (z: tf.Tensor, tr: tf.Tensor, st: tf.Tensor, en: tf.Tensor) => tokenLoss(z, t, 'crf', 6, { transitions: tr, start: st, end: en });
    const { value, grads } = tf.valueAndGrads(f as (...a: tf.Tensor[]) => tf.Scalar)(inputs);
    expect(value.dataSync()[0]).toBeCloseTo(tokenLossValue(logits, L, t, 'crf', 6, crf), 5);
    const at = (k: number, i: number, h: number): number => {
      const [trans, start, end] = [Float64Array.from(crf.trans), Float64Array.from(crf.start), Float64Array.from(crf.end)];
      const z = Float64Array.from(logits);
      [z, trans, start, end][k][i] += h;
      return tokenLossValue(z, L, t, 'crf', 6, { L, trans, start, end });
    };
    const h = 1e-5;
    grads.forEach((g, k) => {
      const gv = g.dataSync();
      for (let i = 0; i < gv.length; i++) expect(gv[i]).toBeCloseTo((at(k, i, h) - at(k, i, -h)) / (2 * h), 4);
    });
    tf.dispose([...inputs, value, ...grads]);
  });

  it('CE: the op gradient equals the pure function, and a scale on the loss scales it (chain rule through dy)', () => {
    const L = 4;
    const { logits, t } = randomBatch([2, 3], L, 41);
    const x = tf.tensor(logits, [t.rows, t.seq, L]);
    const g = tf.grad((z: tf.Tensor) => tf.mul(tokenLoss(z, t, 'ce', 5), 3) as tf.Scalar)(x).dataSync();
    const mine = { logits: new Float32Array(logits.length) };
    tokenLossValue(logits, L, t, 'ce', 5, undefined, mine);
    for (let i = 0; i < g.length; i++) expect(g[i]).toBeCloseTo(3 * mine.logits[i], 6);
    x.dispose();
  });

  it('refuses logits of another shape and a CRF of another size', () => {
    const { logits, t } = randomBatch([2], 3, 51);
    const x = tf.tensor(logits, [1, t.seq * 3]);
    expect(() => tokenLoss(x, t, 'ce', 1)).toThrow(/expected \[1, 4, labels\]/);
    expect(() => tokenLossValue(logits, 3, t, 'crf', 1, randomCrf(4, 1))).toThrow(/4 labels, the logits 3/);
    expect(() => tokenLossValue(logits, 3, t, 'ce', 0)).toThrow(/denominator/);
    x.dispose();
  });
});
