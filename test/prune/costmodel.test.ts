/** The cost model's least-squares fit (costmodel.ts) against exact linear data and a hand-solved system. */
import { describe, expect, it } from 'vitest';
import { costOf, fitCostModel, predictLatency, solveLinear } from '../../src/prune/costmodel.js';

describe('cost model fitting', () => {
  it('solves a 3×3 system (worked by hand: x = 2, y = 3, z = -1)', () => {
    const x = solveLinear(
      [
        [2, 1, -1],
        [-3, -1, 2],
        [-2, 1, 2],
      ],
      [8, -11, -3],
    );
    expect(x[0]).toBeCloseTo(2, 10);
    expect(x[1]).toBeCloseTo(3, 10);
    expect(x[2]).toBeCloseTo(-1, 10);
  });

  it('recovers the coefficients of exactly linear data, with zero residual', () => {
    const truth = { base: 1.5, perHead: 0.08, perNeuron: 0.0004, perLayer: 0.3 };
    const shapes = [
      { heads: 144, neurons: 36864, layers: 12 },
      { heads: 108, neurons: 36864, layers: 12 },
      { heads: 144, neurons: 24576, layers: 12 },
      { heads: 132, neurons: 33792, layers: 11 },
      { heads: 96, neurons: 20000, layers: 10 },
    ];
    const samples = shapes.map((shape) => ({ shape, ms: truth.base + truth.perHead * shape.heads + truth.perNeuron * shape.neurons + truth.perLayer * shape.layers }));
    const m = fitCostModel(samples);
    expect(m.base).toBeCloseTo(truth.base, 6);
    expect(m.perHead).toBeCloseTo(truth.perHead, 8);
    expect(m.perNeuron).toBeCloseTo(truth.perNeuron, 10);
    expect(m.perLayer).toBeCloseTo(truth.perLayer, 6);
    expect(m.rmse).toBeLessThan(1e-9);
    expect(predictLatency(m, shapes[4])).toBeCloseTo(samples[4].ms, 8);
    expect(costOf(m, { heads: 12, neurons: 3072, layers: 1 })).toBeCloseTo(12 * 0.08 + 3072 * 0.0004 + 0.3, 8);
  });

  it('averages noise: residuals of a least-squares fit sum to zero', () => {
    const shapes = [0, 1, 2, 3, 4, 5].map((i) => ({ heads: 10 + 3 * i, neurons: 100 + 17 * ((i * 5) % 6), layers: 2 + (i % 3) }));
    const noise = [0.1, -0.2, 0.05, 0.3, -0.15, 0.02];
    const samples = shapes.map((shape, i) => ({ shape, ms: 1 + 0.1 * shape.heads + 0.01 * shape.neurons + 0.5 * shape.layers + noise[i] }));
    const m = fitCostModel(samples);
    const resid = samples.reduce((a, s) => a + (s.ms - predictLatency(m, s.shape)), 0);
    expect(Math.abs(resid)).toBeLessThan(1e-9);
    expect(m.rmse).toBeGreaterThan(0);
  });

  it('refuses too few or degenerate variants', () => {
    expect(() => fitCostModel([{ shape: { heads: 1, neurons: 1, layers: 1 }, ms: 1 }])).toThrow(/at least 4/);
    const same = { heads: 4, neurons: 8, layers: 2 };
    expect(() => fitCostModel([0, 1, 2, 3].map(() => ({ shape: same, ms: 1 })))).toThrow(/singular/);
  });
});
