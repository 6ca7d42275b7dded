/**
 * `kind: prune` in a recipe: the step calls pruneModelFolder, its output is a variant the run scores and
 * ships. Facts from the tiny model's architecture (fixtures/tiny/bio-crf-op14/meta.json: 2 layers × 4
 * heads of 8, hidden 32, 32,295 parameters): ratio 0.25 removes round(0.25 × 8) = 2 heads, and each head
 * carries 3 × (32 × 8 + 8) Q/K/V weights and biases + 8 × 32 output-projection weights = 1,048 parameters.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEATMAP_FILE } from '../../src/prune/prune.js';
import { readReport } from '../../src/report/write.js';
import { loadRecipe } from '../../src/run/recipe.js';
import { runRecipe, type RunResult } from '../../src/run/runner.js';
import { exists } from '../../src/util/fs.js';
import { cli } from '../cli/helpers.js';
import { msraSlice, tempDir, TINY } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
let result: RunResult;
let data: string;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('prune'));
  data = await msraSlice(join(dir, 'slice.jsonl'), 40);
  const recipe = `name: prune-test
threads: 1
inputs:
  model: ${join(TINY, 'bio-crf-op14')}
  data: ${data}
steps:
  pruned:
    kind: prune
    model: \${inputs.model}
    data: \${inputs.data}
    ratio: 0.25
variants:
  original: { model: "\${inputs.model}" }
  pruned: { model: "\${pruned.model}" }
measure:
  eval: { data: "\${inputs.data}" }
  bench: { seq: [16], warmup: 0, iterations: 2, seconds: 0 }
`;
  await writeFile(join(dir, 'recipe.yaml'), recipe);
  result = await runRecipe(await loadRecipe(join(dir, 'recipe.yaml')), { outDir: join(dir, 'out'), interactive: false, log: () => undefined });
}, 120_000);
afterAll(async () => cleanup());

describe('a prune step', () => {
  it('removes a quarter of the heads: 2 × 1,048 parameters fewer', () => {
    const [orig, pruned] = result.summary.variants;
    expect(orig.parameters).toBe(32_295);
    expect(pruned.parameters).toBe(32_295 - 2 * 1_048);
    expect(pruned.steps).toEqual(['pruned']);
    expect(pruned.sizeBytes).toBeLessThan(orig.sizeBytes);
    const facts = result.steps.find((s) => s.spec.name === 'pruned')!.manifest.outcome.facts!;
    expect(facts).toMatchObject({ headsBefore: 8, headsAfter: 6, parametersBefore: 32_295, parametersAfter: 30_199 });
    expect(Number(facts.maxAbsLogitDiff)).toBeLessThan(1e-4); // pruned vs gated model, checked by the library
  });

  it('keeps the prune report and heat map in the step folder; the artifact is an eval-able folder', async () => {
    const stepDir = join(result.outDir, 'steps', 'pruned');
    expect((await readReport(stepDir)).command).toBe('prune');
    expect(await readFile(join(stepDir, HEATMAP_FILE), 'utf8')).toMatch(/^<svg/);
    // the importance scores are cached inside the run folder, not in the user's home
    expect((await readdir(join(result.outDir, 'cache', 'prune'))).length).toBeGreaterThan(0);
    const model = join(result.outDir, 'artifacts', 'pruned', 'model');
    expect(await exists(join(model, 'crf.json'))).toBe(true);
    const r = await cli('eval', '--model', model, '--data', data, '--json', '--report-dir', join(dir, 'eval'));
    expect(r.code, r.err).toBe(0);
    const micro = (JSON.parse(r.out) as { models: Array<{ f1: { micro: { tp: number; pred: number } } }> }).models[0].f1.micro;
    expect(micro.tp).toBe(result.summary.variants[1].f1.tp);
    expect(micro.pred).toBe(result.summary.variants[1].f1.pred);
  });
});
