/**
 * artifacts/<variant>/: a complete model folder that `ranerc eval` loads and scores exactly as the run
 * did, a report, and SHA256SUMS that `sha256sum -c` accepts. The F1 the run measures equals the
 * PyTorch-computed fact for the tiny BIO+CRF model on the MSRA test sample (test/cli/fixtures).
 */
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readReport } from '../../src/report/write.js';
import type { RunVariantDetails } from '../../src/run/artifacts.js';
import { loadRecipe } from '../../src/run/recipe.js';
import { runRecipe, type RunResult } from '../../src/run/runner.js';
import { sha256File } from '../../src/util/fs.js';
import { cli, FACTS } from '../cli/helpers.js';
import { MSRA_TEST, registerResave, resaveRecipe, tempDir } from './helpers.js';

registerResave();
const FACT = FACTS.find((c) => c.id === 'bio-crf-msra-default-overlap')!;

let dir: string;
let cleanup: () => Promise<void>;
let result: RunResult;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('artifacts'));
  // two variants: the input model and its re-saved copy (a step output), scored on the whole MSRA test sample
  const text = resaveRecipe(MSRA_TEST).replace(/ {2}bmes:\n {4}model: \$\{inputs\.bmes\}\n/, '');
  await writeFile(join(dir, 'recipe.yaml'), text);
  const recipe = await loadRecipe(join(dir, 'recipe.yaml'));
  result = await runRecipe(recipe, { outDir: join(dir, 'out'), interactive: false, log: () => undefined });
});
afterAll(async () => cleanup());

describe('artifacts', () => {
  it('the run measures the F1 PyTorch measured (same model, data, windows, CRF decoding)', () => {
    expect(FACT.onnx_sha256).toBe(result.summary.variants[0].onnxSha256);
    for (const v of result.summary.variants) {
      expect(v.f1.tp).toBe(FACT.micro.tp);
      expect(v.f1.gold).toBe(FACT.micro.gold);
      expect(v.f1.pred).toBe(FACT.micro.pred);
      expect(v.f1.f1).toBeCloseTo(FACT.micro.f1, 12);
      for (const [type, c] of Object.entries(FACT.per_type)) expect(v.perType[type]).toMatchObject(c);
    }
    expect(result.summary.measure.data).toMatchObject({ sentences: FACT.sentences, entities: FACT.micro.gold });
  });

  it('each artifact model folder is loadable by `ranerc eval` and scores the same', async () => {
    const r = await cli('eval', '--model', join(result.outDir, 'artifacts', 'copy', 'model'), '--data', MSRA_TEST, '--json', '--report-dir', join(dir, 'eval-report'));
    expect(r.code, r.err).toBe(0);
    const report = JSON.parse(r.out) as { models: Array<{ f1: { micro: { tp: number; pred: number; gold: number } }; sha256: string }> };
    expect(report.models[0].f1.micro).toMatchObject({ tp: FACT.micro.tp, pred: FACT.micro.pred, gold: FACT.micro.gold });
    expect(report.models[0].sha256).toBe(result.summary.variants[1].onnxSha256);
  });

  it('SHA256SUMS covers every file and sha256sum -c accepts it', async () => {
    for (const v of ['original', 'copy']) {
      const adir = join(result.outDir, 'artifacts', v);
      const sums = await readFile(join(adir, 'SHA256SUMS'), 'utf8');
      const files = sums.trim().split('\n').map((l) => l.slice(66));
      expect(files).toEqual(expect.arrayContaining(['model/model.onnx', 'model/config.json', 'model/vocab.txt', 'model/crf.json', 'report.json', 'report.md']));
      const out = execFileSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: adir, encoding: 'utf8' });
      expect(out.trim().split('\n').every((l) => l.endsWith(': OK'))).toBe(true);
      expect(out.trim().split('\n').length).toBe(files.length);
    }
    const onnx = await sha256File(join(result.outDir, 'artifacts', 'original', 'model', 'model.onnx'));
    expect(onnx).toBe(FACT.onnx_sha256); // the input model is shipped byte for byte
  });

  it('the variant report holds the baseline and the variant with F1 and latency, and the steps that made it', async () => {
    const report = await readReport(join(result.outDir, 'artifacts', 'copy'));
    expect(report.command).toBe('run');
    expect(report.models.map((m) => [m.role, m.path])).toEqual([
      ['baseline', '../original/model'],
      ['copy', 'model'],
    ]);
    const copy = report.models[1];
    expect(copy.f1?.micro.tp).toBe(FACT.micro.tp);
    expect(copy.latency?.[0]).toMatchObject({ seqLen: 16, batch: 1 });
    expect(copy.latency?.[0].p50Ms).toBe(result.summary.variants[1].latency?.p50Ms);
    const d = report.details as RunVariantDetails;
    expect(d.steps.map((s) => [s.name, s.kind])).toEqual([['copy', 'resave']]);
    expect(d.measuredBy).toEqual({ eval: 'steps/eval@copy/report.json', bench: 'steps/bench@copy/report.json' });
    const md = await readFile(join(result.outDir, 'artifacts', 'copy', 'report.md'), 'utf8');
    expect(md).toContain('## Made by');
    expect(md).toContain('| copy | resave |');
    // the measuring steps' own reports are there too
    expect((await readReport(join(result.outDir, 'steps', 'eval@copy'))).command).toBe('eval');
    expect((await readReport(join(result.outDir, 'steps', 'bench@copy'))).command).toBe('bench');
  });
});
