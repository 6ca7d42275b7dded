import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EvalDetails, Report } from '../../src/report/schema.js';
import { sha256File } from '../../src/util/fs.js';
import { cli, FACTS, REPO } from './helpers.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ranerc-eval-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('ranerc eval gives exactly the scores of the PyTorch predict_spans reference', () => {
  // bio-crf-msra (overlap 15) is the same model and data as bio-crf-msra-default-overlap; its predictions are
  // checked in test/runtime/predict.test.ts, so the CLI runs one of the two (keeps this file fast).
  for (const c of FACTS.filter((x) => x.id !== 'bio-crf-msra')) {
    it(`${c.id}: ${c.model} on ${c.data} (${c.mode}, overlap ${c.overlap})`, async () => {
      const model = join(REPO, c.model);
      const onnx = join(model, 'model.onnx');
      expect(await sha256File(onnx), 'the fixture model changed: rerun test/cli/fixtures/make_eval_facts.py').toBe(c.onnx_sha256);
      const dir = join(tmp, c.id);
      const data = join(REPO, c.data);
      // The default-overlap case runs as a user would (no --overlap, no --json): table on stdout, report on disk.
      const asUser = c.id === 'bio-crf-msra-default-overlap';
      const r = asUser
        ? await cli('eval', '--model', model, '--data', data, '--report-dir', dir)
        : await cli('eval', '--model', model, '--data', data, '--overlap', String(c.overlap), '--mode', c.mode, '--json', '--report-dir', dir);
      expect(r.err).not.toMatch(/unexpected/);
      expect(r.code).toBe(0);
      const report = (asUser ? JSON.parse(await readFile(join(dir, 'report.json'), 'utf8')) : JSON.parse(r.out)) as Report<EvalDetails>;
      if (asUser) {
        const micro = r.out.split('\n').find((l) => l.startsWith('micro'))!;
        expect(micro.split(/\s+/)).toEqual([
          'micro',
          (c.micro.precision * 100).toFixed(2),
          (c.micro.recall * 100).toFixed(2),
          (c.micro.f1 * 100).toFixed(2),
          String(c.micro.gold),
          String(c.micro.pred),
          String(c.micro.tp),
        ]);
        expect(report.details.overlap).toBe(31); // the documented default: min(64, floor(62 / 2))
        const md = await readFile(join(dir, 'report.md'), 'utf8');
        expect(md).toContain(`| **micro** | ${(c.micro.precision * 100).toFixed(2)} |`);
      }
      const f1 = report.models[0].f1!;
      // counts equal; the ratios follow from them (checked against the Python floats too)
      expect({ tp: f1.micro.tp, gold: f1.micro.gold, pred: f1.micro.pred }).toEqual({ tp: c.micro.tp, gold: c.micro.gold, pred: c.micro.pred });
      expect(f1.micro.f1).toBeCloseTo(c.micro.f1, 12);
      expect(f1.micro.precision).toBeCloseTo(c.micro.precision, 12);
      expect(f1.micro.recall).toBeCloseTo(c.micro.recall, 12);
      for (const [type, want] of Object.entries(c.per_type)) {
        const got = f1.perType[type];
        expect([type, got.tp, got.gold, got.pred]).toEqual([type, want.tp, want.gold, want.pred]);
      }
      // an independent F1 from the counts
      const p = c.micro.tp / c.micro.pred;
      const rec = c.micro.tp / c.micro.gold;
      expect(f1.micro.f1).toBeCloseTo((2 * p * rec) / (p + rec), 12);
      expect(report.command).toBe('eval');
      expect(report.details.decoder).toBe(c.decoder);
      expect(report.details.windowSize).toBe(c.window);
      expect(report.details.overlap).toBe(c.overlap);
      expect(report.details.windowedSentences).toBe(c.windowed_sentences);
      expect(report.data!.files[0].sentences).toBe(c.sentences);
      expect(report.models[0].sha256).toBe(c.onnx_sha256);
      // the report on disk is the one printed
      expect((await readdir(dir)).sort()).toEqual(['report.json', 'report.md']);
      expect(JSON.parse(await readFile(join(dir, 'report.json'), 'utf8'))).toEqual(report);
      expect(r.err).toContain(`report: ${dir}`);
    });
  }

  it('--no-crf decodes with argmax', async () => {
    const c = FACTS.find((x) => x.id === 'bio-crf-msra')!;
    const r = await cli('eval', '--model', join(REPO, c.model), '--data', join(REPO, 'test/cli/fixtures/english.jsonl'), '--no-crf', '--skip-unknown-types', '--json', '--report-dir', join(tmp, 'nocrf'));
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out) as Report<EvalDetails>;
    expect(report.details.decoder).toBe('argmax');
    expect(report.data!.files[0].skipped).toBe(10); // the MISC entities of english.jsonl
    expect(report.warnings.join('\n')).toMatch(/10 gold entities were skipped/);
  });
});
