/**
 * Distillation math against independent facts: hand-computed KL numbers, brute-force enumeration of CRF
 * paths, PyTorch (fixtures/tools/bert_ner.py CRF.nll, F.kl_div, torch.optim.AdamW — facts.json from
 * fixtures/make_facts.py) and finite differences.
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/autodiff/backend.js';
import { crfBruteForceLogZ, crfSequenceNll, zeroCrfGrads, type CrfArrays } from '../../src/distill/crf.js';
import { distillLoss, distillLossValues, KD_LOSSES, TEMPERATURE_SCHEDULES, type LossBatch, type LossValues } from '../../src/distill/loss.js';
import { HostAdamW } from '../../src/autodiff/train/optim.js';
import { mulberry32 } from '../../src/runtime/bench.js';

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
interface KdFact {
  N: number;
  L: number;
  T: number;
  student: number[][];
  teacher: number[][];
  kl_sum: number;
  grad_kl_sum: number[][];
  ce_sum: number;
  mse_sum: number;
}
const FACTS = JSON.parse(readFileSync(new URL('./fixtures/facts.json', import.meta.url), 'utf8')) as {
  crf: CrfFact[];
  kd: KdFact[];
  adamw: { lr: number; weight_decay: number; initial: number[]; grads: number[][]; after: number[][] };
};

function crfOf(f: { L: number; transitions: number[][]; start: number[]; end: number[] }): CrfArrays {
  return { L: f.L, trans: Float64Array.from(f.transitions.flat()), start: Float64Array.from(f.start), end: Float64Array.from(f.end) };
}

/** A loss batch holding each fact row as positions 1..n of a [CLS] … [SEP] row. */
function batchOf(rows: number[][][], lens: number[], L: number, tags?: number[][], teacher?: number[][][]): { logits: Float64Array; batch: LossBatch } {
  const B = rows.length;
  const S = Math.max(...lens) + 2;
  const logits = new Float64Array(B * S * L).fill(123); // junk at [CLS]/[SEP]/padding
  const t = tags ? new Int32Array(B * S).fill(-1) : undefined;
  const te = teacher ? new Float32Array(B * S * L).fill(-77) : undefined;
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < lens[b]; i++) {
      for (let j = 0; j < L; j++) {
        logits[(b * S + 1 + i) * L + j] = rows[b][i][j];
        if (te) te[(b * S + 1 + i) * L + j] = teacher![b][i][j];
      }
      if (t) t[b * S + 1 + i] = tags![b][i];
    }
  }
  return { logits, batch: { rows: B, seq: S, lens: Int32Array.from(lens), tags: t, teacher: te } };
}

describe('CRF negative log-likelihood', () => {
  it('log Z equals brute-force enumeration of all label paths', () => {
    const r = mulberry32(3);
    for (const [L, n] of [[2, 1], [3, 2], [3, 4], [4, 3], [5, 2]]) {
      const crf: CrfArrays = {
        L,
        trans: Float64Array.from({ length: L * L }, () => 2 * r() - 1),
        start: Float64Array.from({ length: L }, () => 2 * r() - 1),
        end: Float64Array.from({ length: L }, () => 2 * r() - 1),
      };
      const em = Array.from({ length: n }, () => Array.from({ length: L }, () => 4 * r() - 2));
      const tags = Array.from({ length: n }, () => Math.floor(r() * L));
      const gold = crf.start[tags[0]] + em.reduce((s, row, t) => s + row[tags[t]] + (t > 0 ? crf.trans[tags[t - 1] * L + tags[t]] : 0), 0) + crf.end[tags[n - 1]];
      const nll = crfSequenceNll(em.flat(), 0, L, n, tags, crf);
      expect(nll).toBeCloseTo(crfBruteForceLogZ(em, crf) - gold, 10);
    }
  });

  it('gradients are expected minus gold counts (central finite differences)', () => {
    const r = mulberry32(7);
    const L = 3;
    const n = 4;
    const crf: CrfArrays = { L, trans: Float64Array.from({ length: 9 }, () => r() - 0.5), start: Float64Array.from([0.1, -0.2, 0.3]), end: Float64Array.from([0, 0.5, -0.5]) };
    const em = Float64Array.from({ length: n * L }, () => 2 * r() - 1);
    const tags = [0, 2, 2, 1];
    const gEm = new Float64Array(n * L);
    const g = zeroCrfGrads(L);
    crfSequenceNll(em, 0, L, n, tags, crf, gEm, g);
    const h = 1e-6;
    for (let i = 0; i < n * L; i++) {
      const p = Float64Array.from(em);
      const m = Float64Array.from(em);
      p[i] += h;
      m[i] -= h;
      expect(gEm[i]).toBeCloseTo((crfSequenceNll(p, 0, L, n, tags, crf) - crfSequenceNll(m, 0, L, n, tags, crf)) / (2 * h), 6);
    }
    for (let i = 0; i < L * L; i++) {
      const p = { ...crf, trans: Float64Array.from(crf.trans) };
      const m = { ...crf, trans: Float64Array.from(crf.trans) };
      p.trans[i] += h;
      m.trans[i] -= h;
      expect(g.trans[i]).toBeCloseTo((crfSequenceNll(em, 0, L, n, tags, p) - crfSequenceNll(em, 0, L, n, tags, m)) / (2 * h), 6);
    }
  });

  it('equals bert_ner.py CRF.nll (PyTorch) and its autograd gradients', () => {
    for (const f of FACTS.crf) {
      const crf = crfOf(f);
      const { logits, batch } = batchOf(f.emissions, f.lens, f.L, f.tags);
      const grad = { logits: new Float32Array(logits.length), crf: zeroCrfGrads(f.L) };
      const N = f.lens.reduce((a, b) => a + b, 0);
      const v = distillLossValues(logits, f.L, batch, { alpha: 0, temperature: 1, kd: 'kl', hard: 'crf' }, crf, grad);
      // our hard term is the summed NLL per real token; PyTorch's is the mean over sequences
      expect(v.hard * N).toBeCloseTo(f.nll_mean * f.B, 9);
      expect(v.loss).toBeCloseTo(v.hard, 12);
      for (let b = 0; b < f.B; b++) {
        for (let t = 0; t < f.T; t++) {
          for (let j = 0; j < f.L; j++) {
            const expected = t < f.lens[b] ? f.grad_emissions[b][t][j] : 0;
            const got = t < f.lens[b] ? grad.logits[(b * batch.seq + 1 + t) * f.L + j] * N : 0;
            expect(got).toBeCloseTo(expected, 5);
          }
        }
      }
      f.grad_transitions.flat().forEach((x, i) => expect(grad.crf.trans[i] * N).toBeCloseTo(x, 9));
      f.grad_start.forEach((x, i) => expect(grad.crf.start[i] * N).toBeCloseTo(x, 9));
      f.grad_end.forEach((x, i) => expect(grad.crf.end[i] * N).toBeCloseTo(x, 9));
    }
  });
});

describe('knowledge-distillation losses', () => {
  it('KL matches hand-computed values (2 labels) and carries the T² factor', () => {
    // teacher [0, 0] → p = (½, ½); student [ln 3, 0]:
    //   T = 1: q = (¾, ¼), KL = ½ ln(½/¾) + ½ ln(½/¼) = ½ ln(4/3) = 0.1438410362
    //   T = 2: q = (√3, 1)/(√3 + 1), KL = ½ ln(¼ / (q₁q₂)) = ½ ln((√3 + 1)² / (4√3)) = ½ ln(1.0773503) = 0.0372523
    const s = [Math.log(3), 0];
    const t = [0, 0];
    expect(KD_LOSSES.kl(s, t, 0, 2, 1, undefined, 1)).toBeCloseTo(0.5 * Math.log(4 / 3), 12);
    const kl2 = 0.5 * Math.log((Math.sqrt(3) + 1) ** 2 / (4 * Math.sqrt(3)));
    expect(kl2).toBeCloseTo(0.0372523, 6);
    expect(KD_LOSSES.kl(s, t, 0, 2, 2, undefined, 1)).toBeCloseTo(kl2, 12);
    // one real token, α = 1, T = 2: loss = T² · KL
    const { logits, batch } = batchOf([[s]], [1], 2, undefined, [[t]]);
    const v = distillLossValues(logits, 2, batch, { alpha: 1, temperature: 2, kd: 'kl', hard: 'ce' });
    expect(v.loss).toBeCloseTo(4 * kl2, 12);
    expect(v.soft).toBeCloseTo(kl2, 12);
  });

  it('equals torch.nn.functional.kl_div (and kd_ce / kd_mse) with its autograd gradient', () => {
    for (const f of FACTS.kd) {
      const N = f.N;
      const { logits, batch } = batchOf([f.student], [N], f.L, undefined, [f.teacher]);
      const grad = { logits: new Float32Array(logits.length) };
      const v = distillLossValues(logits, f.L, batch, { alpha: 1, temperature: f.T, kd: 'kl', hard: 'ce' }, undefined, grad);
      // teacher logits are held as float32: agreement to ~1e-7
      expect(v.soft * N).toBeCloseTo(f.kl_sum, 6);
      // d(α T² KL_sum / N)/ds = T² / N · dKL_sum/ds
      for (let i = 0; i < N; i++) for (let j = 0; j < f.L; j++) expect((grad.logits[(1 + i) * f.L + j] * N) / f.T ** 2).toBeCloseTo(f.grad_kl_sum[i][j], 6);
      const ce = distillLossValues(logits, f.L, batch, { alpha: 1, temperature: f.T, kd: 'ce', hard: 'ce' });
      expect(ce.soft * N).toBeCloseTo(f.ce_sum, 6);
      const mse = distillLossValues(logits, f.L, batch, { alpha: 1, temperature: f.T, kd: 'mse', hard: 'ce' });
      expect(mse.soft * N).toBeCloseTo(f.mse_sum, 6);
    }
  });

  it('only real tokens count: [CLS], [SEP] and padding change neither loss nor gradient', () => {
    const f = FACTS.kd[0];
    const tags = [[0, 1, 2, 3, 0], [1, 1, 0]];
    const rows = [f.student, f.student.slice(0, 3)];
    const teach = [f.teacher, f.teacher.slice(0, 3)];
    const a = batchOf(rows, [5, 3], f.L, tags, teach);
    const b = batchOf(rows, [5, 3], f.L, tags, teach);
    const S = a.batch.seq;
    for (const pos of [0, 6, 1 * S + 0, 1 * S + 4, 1 * S + 5, 1 * S + 6]) {
      for (let j = 0; j < f.L; j++) {
        b.logits[pos * f.L + j] = -999 + j;
        b.batch.teacher![pos * f.L + j] = 555;
      }
    }
    const opts = { alpha: 0.7, temperature: 4, kd: 'kl', hard: 'ce' } as const;
    const ga = { logits: new Float32Array(a.logits.length) };
    const gb = { logits: new Float32Array(b.logits.length) };
    const va = distillLossValues(a.logits, f.L, a.batch, opts, undefined, ga);
    const vb = distillLossValues(b.logits, f.L, b.batch, opts, undefined, gb);
    expect(vb.loss).toBe(va.loss);
    expect(va.tokens).toBe(8);
    expect(Array.from(gb.logits)).toEqual(Array.from(ga.logits));
    for (let j = 0; j < f.L; j++) expect(ga.logits[0 * f.L + j]).toBe(0); // [CLS] of row 0
  });

  it('α mixes the terms: loss = α·T²·soft + (1 − α)·hard', () => {
    const f = FACTS.kd[1];
    const tags = [[0, 1, 2]];
    const { logits, batch } = batchOf([f.student], [3], f.L, tags, [f.teacher]);
    const soft = distillLossValues(logits, f.L, batch, { alpha: 1, temperature: 3, kd: 'kl', hard: 'ce' });
    const hard = distillLossValues(logits, f.L, batch, { alpha: 0, temperature: 3, kd: 'kl', hard: 'ce' });
    const mix = distillLossValues(logits, f.L, batch, { alpha: 0.3, temperature: 3, kd: 'kl', hard: 'ce' });
    expect(mix.loss).toBeCloseTo(0.3 * 9 * soft.soft + 0.7 * hard.hard, 12);
    // token cross-entropy by hand: −log softmax(z)[y], mean over the 3 tokens
    const ce = f.student.reduce((s, row, i) => s + Math.log(row.reduce((a, x) => a + Math.exp(x), 0)) - row[tags[0][i]], 0) / 3;
    expect(hard.hard).toBeCloseTo(ce, 12);
  });

  it('temperature schedules: constant, and linear from T to 1', () => {
    expect(TEMPERATURE_SCHEDULES.constant(4, 0.9)).toBe(4);
    expect(TEMPERATURE_SCHEDULES.linear(4, 0)).toBe(4);
    expect(TEMPERATURE_SCHEDULES.linear(4, 0.5)).toBe(2.5);
    expect(TEMPERATURE_SCHEDULES.linear(4, 1)).toBe(1);
    expect(TEMPERATURE_SCHEDULES.linear(4, 2)).toBe(1);
  });
});

describe('tfjs wrappers', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it('distillLoss: value and gradients (logits and CRF parameters) equal the pure function', () => {
    const f = FACTS.crf[0];
    const { logits, batch } = batchOf(f.emissions, f.lens, f.L, f.tags, f.emissions.map((r) => r.map((x) => x.map((v) => -v))));
    const lg = tf.variable(tf.tensor3d(Float32Array.from(logits), [f.B, batch.seq, f.L]));
    const crfT = { transitions: tf.variable(tf.tensor2d(f.transitions)), start: tf.variable(tf.tensor1d(f.start)), end: tf.variable(tf.tensor1d(f.end)) };
    const opts = { alpha: 0.6, temperature: 2, kd: 'kl', hard: 'crf' } as const;
    const out: { values?: LossValues } = {};
    const { value, grads } = tf.variableGrads(() => tf.mul(distillLoss(lg, batch, opts, crfT, out), 3) as tf.Scalar);
    const grad = { logits: new Float32Array(logits.length), crf: zeroCrfGrads(f.L) };
    const ref = distillLossValues(Float32Array.from(logits), f.L, batch, opts, { L: f.L, trans: Float32Array.from(f.transitions.flat()), start: Float32Array.from(f.start), end: Float32Array.from(f.end) }, grad);
    expect(value.dataSync()[0]).toBeCloseTo(3 * ref.loss, 4);
    expect(out.values!.loss).toBeCloseTo(ref.loss, 6);
    const gl = grads[lg.name].dataSync();
    for (let i = 0; i < gl.length; i++) expect(gl[i]).toBeCloseTo(3 * grad.logits[i], 5);
    const gt = grads[crfT.transitions.name].dataSync();
    for (let i = 0; i < gt.length; i++) expect(gt[i]).toBeCloseTo(3 * grad.crf.trans[i], 5);
    expect(Math.abs(grads[crfT.start.name].dataSync()[1] - 3 * grad.crf.start[1])).toBeLessThan(1e-5);
    tf.dispose([lg, crfT.transitions, crfT.start, crfT.end, value, ...Object.values(grads)]);
  });

  it('AdamW (HostAdamW, shared with finetune) follows torch.optim.AdamW step by step', () => {
    const a = FACTS.adamw;
    const v = tf.variable(tf.tensor1d(a.initial));
    const opt = new HostAdamW([{ name: 'p', variable: v, decay: true }], { weightDecay: a.weight_decay });
    a.grads.forEach((g, k) => {
      opt.step(new Map([['p', g]]), a.lr, 0);
      const got = v.dataSync();
      a.after[k].forEach((x, i) => expect(got[i]).toBeCloseTo(x, 6));
    });
    expect(opt.steps).toBe(3);
    opt.dispose();
    v.dispose();
  });

  it('HostAdamW.step clips to the global norm (torch clip_grad_norm_) only when the norm exceeds it', () => {
    // one step of Adam moves each coordinate by lr·g/|g| whatever the scale, so compare against a
    // second optimizer given the clipped gradient by hand
    const run = (g: number[], clip: number) => {
      const a = tf.variable(tf.tensor1d([1, 1]));
      const opt = new HostAdamW([{ name: 'a', variable: a, decay: false }], { weightDecay: 0 });
      const norm = opt.step(new Map([['a', g]]), 0.1, clip);
      opt.step(new Map([['a', [1, 1]]]), 0.1, 0);
      const out = Array.from(a.dataSync());
      a.dispose();
      return { norm, out };
    };
    const clipped = run([3, 4], 1);
    expect(clipped.norm).toBeCloseTo(5, 12);
    const byHand = run([3 / (5 + 1e-6), 4 / (5 + 1e-6)], 0);
    clipped.out.forEach((x, i) => expect(x).toBeCloseTo(byHand.out[i], 6));
    const unclipped = run([3, 4], 10);
    const plain = run([3, 4], 0);
    expect(unclipped.out).toEqual(plain.out);
    expect(clipped.out[0]).not.toBeCloseTo(plain.out[0], 6);
  });
});
