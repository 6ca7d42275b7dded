/** Pure helpers of the distillation pipeline: batching, label repair at window cuts, schedules, PCA, the SVG chart. */
import { describe, expect, it } from 'vitest';
import { chunkText, makeBatch, planBatches, repairCut } from '../../src/distill/batches.js';
import { lineChartSvg, logTicks, niceTicks } from '../../src/distill/chart.js';
import { pcaProject } from '../../src/distill/init.js';
import { decayProgress, learningRate } from '../../src/distill/train.js';
import { LabelSet } from '../../src/ner/labels.js';
import { mulberry32 } from '../../src/runtime/bench.js';

describe('length-bucketed batches', () => {
  const lengths = Array.from({ length: 200 }, (_, i) => 1 + ((i * 37) % 90));

  it('cover every item once, stay under the padded-token budget and group similar lengths', () => {
    const batches = planBatches(lengths, { maxTokens: 600, maxRows: 16 }, mulberry32(1));
    const seen = batches.flat().sort((a, b) => a - b);
    expect(seen).toEqual(lengths.map((_, i) => i));
    for (const b of batches) {
      const longest = Math.max(...b.map((i) => lengths[i]));
      expect(b.length).toBeLessThanOrEqual(16);
      if (b.length > 1) expect(b.length * (longest + 2)).toBeLessThanOrEqual(600);
      // bucketed: the spread inside a batch is small compared with the data's 1..90
      expect(longest - Math.min(...b.map((i) => lengths[i]))).toBeLessThanOrEqual(10);
    }
  });

  it('are deterministic for a seed and shuffled differently for another', () => {
    const a = planBatches(lengths, { maxTokens: 600, maxRows: 16 }, mulberry32(1));
    expect(planBatches(lengths, { maxTokens: 600, maxRows: 16 }, mulberry32(1))).toEqual(a);
    expect(planBatches(lengths, { maxTokens: 600, maxRows: 16 }, mulberry32(2))).not.toEqual(a);
  });

  it('makeBatch pads [CLS] ids [SEP] rows and aligns teacher rows and tags at positions 1..n', () => {
    const L = 2;
    const { input, targets } = makeBatch(
      [
        { ids: Int32Array.from([7, 8, 9]), teacher: Float32Array.from([1, 2, 3, 4, 5, 6]), tags: Int32Array.from([1, 0, 1]), text: 0 },
        { ids: Int32Array.from([5]), teacher: Float32Array.from([9, 9]), tags: Int32Array.from([0]), text: 1 },
      ],
      { cls: 101, sep: 102, pad: 0 },
      L,
    );
    expect(input.seq).toBe(5);
    expect(Array.from(input.ids)).toEqual([101, 7, 8, 9, 102, 101, 5, 102, 0, 0]);
    expect(Array.from(input.mask)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 0, 0]);
    expect(Array.from(targets.lens)).toEqual([3, 1]);
    expect(Array.from(targets.teacher!.slice(2, 8))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Array.from(targets.teacher!.slice(12, 14))).toEqual([9, 9]);
    expect(Array.from(targets.tags!)).toEqual([0, 1, 0, 1, 0, 0, 0, 0, 0, 0]);
  });
});

describe('label repair where a long text is cut into windows', () => {
  const bio = new LabelSet(['O', 'B-PER', 'I-PER']);
  const bioes = new LabelSet(['O', 'B-PER', 'I-PER', 'E-PER', 'S-PER']);
  const id = (ls: LabelSet, ...tags: string[]) => Int32Array.from(tags.map((t) => ls.idOf(t)!));
  const names = (ls: LabelSet, a: Int32Array) => Array.from(a, (i) => ls.labels[i]);

  it('BIO: a piece starting inside an entity starts it afresh (as train_teacher.py)', () => {
    const t = id(bio, 'I-PER', 'I-PER', 'O');
    repairCut(t, bio, true, true);
    expect(names(bio, t)).toEqual(['B-PER', 'I-PER', 'O']);
  });

  it('BIOES: begins become B/S and ends become E/S at the cuts; uncut edges stay', () => {
    const t = id(bioes, 'I-PER', 'E-PER', 'B-PER', 'I-PER');
    repairCut(t, bioes, true, true);
    expect(names(bioes, t)).toEqual(['B-PER', 'E-PER', 'B-PER', 'E-PER']);
    const one = id(bioes, 'I-PER');
    repairCut(one, bioes, true, true);
    expect(names(bioes, one)).toEqual(['S-PER']);
    const kept = id(bioes, 'I-PER', 'I-PER');
    repairCut(kept, bioes, false, false);
    expect(names(bioes, kept)).toEqual(['I-PER', 'I-PER']);
  });

  it('chunkText cuts ids, teacher rows and tags into windows', () => {
    const items = chunkText(4, [1, 2, 3, 4, 5], 2, 1, bio, Float32Array.from([10, 20, 30, 40, 50]), Array.from(id(bio, 'B-PER', 'I-PER', 'I-PER', 'O', 'O')));
    expect(items.map((i) => Array.from(i.ids))).toEqual([[1, 2], [3, 4], [5]]);
    expect(items.map((i) => Array.from(i.teacher!))).toEqual([[10, 20], [30, 40], [50]]);
    expect(items.map((i) => names(bio, i.tags!))).toEqual([['B-PER', 'I-PER'], ['B-PER', 'O'], ['O']]);
    expect(items.every((i) => i.text === 4)).toBe(true);
  });
});

describe('schedules', () => {
  it('learning rate: linear warm-up, constant, then linear decay to 5 % over the last 40 % of the steps', () => {
    expect(learningRate(1, 5, 10, 110)).toBeCloseTo(0.5, 12);
    expect(learningRate(1, 10, 10, 110)).toBeCloseTo(1, 12);
    expect(learningRate(1, 66, 10, 110)).toBeCloseTo(1, 12); // decay starts at 110 · 0.6 = 66
    expect(learningRate(1, 88, 10, 110)).toBeCloseTo(1 - 0.95 * 0.5, 12);
    expect(learningRate(1, 110, 10, 110)).toBeCloseTo(0.05, 12);
    expect(learningRate(1, 500, 10, 110)).toBeCloseTo(0.05, 12);
    expect(decayProgress(30, 110)).toBe(0);
    expect(decayProgress(77, 110)).toBeCloseTo(0.25, 12);
  });
});

describe('PCA projection of the teacher embeddings', () => {
  it('keeps the directions of largest variance, ordered, centred and scaled to the asked RMS', () => {
    // rows = a·u + b·v + small noise, with var(a) ≫ var(b): the first component must be ±u, the second ±v
    const r = mulberry32(9);
    const dim = 6;
    const rows = 400;
    const u = [1, 1, 0, 0, 0, 0].map((x) => x / Math.SQRT2);
    const v = [0, 0, 1, -1, 0, 0].map((x) => x / Math.SQRT2);
    const data = new Float32Array(rows * dim);
    const coeff: Array<[number, number]> = [];
    for (let i = 0; i < rows; i++) {
      const a = 5 * (2 * r() - 1);
      const b = 1 * (2 * r() - 1);
      coeff.push([a, b]);
      for (let c = 0; c < dim; c++) data[i * dim + c] = 3 + a * u[c] + b * v[c] + 0.01 * (2 * r() - 1);
    }
    const out = pcaProject(data, rows, dim, 2, mulberry32(1), 1);
    const corr = (k: number, which: 0 | 1) => {
      const m = coeff.reduce((s, c) => s + c[which], 0) / rows;
      let sxy = 0;
      let sxx = 0;
      let syy = 0;
      for (let i = 0; i < rows; i++) {
        sxy += out[i * 2 + k] * (coeff[i][which] - m);
        sxx += out[i * 2 + k] ** 2;
        syy += (coeff[i][which] - m) ** 2;
      }
      return Math.abs(sxy / Math.sqrt(sxx * syy));
    };
    expect(corr(0, 0)).toBeGreaterThan(0.999);
    expect(corr(1, 1)).toBeGreaterThan(0.99);
    let ss = 0;
    let mean = 0;
    for (let i = 0; i < rows * 2; i++) {
      ss += out[i] ** 2;
      mean += out[i];
    }
    expect(Math.sqrt(ss / (rows * 2))).toBeCloseTo(1, 6);
    expect(Math.abs(mean / (rows * 2))).toBeLessThan(1e-6);
  });
});

describe('SVG line chart', () => {
  it('nice ticks cover the range with round steps', () => {
    expect(niceTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(3, 97)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(niceTicks(0.42, 0.61)).toEqual([0.4, 0.45, 0.5, 0.55, 0.6, 0.65]);
    expect(logTicks(0.03, 6)).toEqual([0.05, 0.1, 0.2, 0.5, 1, 2, 5]);
  });

  it('draws one polyline per series with its legend, escaped, deterministic', () => {
    const panels = [
      { title: 'loss <train>', xLabel: 'step', yLabel: 'loss', series: [{ name: 'a & b', points: [[0, 1], [1, 0.5], [2, 0.25]] as Array<[number, number]> }] },
      { title: 'F1', xLabel: 'step', yLabel: '%', series: [{ name: 'dev', points: [[2, 50]] as Array<[number, number]>, markers: true }] },
    ];
    const svg = lineChartSvg(panels);
    expect(svg).toBe(lineChartSvg(panels));
    expect(svg.match(/<polyline/g)?.length).toBe(1);
    expect(svg.match(/<circle/g)?.length).toBe(1);
    expect(svg).toContain('loss &lt;train&gt;');
    expect(svg).toContain('a &amp; b');
    expect(svg).toMatch(/height="560"/);
  });
});
