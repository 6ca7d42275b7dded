/**
 * `kind: quantize` in a recipe: the step calls quantizeModelFolder; its output is a variant the run
 * scores, times and ships as an eval-able folder. The INT8 file stores one byte per quantized weight
 * (plus scales), so it is smaller than the float file; the recipe validator refuses a static step
 * without calibration data, naming the step's line.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { loadModel } from '../../src/onnx/external.js';
import { readReport } from '../../src/report/write.js';
import { loadRecipe, parseRecipe } from '../../src/run/recipe.js';
import { runRecipe, type RunResult } from '../../src/run/runner.js';
import { cli } from '../cli/helpers.js';
import { msraSlice, REPO, tempDir, TINY } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
let result: RunResult;
let data: string;
let recipeText: string;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('quantize'));
  data = await msraSlice(join(dir, 'slice.jsonl'), 40);
  recipeText = `name: quantize-test
threads: 1
inputs:
  model: ${join(TINY, 'bio-crf-op14')}
  calib: ${join(REPO, 'fixtures', 'data', 'msra_calib.jsonl')}
  data: ${data}
steps:
  int8:
    kind: quantize
    model: \${inputs.model}
    calib: \${inputs.calib}
    calib-size: 50
    per-channel: true
variants:
  original: { model: "\${inputs.model}" }
  int8: { model: "\${int8.model}" }
measure:
  eval: { data: "\${inputs.data}" }
  bench: { seq: [16], warmup: 0, iterations: 2, seconds: 0 }
`;
  await writeFile(join(dir, 'recipe.yaml'), recipeText);
  result = await runRecipe(await loadRecipe(join(dir, 'recipe.yaml')), { outDir: join(dir, 'out'), interactive: false, log: () => undefined });
}, 120_000);
afterAll(async () => cleanup());

describe('a quantize step', () => {
  it('writes an INT8 model: QuantizeLinear/DequantizeLinear in the graph, a smaller file', async () => {
    const [orig, int8] = result.summary.variants;
    expect(int8.steps).toEqual(['int8']);
    expect(int8.sizeBytes).toBeLessThan(orig.sizeBytes);
    const { model } = await loadModel(join(result.outDir, 'artifacts', 'int8', 'model', 'model.onnx'));
    const ops = new Set((model.graph?.node ?? []).map((n) => n.opType));
    expect(ops.has('DequantizeLinear')).toBe(true);
    expect(ops.has('QuantizeLinear')).toBe(true);
    const facts = result.steps.find((s) => s.spec.name === 'int8')!.manifest.outcome.facts!;
    expect(facts).toMatchObject({ mode: 'static', format: 'qdq', perChannel: true, bytesBefore: orig.sizeBytes, bytesAfter: int8.sizeBytes });
    expect((await readReport(join(result.outDir, 'steps', 'int8'))).command).toBe('quantize');
  });

  it('the artifact is a drop-in folder `ranerc eval` scores as the run did', async () => {
    const r = await cli('eval', '--model', join(result.outDir, 'artifacts', 'int8', 'model'), '--data', data, '--json', '--report-dir', join(dir, 'eval'));
    expect(r.code, r.err).toBe(0);
    const micro = (JSON.parse(r.out) as { models: Array<{ f1: { micro: { tp: number; pred: number; gold: number } } }> }).models[0].f1.micro;
    const v = result.summary.variants[1];
    expect([micro.tp, micro.pred, micro.gold]).toEqual([v.f1.tp, v.f1.pred, v.f1.gold]);
  });

  it('a static step without calib, or a guard without eval, is refused at its line', () => {
    const noCalib = recipeText.replace('    calib: ${inputs.calib}\n', '');
    try {
      parseRecipe(noCalib, '/r.yaml');
      throw new Error('accepted');
    } catch (e) {
      expect(e).toBeInstanceOf(InputError);
      expect((e as InputError).message).toBe('steps.int8.calib: is required for static quantization');
      expect((e as InputError).where.line).toBe(noCalib.split('\n').indexOf('  int8:') + 1);
    }
    expect(() => parseRecipe(recipeText.replace('per-channel: true', 'max-f1-drop: 1'), '/r.yaml')).toThrow('steps.int8.max-f1-drop: needs eval');
    expect(() => parseRecipe(recipeText.replace('calib-size: 50', 'dynamic: true\n    format: qdq'), '/r.yaml')).toThrow('steps.int8.format: dynamic quantization writes');
  });

  it('format auto: the step times the candidates, records what it chose, and its artifact is that model', async () => {
    const autoText = recipeText
      .replace('calib-size: 50', 'calib-size: 20\n    format: auto\n    bench-seq: [16]\n    bench-seconds: 0.2')
      .replace('name: quantize-test', 'name: quantize-auto-test');
    await writeFile(join(dir, 'auto.yaml'), autoText);
    const r = await runRecipe(await loadRecipe(join(dir, 'auto.yaml')), { outDir: join(dir, 'out-auto'), interactive: false, log: () => undefined });
    const facts = r.steps.find((s) => s.spec.name === 'int8')!.manifest.outcome.facts!;
    expect(['qdq', 'qoperator', 'dynamic', 'weights-only', 'float']).toContain(facts.autoChosen);
    const rep = await readReport(join(r.outDir, 'steps', 'int8'));
    const auto = (rep.details as { auto: { chosen: string; candidates: Array<{ name: string; points: Array<{ seqLen: number }> }> } }).auto;
    expect(auto.chosen).toBe(facts.autoChosen);
    expect(auto.candidates.map((c) => c.name).sort()).toEqual(['dynamic', 'qdq', 'qoperator', 'weights-only']);
    for (const c of auto.candidates) expect(c.points.map((p) => p.seqLen)).toEqual([16]);
    const { model } = await loadModel(join(r.outDir, 'artifacts', 'int8', 'model', 'model.onnx'));
    const ops = new Set((model.graph?.node ?? []).map((n) => n.opType));
    expect(ops.has('DequantizeLinear') || ops.has('MatMulInteger')).toBe(facts.autoChosen !== 'float');
  }, 120_000);
});
