/**
 * distillStudent end to end on the tiny BIO+CRF teacher (fixtures/tiny/bio-crf-op14) and a few hundred
 * MSRA sentences: the exported folder (layout, graph, CRF), the report, `ranerc eval` and
 * `ranerc quantize` on the student, the CLI.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { distillStudent, type DistillResult } from '../../src/distill/index.js';
import { decodeModel } from '../../src/onnx/codec.js';
import { loadModelFolder } from '../../src/onnx/folder.js';
import type { ModelFolder } from '../../src/onnx/types.js';
import { cli } from '../cli/helpers.js';
import { TEACHER, workspace, type Workspace } from './helpers.js';

let ws: Workspace;
let tmp: string;
let trainFile: string;
let devFile: string;
let teacher: ModelFolder;
let result: DistillResult;

beforeAll(async () => {
  ws = await workspace();
  ({ tmp, trainFile, devFile, teacher } = ws);
  result = await distillStudent({
    teacher: TEACHER,
    train: trainFile,
    dev: devFile,
    out: join(tmp, 'student'),
    maxSteps: 8,
    evalsPerEpoch: 1,
    embeddingDim: 16,
    hidden: 16,
    cacheDir: join(tmp, 'cache'),
    benchSeconds: 0.2,
    compareHard: true,
    seed: 3,
  });
}, 120_000);

afterAll(async () => {
  await ws.cleanup();
});

describe('distillStudent on the tiny teacher', () => {
  it('writes a model folder eval can read: config, vocab, tokenizer files, crf.json', async () => {
    const f = await loadModelFolder({ model: result.outDir });
    expect(f.labels).toEqual(teacher.labels);
    expect(f.config.model_type).toBe('ranerc-bilstm-crf');
    expect(f.maxLength).toBe(teacher.maxLength);
    expect(f.crf?.labels).toEqual(teacher.labels);
    expect(readFileSync(f.vocabPath as string, 'utf8')).toBe(readFileSync(teacher.vocabPath as string, 'utf8'));
    expect(existsSync(join(result.outDir, 'tokenizer_config.json'))).toBe(true);
    expect(existsSync(join(result.outDir, 'special_tokens_map.json'))).toBe(true);
    expect(existsSync(join(result.outDir, 'reference.json'))).toBe(false); // teacher test files are not copied
    expect(f.provenance?.command).toBe('distill');
  });

  it('exports opset 14: Gather embeddings, one bidirectional LSTM with sequence_lens from the mask, MatMul + Add', async () => {
    const model = decodeModel(await readFile(join(result.outDir, 'model.onnx')));
    expect(Number(model.opsetImport?.find((o) => !o.domain)?.version)).toBe(14);
    const ops = (model.graph?.node ?? []).map((n) => n.opType);
    expect(ops).toEqual(['Gather', 'Transpose', 'ReduceSum', 'Cast', 'LSTM', 'Transpose', 'Reshape', 'Transpose', 'MatMul', 'Add']);
    const lstm = model.graph!.node!.find((n) => n.opType === 'LSTM')!;
    expect(lstm.input?.[4]).toBe('sequence_lens');
    expect(new TextDecoder().decode(lstm.attribute?.find((a) => a.name === 'direction')?.s ?? new Uint8Array())).toBe('bidirectional');
    const io = (v: { name?: string | null; type?: { tensorType?: { elemType?: number | null; shape?: { dim?: Array<{ dimParam?: string | null; dimValue?: unknown }> | null } | null } | null } | null }) => ({
      name: v.name,
      type: v.type?.tensorType?.elemType,
      dims: v.type?.tensorType?.shape?.dim?.map((d) => d.dimParam || Number(d.dimValue)),
    });
    expect(model.graph!.input!.map(io)).toEqual([
      { name: 'input_ids', type: 7, dims: ['batch', 'sequence'] },
      { name: 'attention_mask', type: 7, dims: ['batch', 'sequence'] },
    ]);
    expect(model.graph!.output!.map(io)).toEqual([{ name: 'logits', type: 1, dims: ['batch', 'sequence', 7] }]);
  });

  it('reports teacher vs student (F1 per type, latency, size, parameters), the hard-only run and the curves', () => {
    const r = result.report;
    expect(r.command).toBe('distill');
    const [t, s] = r.models;
    expect([t.role, s.role]).toEqual(['teacher', 'student']);
    // ONNX initializers: the tfjs parameters minus the CRF (7×7 + 7 + 7, in crf.json) plus the ONNX LSTM's
    // recurrent bias half Rb (2 directions × 4H, exported as zeros)
    expect(s.parameters).toBe(result.report.details.student.parameters - 7 * 7 - 14 + 2 * 4 * 16);
    expect(t.parameters).toBe(32_295);
    expect(s.latency?.[0]).toMatchObject({ seqLen: 64, batch: 1 });
    expect(s.f1?.micro.gold).toBe(t.f1?.micro.gold);
    const d = r.details;
    expect(d.comparison.speedup).toBeCloseTo(t.latency![0].p50Ms / s.latency![0].p50Ms, 10);
    expect(d.comparison.sizeRatio).toBeCloseTo(s.folderBytes! / t.folderBytes!, 10);
    expect(d.hardOnly?.alpha).toBe(0);
    expect(d.comparison.distillMinusHard).toBeCloseTo((s.f1!.micro.f1 - d.hardOnly!.f1.micro.f1) * 100, 10);
    expect(d.training.steps).toBe(8);
    expect(d.training.dev.length).toBeGreaterThan(0);
    expect(d.init.embeddings).toMatch(/word_embeddings/);
    expect(d.init.crf).toBe('teacher');
    expect(result.curvesSvg).toMatch(/^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect((result.curvesSvg.match(/<polyline/g) ?? []).length).toBeGreaterThanOrEqual(2);
  });

  it('ranerc eval on the student gives the F1 the report recorded', async () => {
    const r = await cli('eval', '--model', result.outDir, '--data', devFile, '--json', '--report-dir', join(tmp, 'eval-report'));
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.out) as { models: Array<{ f1: { micro: { f1: number; tp: number } } }> };
    expect(rep.models[0].f1.micro.tp).toBe(result.report.models[1].f1!.micro.tp);
  });
});

describe('ranerc quantize accepts the student', () => {
  it('static INT8 quantization of the student folder: Gather and MatMul quantized, the model runs with F1 close to the float one', async () => {
    const { quantizeModelFolder } = await import('../../src/quantize/index.js');
    const q = await quantizeModelFolder({ model: result.outDir, out: join(tmp, 'student-int8'), calib: devFile, eval: devFile, bench: false });
    expect(q.after.bytes).toBeLessThan(q.before.bytes);
    const model = decodeModel(await readFile(q.onnxPath));
    const ops = new Set((model.graph?.node ?? []).map((n) => n.opType));
    expect(ops.has('DequantizeLinear')).toBe(true);
    expect(ops.has('LSTM')).toBe(true);
    expect(Math.abs((q.after.f1 ?? 0) - (q.before.f1 ?? 0))).toBeLessThan(0.05);
    const f = await loadModelFolder({ model: q.outDir });
    expect(f.crf?.labels).toEqual(teacher.labels);
  });
});

describe('ranerc distill (CLI)', () => {
  it('writes the student, report.json, report.md and curves.svg, and prints the comparison', async () => {
    const out = join(tmp, 'cli-student');
    const rep = join(tmp, 'cli-report');
    const r = await cli(
      'distill', '--teacher', TEACHER, '--train', trainFile, '--dev', devFile, '--out', out, '--max-steps', '3',
      '--hidden', '8', '--embedding-dim', '8', '--cache-dir', join(tmp, 'cache'), '--bench-seconds', '0.1', '--report-dir', rep,
    );
    expect(r.err).toContain(`report: ${rep}`);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/teacher\s+\d+\.\d\d/);
    expect(r.out).toContain('student folder ≤ 15 %');
    for (const f of ['report.json', 'report.md', 'curves.svg']) expect(existsSync(join(rep, f))).toBe(true);
    const md = readFileSync(join(rep, 'report.md'), 'utf8');
    expect(md).toContain('![loss and dev-F1 curves](curves.svg)');
    expect(md).toContain('## Distillation');
    expect(existsSync(join(out, 'model.onnx'))).toBe(true);
  });

  it('--unlabeled adds text lines to the transfer set', async () => {
    const raw = join(tmp, 'raw.txt');
    await writeFile(raw, '新华社北京电\n\n中国人民银行今天宣布降息。\n');
    const rep = join(tmp, 'cli-report-unl');
    const r = await cli(
      'distill', '--teacher', TEACHER, '--train', trainFile, '--dev', devFile, '--unlabeled', raw, '--out', join(tmp, 'cli-unl'),
      '--max-steps', '2', '--hidden', '8', '--embedding-dim', '8', '--no-cache', '--bench-seconds', '0.1', '--report-dir', rep, '--json',
    );
    expect(r.code).toBe(0);
    const d = (JSON.parse(r.out) as { details: { transfer: { unlabelledTexts: number; labelledTexts: number; usedTexts: number } } }).details.transfer;
    expect(d).toMatchObject({ unlabelledTexts: 2, labelledTexts: 240, usedTexts: 242 });
  });

  it('--augment adds substituted and mixed sentences and reports how many of each kind', async () => {
    const r = await cli(
      'distill', '--teacher', TEACHER, '--train', trainFile, '--dev', devFile, '--augment', '0.5', '--out', join(tmp, 'cli-aug'),
      '--max-steps', '2', '--hidden', '8', '--embedding-dim', '8', '--no-cache', '--bench-seconds', '0.1', '--report-dir', join(tmp, 'cli-report-aug'), '--json',
    );
    expect(r.code).toBe(0);
    type T = { labelledTexts: number; usedTexts: number; augmented: { substitution: number; mixing: number }; usedByKind: { labelled: number; unlabelled: number; augmented: number } };
    const d = (JSON.parse(r.out) as { details: { transfer: T } }).details.transfer;
    expect(d.augmented.substitution + d.augmented.mixing).toBe(120);
    expect(d.augmented.substitution).toBeGreaterThan(0);
    expect(d.augmented.mixing).toBeGreaterThan(0);
    expect(d.usedByKind).toEqual({ labelled: 240, unlabelled: 0, augmented: 120 });
    expect(d.usedTexts).toBe(360);
  });

  it('bad flags and files exit 2 with a hint, writing nothing', async () => {
    const out = join(tmp, 'never');
    const bad = await cli('distill', '--teacher', TEACHER, '--train', trainFile, '--dev', devFile, '--out', out, '--alpha', '1.5');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--alpha must be a number in \[0, 1\]/);
    const missing = await cli('distill', '--teacher', join(tmp, 'nope'), '--train', trainFile, '--dev', devFile, '--out', out);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/nope/);
    const broken = join(tmp, 'broken.jsonl');
    await writeFile(broken, '{"text": "a", "entities": []}\nnot json\n');
    const bl = await cli('distill', '--teacher', TEACHER, '--train', broken, '--dev', devFile, '--out', out);
    expect(bl.code).toBe(2);
    expect(bl.err).toContain('broken.jsonl:2');
    expect(existsSync(out)).toBe(false);
  });
});
