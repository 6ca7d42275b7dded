/**
 * RoBERTa (byte-level BPE) and XLM-R (Unigram) token classifiers made by fixtures/intake/make_roberta_xlmr.py:
 * folders with tokenizer.json and no vocab.txt, position ids computed inside the graph from input_ids
 * (padding_idx + 1 ..., HF's create_position_ids_from_input_ids), no token_type_ids input.
 *
 * Independent facts: the committed PyTorch logits (eager model, torch 1.13) and the ids of the script's own
 * Python tokenizer. Tolerance: 1e-4 absolute on every logit (float32 graph under onnxruntime vs PyTorch).
 * Then each command runs on the folders in-process (eval, predict, quantize, prune, finetune, distill).
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTokenizer } from '../../src/ner/tokenizers/index.js';
import { HfTokenizer } from '../../src/ner/tokenizers/hf.js';
import { loadModelFolder } from '../../src/onnx/folder.js';
import { NerSession } from '../../src/runtime/session.js';
import { cli } from '../cli/helpers.js';

const REPO = new URL('../../', import.meta.url).pathname;
const FAMILIES = ['roberta-bpe', 'xlmr-unigram'] as const;
const TOL = 1e-4;

interface Reference {
  pad_id: number;
  dev_sample_f1: { f1: number };
  logits: Array<{ text: string; input_ids: number[]; logits: number[][] }>;
  padded_batch: { input_ids: number[][]; attention_mask: number[][]; logits: number[][][] };
}
const ref = (name: string): Reference => JSON.parse(readFileSync(join(REPO, 'fixtures/intake', `${name}.reference.json`), 'utf8')) as Reference;

function maxDiff(got: Float32Array, want: number[]): number {
  expect(got.length).toBe(want.length);
  let m = 0;
  for (let i = 0; i < want.length; i++) m = Math.max(m, Math.abs(got[i] - want[i]));
  return m;
}

let tmp = '';
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ranerc-rx-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe.each(FAMILIES)('%s', (name) => {
  const dir = join(REPO, 'fixtures/intake', name);

  it('loads without vocab.txt; the tokenizer is the folder tokenizer.json', async () => {
    const folder = await loadModelFolder({ model: dir });
    expect(folder.vocabPath).toBeUndefined();
    expect(folder.tokenizerPath).toBe(join(dir, 'tokenizer.json'));
    expect(folder.maxLength).toBe(128);
    const tok = await loadTokenizer(folder);
    expect(tok).toBeInstanceOf(HfTokenizer);
    expect(tok.padId).toBe(ref(name).pad_id);
  });

  it(`onnxruntime logits equal PyTorch within ${TOL} (single texts; ranerc's ids equal the script's)`, async () => {
    const folder = await loadModelFolder({ model: dir });
    const tok = await loadTokenizer(folder);
    const session = await NerSession.open(folder.onnxPath);
    try {
      expect(session.inputs.map((i) => i.name).sort()).toEqual(['attention_mask', 'input_ids']);
      for (const c of ref(name).logits) {
        const ids = [tok.clsId, ...tok.tokenize(c.text).slice(0, 126).map((t) => t.id), tok.sepId];
        expect(ids, c.text).toEqual(c.input_ids);
        const out = await session.run({ ids: [ids], mask: [ids.map(() => 1)], seqLen: ids.length, batch: 1 });
        expect(maxDiff(out.logits, c.logits.flat()), c.text).toBeLessThan(TOL);
      }
    } finally {
      await session.close();
    }
  });

  it(`a padded batch: logits equal PyTorch within ${TOL} (position ids from input_ids, padding at padding_idx)`, async () => {
    const b = ref(name).padded_batch;
    const session = await NerSession.open(join(dir, 'model.onnx'));
    try {
      const out = await session.run({ ids: b.input_ids, mask: b.attention_mask, seqLen: b.input_ids[0].length, batch: 2 });
      expect(maxDiff(out.logits, b.logits.flat(2))).toBeLessThan(TOL);
    } finally {
      await session.close();
    }
  });

  it('eval (F1 within 2 points of the script\'s PyTorch F1), predict, quantize and prune run', async () => {
    const data = join(REPO, 'fixtures/data/msra_dev_sample.jsonl');
    const ev = await cli('eval', '--model', dir, '--data', data, '--json', '--report-dir', join(tmp, name, 'eval'));
    expect(ev.code, ev.err).toBe(0);
    const f1 = (JSON.parse(ev.out) as { models: Array<{ f1: { micro: { f1: number } } }> }).models[0].f1.micro.f1;
    expect(Math.abs(f1 - ref(name).dev_sample_f1.f1)).toBeLessThan(0.02);
    expect(f1).toBeGreaterThan(0.1);

    const pr = await cli('predict', '--model', dir, '据新华社北京电，国务院总理李鹏今天会见了日本客人。');
    expect(pr.code, pr.err).toBe(0);
    expect((JSON.parse(pr.out.trim().split('\n')[0]) as { entities: unknown[] }).entities.length).toBeGreaterThan(0);

    const q = await cli('quantize', '--model', dir, '--out', join(tmp, name, 'q'), '--calib', join(REPO, 'fixtures/data/msra_calib.jsonl'), '--report-dir', join(tmp, name, 'qr'));
    expect(q.code, q.err).toBe(0);
    const qf = await loadModelFolder({ model: join(tmp, name, 'q') });
    expect(qf.vocabPath).toBeUndefined();
    expect(qf.tokenizerPath).toBeDefined();

    const p = await cli('prune', '--model', dir, '--out', join(tmp, name, 'p'), '--ratio', '0.25', '--data', data, '--json', '--report-dir', join(tmp, name, 'pr'));
    expect(p.code, p.err).toBe(0);
    const prep = JSON.parse(readFileSync(join(tmp, name, 'pr', 'report.json'), 'utf8')) as { details: { heads: { before: number; removed: number } } };
    expect(prep.details.heads).toMatchObject({ before: 8, removed: 2 });
  }, 240_000);
});
