/**
 * The op-time table from onnxruntime profiles (test/runtime/fixtures/profile/, made by onnxruntime-node's
 * profiler with make_traces.sh) checked against the graphs onnxruntime ran (the optimized graphs it
 * wrote in the same sessions) and against Amdahl's law worked by hand.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeModel } from '../../src/onnx/codec.js';
import { profileGrid, profileSummary } from '../../src/report/profile.js';
import type { ProfileDetails } from '../../src/runtime/profile.js';
import { compareProfiles, opCategory, opTimeTable, profileEvents, speedupBound, type ProfileEvent } from '../../src/runtime/profile-table.js';

const DIR = new URL('./fixtures/profile/', import.meta.url).pathname;
const trace = (name: string): ProfileEvent[] => profileEvents(JSON.parse(readFileSync(join(DIR, `${name}.profile.json`), 'utf8')));
const opCounts = (name: string): Map<string, number> => {
  const m = decodeModel(readFileSync(join(DIR, `${name}.optimized.onnx`)));
  const out = new Map<string, number>();
  for (const n of m.graph?.node ?? []) out.set(n.opType!, (out.get(n.opType!) ?? 0) + 1);
  return out;
};
/** make_traces.sh: 2 rounds of (3 uncounted + 1 counted) runs per model. */
const counted = (i: number): boolean => i % 4 === 3;

describe('opTimeTable on onnxruntime profiles', () => {
  for (const name of ['float', 'int8']) {
    it(`${name}: counts each op type as often per run as the optimized graph holds it`, () => {
      const events = trace(name);
      expect(events.filter((e) => e.cat === 'Session' && e.name === 'model_run')).toHaveLength(8);
      const t = opTimeTable(events, { keep: counted });
      expect(t.runs).toBe(2);
      const graph = opCounts(name);
      const nodesPerRun = new Map(t.rows.map((r) => [r.opType, r.callsPerRun]));
      expect(nodesPerRun).toEqual(graph);
      expect(t.rows.reduce((s, r) => s + r.share, 0)).toBeCloseTo(1, 9);
      expect(t.kernelUs).toBeGreaterThan(0);
      expect(t.kernelUs).toBeLessThan(t.runUs);
      const gemm = t.rows.filter((r) => r.category === 'gemm-float' || r.category === 'gemm-int8');
      expect(t.gemmShare).toBeCloseTo(gemm.reduce((s, r) => s + r.share, 0), 12);
      expect(t.gemmUs).toBeCloseTo(t.gemmShare * t.kernelUs, 6);
      expect(t.byShape.reduce((s, r) => s + r.callsPerRun, 0)).toBe(gemm.reduce((s, r) => s + r.callsPerRun, 0));
    });
  }

  it('the float graph runs float GEMMs only, the INT8 graph integer kernels for the projections', () => {
    const f = opTimeTable(trace('float'), { keep: counted });
    const q = opTimeTable(trace('int8'), { keep: counted });
    expect(f.rows.filter((r) => r.category === 'gemm-int8')).toEqual([]);
    expect(f.quantizeShare).toBe(0);
    const intOps = q.rows.filter((r) => r.category === 'gemm-int8').map((r) => r.opType);
    expect(intOps).toContain('MatMulIntegerToFloat');
    for (const op of intOps) expect(opCounts('int8').has(op)).toBe(true);
    // every weight GEMM shape of the float model is there in the INT8 one (same network, same batch)
    const cmp = compareProfiles(f, q);
    expect(cmp.byShape.length).toBe(f.byShape.length);
    expect(cmp.gemmSpeedRatio).toBeCloseTo(f.gemmUs / q.gemmUs, 12);
    expect(cmp.bound).toBeCloseTo(1 / (1 - f.gemmShare + f.gemmShare / cmp.gemmSpeedRatio), 12);
    expect(cmp.profiledSpeedup).toBeCloseTo(f.kernelUs / q.kernelUs, 12);
  });

  it('skipRuns leaves out the first runs and their node events', () => {
    const events = trace('float');
    const all = opTimeTable(events);
    const late = opTimeTable(events, { skipRuns: 6 });
    expect(all.runs).toBe(8);
    expect(late.runs).toBe(2);
    expect(new Map(late.rows.map((r) => [r.opType, r.callsPerRun]))).toEqual(opCounts('float'));
  });

  it('a node slowed down 100× in one run (a preempted run) barely moves the table: per-node medians', () => {
    const events = trace('float');
    const base = opTimeTable(events);
    const runs = events.filter((e) => e.name === 'model_run').sort((a, b) => a.ts - b.ts);
    const r = runs[4];
    const victim = events.find((e) => e.cat === 'Node' && e.args?.op_name === 'MatMul' && e.ts >= r.ts && e.ts <= r.ts + r.dur)!;
    const slowed = events.map((e) => (e === victim ? { ...e, dur: e.dur * 100 } : e));
    const t = opTimeTable(slowed);
    const mm = (x: typeof t) => x.rows.find((row) => row.opType === 'MatMul')!.usPerRun;
    expect(Math.abs(mm(t) - mm(base)) / mm(base)).toBeLessThan(0.25);
  });

  it('rejects a profile without runs and a non-array', () => {
    expect(() => opTimeTable(trace('float').filter((e) => e.name !== 'model_run'))).toThrow(/model_run/);
    expect(() => profileEvents({})).toThrow(TypeError);
  });
});

describe('speedupBound (Amdahl)', () => {
  it('matches the law worked by hand', () => {
    expect(speedupBound(0.75, 3)).toBeCloseTo(2, 12); // 1 / (0.25 + 0.25)
    expect(speedupBound(0.8, 4)).toBeCloseTo(2.5, 12); // 1 / (0.2 + 0.2)
    expect(speedupBound(0, 10)).toBe(1);
    expect(speedupBound(1, 3.5)).toBeCloseTo(3.5, 12);
    expect(() => speedupBound(1.2, 2)).toThrow(RangeError);
    expect(() => speedupBound(0.5, 0)).toThrow(RangeError);
  });

  it('classifies op types', () => {
    expect(opCategory('MatMul')).toBe('gemm-float');
    expect(opCategory('FusedMatMul')).toBe('gemm-float');
    expect(opCategory('MatMulIntegerToFloat')).toBe('gemm-int8');
    expect(opCategory('QLinearMatMul')).toBe('gemm-int8');
    expect(opCategory('DynamicQuantizeLinear')).toBe('quantize');
    expect(opCategory('LayerNormalization')).toBe('other');
  });
});

describe('profile rendering', () => {
  it('prints the bound worked out from the shares', () => {
    const f = opTimeTable(trace('float'), { keep: counted });
    const q = opTimeTable(trace('int8'), { keep: counted });
    const p: ProfileDetails = { seqLen: 16, batch: 1, runs: 2, rounds: 2, warmup: 3, float: { ...f, trace: 'f' }, int8: { ...q, trace: 'q' }, comparison: compareProfiles(f, q), measuredSpeedup: 1.2 };
    const lines = profileSummary(p).join('\n');
    expect(lines).toContain(`= ${p.comparison!.bound.toFixed(2)}×`);
    expect(lines).toContain(`k = ${p.comparison!.gemmSpeedRatio.toFixed(2)}`);
    const g = profileGrid(p);
    expect(g.rows.at(-2)![0]).toContain('kernels total');
    expect(g.header).toHaveLength(8);
  });
});
