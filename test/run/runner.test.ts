/**
 * The step cache: a second run with nothing changed takes every step from the cache; changing one
 * setting re-runs that step and only the steps whose inputs it changed; damaged outputs are re-made;
 * a failed step leaves the previous one; same data → same artifacts.
 */
import { appendFile, cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { loadRecipe } from '../../src/run/recipe.js';
import { runRecipe, type RunResult } from '../../src/run/runner.js';
import type { RunSummary } from '../../src/run/summary.js';
import { exists } from '../../src/util/fs.js';
import { msraSlice, registerResave, resaveRecipe, resaveRuns, tempDir, TINY } from './helpers.js';

registerResave();

let dir: string;
let cleanup: () => Promise<void>;
let recipeFile: string;
let out: string;
const logs: string[] = [];

async function run(sets: string[] = [], opts: { out?: string; noCache?: boolean } = {}): Promise<RunResult> {
  const recipe = await loadRecipe(recipeFile, sets);
  logs.length = 0;
  return runRecipe(recipe, { outDir: opts.out ?? out, noCache: opts.noCache, interactive: false, log: (l) => logs.push(l) });
}

function ran(r: RunResult): string[] {
  return r.summary.steps.filter((s) => !s.cached).map((s) => s.name);
}

let first: RunResult;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('cache'));
  const data = await msraSlice(join(dir, 'slice.jsonl'), 40);
  recipeFile = join(dir, 'recipe.yaml');
  await writeFile(recipeFile, resaveRecipe(data));
  out = join(dir, 'out');
  first = await run();
});
afterAll(async () => cleanup());

describe('the step cache', () => {
  it('the first run runs every step, in plan order, one line each', () => {
    expect(first.summary.steps.map((s) => [s.name, s.cached])).toEqual([
      ['copy', false],
      ['eval@original', false],
      ['eval@copy', false],
      ['eval@bmes', false],
      ['bench@original', false],
      ['bench@copy', false],
      ['bench@bmes', false],
    ]);
    expect(resaveRuns.get('copy')).toBe(1);
  });

  it('a re-saved model scores exactly as its source (same weights, same pipeline)', () => {
    const [orig, copy] = first.summary.variants;
    expect(copy.f1).toEqual(orig.f1);
    expect(copy.perType).toEqual(orig.perType);
    expect(copy.f1Drop).toBe(0);
    expect(orig.f1.gold).toBeGreaterThan(0);
    expect(copy.steps).toEqual(['copy']);
    expect(orig.steps).toEqual([]);
  });

  it('a second run with nothing changed takes every step from the cache and gives the same numbers', async () => {
    const again = await run();
    expect(ran(again)).toEqual([]);
    expect(resaveRuns.get('copy')).toBe(1);
    const strip = (s: RunSummary) => s.variants.map((v) => ({ ...v }));
    expect(strip(again.summary)).toEqual(strip(first.summary));
    expect(logs.filter((l) => l.includes(': cached (key ')).length).toBe(7);
  });

  it('changing a bench setting re-runs only the bench steps', async () => {
    const r = await run(['measure.bench.iterations=10']);
    expect(ran(r)).toEqual(['bench@original', 'bench@copy', 'bench@bmes']);
    // 10 timed runs per model: 2 in each of the 5 interleaved rounds
    expect(r.summary.variants.map((v) => v.latencyRows[0].iterations)).toEqual([10, 10, 10]);
    // and back: the previous settings' results are gone, so they run again
    expect(ran(await run())).toEqual(['bench@original', 'bench@copy', 'bench@bmes']);
  });

  it('a step setting that does not change the step output re-runs only that step', async () => {
    const r = await run(['steps.copy.note=hello']);
    expect(ran(r)).toEqual(['copy']);
    expect(resaveRuns.get('copy')).toBe(2);
  });

  it('a step setting that changes the output re-runs the step and the steps downstream of it', async () => {
    const r = await run(['steps.copy.note=hello', 'steps.copy.external-data=always', 'measure.rebench=changed']);
    expect(ran(r)).toEqual(['copy', 'eval@copy', 'bench@copy']);
    expect(await exists(join(out, 'steps', 'copy', 'model', 'model.onnx.data'))).toBe(true);
    expect(r.summary.variants[1].f1).toEqual(first.summary.variants[1].f1);
  });

  it('by default every variant is timed again when one must be (latencies from one session)', async () => {
    const r = await run(['steps.copy.note=hello']); // back to the copy without external data
    expect(ran(r)).toEqual(['copy', 'eval@copy', 'bench@original', 'bench@copy', 'bench@bmes']);
    expect(logs).toContain('bench: timing every variant again, interleaved, so that all latencies come from this session');
    expect(logs.filter((l) => / bench@\w+ \(bench\): running \(with 2 more, interleaved\)$/.test(l)).length).toBe(3);
  });

  it('a damaged step output is noticed and re-made', async () => {
    await run();
    await appendFile(join(out, 'steps', 'copy', 'model', 'config.json'), ' ');
    const r = await run();
    expect(ran(r)[0]).toBe('copy');
    expect(JSON.parse(await readFile(join(out, 'steps', 'copy', 'model', 'config.json'), 'utf8'))).toBeTruthy();
    expect(ran(await run())).toEqual([]);
  });

  it('a failing step leaves its previous folder and the run stops with its error', async () => {
    const before = await readFile(join(out, 'steps', 'copy', 'step.json'), 'utf8');
    await expect(run([`steps.copy.model=${dir}`])).rejects.toThrow(InputError);
    expect(logs.at(-1)).toMatch(/\[1\/7\] copy \(resave\): failed after/);
    expect(await readFile(join(out, 'steps', 'copy', 'step.json'), 'utf8')).toBe(before);
    expect(ran(await run())).toEqual([]);
  });

  it('--no-cache re-runs everything; same data → the same model files (provenance time aside)', async () => {
    const out2 = join(dir, 'out2');
    const fresh = await run([], { out: out2, noCache: true });
    expect(ran(fresh).length).toBe(7);
    for (const v of ['original', 'copy', 'bmes']) {
      const models = async (o: string) =>
        (await readFile(join(o, 'artifacts', v, 'SHA256SUMS'), 'utf8')).split('\n').filter((l) => l.includes('  model/') && !l.endsWith('/ranerc.json'));
      const a = await models(out);
      expect(a.length).toBeGreaterThan(3);
      expect(await models(out2)).toEqual(a);
    }
    // ranerc.json (written by the step) differs only in when it was written
    const prov = async (o: string) => {
      const p = JSON.parse(await readFile(join(o, 'artifacts', 'copy', 'model', 'ranerc.json'), 'utf8')) as Record<string, unknown>;
      expect(Number.isNaN(Date.parse(String(p.createdAt)))).toBe(false);
      delete p.createdAt;
      return p;
    };
    expect(await prov(out2)).toEqual(await prov(out));
    // the numbers that do not depend on timing are identical
    const pick = (s: RunSummary) => s.variants.map((v) => [v.name, v.f1, v.perType, v.sizeBytes, v.onnxSha256, v.parameters]);
    expect(pick(fresh.summary)).toEqual(pick(first.summary));
  });

  it('one run folder, one run: a live lock refuses, a stale one is taken over; interrupted temp folders are removed', async () => {
    await writeFile(join(out, '.lock'), `${process.ppid}\n`);
    await expect(run()).rejects.toThrow(/another ranerc run \(process \d+\) is using/);
    await writeFile(join(out, '.lock'), '2147483646\n');
    await mkdir(join(out, 'steps', '.copy.1234.deadbeef.tmp'), { recursive: true });
    expect(ran(await run())).toEqual([]);
    expect(await exists(join(out, '.lock'))).toBe(false);
    expect(await exists(join(out, 'steps', '.copy.1234.deadbeef.tmp'))).toBe(false);
  });

  it('a model given as its .onnx file is cached by its whole folder (config, vocab, CRF decide the results too)', async () => {
    const folder = join(dir, 'bare-model');
    await cp(join(TINY, 'bio-crf-op14'), folder, { recursive: true });
    const text = (await readFile(recipeFile, 'utf8')).replace(/variants:[\s\S]*?measure:/, `variants:\n  bare:\n    model: ${join(folder, 'model.onnx')}\nmeasure:`).replace(/steps:[\s\S]*?variants:/, 'variants:');
    const file = join(dir, 'bare.yaml');
    await writeFile(file, text);
    const bareOut = join(dir, 'bare-out');
    const go = async () => runRecipe(await loadRecipe(file), { outDir: bareOut, interactive: false, log: () => undefined });
    const a = await go();
    expect(ran(a)).toEqual(['eval@bare', 'bench@bare']);
    await rm(join(folder, 'crf.json'));
    const b = await go();
    expect(ran(b)).toEqual(['eval@bare', 'bench@bare']);
    expect(b.summary.variants[0].f1).not.toEqual(a.summary.variants[0].f1); // CRF Viterbi vs argmax
    expect(ran(await go())).toEqual([]);
  });
});
