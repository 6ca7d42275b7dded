/**
 * `--format auto`'s choice on made-up timings (no timing is measured here): the fastest candidate not
 * slower than the float input at any point wins; a candidate slower anywhere is listed with its numbers
 * and never chosen; with every candidate slower the float graph is written and the reason says so.
 */
import { describe, expect, it } from 'vitest';
import { autoTable, chooseAuto, geometricMean, type AutoCandidateInput, type AutoPoint } from '../../src/quantize/auto-select.js';

const pts = (...ms: number[]): AutoPoint[] => ms.map((p50Ms, i) => ({ seqLen: [64, 128][i], batch: 1, p50Ms }));
const FLOAT = pts(10, 20);

describe('chooseAuto', () => {
  it('picks the fastest by geometric-mean speed-up', () => {
    const c: AutoCandidateInput[] = [
      { name: 'qdq', bytes: 30, points: pts(5, 8) }, // 2×, 2.5× → √5 ≈ 2.236
      { name: 'dynamic', bytes: 30, points: pts(4, 10.5) }, // 2.5×, 1.905× → ≈ 2.182
      { name: 'weights-only', bytes: 25, points: pts(9, 19) },
    ];
    const r = chooseAuto(FLOAT, 100, c);
    expect(r.chosen).toBe('qdq');
    const qdq = r.candidates.find((x) => x.name === 'qdq')!;
    expect(qdq.speedups).toEqual([2, 2.5]);
    expect(qdq.speedup).toBeCloseTo(Math.sqrt(5), 12);
    expect(qdq.chosen).toBe(true);
    expect(r.candidates.filter((x) => x.chosen)).toHaveLength(1);
    expect(r.reason).toContain('0.300× the size');
  });

  it('never chooses a candidate slower than the input at any point, even if fastest on average', () => {
    const r = chooseAuto(FLOAT, 100, [
      { name: 'qdq', bytes: 30, points: pts(2, 21) }, // 5× at 64 but slower at 128
      { name: 'weights-only', bytes: 25, points: pts(10, 20) }, // equal: not slower
    ]);
    expect(r.chosen).toBe('weights-only');
    const qdq = r.candidates.find((x) => x.name === 'qdq')!;
    expect(qdq.slower).toBe(true);
    expect(qdq.chosen).toBe(false);
    expect(qdq.note).toBe('slower than the input: seq 128 × batch 1 20.0 → 21.0 ms');
  });

  it('writes the float graph when every candidate is slower (the BiLSTM student case), with the numbers', () => {
    const r = chooseAuto(pts(0.29), 1000, [
      { name: 'qdq', bytes: 300, points: pts(0.4) },
      { name: 'dynamic', bytes: 300, points: pts(0.35) },
      { name: 'qoperator', error: 'QLinearMatMul needs opset 10' },
      { name: 'weights-only', bytes: 280, points: pts(0.3) },
    ]);
    expect(r.chosen).toBe('float');
    expect(r.candidates.every((c) => !c.chosen)).toBe(true);
    expect(r.reason).toMatch(/^the float graph was written unchanged: every candidate is slower than the input \(qdq 0\.72×, dynamic 0\.83×, weights-only 0\.97×\)$/);
    expect(r.candidates.find((c) => c.name === 'qdq')!.note).toBe('slower than the input: seq 64 × batch 1 0.290 → 0.400 ms');
    expect(r.candidates.find((c) => c.name === 'qoperator')!.note).toBe('not built: QLinearMatMul needs opset 10');
  });

  it('no candidate built → float, and mismatched points throw', () => {
    expect(chooseAuto(FLOAT, 1, [{ name: 'qdq', error: 'x' }]).reason).toBe('the float graph was written unchanged: no candidate could be built');
    expect(() => chooseAuto(FLOAT, 1, [{ name: 'qdq', points: pts(1) }])).toThrow('other points');
    expect(() => chooseAuto([], 1, [])).toThrow(RangeError);
  });

  it('geometric mean and the table', () => {
    expect(geometricMean([2, 8])).toBeCloseTo(4, 12);
    const r = chooseAuto(FLOAT, 2048, [{ name: 'dynamic', bytes: 1024, points: pts(5, 10) }]);
    const t = autoTable({ ...r, float: { bytes: 2048, points: FLOAT }, timing: { rounds: 4, seconds: 1, threads: 1, inputs: 'synthetic' } });
    expect(t.header).toEqual(['model', 'size', 'size ×', 'p50 ms s64 b1', 'p50 ms s128 b1', 'speed-up', 'chosen', 'note']);
    expect(t.rows[0].slice(0, 6)).toEqual(['float input', '2.0 KiB', '1.000', '10.0', '20.0', '1.00×']);
    expect(t.rows[1].slice(0, 7)).toEqual(['dynamic', '1.0 KiB', '0.500', '5.00', '10.0', '2.00×', 'yes']);
  });
});
