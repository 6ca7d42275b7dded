import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { newReport, ranercVersion } from '../../src/report/environment.js';
import { renderMarkdown } from '../../src/report/markdown.js';
import { REPORT_SCHEMA, reportProblem, type EvalDetails, type Report } from '../../src/report/schema.js';
import { readReport, reportStamp, resolveReportDir, writeReport } from '../../src/report/write.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ranerc-report-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A small, fully fixed eval report (no live environment) for round trips and the Markdown snapshot. */
function smallReport(): Report<EvalDetails, 'eval'> {
  return {
    schema: REPORT_SCHEMA,
    command: 'eval',
    createdAt: '2025-01-02T03:04:05.000Z',
    ranerc: '0.1.0',
    environment: { node: 'v20.0.0', onnxruntime: '1.30.0', os: 'linux 6.1 x64', cpu: 'Test CPU', cores: 2, threads: 'default' },
    settings: { model: 'fixtures/tiny/bio-crf-op14', data: 'sample.jsonl', mode: 'default', batch: 32 },
    models: [
      {
        role: 'model',
        path: 'fixtures/tiny/bio-crf-op14',
        onnxPath: 'fixtures/tiny/bio-crf-op14/model.onnx',
        sha256: 'ab'.repeat(32),
        bytes: 150_000,
        parameters: 36_871,
        labels: ['O', 'B-PER', 'I-PER'],
        f1: {
          micro: { precision: 0.75, recall: 0.6, f1: 2 / 3, tp: 3, gold: 5, pred: 4 },
          perType: {
            PER: { precision: 1, recall: 0.5, f1: 2 / 3, tp: 1, gold: 2, pred: 1 },
            LOC: { precision: 2 / 3, recall: 2 / 3, f1: 2 / 3, tp: 2, gold: 3, pred: 3 },
          },
        },
        loadMs: 12.345,
      },
    ],
    data: { files: [{ path: 'sample.jsonl', sha256: 'cd'.repeat(32), format: 'jsonl', sentences: 3, entities: 5, skipped: 1, unalignedGold: 0 }] },
    details: {
      mode: 'default',
      subword: 'first',
      decoder: 'crf',
      windowSize: 126,
      overlap: 64,
      windowedSentences: 0,
      batchSize: 32,
      predictMs: 1234.5,
      sentencesPerSec: 2.43,
    },
    warnings: ['1 gold entity of a type the model lacks was skipped (sample.jsonl:3)'],
  };
}

describe('report files', () => {
  it('writes report.json + report.md atomically and reads back an equal report', async () => {
    const report = smallReport();
    const target = join(dir, 'out', 'eval-1');
    const res = await writeReport(target, report, renderMarkdown(report));
    expect(res.dir).toBe(target);
    expect((await readdir(target)).sort()).toEqual(['report.json', 'report.md']);
    expect(await readdir(join(dir, 'out'))).toEqual(['eval-1']); // no temp leftovers
    expect(await readReport(target)).toEqual(report);
    expect(await readReport(join(target, 'report.json'))).toEqual(report);
    expect(await readFile(join(target, 'report.md'), 'utf8')).toBe(renderMarkdown(report));
  });

  it('replaces an existing report folder given explicitly', async () => {
    const target = join(dir, 'replace');
    await mkdir(target, { recursive: true });
    await writeFile(join(target, 'stale.txt'), 'old');
    const report = smallReport();
    await writeReport(target, report, 'md\n');
    expect((await readdir(target)).sort()).toEqual(['report.json', 'report.md']);
  });

  it('refuses to write an invalid report and leaves nothing behind', async () => {
    const bad = { ...smallReport(), schema: 'other' } as unknown as Report;
    const target = join(dir, 'bad');
    await expect(writeReport(target, bad, '')).rejects.toThrow(/schema/);
    await expect(readdir(target)).rejects.toThrow();
  });

  it('rejects files that are not ranerc reports with InputError naming the file', async () => {
    const notJson = join(dir, 'broken.json');
    await writeFile(notJson, '{"schema": "ranerc.report/1", ');
    const e1 = await readReport(notJson).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(InputError);
    expect((e1 as InputError).where.file).toBe(notJson);
    const wrong = join(dir, 'wrong.json');
    await writeFile(wrong, JSON.stringify({ schema: 'ranerc.report/0' }));
    await expect(readReport(wrong)).rejects.toThrow(/not a ranerc report/);
    expect(reportProblem(smallReport())).toBeUndefined();
    expect(reportProblem({ ...smallReport(), models: [{ role: 'model' }] })).toMatch(/models\[0\]\.path/);
  });

  it('names default report folders <command>-<UTC stamp> and never reuses one', async () => {
    const now = new Date(Date.UTC(2025, 0, 2, 3, 4, 5));
    expect(reportStamp(now)).toBe('20250102-030405');
    const base = join(dir, 'reports');
    const first = await resolveReportDir('eval', undefined, { base, now });
    expect(first).toBe(join(base, 'eval-20250102-030405'));
    await mkdir(first, { recursive: true });
    expect(await resolveReportDir('eval', undefined, { base, now })).toBe(`${first}-2`);
    expect(await resolveReportDir('eval', join(dir, 'explicit'), { base, now })).toBe(join(dir, 'explicit'));
  });

  it('newReport fills schema, version, time and environment', () => {
    const r = newReport('bench', { seq: [64] }, { x: 1 }, { threads: 2, now: new Date(0) });
    expect(r.schema).toBe('ranerc.report/1');
    expect(r.createdAt).toBe('1970-01-01T00:00:00.000Z');
    expect(r.ranerc).toBe(ranercVersion());
    expect(r.environment.threads).toBe(2);
    expect(r.environment.onnxruntime).toBe('1.30.0');
    expect(r.environment.cores).toBeGreaterThanOrEqual(1);
    expect(reportProblem(r)).toBeUndefined();
  });
});

describe('renderMarkdown', () => {
  it('renders the small eval report exactly (snapshot in test/report/fixtures/small-eval-report.md)', async () => {
    const expected = await readFile(new URL('./fixtures/small-eval-report.md', import.meta.url), 'utf8');
    expect(renderMarkdown(smallReport())).toBe(expected);
  });

  it('adds a comparison table with deltas when a report holds before/after models', () => {
    const base = smallReport().models[0];
    const after = {
      ...base,
      role: 'after',
      path: 'out/int8',
      bytes: 50_000,
      f1: { ...base.f1!, micro: { ...base.f1!.micro, f1: 0.65 } },
    };
    const lat = (p50: number) => [
      { seqLen: 128, batch: 1, p50Ms: p50, p95Ms: p50, p99Ms: p50, meanMs: p50, minMs: p50, maxMs: p50, stdevMs: 0, iterations: 5, sentencesPerSec: 1000 / p50, tokensPerSec: 128000 / p50 },
    ];
    const md = renderMarkdown({
      ...smallReport(),
      command: 'quantize',
      models: [{ ...base, role: 'before', latency: lat(10) }, { ...after, latency: lat(4) }],
      details: { scheme: 'int8', perChannel: true },
    });
    expect(md).toContain('| before | fixtures/tiny/bio-crf-op14 | 66.67 |  | 146 KiB |  | 36,871 | 10.00 (seq 128, batch 1) |  |');
    expect(md).toContain('| after | out/int8 | 65.00 | -1.67 | 48.8 KiB | -66.7% | 36,871 | 4.00 (seq 128, batch 1) | 2.50× |');
    expect(md).toContain('| scheme | int8 |');
  });
});
