/**
 * `kind: finetune` after `kind: prune` in a recipe (recovery): the chain prune → finetune, the recovered
 * model keeps the pruned graph (same parameter count) and its dev F1 — which the library picks the best
 * checkpoint by — is what the run's own eval measures on the same data.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CURVE_FILE } from '../../src/autodiff/train/finetune.js';
import { readReport } from '../../src/report/write.js';
import { loadRecipe } from '../../src/run/recipe.js';
import { runRecipe, type RunResult } from '../../src/run/runner.js';
import { msraSlice, tempDir, TINY } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
let result: RunResult;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('finetune'));
  const train = await msraSlice(join(dir, 'train.jsonl'), 48);
  const dev = await msraSlice(join(dir, 'dev.jsonl'), 24);
  await writeFile(
    join(dir, 'recipe.yaml'),
    `name: finetune-test
seed: 9
threads: 1
inputs:
  model: ${join(TINY, 'bio-crf-op14')}
  train: ${train}
  dev: ${dev}
steps:
  pruned:
    kind: prune
    model: \${inputs.model}
    data: \${inputs.train}
    ratio: 0.25
  recovered:
    kind: finetune
    model: \${pruned.model}
    train: \${inputs.train}
    dev: \${inputs.dev}
    epochs: 1
    batch: 16
    lr: 0.001
variants:
  original: { model: "\${inputs.model}" }
  pruned: { model: "\${pruned.model}" }
  recovered: { model: "\${recovered.model}" }
measure:
  eval: { data: "\${inputs.dev}" }
  bench: { seq: [16], warmup: 0, iterations: 2, seconds: 0, rounds: 1 }
`,
  );
  result = await runRecipe(await loadRecipe(join(dir, 'recipe.yaml')), { outDir: join(dir, 'out'), interactive: false, log: () => undefined });
}, 300_000);
afterAll(async () => cleanup());

describe('a finetune step after a prune step', () => {
  it('keeps the pruned graph and reports the dev F1 the run measures', async () => {
    const [, pruned, recovered] = result.summary.variants;
    expect(recovered.steps).toEqual(['pruned', 'recovered']);
    expect(recovered.parameters).toBe(pruned.parameters);
    const facts = result.steps.find((s) => s.spec.name === 'recovered')!.manifest.outcome.facts!;
    expect(facts.loss).toBe('crf'); // the folder has crf.json
    expect(Number(facts.devF1Before)).toBeCloseTo(pruned.f1.f1, 12);
    expect(Number(facts.devF1After)).toBeCloseTo(recovered.f1.f1, 12);
    expect(Number(facts.devF1After)).toBeGreaterThanOrEqual(Number(facts.devF1Before)); // step 0 is a candidate
    expect((await readReport(join(result.outDir, 'steps', 'recovered'))).command).toBe('finetune');
    expect(await readFile(join(result.outDir, 'steps', 'recovered', CURVE_FILE), 'utf8')).toMatch(/<svg/);
  });
});
