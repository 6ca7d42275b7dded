/**
 * A ranerc INT8 output folder in the transformers.js layout loads in @huggingface/transformers
 * (devDependency; nothing installed or downloaded at run time: env.allowRemoteModels = false) through
 * pipeline('token-classification', …, { dtype: 'q8' }), on onnxruntime-node. On 200 MSRA sentences
 * its tokenizer's ids equal ranerc's WordPiece ids, and its per-token labels equal ranerc's argmax
 * labels of the same folder (the CRF-less decoding: transformers.js has no CRF).
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModelFolder } from '../../src/onnx/folder.js';
import { Predictor } from '../../src/runtime/predict.js';
import { cli, REPO } from '../cli/helpers.js';

let tmp: string;
let predictor: Predictor;
const SENTENCES: string[] = readFileSync(join(REPO, 'fixtures/data/msra_dev_sample.jsonl'), 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => (JSON.parse(l) as { text: string }).text);

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ranerc-tjs-'));
  const q = await cli('quantize', '--model', join(REPO, 'fixtures/teacher/model'), '--dynamic', '--layout', 'transformers.js', '--out', join(tmp, 'int8'), '--no-bench', '--json', '--report-dir', join(tmp, 'rep'));
  expect(q.code, q.err).toBe(0);
  predictor = await Predictor.open(await loadModelFolder({ model: join(tmp, 'int8') }), { noCrf: true });
}, 300_000);

afterAll(async () => {
  await predictor?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('transformers.js loads a ranerc INT8 folder', () => {
  it('AutoModelForTokenClassification opens onnx/model_quantized.onnx offline; its argmax labels equal ranerc\'s on 200 MSRA sentences', async () => {
    expect(existsSync(join(tmp, 'int8', 'onnx', 'model_quantized.onnx'))).toBe(true);
    const { env, AutoModelForTokenClassification, Tensor } = await import('@huggingface/transformers');
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.localModelPath = `${tmp}/`;
    env.useFSCache = false;
    const model = await AutoModelForTokenClassification.from_pretrained('int8', { dtype: 'q8', device: 'cpu' });
    const id2label = (model.config as unknown as { id2label: Record<string, string> }).id2label;
    const fits = SENTENCES.filter((s) => predictor.tokenizer.tokenize(s).length <= predictor.windowSize).slice(0, 200);
    expect(fits.length).toBe(200);
    let tokens = 0;
    let entityTokens = 0;
    for (const text of fits) {
      const ours = predictor.tokenizer.tokenize(text);
      const ids = [predictor.tokenizer.clsId, ...ours.map((t) => t.id), predictor.tokenizer.sepId];
      const dims = [1, ids.length];
      const out = (await model({
        input_ids: new Tensor('int64', BigInt64Array.from(ids, (v) => BigInt(v)), dims),
        attention_mask: new Tensor('int64', new BigInt64Array(ids.length).fill(1n), dims),
        token_type_ids: new Tensor('int64', new BigInt64Array(ids.length), dims),
      })) as { logits: { data: Float32Array; dims: number[] } };
      const L = out.logits.dims[2];
      const theirs = ours.map((_, k) => {
        const row = out.logits.data.subarray((k + 1) * L, (k + 2) * L);
        let best = 0;
        for (let j = 1; j < L; j++) if (row[j] > row[best]) best = j;
        return id2label[String(best)];
      });
      const [em] = await predictor.emissions([text]);
      const labels = predictor.tagIds(em).map((i) => predictor.labels.labels[i]);
      expect(theirs, text).toEqual(labels);
      tokens += labels.length;
      entityTokens += labels.filter((l) => l !== 'O').length;
    }
    console.log(`transformers.js model = ranerc argmax on 200 sentences: ${tokens} tokens, ${entityTokens} inside entities`);
    expect(entityTokens).toBeGreaterThan(100);
  }, 600_000);


  it("pipeline('token-classification') on the folder: same token ids and per-token labels as ranerc on 200 MSRA sentences", async () => {
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/model_quantized.onnx']) expect(existsSync(join(tmp, 'int8', f)), f).toBe(true);
    const { env, pipeline } = await import('@huggingface/transformers');
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.localModelPath = `${tmp}/`;
    env.useFSCache = false;
    const ner = await pipeline('token-classification', 'int8', { dtype: 'q8', device: 'cpu' });

    // sentences that fit one window (transformers.js truncates; ranerc would slide windows)
    const fits = SENTENCES.filter((s) => predictor.tokenizer.tokenize(s).length <= predictor.windowSize).slice(0, 200);
    expect(fits.length).toBe(200);
    let tokens = 0;
    let entityTokens = 0;
    for (const text of fits) {
      const ours = predictor.tokenizer.tokenize(text);
      const ids = [predictor.tokenizer.clsId, ...ours.map((t) => t.id), predictor.tokenizer.sepId];
      const enc = ner.tokenizer(text) as { input_ids: { tolist(): bigint[][] } };
      expect(enc.input_ids.tolist()[0].map(Number), text).toEqual(ids);

      const [em] = await predictor.emissions([text]);
      const labels = predictor.tagIds(em).map((i) => predictor.labels.labels[i]);
      const out = (await ner(text, { ignore_labels: [] })) as Array<{ entity: string; index: number }>;
      // transformers.js reports every token but the special ones ([UNK] included: it decodes to '' with
      // skip_special_tokens), with its position in input_ids ([CLS] is 0)
      const shown = ours.map((t, k) => (t.id === predictor.tokenizer.unkId ? -1 : k)).filter((k) => k >= 0);
      expect(out.map((o) => o.index), text).toEqual(shown.map((k) => k + 1));
      expect(out.map((o) => o.entity), text).toEqual(shown.map((k) => labels[k]));
      tokens += labels.length;
      entityTokens += labels.filter((l) => l !== 'O').length;
    }
    console.log(`transformers.js = ranerc argmax on 200 sentences: ${tokens} tokens, ${entityTokens} inside entities`);
    expect(entityTokens).toBeGreaterThan(100);
  }, 600_000);
});
