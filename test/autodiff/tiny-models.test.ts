/**
 * The executor on real PyTorch exports (fixtures/tiny: HF-layout BERT token classifiers at opsets
 * 11/12/14/17): logits equal PyTorch's reference logits and onnxruntime-node's within 1e-4 at
 * several batch sizes and sequence lengths; shape arithmetic stays on the host; no tensor leaks.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { OnnxExecutor } from '../../src/autodiff/executor.js';
import { lcgInts, loadModel, maxAbsDiff, ortRun, REPO, tinyModels } from './helpers.js';

interface RefCase {
  name: string;
  batch: number;
  sequence: number;
  input_ids: number[][];
  attention_mask: number[][];
  token_type_ids?: number[][];
  logits: number[][][];
}
interface Ref {
  inputs: string[];
  cases: RefCase[];
}

const models = tinyModels();

function feedsFor(inputs: string[], c: { input_ids: number[][]; attention_mask: number[][]; token_type_ids?: number[][] }) {
  const B = c.input_ids.length;
  const T = c.input_ids[0].length;
  const feeds: Record<string, tf.Tensor> = {};
  for (const name of inputs) {
    const rows = (c as unknown as Record<string, number[][]>)[name];
    feeds[name] = tf.tensor(rows.flat(), [B, T], 'int32');
  }
  return feeds;
}

/** The only ops that may run on tfjs in these graphs: real tensor math and data movement. */
const TENSOR_MATH = new Set([
  'Gather', 'Unsqueeze', 'Cast', 'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Sqrt', 'ReduceMean', 'MatMul', 'Reshape',
  'Transpose', 'Softmax', 'Erf', 'LayerNormalization',
]);

describe('tiny PyTorch exports', () => {
  it('has the fixture models', () => {
    expect(models.map((m) => m.name)).toEqual(
      expect.arrayContaining(['bio-crf-op14', 'bioes-op17', 'bmes-op12-nobias', 'wordpiece-en-op11']),
    );
  });

  for (const m of models) {
    describe(m.name, () => {
      const { bytes, model } = loadModel(m.onnxPath);
      const ref = JSON.parse(readFileSync(m.refPath, 'utf8')) as Ref;
      const vocab = (model.graph?.initializer ?? []).find((t) => t.name === 'bert.embeddings.word_embeddings.weight');
      const vocabSize = Number(vocab?.dims?.[0] ?? 100);

      it('matches the PyTorch reference logits (cpu) and keeps shape arithmetic on the host', async () => {
        const ex = await OnnxExecutor.create(model, { backend: 'cpu' });
        for (const c of ref.cases) {
          const feeds = feedsFor(ref.inputs, c);
          const out = ex.run(feeds);
          expect(out.logits.shape).toEqual([c.batch, c.sequence, c.logits[0][0].length]);
          expect(maxAbsDiff(out.logits.dataSync(), c.logits.flat(2)), c.name).toBeLessThan(1e-4);
          tf.dispose([out, feeds]);
        }
        const { hostOps, deviceOps } = ex.stats();
        expect(Object.keys(deviceOps).filter((op) => !TENSOR_MATH.has(op))).toEqual([]);
        expect(deviceOps.Gather).toBe(3); // the word / position / token-type embedding lookups
        expect(hostOps.Shape).toBeGreaterThan(0);
        expect(hostOps.Concat).toBeGreaterThan(0);
        ex.dispose();
      });

      it('matches onnxruntime-node at other batch sizes and lengths, without leaking tensors', async () => {
        const ex = await OnnxExecutor.create(model, { backend: 'cpu' });
        let before = -1;
        for (const [B, T, seed] of [[4, 7, 1], [2, 33, 2], [1, 1, 3], [4, 7, 4]]) {
          const ids = lcgInts(B * T, 1, vocabSize, seed);
          // Row b keeps T - b tokens (at least one): padding inside the batch.
          const mask = Array.from({ length: B * T }, (_, i) => (i % T < Math.max(1, T - Math.floor(i / T)) ? 1 : 0));
          const types = Array.from({ length: B * T }, (_, i) => (i % T >= T / 2 ? 1 : 0));
          const all: Record<string, number[]> = { input_ids: ids, attention_mask: mask, token_type_ids: types };
          const ortFeeds = Object.fromEntries(ref.inputs.map((n) => [n, { data: all[n], dims: [B, T], type: 'int64' as const }]));
          const want = (await ortRun(bytes, ortFeeds)).logits;
          const feeds = Object.fromEntries(ref.inputs.map((n) => [n, tf.tensor(all[n], [B, T], 'int32')]));
          if (before < 0) before = tf.memory().numTensors;
          const out = ex.run(feeds);
          expect(out.logits.shape).toEqual([...want.dims]);
          expect(maxAbsDiff(out.logits.dataSync(), want.data), `${B}x${T}`).toBeLessThan(1e-4);
          tf.dispose([out, feeds]);
        }
        // Constants are converted once on the first run; after that every run frees all it made.
        const afterFirst = tf.memory().numTensors;
        for (let i = 0; i < 3; i++) {
          const feeds = Object.fromEntries(ref.inputs.map((n) => [n, tf.ones([2, 5], 'int32')]));
          tf.dispose([ex.run(feeds), feeds]);
        }
        expect(tf.memory().numTensors).toBe(afterFirst);
        ex.dispose();
      });
    });
  }

  it('gives the same logits on the wasm backend', async () => {
    for (const m of models.filter((x) => x.name === 'bio-crf-op14' || x.name === 'bioes-op17')) {
      const { model } = loadModel(m.onnxPath);
      const ref = JSON.parse(readFileSync(m.refPath, 'utf8')) as Ref;
      const ex = await OnnxExecutor.create(model, { backend: 'wasm' });
      expect(ex.backend.name).toBe('wasm');
      for (const c of ref.cases) {
        const feeds = feedsFor(ref.inputs, c);
        const out = ex.run(feeds);
        expect(maxAbsDiff(out.logits.dataSync(), c.logits.flat(2)), `${m.name} ${c.name}`).toBeLessThan(1e-4);
        tf.dispose([out, feeds]);
      }
      ex.dispose();
    }
  });

  const teacher = join(REPO, 'fixtures', 'teacher', 'model', 'model.onnx');
  it.skipIf(!existsSync(teacher))('the fixture teacher matches onnxruntime-node on wasm', async () => {
    const { bytes, model } = loadModel(teacher);
    const ex = await OnnxExecutor.create(model, { backend: 'wasm' });
    const vocab = ex.variables.get('bert.embeddings.word_embeddings.weight')!.shape[0];
    const [B, T] = [3, 21];
    const ids = lcgInts(B * T, 1, vocab, 7);
    const mask = Array.from({ length: B * T }, (_, i) => (i % T < T - 4 * Math.floor(i / T) ? 1 : 0));
    const types = new Array<number>(B * T).fill(0);
    const all: Record<string, number[]> = { input_ids: ids, attention_mask: mask, token_type_ids: types };
    const names = ex.inputs.map((i) => i.name);
    const want = await ortRun(bytes, Object.fromEntries(names.map((n) => [n, { data: all[n], dims: [B, T], type: 'int64' as const }])));
    const feeds = Object.fromEntries(names.map((n) => [n, tf.tensor(all[n], [B, T], 'int32')]));
    const out = ex.run(feeds);
    const name = ex.outputs[0].name;
    expect(maxAbsDiff(out[name].dataSync(), want[name].data)).toBeLessThan(1e-4);
    tf.dispose([out, feeds]);
    ex.dispose();
  });
});
