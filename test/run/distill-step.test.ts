/**
 * `kind: distill` in a recipe: the step calls distillStudent; the student is a variant the run scores,
 * times and ships as an eval-able folder, and the same seed gives the same student.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

const recipe = (train: string, dev: string) => `name: distill-test
seed: 5
threads: 1
inputs:
  teacher: ${join(TINY, 'bio-crf-op14')}
  train: ${train}
  dev: ${dev}
steps:
  student:
    kind: distill
    teacher: \${inputs.teacher}
    train: \${inputs.train}
    dev: \${inputs.dev}
    embedding-dim: 16
    hidden: 16
    max-steps: 6
    bench-seconds: 0
variants:
  teacher: { model: "\${inputs.teacher}" }
  student: { model: "\${student.model}" }
measure:
  eval: { data: "\${inputs.dev}" }
  bench: { seq: [16], warmup: 0, iterations: 2, seconds: 0, rounds: 1 }
`;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('distill'));
  const train = await msraSlice(join(dir, 'train.jsonl'), 60);
  data = await msraSlice(join(dir, 'dev.jsonl'), 20);
  await writeFile(join(dir, 'recipe.yaml'), recipe(train, data));
  result = await runRecipe(await loadRecipe(join(dir, 'recipe.yaml')), { outDir: join(dir, 'out'), interactive: false, log: () => undefined });
}, 300_000);
afterAll(async () => cleanup());

describe('a distill step', () => {
  it('makes a student variant that `ranerc eval` scores as the run did', async () => {
    const student = result.summary.variants[1];
    expect(student.steps).toEqual(['student']);
    expect((await readReport(join(result.outDir, 'steps', 'student'))).command).toBe('distill');
    expect(await exists(join(result.outDir, 'steps', 'student', 'curves.svg'))).toBe(true);
    const r = await cli('eval', '--model', join(result.outDir, 'artifacts', 'student', 'model'), '--data', data, '--json', '--report-dir', join(dir, 'eval'));
    expect(r.code, r.err).toBe(0);
    const micro = (JSON.parse(r.out) as { models: Array<{ f1: { micro: { tp: number; pred: number; gold: number } } }> }).models[0].f1.micro;
    expect([micro.tp, micro.pred, micro.gold]).toEqual([student.f1.tp, student.f1.pred, student.f1.gold]);
    const config = JSON.parse(await readFile(join(result.outDir, 'artifacts', 'student', 'model', 'config.json'), 'utf8')) as { id2label: Record<string, string> };
    expect(Object.values(config.id2label)).toEqual(['O', 'B-PER', 'I-PER', 'B-LOC', 'I-LOC', 'B-ORG', 'I-ORG']);
  });

  it('the recipe seed makes the student reproducible: a fresh run writes the same model file', async () => {
    const again = await runRecipe(await loadRecipe(join(dir, 'recipe.yaml')), { outDir: join(dir, 'out2'), noCache: true, interactive: false, log: () => undefined });
    expect(again.summary.variants[1].onnxSha256).toBe(result.summary.variants[1].onnxSha256);
    expect(again.summary.variants[1].f1).toEqual(result.summary.variants[1].f1);
  });
});
