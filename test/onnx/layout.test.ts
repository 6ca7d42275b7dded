/**
 * `--layout`: where the folder-writing commands put the ONNX file (transformers.js 4.x's
 * onnx/model.onnx / onnx/model_quantized.onnx, Optimum's model_quantized.onnx + ort_config.json),
 * and ranerc reads every layout back to the same predictions as the ranerc layout.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModelFolder } from '../../src/onnx/folder.js';
import { defaultLayout, onnxRelPath } from '../../src/onnx/layout.js';
import { cli, REPO } from '../cli/helpers.js';

const TMP = mkdtempSync(join(tmpdir(), 'ranerc-layout-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

const MODEL = `${REPO}fixtures/tiny/bio-crf-op14`;
const DATA = `${REPO}fixtures/data/msra_dev_sample.jsonl`;

async function quantize(layout: string): Promise<string> {
  const out = join(TMP, layout);
  const r = await cli('quantize', '--model', MODEL, '--dynamic', '--out', out, '--no-bench', '--json', '--layout', layout, '--report-dir', join(TMP, `rep-${layout}`));
  expect(r.code, r.err).toBe(0);
  return out;
}

async function predictions(model: string): Promise<string> {
  const r = await cli('eval', '--model', model, '--data', DATA, '--json', '--report-dir', join(TMP, `eval-${Math.random()}`));
  expect(r.code, r.err).toBe(0);
  return JSON.stringify((JSON.parse(r.out) as { models: Array<{ f1?: unknown }> }).models[0].f1);
}

describe('--layout', () => {
  it('transformers.js and optimum put an INT8 model where those loaders look; ranerc reads all three alike', async () => {
    const ranerc = await quantize('ranerc');
    const tjs = await quantize('transformers.js');
    const opt = await quantize('optimum');
    expect(defaultLayout()).toBe('ranerc'); // the flag does not leak past its command

    expect(existsSync(join(ranerc, 'model.onnx'))).toBe(true);
    expect(existsSync(join(tjs, 'onnx', 'model_quantized.onnx'))).toBe(true);
    expect(existsSync(join(tjs, 'model.onnx'))).toBe(false);
    for (const f of ['config.json', 'vocab.txt', 'tokenizer_config.json', 'crf.json', 'ranerc.json']) expect(existsSync(join(tjs, f)), f).toBe(true);
    expect(existsSync(join(opt, 'model_quantized.onnx'))).toBe(true);
    expect(existsSync(join(opt, 'model.onnx'))).toBe(false);

    // the same graph bytes in every layout
    const bytes = readFileSync(join(ranerc, 'model.onnx'));
    expect(readFileSync(join(tjs, 'onnx', 'model_quantized.onnx')).equals(bytes)).toBe(true);
    expect(readFileSync(join(opt, 'model_quantized.onnx')).equals(bytes)).toBe(true);

    // ort_config.json describes the dynamic MatMulInteger graph ranerc wrote
    const ort = JSON.parse(readFileSync(join(opt, 'ort_config.json'), 'utf8'));
    expect(ort.quantization).toMatchObject({ is_static: false, format: 'QOperator', mode: 'IntegerOps', weights_dtype: 'QInt8', operators_to_quantize: ['MatMul'] });
    expect(existsSync(join(ranerc, 'ort_config.json'))).toBe(false);

    const folder = await loadModelFolder({ model: tjs });
    expect(folder.onnxPath).toBe(join(tjs, 'onnx', 'model_quantized.onnx'));
    expect(folder.dir).toBe(tjs);
    expect(folder.crf).toBeDefined();
    const base = await predictions(ranerc);
    expect(await predictions(tjs)).toBe(base);
    expect(await predictions(opt)).toBe(base);
  });

  it('a float graph goes to onnx/model.onnx (transformers.js) and model.onnx (optimum), no ort_config.json', () => {
    expect(onnxRelPath('transformers.js', false)).toBe('onnx/model.onnx');
    expect(onnxRelPath('optimum', false)).toBe('model.onnx');
    expect(onnxRelPath('ranerc', true)).toBe('model.onnx');
  });

  it('an unknown layout is a usage error', async () => {
    const r = await cli('quantize', '--model', MODEL, '--dynamic', '--out', join(TMP, 'bad'), '--layout', 'keras');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--layout.*keras|keras.*--layout|Allowed choices/);
    expect(existsSync(join(TMP, 'bad'))).toBe(false);
  });

  it('ranerc run --layout: the step output and the shipped artifact use the layout; the step cache keys it', async () => {
    const recipe = join(TMP, 'recipe.yaml');
    const slice = join(TMP, 'slice.jsonl');
    writeFileSync(slice, `${readFileSync(DATA, 'utf8').split('\n').slice(0, 20).join('\n')}\n`);
    writeFileSync(
      recipe,
      `name: layout-test
threads: 1
inputs:
  model: ${MODEL}
  data: ${slice}
steps:
  int8: { kind: quantize, model: "\${inputs.model}", dynamic: true }
variants:
  int8: { model: "\${int8.model}" }
measure:
  eval: { data: "\${inputs.data}" }
  bench: { seq: [8], warmup: 0, iterations: 1, seconds: 0 }
`,
    );
    const out = join(TMP, 'run');
    const a = await cli('run', recipe, '--out', out, '--json');
    expect(a.code, a.err).toBe(0);
    expect(existsSync(join(out, 'artifacts', 'int8', 'model', 'model.onnx'))).toBe(true);
    const b = await cli('run', recipe, '--out', out, '--json', '--layout', 'transformers.js');
    expect(b.code, b.err).toBe(0);
    expect(existsSync(join(out, 'artifacts', 'int8', 'model', 'onnx', 'model_quantized.onnx'))).toBe(true);
    expect(existsSync(join(out, 'artifacts', 'int8', 'model', 'model.onnx'))).toBe(false);
    expect(readdirSync(join(out, 'artifacts', 'int8', 'model'))).toContain('config.json');
  }, 120_000);
});
