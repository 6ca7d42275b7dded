/**
 * The distillation pipeline on the tiny BIO+CRF teacher (fixtures/tiny/bio-crf-op14) and a few hundred
 * MSRA sentences: teacher-logit cache, seeded reproducibility, the exported folder (layout, graph, CRF),
 * onnxruntime vs tfjs predictions, `ranerc eval` on the student, the CLI and its report.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/autodiff/backend.js';
import { makeBatch, chunkText, type TransferItem } from '../../src/distill/batches.js';
import { distillStudent, type DistillResult } from '../../src/distill/index.js';
import { findTokenEmbeddings } from '../../src/distill/init.js';
import { createStudent, STUDENT_DEFAULTS, type StudentKind, type StudentSpec } from '../../src/distill/students.js';
import { teacherLogits } from '../../src/distill/teacher.js';
import { trainStudent } from '../../src/distill/train.js';
import { tokenTagIds } from '../../src/ner/align.js';
import { readExamples } from '../../src/ner/data.js';
import { tagsToEntities } from '../../src/ner/decode.js';
import { LabelSet } from '../../src/ner/labels.js';
import { viterbiDecode, argmaxDecode } from '../../src/ner/viterbi.js';
import { decodeModel, encodeModel } from '../../src/onnx/codec.js';
import { loadModelFolder } from '../../src/onnx/folder.js';
import type { ModelFolder } from '../../src/onnx/types.js';
import { mulberry32 } from '../../src/runtime/bench.js';
import { Predictor } from '../../src/runtime/predict.js';
import { cli } from '../cli/helpers.js';

const REPO = new URL('../../', import.meta.url).pathname;
const TEACHER = join(REPO, 'fixtures/tiny/bio-crf-op14');
let tmp: string;
let trainFile: string;
let devFile: string;
let teacher: ModelFolder;
let result: DistillResult;

async function head(src: string, n: number, dst: string, skip = 0): Promise<void> {
  const lines = (await readFile(src, 'utf8')).split('\n').filter((l) => l.trim() !== '');
  await writeFile(dst, lines.slice(skip, skip + n).join('\n') + '\n');
}

beforeAll(async () => {
  await initBackend('wasm');
  tmp = await mkdtemp(join(tmpdir(), 'ranerc-distill-test-'));
  trainFile = join(tmp, 'train.jsonl');
  devFile = join(tmp, 'dev.jsonl');
  await head(join(REPO, 'fixtures/data/msra_train_sample.jsonl'), 240, trainFile);
  await head(join(REPO, 'fixtures/data/msra_dev_sample.jsonl'), 60, devFile);
  teacher = await loadModelFolder({ model: TEACHER });
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
  await rm(tmp, { recursive: true, force: true });
});

describe('distillStudent on the tiny teacher', () => {
  it('writes a model folder eval can read: config, vocab, tokenizer files, crf.json', async () => {
    const f = await loadModelFolder({ model: result.outDir });
    expect(f.labels).toEqual(teacher.labels);
    expect(f.config.model_type).toBe('ranerc-bilstm-crf');
    expect(f.maxLength).toBe(teacher.maxLength);
    expect(f.crf?.labels).toEqual(teacher.labels);
    expect(readFileSync(f.vocabPath, 'utf8')).toBe(readFileSync(teacher.vocabPath, 'utf8'));
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

describe('teacher logits', () => {
  it('come from the cache on a second run, equal to what the first run trained on', async () => {
    const texts = (await readExamples(trainFile)).examples.map((e) => e.text).slice(0, 50);
    const dir = join(tmp, 'cache2');
    const a = await teacherLogits(teacher, texts, { cacheDir: dir, chunkTexts: 16 });
    expect(a.fromCache).toBe(0);
    expect(a.count).toBe(50);
    const b = await teacherLogits(teacher, texts, { cacheDir: dir });
    expect(b.fromCache).toBe(50);
    expect(b.computeMs).toBe(0);
    for (let i = 0; i < 50; i++) expect(Array.from(b.emissions[i].logits)).toEqual(Array.from(a.emissions[i].logits));
    const tokens = a.emissions.reduce((n, e) => n + e.tokens.length, 0);
    expect(a.cacheBytes! - tokens * 7 * 2 - 50 * 4).toBeLessThan(400); // float16 payload dominates
    // float32 storage: exactly the logits onnxruntime gave
    const c = await teacherLogits(teacher, texts, { cacheDir: join(tmp, 'cache3'), cacheDtype: 'float32' });
    const p = await Predictor.open(teacher);
    const direct = await p.emissions(texts);
    await p.close();
    for (let i = 0; i < 50; i++) expect(Array.from(c.emissions[i].logits)).toEqual(Array.from(direct[i].logits));
    expect(c.cacheBytes! - tokens * 7 * 4 - 50 * 4).toBeLessThan(400);
  });

  it('a deadline stops at a prefix; the next run continues from the cache', async () => {
    const texts = (await readExamples(trainFile)).examples.map((e) => e.text).slice(0, 64);
    const dir = join(tmp, 'cache4');
    const a = await teacherLogits(teacher, texts, { cacheDir: dir, chunkTexts: 16, deadline: performance.now() - 1 });
    expect(a.count).toBe(0);
    let calls = 0;
    const b = await teacherLogits(teacher, texts, {
      cacheDir: dir,
      chunkTexts: 16,
      onProgress: () => {
        calls++;
      },
      deadline: performance.now() + 60_000,
    });
    expect(b.count).toBe(64);
    expect(calls).toBeGreaterThan(1);
  });
});

/** Items and a tiny student for direct training tests. */
async function setup(kind: StudentKind): Promise<{ items: TransferItem[]; spec: StudentSpec; labels: LabelSet }> {
  const labels = new LabelSet(teacher.labels);
  const data = (await readExamples(trainFile, { types: labels.types })).examples.slice(0, 40);
  const tl = await teacherLogits(teacher, data.map((e) => e.text), { cacheDir: null });
  const items = data.flatMap((ex, i) =>
    chunkText(i, tl.emissions[i].tokens.map((t) => t.id), 62, 7, labels, tl.emissions[i].logits, tokenTagIds(ex, tl.emissions[i].tokens, labels)),
  );
  const spec: StudentSpec = { kind, vocabSize: 400, numLabels: 7, ...STUDENT_DEFAULTS[kind], embeddingDim: 12, hidden: kind === 'transformer' ? 16 : 10, ffn: 24, heads: 2, layers: kind === 'transformer' ? 1 : 2, maxPositions: 64 };
  return { items, spec, labels };
}

const SPECIAL = { cls: 2, sep: 3, pad: 0 };

describe('training', () => {
  it('is reproducible: the same seed gives bit-identical weights, another seed does not', async () => {
    const { items, spec } = await setup('bilstm-crf');
    const run = async (seed: number) => {
      const st = createStudent(spec, mulberry32(seed));
      await trainStudent(st, items, SPECIAL, {
        loss: { alpha: 0.7, temperature: 4, kd: 'kl', hard: 'crf' },
        temperatureSchedule: 'linear',
        epochs: 1,
        maxSteps: 4,
        lr: 1e-2,
        weightDecay: 0.01,
        clipNorm: 1,
        batchTokens: 400,
        batchRows: 8,
        seed,
      });
      const w = st.params.map((p) => Array.from(p.variable.dataSync()));
      st.dispose();
      return w;
    };
    const a = await run(5);
    const b = await run(5);
    const c = await run(6);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
  });

  for (const kind of ['bilstm-crf', 'bilstm', 'transformer'] as const) {
    it(`${kind}: onnxruntime on the exported model gives the tfjs logits (1e-4) and the same entities`, async () => {
      const { items, spec, labels } = await setup(kind);
      const st = createStudent(spec, mulberry32(1), { crf: spec.crf ? teacher.crf : undefined });
      const training = await trainStudent(st, items, SPECIAL, {
        loss: { alpha: 0.7, temperature: 4, kd: 'kl', hard: spec.crf ? 'crf' : 'ce' },
        temperatureSchedule: 'constant',
        epochs: 1,
        maxSteps: 3,
        lr: 1e-2,
        weightDecay: 0.01,
        clipNorm: 5,
        batchTokens: 600,
        batchRows: 16,
        seed: 1,
      });
      expect(training.steps).toBe(3);
      const dev = (await readExamples(devFile, { types: labels.types })).examples.filter((e) => e.text.length < 50).slice(0, 20);
      const p0 = await Predictor.open(teacher);
      const toks = dev.map((e) => p0.tokenizer.tokenize(e.text));
      await p0.close();
      // tfjs: one padded batch, Viterbi (or argmax) over positions 1..n, eval's span rules
      const { input } = makeBatch(toks.map((t, i) => ({ ids: Int32Array.from(t, (x) => x.id), text: i })), SPECIAL, 7);
      const logits = st.forward(input);
      const lg = logits.dataSync();
      logits.dispose();
      const crf = st.crfParams(teacher.labels);
      const dir = await mkdtemp(join(tmp, `ort-${kind}-`));
      await writeFile(join(dir, 'model.onnx'), encodeModel(st.toOnnx()));
      const folder: ModelFolder = { ...teacher, dir, onnxPath: join(dir, 'model.onnx'), extraFiles: [], crf };
      if (!crf) delete folder.crf;
      const p = await Predictor.open(folder);
      const ems = await p.emissions(dev.map((e) => e.text));
      const ents = await p.predict(dev.map((e) => e.text));
      await p.close();
      let maxDiff = 0;
      toks.forEach((t, i) => {
        const rows: Float32Array[] = [];
        for (let k = 0; k < t.length; k++) {
          const row = lg.slice((i * input.seq + 1 + k) * 7, (i * input.seq + 2 + k) * 7) as Float32Array;
          rows.push(row);
          for (let j = 0; j < 7; j++) maxDiff = Math.max(maxDiff, Math.abs(row[j] - ems[i].logits[k * 7 + j]));
        }
        const tags = crf ? viterbiDecode(rows, crf) : argmaxDecode(rows);
        expect(tagsToEntities(dev[i].text, t, tags, labels)).toEqual(ents[i]);
      });
      expect(maxDiff).toBeLessThan(1e-4);
      st.dispose();
    });
  }
});

describe('initialisation from the teacher', () => {
  it('finds the token-embedding table the input ids index', async () => {
    const model = decodeModel(await readFile(teacher.onnxPath));
    const e = findTokenEmbeddings(model, 400);
    expect(e).toMatchObject({ name: 'bert.embeddings.word_embeddings.weight', rows: 400, dim: 32 });
    expect(findTokenEmbeddings(model, 401)).toBeUndefined();
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
