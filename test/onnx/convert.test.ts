/**
 * CRF-in-graph import on the ModelScope-style fixture (fixtures/intake/make_modelscope_crf.py): the
 * converted graph's emissions and CRF are checked against the PyTorch facts the generator committed, and
 * ranerc's Viterbi over the converted emissions against the original graph's own `predictions` run in
 * onnxruntime.
 */
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { readExamples } from '../../src/ner/data.js';
import { WordPieceTokenizer } from '../../src/ner/tokenizer.js';
import { decodeModel, encodeModel } from '../../src/onnx/codec.js';
import { convertCrfExport } from '../../src/onnx/convert/index.js';
import { checkEquivalence } from '../../src/onnx/convert/equivalence.js';
import { loadModelFolder } from '../../src/onnx/folder.js';

const REPO = new URL('../../', import.meta.url).pathname;
const DIR = join(REPO, 'fixtures/intake/modelscope-crf');
const RAW = join(DIR, 'model.onnx');
interface Ref {
  pad_len: number;
  labels: string[];
  crf: { start_transitions: number[]; end_transitions: number[]; transitions: number[][] };
  emissions: Array<{ text: string; input_ids: number[]; emissions: number[][] }>;
  predictions: { texts: string[]; word_tags: number[][] };
}
const REF = JSON.parse(readFileSync(join(REPO, 'fixtures/intake/modelscope-crf.reference.json'), 'utf8')) as Ref;

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ranerc-convert-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('convertCrfExport on the ModelScope-style export', () => {
  const raw = decodeModel(readFileSync(RAW));
  const conv = convertCrfExport(raw, REF.labels, RAW);

  it('finds the unrolled decode, the emissions at the classifier and the fixed length', () => {
    expect(conv.found.output).toBe('predictions');
    expect(conv.found.fixedLength).toBe(REF.pad_len);
    expect(conv.found.evidence.transitionAdds).toBe(REF.pad_len - 1);
    expect(conv.found.evidence.transposed).toBe(false);
    expect(conv.droppedInputs.sort()).toEqual(['label_mask', 'offset_mapping']);
    expect(conv.keptInputs).toEqual(['input_ids', 'attention_mask']);
    const g = conv.model.graph!;
    expect(g.output!.map((o) => o.name)).toEqual(['logits']);
    const ops = new Set(g.node!.map((n) => n.opType));
    for (const op of ['ArgMax', 'ReduceMax', 'ScatterND', 'NonZero', 'GatherElements']) expect(ops.has(op)).toBe(false);
  });

  it('reads the CRF parameters PyTorch had (transitions[from][to])', () => {
    const close = (a: number[], b: number[]): void => a.forEach((x, i) => expect(x).toBeCloseTo(b[i], 6));
    close(conv.crf.start, REF.crf.start_transitions);
    close(conv.crf.end, REF.crf.end_transitions);
    conv.crf.transitions.forEach((row, i) => close(row, REF.crf.transitions[i]));
  });

  it('gives per-sub-token emissions equal to PyTorch (dynamic batch and length)', async () => {
    const path = join(tmp, 'conv.onnx');
    await writeFile(path, encodeModel(conv.model));
    const s = await ort.InferenceSession.create(path, { logSeverityLevel: 3, intraOpNumThreads: 1 });
    try {
      let maxErr = 0;
      expect(REF.emissions.some((r) => r.input_ids.length < REF.pad_len)).toBe(true); // lengths the export never ran at
      for (const r of REF.emissions) {
        const n = r.input_ids.length;
        const ids = new ort.Tensor('int64', BigInt64Array.from(r.input_ids.map(BigInt)), [1, n]);
        const mask = new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]);
        const out = (await s.run({ input_ids: ids, attention_mask: mask })).logits;
        expect(out.dims).toEqual([1, n, REF.labels.length]);
        const d = out.data as Float32Array;
        r.emissions.forEach((row, t) => row.forEach((v, j) => (maxErr = Math.max(maxErr, Math.abs(d[t * REF.labels.length + j] - v)))));
      }
      expect(maxErr).toBeLessThan(1e-4);
      // batch 2 with padding: row 0 equals its batch-1 run
      const [a, b] = REF.emissions;
      const T = Math.max(a.input_ids.length, b.input_ids.length);
      const ids = new BigInt64Array(2 * T);
      const mask = new BigInt64Array(2 * T);
      [a, b].forEach((r, k) => r.input_ids.forEach((id, t) => ((ids[k * T + t] = BigInt(id)), (mask[k * T + t] = 1n))));
      const out = (await s.run({ input_ids: new ort.Tensor('int64', ids, [2, T]), attention_mask: new ort.Tensor('int64', mask, [2, T]) })).logits;
      const d = out.data as Float32Array;
      let err2 = 0;
      [a, b].forEach((r, k) => r.emissions.forEach((row, t) => row.forEach((v, j) => (err2 = Math.max(err2, Math.abs(d[(k * T + t) * REF.labels.length + j] - v))))));
      expect(err2).toBeLessThan(1e-4);
    } finally {
      await s.release();
    }
  });
});

describe('proof against the graph\'s own decode', () => {
  it('the raw graph in onnxruntime gives the PyTorch predictions, and ranerc\'s Viterbi over the converted emissions gives the same tags (100%)', async () => {
    const folder = await loadModelFolder({ model: DIR });
    expect(folder.conversion?.kind).toBe('crf-in-graph');
    const tok = await WordPieceTokenizer.fromFiles(folder.vocabPath as string, folder.tokenizerConfig);
    const texts = [...REF.predictions.texts, ...(await readExamples(join(REPO, 'fixtures/data/msra_test_sample.jsonl'))).examples.slice(0, 300).map((e) => e.text)];
    const eq = await checkEquivalence(RAW, { onnxPath: folder.onnxPath, crf: folder.crf! }, tok, texts, REF.pad_len);
    expect(eq.compared).toBeGreaterThan(400);
    expect(eq.longer).toBeGreaterThan(0);
    expect(eq.compared + eq.longer + eq.empty).toBe(texts.length);
    expect(eq.words.matched).toBe(eq.positions);
    expect(eq.mismatches).toEqual([]);
    // the graph's own decode equals the eager PyTorch model on every text it could read whole
    let checked = 0;
    REF.predictions.word_tags.forEach((want, k) => {
      const got = eq.graphTags[k];
      if (got === undefined) return;
      expect(got).toEqual(want);
      checked++;
    });
    expect(checked).toBeGreaterThan(200);
  });
});

describe('orientation read from the arithmetic', () => {
  it('the same CRF stored [to][from] with the max over the last axis converts to the same transitions[from][to], 100% match', async () => {
    const dir = join(tmp, 'tofrom');
    await cp(DIR, dir, { recursive: true });
    await cp(join(REPO, 'fixtures/intake/modelscope-crf-tofrom/model.onnx'), join(dir, 'model.onnx'));
    const conv = convertCrfExport(decodeModel(readFileSync(join(dir, 'model.onnx'))), REF.labels);
    expect(conv.found.evidence.transposed).toBe(true);
    expect(conv.found.evidence.reduceAxis).toBe(2);
    conv.crf.transitions.forEach((row, i) => row.forEach((v, j) => expect(v).toBeCloseTo(REF.crf.transitions[i][j], 6)));
    const folder = await loadModelFolder({ model: dir });
    const tok = await WordPieceTokenizer.fromFiles(folder.vocabPath as string, folder.tokenizerConfig);
    const eq = await checkEquivalence(join(dir, 'model.onnx'), { onnxPath: folder.onnxPath, crf: folder.crf! }, tok, REF.predictions.texts, REF.pad_len);
    expect(eq.compared).toBeGreaterThan(200);
    expect(eq.words.matched).toBe(eq.positions);
    REF.predictions.word_tags.forEach((want, k) => eq.graphTags[k] !== undefined && expect(eq.graphTags[k]).toEqual(want));
  });
});

describe('unsupported integer outputs', () => {
  it('an argmax output (no CRF) is an InputError naming the node; loadModelFolder refuses it', async () => {
    const m = decodeModel(readFileSync(join(REPO, 'fixtures/tiny/bio-crf-op14/model.onnx')));
    const g = m.graph!;
    g.node!.push({ opType: 'ArgMax', name: 'my_argmax', input: ['logits'], output: ['tags'], attribute: [{ name: 'axis', type: 2, i: 2 }, { name: 'keepdims', type: 2, i: 0 }] });
    g.output = [{ name: 'tags', type: { tensorType: { elemType: 7, shape: { dim: [{ dimParam: 'batch' }, { dimParam: 'sequence' }] } } } }];
    expect(() => convertCrfExport(m, ['a', 'b', 'c', 'd', 'e', 'f', 'g'])).toThrow(InputError);
    try {
      convertCrfExport(m, ['a']);
    } catch (e) {
      expect((e as InputError).where.node).toBe('my_argmax');
      expect((e as InputError).exitCode).toBe(2);
      expect((e as InputError).hint).toMatch(/logits/);
    }
    const dir = join(tmp, 'argmax');
    await cp(join(REPO, 'fixtures/tiny/bio-crf-op14'), dir, { recursive: true });
    await rm(join(dir, 'crf.json'));
    await writeFile(join(dir, 'model.onnx'), encodeModel(m));
    await expect(loadModelFolder({ model: dir })).rejects.toThrow(/not produced by a CRF decode/);
  });

  it('an export traced with fixed input shapes is refused at load (exit 2) with the re-export hint', async () => {
    const m = decodeModel(readFileSync(RAW));
    for (const inp of m.graph!.input!) {
      const dims = inp.type!.tensorType!.shape!.dim!;
      dims[0] = { dimValue: 1 };
      dims[1] = { dimValue: REF.pad_len };
    }
    const dir = join(tmp, 'fixed');
    await cp(DIR, dir, { recursive: true });
    await writeFile(join(dir, 'model.onnx'), encodeModel(m));
    const err = await loadModelFolder({ model: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).message).toMatch(/does not run at other batch sizes or lengths/);
    expect((err as InputError).hint).toMatch(/dynamic_axes/);
  });

  it('a decode inside a Loop is refused naming the Loop node (exit 2)', () => {
    const m = decodeModel(readFileSync(RAW));
    const g = m.graph!;
    // route the output through a Loop (body: identity on a loop-carried tensor)
    g.node!.push({
      opType: 'Loop',
      name: 'viterbi_loop',
      input: ['', '', 'predictions'],
      output: ['looped'],
      attribute: [{ name: 'body', type: 5, g: { name: 'body', node: [{ opType: 'Identity', input: ['v_in'], output: ['v_out'] }, { opType: 'Identity', input: ['cond_in'], output: ['cond_out'] }], input: [{ name: 'i' }, { name: 'cond_in' }, { name: 'v_in' }], output: [{ name: 'cond_out' }, { name: 'v_out' }] } }],
    });
    g.output = [{ name: 'looped', type: { tensorType: { elemType: 7 } } }];
    let err: unknown;
    try {
      convertCrfExport(m, REF.labels);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).where.node).toBe('viterbi_loop');
    expect((err as InputError).message).toMatch(/Loop/);
    expect((err as InputError).exitCode).toBe(2);
  });
});
