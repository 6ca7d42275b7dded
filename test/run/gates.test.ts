import { describe, expect, it } from 'vitest';
import { effectiveLimits, f1DropPoints, gateFailureText, judgeGates, sizeMB } from '../../src/run/gates.js';
import { headline, summarizeVariants, type VariantMeasurement } from '../../src/run/summary.js';
import type { BenchRow } from '../../src/runtime/bench.js';

/** The reference deployment's table (issue 7): original 420 MB / 320 ms / 96.7, prune+quantize 110 MB / 98 ms / 95.3, ... */
const TABLE = [
  { name: 'original', bytes: 420e6, p50: 320, f1: 0.967 },
  { name: 'prune-quantize', bytes: 110e6, p50: 98, f1: 0.953 },
  { name: 'distilled', bytes: 12e6, p50: 45, f1: 0.946 },
  { name: 'distilled-int8', bytes: 15e6, p50: 52, f1: 0.95 },
];

function row(seqLen: number, batch: number, p50Ms: number): BenchRow {
  return { seqLen, batch, p50Ms, p95Ms: p50Ms * 1.2, p99Ms: p50Ms * 1.5, meanMs: p50Ms, minMs: p50Ms, maxMs: p50Ms * 2, stdevMs: 0, iterations: 10, sentencesPerSec: (1000 * batch) / p50Ms, tokensPerSec: (1000 * batch * seqLen) / p50Ms };
}

function measurement(t: (typeof TABLE)[number]): VariantMeasurement {
  const prf = { precision: t.f1, recall: t.f1, f1: t.f1, tp: 0, gold: 0, pred: 0 };
  return { name: t.name, model: `artifacts/${t.name}/model`, onnxSha256: 'x', steps: [], sizeBytes: t.bytes, f1: { micro: prf, perType: {} }, latency: [row(128, 8, t.p50 * 4), row(64, 1, t.p50), row(128, 1, t.p50 * 2)] };
}

describe('gate arithmetic', () => {
  it('F1 drop in points and size in MB of 10^6 bytes', () => {
    expect(f1DropPoints(0.967, 0.953)).toBeCloseTo(1.4, 12);
    expect(f1DropPoints(0.9, 0.95)).toBeCloseTo(-5, 12);
    expect(sizeMB(110e6)).toBe(110);
    expect(sizeMB(1_048_576)).toBe(1.048576);
  });

  it('a value equal to its limit passes (float noise included), one above fails', () => {
    const limits = [{ gate: 'max-f1-drop' as const, limit: 1.4, source: 'recipe' as const }];
    expect(judgeGates({ f1: 0.953, baselineF1: 0.967, sizeBytes: 1 }, limits)[0].passed).toBe(true);
    expect(judgeGates({ f1: 0.9529, baselineF1: 0.967, sizeBytes: 1 }, limits)[0].passed).toBe(false);
  });

  it('latency not measured fails a latency gate', () => {
    const r = judgeGates({ f1: 1, baselineF1: 1, sizeBytes: 1 }, [{ gate: 'max-latency-ms', limit: 100, source: 'flag' }]);
    expect(r[0]).toMatchObject({ passed: false, value: Number.POSITIVE_INFINITY });
  });

  it('precedence: the variant’s own limit, then the flag, then the recipe; null switches a gate off', () => {
    expect(effectiveLimits({ 'max-f1-drop': 2 }, { 'max-f1-drop': 1 }, { 'max-f1-drop': 0.5 })).toEqual([{ gate: 'max-f1-drop', limit: 2, source: 'variant' }]);
    expect(effectiveLimits({}, { 'max-f1-drop': 1 }, { 'max-f1-drop': 0.5, 'max-size-mb': 30 })).toEqual([
      { gate: 'max-f1-drop', limit: 1, source: 'flag' },
      { gate: 'max-size-mb', limit: 30, source: 'recipe' },
    ]);
    expect(effectiveLimits({ 'max-latency-ms': null }, { 'max-latency-ms': 100 }, { 'max-latency-ms': 50 })).toEqual([]);
  });

  it('failure lines name the variant, the gate, the measured number and the limit', () => {
    const [r] = judgeGates({ f1: 0.953, baselineF1: 0.967, sizeBytes: 1 }, [{ gate: 'max-f1-drop', limit: 1, source: 'flag' }]);
    expect(gateFailureText('pq', r, { f1: 0.953, baselineF1: 0.967, baseline: 'original' })).toBe(
      'variant "pq" failed max-f1-drop: F1 drop 1.40 points > limit 1.00 (F1 95.30 vs baseline "original" 96.70)',
    );
    const [l] = judgeGates({ f1: 1, baselineF1: 1, p50Ms: 98.004, sizeBytes: 1 }, [{ gate: 'max-latency-ms', limit: 98, source: 'flag' }]);
    expect(gateFailureText('pq', l)).toBe('variant "pq" failed max-latency-ms: p50 98.0040 ms > limit 98.0000 ms');
    const [s] = judgeGates({ f1: 1, baselineF1: 1, sizeBytes: 110e6 }, [{ gate: 'max-size-mb', limit: 100, source: 'recipe' }]);
    expect(gateFailureText('pq', s)).toBe('variant "pq" failed max-size-mb: size 110.00 MB > limit 100.00 MB');
  });
});

describe('the summary rows (the reference deployment’s table as input)', () => {
  const recipe = {
    variants: TABLE.map((t) => ({ name: t.name, model: { path: '/x' }, gates: t.name === 'original' ? { 'max-latency-ms': null } : {}, path: [] })),
    baseline: 'original',
    gates: { 'max-f1-drop': 2 },
  };

  it('headline latency is batch 1 at the smallest sequence length', () => {
    expect(headline(measurement(TABLE[0]).latency)).toMatchObject({ seqLen: 64, batch: 1, p50Ms: 320 });
    expect(headline([row(128, 8, 5)])).toMatchObject({ seqLen: 128, batch: 8 });
    expect(headline([])).toBeNull();
  });

  it('F1 drops, speed-ups and size ratios against the baseline; gates per variant', () => {
    const { variants, failures } = summarizeVariants(recipe, TABLE.map(measurement), { 'max-latency-ms': 50 });
    expect(variants.map((v) => Number(v.f1Drop.toFixed(6)))).toEqual([0, 1.4, 2.1, 1.7]);
    expect(variants.map((v) => (v.speedup === null ? null : Number(v.speedup.toFixed(4))))).toEqual([1, 3.2653, 7.1111, 6.1538]);
    expect(variants.map((v) => Number(v.sizeRatio.toFixed(4)))).toEqual([1, 0.2619, 0.0286, 0.0357]);
    expect(variants.map((v) => v.sizeMB)).toEqual([420, 110, 12, 15]);
    // original: latency gate off for it; others: flag latency 50 ms, recipe F1 drop 2 points
    expect(variants[0].gates.map((g) => g.gate)).toEqual(['max-f1-drop']);
    expect(variants.map((v) => v.passed)).toEqual([true, false, false, false]);
    expect(failures).toEqual([
      'variant "prune-quantize" failed max-latency-ms: p50 98.00 ms > limit 50.00 ms',
      'variant "distilled" failed max-f1-drop: F1 drop 2.10 points > limit 2.00 (F1 94.60 vs baseline "original" 96.70)',
      'variant "distilled-int8" failed max-latency-ms: p50 52.00 ms > limit 50.00 ms',
    ]);
  });
});
