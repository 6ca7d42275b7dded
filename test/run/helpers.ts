/**
 * Helpers for the run tests: temp folders, tiny data slices, test-only recipes, and a test-only step
 * kind `resave` (decode a model folder and write it again with writeModelFolder — a real model-producing
 * step, so cache and reference behaviour can be tested before the compression libraries land).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../../src/onnx/external.js';
import { loadModelFolder, writeModelFolder } from '../../src/onnx/folder.js';
import { registerStep, stepKind } from '../../src/run/steps/index.js';
import { setting } from '../../src/run/steps/types.js';

export const REPO = new URL('../../', import.meta.url).pathname;
export const TINY = join(REPO, 'fixtures', 'tiny');
export const MSRA_TEST = join(REPO, 'fixtures', 'data', 'msra_test_sample.jsonl');

export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `ranerc-run-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** The first `n` lines of the MSRA test sample, written to `path`. */
export async function msraSlice(path: string, n: number): Promise<string> {
  const lines = (await readFile(MSRA_TEST, 'utf8')).split('\n').filter((l) => l.trim() !== '');
  await writeFile(path, `${lines.slice(0, n).join('\n')}\n`);
  return path;
}

/** How many times each `resave` step ran in this process (by step name). */
export const resaveRuns = new Map<string, number>();

/** Register the test-only `resave` kind once per process. */
export function registerResave(): void {
  if (stepKind('resave')) return;
  registerStep({
    kind: 'resave',
    summary: 'test only: decode a model folder and write it again',
    version: 1,
    outputs: ['model'],
    fields: {
      model: { type: 'model', required: true, doc: 'the folder to re-save' },
      'external-data': { type: 'enum', values: ['never', 'always'], default: 'never', doc: 'where the weights go' },
      note: { type: 'string', default: '', doc: 'a setting that changes the key but not the output' },
    },
    async run(ctx, s) {
      resaveRuns.set(ctx.name, (resaveRuns.get(ctx.name) ?? 0) + 1);
      const folder = await loadModelFolder({ model: setting.str(s, 'model') });
      const loaded = await loadModel(folder.onnxPath);
      await writeModelFolder(join(ctx.dir, 'model'), folder, loaded.model, {
        provenance: { ranerc: 'test', command: 'resave', createdAt: new Date().toISOString(), settings: { note: setting.str(s, 'note') } },
        externalData: setting.str(s, 'external-data') as 'never' | 'always',
      });
      return { outputs: { model: 'model' }, facts: { note: setting.str(s, 'note') } };
    },
  });
}

/** A recipe with the tiny BIO+CRF model as baseline and a re-saved copy of it. */
export function resaveRecipe(data: string, extra = ''): string {
  return `name: resave-test
seed: 3
threads: 1
inputs:
  crf: ${join(TINY, 'bio-crf-op14')}
  bmes: ${join(TINY, 'bmes-op12-nobias')}
  test: ${data}
steps:
  copy:
    kind: resave
    model: \${inputs.crf}
variants:
  original:
    model: \${inputs.crf}
  copy:
    model: \${copy.model}
  bmes:
    model: \${inputs.bmes}
measure:
  eval:
    data: \${inputs.test}
  bench:
    seq: [16]
    batch: [1]
    warmup: 0
    iterations: 2
    seconds: 0
${extra}`;
}
