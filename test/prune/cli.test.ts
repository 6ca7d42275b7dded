/**
 * `ranerc prune` through main(): flags, exit codes, the printed table / JSON, and the report folder
 * (report.json, report.md, head-importance.svg).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from '../cli/helpers.js';
import { reportProblem } from '../../src/report/schema.js';
import { MSRA_DEV, TINY } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'ranerc-prune-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const base = ['prune', '-m', join(TINY, 'bmes-op12-nobias'), '-d', MSRA_DEV, '--max-sentences', '20', '--no-bench', '--cache-dir', join(tmp, 'cache')];

describe('ranerc prune', () => {
  it('is listed in --help', async () => {
    const r = await cli('--help');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/\n\s+prune\b/);
  });

  it('prunes, prints the table and writes the report folder with the heat map', async () => {
    const out = join(tmp, 'pruned');
    const rep = join(tmp, 'report');
    const r = await cli(...base, '--ratio', '0.25', '-o', out, '--report-dir', rep);
    expect(r.err).not.toMatch(/unexpected/);
    expect(r.code).toBe(0);
    // 2 layers × 2 heads: round(0.25 × 4) = 1 head goes
    expect(r.out).toMatch(/heads\s+4\s+3\s+-25\.0%/);
    expect(r.out).toContain(`model: ${out}`);
    expect(r.err).toContain(`report: ${rep}`);
    for (const f of ['report.json', 'report.md', 'head-importance.svg']) expect(existsSync(join(rep, f))).toBe(true);
    const report = JSON.parse(readFileSync(join(rep, 'report.json'), 'utf8')) as unknown;
    expect(reportProblem(report)).toBeUndefined();
    expect(readFileSync(join(rep, 'head-importance.svg'), 'utf8')).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(existsSync(join(out, 'model.onnx'))).toBe(true);
  });

  it('--json prints the report; --no-labels scores against the model’s predictions', async () => {
    const r = await cli(...base, '--ratio', '0.5', '--no-labels', '-o', join(tmp, 'p2'), '--report-dir', join(tmp, 'r2'), '--json');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out) as { command: string; details: { target: string; heads: { removed: number } } };
    expect(report.command).toBe('prune');
    expect(report.details.target).toBe('predicted');
    expect(report.details.heads.removed).toBe(2);
  });

  it('bad usage exits 2 and writes nothing', async () => {
    const out = join(tmp, 'never');
    for (const args of [
      ['--ratio', '1.5', '-o', out],
      ['--ratio', 'x', '-o', out],
      ['--ratio', '0.25', '-o', out, '--backend', 'gpu'],
      ['--ratio', '1', '-o', out], // would empty both layers
      ['--ratio', '0.25', '-o', out, '--epochs', '1'], // needs --finetune
      ['--ratio', '0.25', '-o', out, '--finetune', MSRA_DEV], // needs --dev
    ]) {
      const r = await cli(...base, ...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(existsSync(out)).toBe(false);
    }
    const r = await cli('prune', '-m', join(TINY, 'bmes-op12-nobias'), '--ratio', '0.25', '-o', out);
    expect(r.code).toBe(2); // --data missing
    expect(r.err).toMatch(/--data/);
  });
});
