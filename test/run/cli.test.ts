/**
 * `ranerc run` through main(): the table on stdout, --json, and the documented exit codes — 0 when every
 * gate holds, 2 for a malformed recipe (naming the line) or bad flags, 3 when a gate fails (naming the
 * variant, the gate, the measured number and the limit).
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_RECIPE } from '../../src/cli/run.js';
import { InputError } from '../../src/errors.js';
import { loadRecipe } from '../../src/run/recipe.js';
import type { RunSummary } from '../../src/run/summary.js';
import { exists } from '../../src/util/fs.js';
import { cli } from '../cli/helpers.js';
import { msraSlice, REPO, registerResave, resaveRecipe, tempDir } from './helpers.js';

registerResave();
let dir: string;
let cleanup: () => Promise<void>;
let recipe: string;
let out: string;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('cli'));
  recipe = join(dir, 'recipe.yaml');
  await writeFile(recipe, resaveRecipe(await msraSlice(join(dir, 'slice.jsonl'), 40), 'gates:\n  max-size-mb: 10\n'));
  out = join(dir, 'out');
});
afterAll(async () => cleanup());

async function summary(): Promise<RunSummary> {
  return JSON.parse(await readFile(join(out, 'summary.json'), 'utf8')) as RunSummary;
}

describe('ranerc run', () => {
  it('prints the table and exits 0 when the gates hold', async () => {
    const r = await cli('run', recipe, '--out', out);
    expect(r.code, r.err).toBe(0);
    const s = await summary();
    const lines = r.out.split('\n');
    const header = lines.findIndex((l) => l.startsWith('variant'));
    expect(lines[header]).toMatch(/^variant\s+F1 %\s+Δ F1\s+size MB\s+p50 ms \(seq 16, batch 1\)\s+speed-up\s+gates$/);
    for (const [i, v] of s.variants.entries()) {
      const cells = lines[header + 2 + i].split(/\s{2,}/);
      expect(cells[0]).toBe(v.baseline ? `${v.name} (baseline)` : v.name);
      expect(cells[1]).toBe((v.f1.f1 * 100).toFixed(2));
    }
    expect(r.err).toMatch(/run: \[1\/7\] copy \(resave\): running/);
    expect(r.err).toMatch(/run: \[7\/7\] bench@bmes \(bench\): done in \d+\.\d s/);
    expect(s.gates.passed).toBe(true);
    expect(s.variants.every((v) => v.gates.length === 1 && v.gates[0].gate === 'max-size-mb')).toBe(true);
  });

  it('--json prints summary.json; the second run comes from the cache', async () => {
    const r = await cli('run', recipe, '--out', out, '--json');
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toEqual(await summary());
    expect((await summary()).steps.every((s) => s.cached)).toBe(true);
    expect(r.err).not.toMatch(/: running/);
  });

  it('exits 3 when a gate fails, naming the variant, the gate, the number and the limit; artifacts are still written', async () => {
    const r = await cli('run', recipe, '--out', out, '--max-f1-drop', '0.5', '--max-size-mb', '0.18');
    expect(r.code).toBe(3);
    const s = await summary();
    const bmes = s.variants.find((v) => v.name === 'bmes')!;
    const drop = bmes.f1Drop;
    expect(drop).toBeGreaterThan(0.5); // the BMES model finds fewer entities than the BIO+CRF baseline
    expect(r.err).toContain(`ranerc run: gate failed: variant "bmes" failed max-f1-drop: F1 drop ${drop.toFixed(2)} points > limit 0.50`);
    // the recipe's max-size-mb 10 holds; the flag 0.18 MB overrides it: the 185,859-byte BMES model fails, the 178,040-byte ones pass
    expect(r.err).toContain('variant "bmes" failed max-size-mb: size 0.19 MB > limit 0.18 MB');
    expect(r.err).not.toMatch(/variant "(original|copy)" failed max-size-mb/);
    expect(s.gates.passed).toBe(false);
    expect(s.gates.failures.length).toBe(2);
    expect(await exists(join(out, 'artifacts', 'bmes', 'model', 'model.onnx'))).toBe(true);
    expect(await readFile(join(out, 'summary.html'), 'utf8')).toContain('Gates failed');
  });

  it('a variant can switch a gate off; --set reaches any field', async () => {
    const r = await cli('run', recipe, '--out', out, '--max-f1-drop', '0.5', '--set', 'variants.bmes.gates.max-f1-drop=null');
    expect(r.code, r.err).toBe(0);
    const bmes = (await summary()).variants.find((v) => v.name === 'bmes')!;
    expect(bmes.gates.map((g) => g.gate)).toEqual(['max-size-mb']);
    const r2 = await cli('run', recipe, '--out', out, '--set', 'gates.max-latency-ms=0');
    expect(r2.code).toBe(3);
    expect(r2.err).toMatch(/variant "original" failed max-latency-ms: p50 \d+\.\d+ ms > limit 0\.00 ms/);
  });

  it('a malformed recipe exits 2 naming the file and line; nothing is written', async () => {
    const bad = join(dir, 'bad.yaml');
    const text = (await readFile(recipe, 'utf8')).replace('    iterations: 2', '    iterations: [2');
    await writeFile(bad, text);
    const badOut = join(dir, 'bad-out');
    const r = await cli('run', bad, '--out', badOut);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(new RegExp(`^ranerc run: ${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+: recipe is not valid YAML`));
    expect(r.err).toContain('hint:');
    expect(r.out).toBe('');
    expect(await exists(badOut)).toBe(false);
  });

  it('an invalid field exits 2 naming the line and the field; a bad flag or --set exits 2', async () => {
    const bad = join(dir, 'bad2.yaml');
    const text = (await readFile(recipe, 'utf8')).replace('    seq: [16]', '    seq: [1]');
    await writeFile(bad, text);
    const line = text.split('\n').findIndex((l) => l.includes('seq: [1]')) + 1;
    let r = await cli('run', bad, '--out', join(dir, 'bad2-out'));
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${bad}:${line}: measure.bench.seq: must be a list of integers >= 3, got a list`);
    r = await cli('run', recipe, '--out', out, '--max-f1-drop', 'lots');
    expect(r.code).toBe(2);
    r = await cli('run', recipe, '--out', out, '--set', 'gates.max-f1-drop');
    expect(r.code).toBe(2);
    expect(r.err).toContain('expected key=value');
    r = await cli('run', join(dir, 'missing.yaml'));
    expect(r.code).toBe(2);
    expect(r.err).toContain('recipe file not found');
  });

  it('--help documents the flags and exit codes', async () => {
    const r = await cli('run', '--help');
    expect(r.code).toBe(0);
    for (const f of ['--set', '--out', '--max-f1-drop', '--max-latency-ms', '--max-size-mb', '--no-cache', '--json']) expect(r.out).toContain(f);
    expect(r.out).toContain('3 a gate failed');
  });

  it('the default recipe is recipes/raner-lite.yaml and is valid (only a missing fixture teacher may stop it)', async () => {
    expect(DEFAULT_RECIPE).toBe(join(REPO, 'recipes', 'raner-lite.yaml'));
    expect(existsSync(DEFAULT_RECIPE)).toBe(true);
    try {
      const r = await loadRecipe(DEFAULT_RECIPE);
      expect(r.name).toBe('raner-lite');
    } catch (e) {
      expect(e).toBeInstanceOf(InputError);
      expect((e as InputError).message).toMatch(/^inputs\.\w+: .*fixtures\/teacher\/model does not exist$/);
      expect(existsSync(join(REPO, 'fixtures', 'teacher', 'model'))).toBe(false);
    }
  });
});

describe('docs/ci-example.yml', () => {
  it('is a GitHub Actions workflow whose ranerc command uses a shipped recipe and real flags, and uploads the run folder', async () => {
    const { parse } = await import('yaml');
    const wf = parse(await readFile(join(REPO, 'docs', 'ci-example.yml'), 'utf8')) as {
      on: unknown;
      jobs: Record<string, { 'runs-on': string; steps: Array<{ run?: string; uses?: string; with?: Record<string, string> }> }>;
    };
    expect(wf.on).toBeTruthy();
    const steps = Object.values(wf.jobs)[0].steps;
    const cmd = steps.find((s) => s.run?.startsWith('npx ranerc run'))!.run!.trim().split(/\s+/).slice(1);
    expect(existsSync(join(REPO, cmd[2]))).toBe(true);
    const help = (await cli('run', '--help')).out;
    for (const flag of cmd.filter((a) => a.startsWith('--'))) expect(help).toContain(flag);
    const upload = steps.find((s) => s.uses?.startsWith('actions/upload-artifact'))!;
    expect(upload.with!.path).toContain('reports/run-raner-lite/artifacts/');
    expect(upload.with!.path).toContain('summary.html');
    expect(steps.findIndex((s) => s.run === 'npm ci')).toBeGreaterThan(-1);
  });
});
