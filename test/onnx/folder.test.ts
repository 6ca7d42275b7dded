import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GraphError, InputError } from '../../src/errors.js';
import { decodeModel, onnx } from '../../src/onnx/codec.js';
import { saveModel } from '../../src/onnx/external.js';
import { folderSize, loadModelFolder, writeModelFolder } from '../../src/onnx/folder.js';
import type { ModelFolder, Provenance } from '../../src/onnx/types.js';
import { fixture, graphOf, maxAbsDiff, reference, runBert } from './helpers.js';

const SRC = fixture('tiny_bert');
const tmp = mkdtempSync(join(tmpdir(), 'ranerc-folder-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
/** A fresh copy of the tiny_bert folder. */
const copy = (): string => {
  const d = join(tmp, `m${n++}`);
  cpSync(SRC, d, { recursive: true });
  return d;
};
const readJson = (p: string): Record<string, unknown> => JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;
const writeJson = (p: string, v: unknown): void => writeFileSync(p, JSON.stringify(v, null, 2));
const LABELS = ['O', 'B-PER', 'I-PER', 'B-LOC', 'I-LOC'];

async function inputError(p: Promise<unknown>, file: string, message?: RegExp, line?: number): Promise<InputError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e, 'expected an InputError').toBeInstanceOf(InputError);
  const ie = e as InputError;
  expect(ie.where.file).toBe(file);
  expect(ie.hint).toBeTruthy();
  if (message) expect(ie.message).toMatch(message);
  if (line !== undefined) expect(ie.where.line).toBe(line);
  return ie;
}

const provenance = (command: string): Provenance => ({ ranerc: '0.1.0', command, createdAt: '2026-01-01T00:00:00.000Z', settings: { ratio: 0.5 } });

describe('loadModelFolder: layouts', () => {
  it('reads an HF folder', async () => {
    const f = await loadModelFolder({ model: SRC });
    const crf = readJson(join(SRC, 'crf.json'));
    expect(f).toMatchObject({ dir: SRC, onnxPath: join(SRC, 'model.onnx'), bare: false, labels: LABELS, vocabPath: join(SRC, 'vocab.txt'), maxLength: 64 });
    expect(f.config.hidden_size).toBe(16);
    expect(f.config.id2label).toEqual(readJson(join(SRC, 'config.json')).id2label);
    expect(f.tokenizerConfig.do_lower_case).toBe(true);
    expect(f.crf).toEqual({ labels: LABELS, transitions: crf.transitions, start: crf.start_transitions, end: crf.end_transitions });
    expect(f.extraFiles).toEqual(['config.json', 'crf.json', 'special_tokens_map.json', 'tokenizer_config.json', 'vocab.txt']);
    expect(f.provenance).toBeUndefined();
    expect(f.labelsPath).toBe(join(SRC, 'config.json'));
  });

  it('reads the Optimum / hub layout DIR/onnx/model.onnx, by folder or by file', async () => {
    const d = copy();
    mkdirSync(join(d, 'onnx'));
    renameSync(join(d, 'model.onnx'), join(d, 'onnx', 'model.onnx'));
    for (const model of [d, join(d, 'onnx', 'model.onnx')]) {
      const f = await loadModelFolder({ model });
      expect(f.dir).toBe(d);
      expect(f.onnxPath).toBe(join(d, 'onnx', 'model.onnx'));
      expect(f.labels).toEqual(LABELS);
      expect(f.extraFiles).toContain('vocab.txt');
    }
  });

  it('reads a bare .onnx with --labels (text or JSON) and --vocab', async () => {
    const d = join(tmp, `bare${n++}`);
    mkdirSync(d);
    cpSync(join(SRC, 'model.onnx'), join(d, 'ner.onnx'));
    const other = join(tmp, `other${n++}`);
    mkdirSync(other);
    cpSync(join(SRC, 'vocab.txt'), join(other, 'my-vocab.txt'));
    writeFileSync(join(other, 'labels.txt'), `${LABELS.join('\n')}\n\n`);
    writeJson(join(other, 'labels.json'), { id2label: Object.fromEntries(LABELS.map((l, i) => [String(i), l])) });
    writeJson(join(other, 'list.json'), LABELS);
    for (const labels of ['labels.txt', 'labels.json', 'list.json']) {
      const f = await loadModelFolder({ model: join(d, 'ner.onnx'), labels: join(other, labels), vocab: join(other, 'my-vocab.txt') });
      expect(f).toMatchObject({ bare: true, dir: d, onnxPath: join(d, 'ner.onnx'), labels: LABELS, vocabPath: join(other, 'my-vocab.txt'), maxLength: 512 });
      expect(f.config.label2id).toEqual(Object.fromEntries(LABELS.map((l, i) => [l, i])));
      expect(f.tokenizerConfig).toMatchObject({ do_lower_case: true, tokenize_chinese_chars: true, unk_token: '[UNK]' });
      expect(f.extraFiles).toEqual([]);
    }
    await inputError(loadModelFolder({ model: join(d, 'ner.onnx'), vocab: join(other, 'my-vocab.txt') }), join(d, 'config.json'), /no labels/);
    await inputError(loadModelFolder({ model: join(d, 'ner.onnx'), labels: join(other, 'labels.txt') }), join(d, 'vocab.txt'), /neither tokenizer.json nor vocab.txt/);
  });

  it('maxLength: model_max_length when sane, else max_position_embeddings; AddedToken objects are unwrapped', async () => {
    const d = copy();
    const tc = readJson(join(d, 'tokenizer_config.json'));
    writeJson(join(d, 'tokenizer_config.json'), { ...tc, model_max_length: 1e30, unk_token: { content: '[UNK]', __type: 'AddedToken' } });
    let f = await loadModelFolder({ model: d });
    expect(f.maxLength).toBe(64);
    expect(f.tokenizerConfig.unk_token).toBe('[UNK]');
    writeJson(join(d, 'tokenizer_config.json'), { ...tc, model_max_length: 32, do_lower_case: false });
    f = await loadModelFolder({ model: d });
    expect(f.maxLength).toBe(32);
    expect(f.tokenizerConfig.do_lower_case).toBe(false);
    unlinkSync(join(d, 'tokenizer_config.json'));
    f = await loadModelFolder({ model: d });
    expect(f.tokenizerConfig.do_lower_case).toBe(true);
    expect(f.maxLength).toBe(64);
  });
});

describe('loadModelFolder: every error is an InputError naming the file', () => {
  it('missing folder, model.onnx, vocab.txt, config.json', async () => {
    await inputError(loadModelFolder({ model: join(tmp, 'no-such-dir') }), join(tmp, 'no-such-dir'), /does not exist/);
    let d = copy();
    unlinkSync(join(d, 'model.onnx'));
    await inputError(loadModelFolder({ model: d }), join(d, 'model.onnx'), /no model.onnx/);
    d = copy();
    unlinkSync(join(d, 'vocab.txt'));
    await inputError(loadModelFolder({ model: d }), join(d, 'vocab.txt'));
    d = copy();
    unlinkSync(join(d, 'config.json'));
    await inputError(loadModelFolder({ model: d }), join(d, 'config.json'), /config.json not found/);
  });

  it('config.json without id2label, with non-contiguous or non-integer ids, duplicate names, or bad JSON', async () => {
    const d = copy();
    const cfg = readJson(join(d, 'config.json'));
    const cfgPath = join(d, 'config.json');
    writeJson(cfgPath, { ...cfg, id2label: undefined });
    await inputError(loadModelFolder({ model: d }), cfgPath, /no "id2label"/);
    writeJson(cfgPath, { ...cfg, id2label: { 0: 'O', 1: 'B-PER', 2: 'I-PER', 3: 'B-LOC', 5: 'I-LOC' } });
    // the offending key "5" is on line 20 of the pretty-printed file
    const lines = readFileSync(cfgPath, 'utf8').split('\n');
    await inputError(loadModelFolder({ model: d }), cfgPath, /not contiguous.*lacks 4/, lines.findIndex((l) => l.includes('"5"')) + 1);
    writeJson(cfgPath, { ...cfg, id2label: { 0: 'O', one: 'B-PER' } });
    await inputError(loadModelFolder({ model: d }), cfgPath, /"one" is not a non-negative integer/);
    writeJson(cfgPath, { ...cfg, id2label: { 0: 'O', 1: 'O', 2: 'I-PER', 3: 'B-LOC', 4: 'I-LOC' } });
    await inputError(loadModelFolder({ model: d }), cfgPath, /appears twice/);
    writeFileSync(cfgPath, '{\n  "id2label": {\n    "0": "O",\n  }\n}\n');
    await inputError(loadModelFolder({ model: d }), cfgPath, /invalid JSON/, 4);
  });

  it('truncated, corrupt and empty ONNX files', async () => {
    const d = copy();
    const p = join(d, 'model.onnx');
    const bytes = readFileSync(p);
    writeFileSync(p, bytes.subarray(0, bytes.length - 100));
    await inputError(loadModelFolder({ model: d }), p, /truncated or corrupt/);
    writeFileSync(p, Buffer.from('this is not a model at all, just some text\n'));
    await inputError(loadModelFolder({ model: d }), p);
    writeFileSync(p, new Uint8Array(0));
    await inputError(loadModelFolder({ model: d }), p, /empty/);
  });

  it('a labels count that differs from the logits width names both files', async () => {
    const d = copy();
    const cfg = readJson(join(d, 'config.json'));
    writeJson(join(d, 'config.json'), { ...cfg, id2label: { 0: 'O', 1: 'B-PER', 2: 'I-PER', 3: 'B-LOC' } });
    unlinkSync(join(d, 'crf.json'));
    const e = await inputError(loadModelFolder({ model: d }), join(d, 'model.onnx'), /"logits" has 5 classes but .*config.json lists 4 labels/);
    expect(e.hint).toContain(join(d, 'config.json'));
  });

  it('crf.json with other labels, a wrong shape, or an unknown format', async () => {
    const d = copy();
    const crfPath = join(d, 'crf.json');
    const crf = readJson(crfPath);
    writeJson(crfPath, { ...crf, labels: ['O', 'B-PER', 'I-PER', 'I-LOC', 'B-LOC'] });
    await inputError(loadModelFolder({ model: d }), crfPath, /label 3 is "I-LOC" but the model's label 3 is "B-LOC"/);
    writeJson(crfPath, { ...crf, transitions: (crf.transitions as number[][]).slice(1) });
    await inputError(loadModelFolder({ model: d }), crfPath, /5×5/);
    writeJson(crfPath, { ...crf, end_transitions: [1, 2] });
    await inputError(loadModelFolder({ model: d }), crfPath, /end_transitions/);
    writeJson(crfPath, { ...crf, format: 'pytorch-crf' });
    await inputError(loadModelFolder({ model: d }), crfPath, /unknown CRF format/);
  });

  it('labels files with blank lines or duplicates, a vocab larger than vocab_size, missing external data', async () => {
    const d = copy();
    const lp = join(d, 'labels.txt');
    writeFileSync(lp, 'O\nB-PER\n\nI-PER\nB-LOC\nI-LOC\n');
    await inputError(loadModelFolder({ model: d, labels: lp }), lp, /empty label line/, 3);
    writeFileSync(lp, 'O\nB-PER\nI-PER\nB-LOC\nB-PER\n');
    await inputError(loadModelFolder({ model: d, labels: lp }), lp, /appears twice/, 5);
    const vp = join(d, 'vocab.txt');
    writeFileSync(vp, `${readFileSync(vp, 'utf8')}extra1\nextra2\n`);
    await inputError(loadModelFolder({ model: d }), vp, /77 tokens but config.json says vocab_size 75/);

    const e = copy();
    const m = decodeModel(readFileSync(join(e, 'model.onnx')));
    await saveModel(m, join(e, 'model.onnx'), { externalData: 'always' });
    expect((await loadModelFolder({ model: e })).externalDataFiles).toEqual([join(e, 'model.onnx.data')]);
    unlinkSync(join(e, 'model.onnx.data'));
    await inputError(loadModelFolder({ model: e }), join(e, 'model.onnx'), /external data file "model.onnx.data" is missing/);
  });
});

describe('writeModelFolder', () => {
  async function ortLogits(folder: ModelFolder): Promise<Float32Array> {
    return (await runBert(folder.onnxPath)).data as Float32Array;
  }

  it('writes a complete folder that reloads with identical onnxruntime outputs', async () => {
    const src = await loadModelFolder({ model: SRC });
    const model = decodeModel(readFileSync(src.onnxPath));
    const out = join(tmp, `out${n++}`);
    const res = await writeModelFolder(out, src, model, { provenance: provenance('quantize'), config: { ranerc_note: 'x' } });
    expect(res.dir).toBe(out);
    expect(res.onnxPath).toBe(join(out, 'model.onnx'));
    expect(res.sizeBytes).toBe(statSync(join(out, 'model.onnx')).size);
    expect(readdirSync(out).sort()).toEqual(['config.json', 'crf.json', 'model.onnx', 'ranerc.json', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt']);
    expect(res.totalBytes).toBe(readdirSync(out).reduce((s, f) => s + statSync(join(out, f)).size, 0));
    const back = await loadModelFolder({ model: out });
    expect(back.labels).toEqual(src.labels);
    expect(back.crf).toEqual(src.crf);
    expect(back.config.ranerc_note).toBe('x');
    expect(back.config.hidden_size).toBe(16);
    expect(back.provenance).toEqual({ ...provenance('quantize'), history: [] });
    expect(readFileSync(join(out, 'vocab.txt'))).toEqual(readFileSync(join(SRC, 'vocab.txt')));
    const [a, b] = [await ortLogits(src), await ortLogits(back)];
    expect(Array.from(b)).toEqual(Array.from(a));
    expect(maxAbsDiff(b, reference.bert.logits)).toBeLessThan(1e-4);
    expect(await folderSize(back)).toEqual({ onnxBytes: res.sizeBytes, totalBytes: res.totalBytes });

    // a second step appends the first one's provenance to history; crf: null drops crf.json
    const out2 = join(tmp, `out${n++}`);
    await writeModelFolder(out2, back, model, { provenance: provenance('prune'), crf: null, externalData: 'always' });
    const back2 = await loadModelFolder({ model: out2 });
    expect(back2.provenance?.command).toBe('prune');
    expect(back2.provenance?.history).toEqual([provenance('quantize')]);
    expect(back2.crf).toBeUndefined();
    expect(existsSync(join(out2, 'crf.json'))).toBe(false);
    expect(back2.externalDataFiles).toEqual([join(out2, 'model.onnx.data')]);
    const size = await folderSize(back2);
    expect(size.onnxBytes).toBe(statSync(join(out2, 'model.onnx')).size + statSync(join(out2, 'model.onnx.data')).size);
    expect(Array.from(await ortLogits(back2))).toEqual(Array.from(await ortLogits(src)));
  });

  it('writes tokenizer_config.json and config.json for a bare source, and overrides the CRF', async () => {
    const d = join(tmp, `bare${n++}`);
    mkdirSync(d);
    cpSync(join(SRC, 'model.onnx'), join(d, 'm.onnx'));
    writeFileSync(join(d, 'labels.txt'), LABELS.join('\n'));
    const src = await loadModelFolder({ model: join(d, 'm.onnx'), labels: join(d, 'labels.txt'), vocab: join(SRC, 'vocab.txt') });
    const crf = { labels: LABELS, transitions: LABELS.map(() => LABELS.map(() => 0.5)), start: LABELS.map(() => 0), end: LABELS.map(() => -1) };
    const out = join(tmp, `out${n++}`);
    await writeModelFolder(out, src, decodeModel(readFileSync(src.onnxPath)), { provenance: provenance('distill'), crf });
    const back = await loadModelFolder({ model: out });
    expect(back.bare).toBe(false);
    expect(back.labels).toEqual(LABELS);
    expect(back.crf).toEqual(crf);
    expect(back.tokenizerConfig.do_lower_case).toBe(true);
    expect(readdirSync(out).sort()).toEqual(['config.json', 'crf.json', 'model.onnx', 'ranerc.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt']);
  });

  it('a model onnxruntime rejects leaves nothing behind, and an existing folder untouched', async () => {
    const src = await loadModelFolder({ model: SRC });
    const model = decodeModel(readFileSync(src.onnxPath));
    const bad = { ...model, graph: { ...graphOf(model), node: [...graphOf(model).node] } } as onnx.IModelProto;
    const g = bad.graph as onnx.GraphProto;
    const i = g.node.findIndex((x) => x.opType === 'Softmax');
    g.node[i] = { ...g.node[i], opType: 'NoSuchOperator', name: 'broken_softmax' };
    const parent = join(tmp, `parent${n++}`);
    mkdirSync(parent);
    const out = join(parent, 'out');
    const err = await writeModelFolder(out, src, bad, { provenance: provenance('prune') }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(GraphError);
    expect((err as GraphError).message).toMatch(/onnxruntime cannot load/);
    expect((err as GraphError).where.node).toBe('broken_softmax');
    expect(readdirSync(parent)).toEqual([]); // no folder, no temp siblings

    await writeModelFolder(out, src, model, { provenance: provenance('quantize') });
    const before = readdirSync(out).map((f) => [f, readFileSync(join(out, f)).toString('hex')]);
    await expect(writeModelFolder(out, src, bad, { provenance: provenance('prune') })).rejects.toThrow(GraphError);
    expect(readdirSync(out).map((f) => [f, readFileSync(join(out, f)).toString('hex')])).toEqual(before);
    expect(readdirSync(parent)).toEqual(['out']);
  });

  it('refuses a CRF whose labels differ from the model labels', async () => {
    const src = await loadModelFolder({ model: SRC });
    const crf = { ...src.crf!, labels: [...LABELS].reverse() };
    const out = join(tmp, `out${n++}`);
    await expect(writeModelFolder(out, src, decodeModel(readFileSync(src.onnxPath)), { provenance: provenance('x'), crf })).rejects.toThrow(GraphError);
    expect(existsSync(out)).toBe(false);
  });
});


