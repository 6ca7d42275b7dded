/**
 * Every command on the raw ModelScope-style CRF-in-graph export (fixtures/intake/modelscope-crf), converted
 * in memory, and `ranerc convert` itself. F1 of `eval` is compared with the entity F1 of the graph's own
 * `predictions` (run in onnxruntime at batch 1, padded to its fixed length) on the texts it can read whole.
 */
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readExamples } from '../../src/ner/data.js';
import { tagsToEntities } from '../../src/ner/decode.js';
import { LabelSet } from '../../src/ner/labels.js';
import { scoreSpans } from '../../src/ner/metrics.js';
import { WordPieceTokenizer } from '../../src/ner/tokenizer.js';
import { decodeModel, encodeModel } from '../../src/onnx/codec.js';
import { checkEquivalence } from '../../src/onnx/convert/equivalence.js';
import { loadModelFolder } from '../../src/onnx/folder.js';
import { Predictor } from '../../src/runtime/predict.js';
import { createServer } from '../../src/serve/server.js';
import { cli, REPO } from './helpers.js';

const MODEL = join(REPO, 'fixtures/intake/modelscope-crf');
const DEV = join(REPO, 'fixtures/data/msra_dev_sample.jsonl');
const CALIB = join(REPO, 'fixtures/data/msra_calib.jsonl');
const REF = JSON.parse(readFileSync(join(REPO, 'fixtures/intake/modelscope-crf.reference.json'), 'utf8')) as {
  crf: { start_transitions: number[]; end_transitions: number[]; transitions: number[][] };
};

let tmp: string;
let shortData: string;
let graphF1: number;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ranerc-convert-cli-'));
  // the dev sentences the graph can read whole, and the F1 of its own decode on them
  const folder = await loadModelFolder({ model: MODEL });
  const tok = await WordPieceTokenizer.fromFiles(folder.vocabPath as string, folder.tokenizerConfig);
  const examples = (await readExamples(DEV)).examples;
  const eq = await checkEquivalence(folder.conversion!.source, { onnxPath: folder.onnxPath, crf: folder.crf! }, tok, examples.map((e) => e.text), 64);
  const labels = new LabelSet(folder.labels);
  const kept = examples.map((_, i) => i).filter((i) => eq.graphTags[i] !== undefined);
  const pred = kept.map((i) => {
    const toks = eq.tokens[i]!;
    const words = eq.graphTags[i]!;
    let w = -1;
    const tags = toks.map((t, k) => (k === 0 || toks[k - 1].word !== t.word ? words[++w] : words[w]));
    return tagsToEntities(examples[i].text, toks, tags, labels);
  });
  graphF1 = scoreSpans(kept.map((i) => examples[i].entities), pred).micro.f1;
  shortData = join(tmp, 'short.jsonl');
  const lines = readFileSync(DEV, 'utf8').split('\n').filter((l) => l.trim() !== '');
  await writeFile(shortData, kept.map((i) => lines[i]).join('\n') + '\n');
  expect(kept.length).toBeGreaterThan(300);
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

interface F1Report {
  models: Array<{ role: string; f1?: { micro: { f1: number } }; convertedFrom?: string }>;
  details: Record<string, unknown>;
}

describe('ranerc convert', () => {
  it('writes logits + crf.json (the PyTorch CRF) and proves 100% tag match; longer texts counted apart', async () => {
    const out = join(tmp, 'converted');
    const r = await cli('convert', '--model', MODEL, '--out', out, '--data', DEV, '--json', '--report-dir', join(tmp, 'rep-conv'));
    expect(r.err).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.out) as F1Report & { details: { equivalence: { words: { rate: number }; compared: number; longer: number; texts: number } } };
    expect(rep.details.equivalence.words.rate).toBe(1);
    expect(rep.details.equivalence.longer).toBeGreaterThan(0);
    expect(rep.details.equivalence.compared + rep.details.equivalence.longer).toBe(rep.details.equivalence.texts);
    const crf = JSON.parse(readFileSync(join(out, 'crf.json'), 'utf8')) as { format: string; transitions: number[][]; start_transitions: number[] };
    expect(crf.format).toBe('ranerc-crf/1');
    crf.transitions.forEach((row, i) => row.forEach((v, j) => expect(v).toBeCloseTo(REF.crf.transitions[i][j], 6)));
    crf.start_transitions.forEach((v, i) => expect(v).toBeCloseTo(REF.crf.start_transitions[i], 6));
    const m = decodeModel(readFileSync(join(out, 'model.onnx')));
    expect(m.graph!.output!.map((o) => o.name)).toEqual(['logits']);
    expect(m.graph!.input!.map((i) => i.name)).toEqual(['input_ids', 'attention_mask']);
    const f1 = (rep.details as { f1?: { graph: number; ranerc: number; sentences: number } }).f1!;
    expect(f1.sentences).toBe(rep.details.equivalence.compared);
    expect(f1.ranerc).toBeCloseTo(graphF1, 10);
    const written = await loadModelFolder({ model: out });
    expect(written.conversion).toBeUndefined();
    expect(written.crf).toBeDefined();
  });

  it('an integer output that is no CRF decode exits 2 naming the node, and writes nothing', async () => {
    const dir = join(tmp, 'argmax');
    await cp(join(REPO, 'fixtures/tiny/bio-crf-op14'), dir, { recursive: true });
    await rm(join(dir, 'crf.json'));
    const m = decodeModel(readFileSync(join(dir, 'model.onnx')));
    m.graph!.node!.push({ opType: 'ArgMax', name: 'tag_argmax', input: ['logits'], output: ['tags'], attribute: [{ name: 'axis', type: 2, i: 2 }, { name: 'keepdims', type: 2, i: 0 }] });
    m.graph!.output = [{ name: 'tags', type: { tensorType: { elemType: 7, shape: { dim: [{ dimParam: 'b' }, { dimParam: 's' }] } } } }];
    await writeFile(join(dir, 'model.onnx'), encodeModel(m));
    const out = join(tmp, 'never');
    for (const args of [['convert', '--model', dir, '--out', out, '--data', DEV], ['eval', '--model', dir, '--data', DEV, '--report-dir', join(tmp, 'rep-never')]]) {
      const r = await cli(...args);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/tag_argmax/);
      expect(r.err).toMatch(/hint:/);
    }
    expect(existsSync(out)).toBe(false);
    expect(existsSync(join(tmp, 'rep-never'))).toBe(false);
  });
});

describe('every command on the raw export (converted in memory)', () => {
  let evalF1: number;
  it('eval: same entity F1 as the graph\'s own decode (±0.1 point), and says it converted', async () => {
    const r = await cli('eval', '--model', MODEL, '--data', shortData, '--json', '--report-dir', join(tmp, 'rep-eval'));
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.out) as F1Report;
    evalF1 = rep.models[0].f1!.micro.f1;
    expect(rep.models[0].convertedFrom).toMatch(/converted from a CRF-in-graph export/);
    expect(graphF1).toBeGreaterThan(0.2); // the fixture finds entities
    expect(Math.abs(evalF1 - graphF1) * 100).toBeLessThanOrEqual(0.1);
  });

  it('quantize: costs at most 0.5 F1 points', async () => {
    const r = await cli('quantize', '--model', MODEL, '--calib', CALIB, '--calib-size', '40', '--out', join(tmp, 'q'), '--eval', shortData, '--no-bench', '--json', '--report-dir', join(tmp, 'rep-q'));
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.out) as F1Report;
    const [before, after] = rep.models.map((m) => m.f1!.micro.f1);
    expect((before - after) * 100).toBeLessThanOrEqual(0.5);
    expect(existsSync(join(tmp, 'q', 'crf.json'))).toBe(true);
  });

  it('prune --ratio 0.25 removes a quarter of the heads (8 -> 6)', async () => {
    const r = await cli('prune', '-m', MODEL, '-d', DEV, '--max-sentences', '20', '--no-bench', '--ratio', '0.25', '-o', join(tmp, 'p'), '--cache-dir', join(tmp, 'cache'), '--report-dir', join(tmp, 'rep-p'));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/heads\s+8\s+6\s+-25\.0%/);
    const prov = JSON.parse(readFileSync(join(tmp, 'p', 'ranerc.json'), 'utf8')) as { history: Array<{ command: string }> };
    expect(prov.history.map((h) => h.command)).toContain('convert (at load)');
  });

  it('serve answers /predict with the entities of the converted model', async () => {
    const s = await createServer({ model: MODEL, port: 0 });
    try {
      const text = '据新华社北京电，国务院总理李鹏今天会见了日本客人。';
      const res = await fetch(`${s.url!}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text }) });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { entities: Array<{ text: string; type: string; start: number; end: number }> };
      const p = await Predictor.open(await loadModelFolder({ model: MODEL }));
      try {
        const want = (await p.predict([text]))[0].map((e) => ({ text: e.text, type: e.type, start: e.start, end: e.end }));
        expect(want.length).toBeGreaterThan(0);
        expect(body.entities).toEqual(want);
      } finally {
        await p.close();
      }
    } finally {
      await s.close();
    }
  });
});
