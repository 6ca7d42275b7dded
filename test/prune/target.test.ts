/**
 * Pruning to a latency target, without timings: the greedy choice by importance per millisecond
 * (target.ts) on hand-worked examples with a fake cost model, the round goals and verdicts, and the
 * loop (target-loop.ts) on fake models whose "latency" is the cost model itself and whose "F1" falls
 * by the importance removed — it meets a speed-up, a latency, and stops at --min-f1.
 */
import { describe, expect, it } from 'vitest';
import { predictLatency, type CostModel, type VariantShape } from '../../src/prune/costmodel.js';
import { runTargetLoop, type LoopSteps } from '../../src/prune/target-loop.js';
import { roundGoal, roundVerdict, savingFor, selectForSaving, type LayerScores, type Selection } from '../../src/prune/target.js';

const COST: CostModel = { base: 10, perHead: 1, perNeuron: 0.1, perLayer: 2, rmse: 0 };
// Ratios (importance ÷ ms), worked by hand:
//   layer 0: next head 0.1/1 = 0.1; next 2 neurons 0.03/0.2 = 0.15; attention 1.5/3 = 0.5; layer 1.6/5.4 = 0.296
//   layer 1: next head 0.05/1; next neuron (keeps 1) 0.001/0.1 = 0.01; attention 0.11/2 = 0.055; layer 0.112/4.2 = 0.0267
const LAYERS: LayerScores[] = [
  { heads: [0.5, 0.1, 0.9], neurons: [0.01, 0.02, 0.03, 0.04] },
  { heads: [0.05, 0.06], neurons: [0.001, 0.001] },
];

describe('selectForSaving (importance lost per millisecond saved)', () => {
  it('takes the cheapest unit first and stops once the saving is reached', () => {
    const s = selectForSaving(LAYERS, COST, 0.05, { neuronBlock: 2 });
    expect(s.steps.map((x) => [x.kind, x.layer])).toEqual([['neurons', 1]]);
    expect(s.neurons).toEqual([[], [0]]);
    expect(s.heads).toEqual([[], []]);
    expect(s.predictedMs).toBeCloseTo(0.1, 12);
    expect(s.exhausted).toBe(false);
  });

  it('removes a whole layer when that is the least importance per ms (what is left of it: 0.111 / 4.1 ms)', () => {
    const s = selectForSaving(LAYERS, COST, 3, { neuronBlock: 2 });
    expect(s.steps.map((x) => [x.kind, x.layer])).toEqual([
      ['neurons', 1],
      ['layer', 1],
    ]);
    expect(s.layers).toEqual([1]);
    expect(s.heads[1]).toEqual([0, 1]);
    expect(s.neurons[1]).toEqual([0, 1]);
    expect(s.predictedMs).toBeCloseTo(0.1 + 4.1, 12);
    expect(s.importance).toBeCloseTo(0.112, 12);
  });

  it('goes on with the next cheapest unit of the other layer', () => {
    const s = selectForSaving(LAYERS, COST, 5, { neuronBlock: 2 });
    expect(s.steps.map((x) => x.kind)).toEqual(['neurons', 'layer', 'head']);
    expect(s.heads[0]).toEqual([1]);
    expect(s.predictedMs).toBeCloseTo(5.2, 12);
  });

  it('never removes the attention of the last layer that has it, and keeps a head and a neuron per layer', () => {
    const s = selectForSaving([LAYERS[1]], COST, 100, { neuronBlock: 2 });
    expect(s.exhausted).toBe(true);
    expect(s.layers).toEqual([]);
    expect(s.attentionOnly).toEqual([]);
    expect(s.heads).toEqual([[0]]);
    expect(s.neurons).toEqual([[0]]);
    expect(s.predictedMs).toBeCloseTo(1.1, 12);
  });

  it('a layer can lose its attention and keep its FFN', () => {
    // layer 1's heads are nearly free, its neurons precious: its first head (0.001/1 ms), then its last
    // head as its whole attention (0.002/1 ms) beat everything else (layer 0's best is 0.1/ms)
    const s = selectForSaving([LAYERS[0], { heads: [0.001, 0.002], neurons: [5, 5] }], COST, 1.5, { neuronBlock: 2 });
    expect(s.steps.map((x) => [x.kind, x.layer])).toEqual([
      ['head', 1],
      ['attention', 1],
    ]);
    expect(s.attentionOnly).toEqual([1]);
    expect(s.layers).toEqual([]);
    expect(s.heads[1]).toEqual([0, 1]);
  });

  it('units with no predicted saving are never taken (negative fitted coefficients count as 0)', () => {
    const s = selectForSaving([LAYERS[1]], { ...COST, perNeuron: -0.01 }, 1, { neuronBlock: 2 });
    expect(s.neurons).toEqual([[]]);
    expect(s.heads).toEqual([[0]]);
  });

  it('allowLayerRemoval / allowAttentionRemoval off keep every layer', () => {
    const s = selectForSaving(LAYERS, COST, 3, { neuronBlock: 2, allowLayerRemoval: false, allowAttentionRemoval: false });
    expect(s.layers).toEqual([]);
    expect(s.attentionOnly).toEqual([]);
    // neurons of layer 1 (0.01), head 0 of layer 1 (0.05), head 1 of layer 0 (0.1), neurons 0–1 of layer 0 (0.15), ...
    expect(s.steps.slice(0, 4).map((x) => [x.kind, x.layer])).toEqual([
      ['neurons', 1],
      ['head', 1],
      ['head', 0],
      ['neurons', 0],
    ]);
  });
});

describe('round goals and verdicts', () => {
  it('geometric goals: equal factors per round, then the target', () => {
    expect(roundGoal(100, 50, 1, 2)).toBeCloseTo(100 * Math.SQRT1_2, 10);
    expect(roundGoal(100, 50, 2, 2)).toBe(50);
    expect(roundGoal(100, 50, 5, 2)).toBe(50);
    expect(roundGoal(100, 64, 1, 2) / 100).toBeCloseTo(0.8, 12);
  });

  it('the saving asked is the same fraction of the predicted latency', () => {
    expect(savingFor(1, 100, 0.8)).toBeCloseTo(20, 12);
    expect(savingFor(50, 40, 60)).toBe(0);
  });

  it('verdicts: --min-f1 first, then the target, then units and rounds', () => {
    const base = { speedup: 1.4, wantSpeedup: 1.33, f1: 0.7, minF1: 0.72, round: 2, maxRounds: 5, exhausted: false };
    expect(roundVerdict(base)).toBe('below-min-f1');
    expect(roundVerdict({ ...base, minF1: 0.6 })).toBe('target-met');
    expect(roundVerdict({ ...base, speedup: 1.2, minF1: undefined })).toBe('continue');
    expect(roundVerdict({ ...base, speedup: 1.2, minF1: undefined, exhausted: true })).toBe('nothing-left');
    expect(roundVerdict({ ...base, speedup: 1.2, minF1: undefined, round: 5 })).toBe('out-of-rounds');
  });
});

// ---------------------------------------------------------------------------------- the loop, faked

interface Fake {
  layers: LayerScores[];
  /** Neurons of layers whose attention is gone (not scored any more, still timed). */
  ffnOnly: number;
  lost: number;
}

function fakeLayers(n: number): LayerScores[] {
  // deterministic, uneven importances: later layers matter less
  return Array.from({ length: n }, (_, l) => ({
    heads: Array.from({ length: 4 }, (_, h) => ((h * 7 + l * 3) % 11) / (100 * (l + 1))),
    neurons: Array.from({ length: 32 }, (_, j) => ((j * 13 + l * 5) % 17) / (5000 * (l + 1))),
  }));
}

function shapeOfFake(s: Fake): VariantShape {
  return {
    heads: s.layers.reduce((a, l) => a + l.heads.length, 0),
    neurons: s.layers.reduce((a, l) => a + l.neurons.length, 0) + s.ffnOnly,
    layers: s.layers.length + (s.ffnOnly > 0 ? 1 : 0),
  };
}

function applyFake(s: Fake, sel: Selection): Fake {
  let ffnOnly = s.ffnOnly;
  const layers: LayerScores[] = [];
  s.layers.forEach((l, i) => {
    if (sel.layers.includes(i)) return;
    const neurons = l.neurons.filter((_, j) => !sel.neurons[i].includes(j));
    if (sel.attentionOnly.includes(i)) {
      ffnOnly += neurons.length;
      return;
    }
    layers.push({ heads: l.heads.filter((_, j) => !sel.heads[i].includes(j)), neurons });
  });
  return { layers, ffnOnly, lost: s.lost + sel.importance };
}

function fakeSteps(calls: string[]): LoopSteps<Fake> {
  const start = { heads: 16, neurons: 128, layers: 4 };
  return {
    shape: shapeOfFake,
    score: async (s, r) => (calls.push(`score ${r}`), s.layers),
    apply: async (s, sel, r) => (calls.push(`apply ${r}`), applyFake(s, sel)),
    measure: async (s, r) => (calls.push(`measure ${r}`), { beforeMs: predictLatency(COST2, start), afterMs: predictLatency(COST2, shapeOfFake(s)) }),
    evaluate: async (s, r) => (calls.push(`evaluate ${r}`), 0.9 - s.lost),
  };
}

const COST2: CostModel = { base: 5, perHead: 0.5, perNeuron: 0.05, perLayer: 1, rmse: 0 };
const initial = (): Fake => ({ layers: fakeLayers(4), ffnOnly: 0, lost: 0 });
const START_MS = predictLatency(COST2, { heads: 16, neurons: 128, layers: 4 }); // 5 + 8 + 6.4 + 4 = 23.4

describe('runTargetLoop', () => {
  it('reaches a speed-up in the planned rounds, one score/apply/measure/evaluate per round', async () => {
    const calls: string[] = [];
    const r = await runTargetLoop(initial(), fakeSteps(calls), { cost: COST2, target: { speedup: 1.5 }, rounds: 3, maxRounds: 6, startMs: START_MS, select: { neuronBlock: 4 } });
    expect(r.verdict).toBe('target-met');
    const last = r.rows[r.rows.length - 1];
    expect(last.speedup).toBeGreaterThanOrEqual(1.5);
    expect(r.chosen).toBe(last.round);
    // exact cost model as the "machine": round r lands at or just past its goal (1/1.5)^(r/3)
    for (const row of r.rows.slice(1)) expect(1 / row.speedup).toBeLessThanOrEqual(row.goalFraction! + 1e-12);
    expect(r.rows.length - 1).toBe(3);
    expect(calls).toEqual(['evaluate 0', ...[1, 2, 3].flatMap((k) => [`score ${k}`, `apply ${k}`, `measure ${k}`, `evaluate ${k}`])]);
    // speed-ups grow, F1 (0.9 − importance removed) falls
    for (let i = 1; i < r.rows.length; i++) {
      expect(r.rows[i].speedup).toBeGreaterThan(r.rows[i - 1].speedup);
      expect(r.rows[i].f1!).toBeLessThanOrEqual(r.rows[i - 1].f1!);
    }
  });

  it('stops at --min-f1 and returns the round before', async () => {
    const free = await runTargetLoop(initial(), fakeSteps([]), { cost: COST2, target: { speedup: 2.5 }, rounds: 4, maxRounds: 4, startMs: START_MS, select: { neuronBlock: 4 } });
    const f1s = free.rows.map((x) => x.f1!);
    // a floor between rounds 2 and 3 of the free run
    const minF1 = (f1s[2] + f1s[3]) / 2;
    expect(f1s[3]).toBeLessThan(f1s[2]);
    const r = await runTargetLoop(initial(), fakeSteps([]), { cost: COST2, target: { speedup: 2.5 }, rounds: 4, maxRounds: 4, minF1, startMs: START_MS, select: { neuronBlock: 4 } });
    expect(r.verdict).toBe('below-min-f1');
    expect(r.chosen).toBe(2);
    expect(r.rows.map((x) => x.round)).toEqual([0, 1, 2, 3]);
    expect(r.rows[3].verdict).toBe('below-min-f1');
    expect(0.9 - r.state.lost).toBeCloseTo(f1s[2], 12);
  });

  it('a latency target in ms is the original p50 ÷ ms as a speed-up', async () => {
    const r = await runTargetLoop(initial(), fakeSteps([]), { cost: COST2, target: { latencyMs: START_MS / 1.4 }, rounds: 2, maxRounds: 5, startMs: START_MS, select: { neuronBlock: 4 } });
    expect(r.wantSpeedup).toBeCloseTo(1.4, 12);
    expect(r.verdict).toBe('target-met');
    expect(r.rows[r.rows.length - 1].afterMs!).toBeLessThanOrEqual(START_MS / 1.4 + 1e-9);
  });

  it('an original already under --min-f1 is reported, nothing is removed', async () => {
    const r = await runTargetLoop(initial(), fakeSteps([]), { cost: COST2, target: { speedup: 1.5 }, rounds: 2, maxRounds: 2, minF1: 0.95, startMs: START_MS });
    expect(r.verdict).toBe('below-min-f1');
    expect(r.chosen).toBe(0);
    expect(r.rows).toHaveLength(1);
  });
});
