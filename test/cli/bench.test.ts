import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchBudget } from '../../src/cli/bench.js';
import type { BenchDetails, Report } from '../../src/report/schema.js';
import { cli, REPO } from './helpers.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ranerc-bench-cli-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const MODEL = join(REPO, 'fixtures', 'tiny', 'bmes-op12-nobias');

describe('ranerc bench', () => {
  it('measures every seq × batch point and reports load time, peak RSS, size and parameters', async () => {
    const dir = join(tmp, 'synthetic');
    const r = await cli('bench', '--model', MODEL, '--seq', '16,32', '--batch', '1,2', '--warmup', '1', '--iterations', '3', '--threads', '1', '--json', '--report-dir', dir);
    expect(r.code, r.err).toBe(0);
    const report = JSON.parse(r.out) as Report<BenchDetails>;
    expect(report.command).toBe('bench');
    expect(report.environment.threads).toBe(1);
    const m = report.models[0];
    expect(m.latency!.map((x) => [x.seqLen, x.batch, x.iterations])).toEqual([
      [16, 1, 3],
      [16, 2, 3],
      [32, 1, 3],
      [32, 2, 3],
    ]);
    for (const row of m.latency!) {
      expect(row.p50Ms).toBeGreaterThan(0);
      expect(row.p50Ms).toBeLessThanOrEqual(row.p99Ms);
      expect(row.tokensPerSec).toBeCloseTo(row.sentencesPerSec * row.seqLen, 6);
    }
    // meta.json: the sum of PyTorch numel() over the float parameters
    const meta = JSON.parse(await readFile(join(MODEL, 'meta.json'), 'utf8')) as { parameter_count: number };
    expect(m.parameters).toBe(meta.parameter_count);
    expect(m.bytes).toBeGreaterThan(0);
    expect(report.details.inputs).toBe('synthetic');
    expect(report.details.peakRssBytes).toBeGreaterThan(1 << 20);
    expect(report.details.loadMs).toBeGreaterThan(0);
    expect(await readFile(join(dir, 'report.md'), 'utf8')).toContain('| 16 | 1 |');
  });

  it('takes token ids from --data', async () => {
    const r = await cli('bench', '--model', MODEL, '--data', join(REPO, 'fixtures', 'data', 'msra_calib.jsonl'), '--seq', '24', '--batch', '1', '--warmup', '0', '--iterations', '2', '--json', '--report-dir', join(tmp, 'data'));
    expect(r.code, r.err).toBe(0);
    const report = JSON.parse(r.out) as Report<BenchDetails>;
    expect(report.details.inputs).toBe('data');
    expect(report.models[0].latency).toHaveLength(1);
  });

  it('prints a latency table without --json', async () => {
    const r = await cli('bench', '--model', MODEL, '--seq', '8', '--batch', '1', '--iterations', '2', '--warmup', '0', '--report-dir', join(tmp, 'table'));
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/seq\s+batch\s+p50 ms\s+p95 ms\s+p99 ms/);
  });

  it('--int8 times a second model interleaved and --profile saves the traces and optimized graphs under the report folder', async () => {
    const dir = join(tmp, 'profile');
    const r = await cli('bench', '--model', MODEL, '--int8', join(REPO, 'fixtures', 'tiny', 'bmes-op12-nobias'), '--profile', '--profile-runs', '2', '--seq', '16', '--batch', '1', '--warmup', '1', '--iterations', '2', '--seconds', '0', '--threads', '1', '--json', '--report-dir', dir);
    expect(r.code, r.err).toBe(0);
    const report = JSON.parse(r.out) as Report<BenchDetails>;
    expect(report.models.map((m) => m.role)).toEqual(['model', 'int8']);
    const p = report.details.profile![0];
    expect([p.seqLen, p.batch, p.runs]).toEqual([16, 1, 2]);
    // the same model twice: the same graph, so the same op types and node counts
    expect(new Map(p.int8!.rows.map((x) => [x.opType, x.callsPerRun]))).toEqual(new Map(p.float.rows.map((x) => [x.opType, x.callsPerRun])));
    for (const f of [p.float.trace, p.float.optimized!, p.int8!.trace, p.int8!.optimized!]) {
      expect(f.startsWith(join(dir, 'profile'))).toBe(true);
      expect((await readFile(f)).length).toBeGreaterThan(100);
    }
    expect(await readFile(join(dir, 'report.md'), 'utf8')).toContain('### Profile: seq 16 × batch 1');
  });

  it('budget defaults: at least 10 runs and 3 s; --iterations alone is exact; --seconds alone keeps 10 runs minimum', () => {
    expect(benchBudget({})).toEqual({ iterations: 10, minSeconds: 3 });
    expect(benchBudget({ iterations: 50 })).toEqual({ iterations: 50, minSeconds: 0 });
    expect(benchBudget({ seconds: 1 })).toEqual({ iterations: 10, minSeconds: 1 });
  });
});
