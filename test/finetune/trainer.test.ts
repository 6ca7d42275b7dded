/**
 * The trainer on a tiny PyTorch export (fixtures/tiny/bio-crf-op14) on the wasm backend: gradient
 * accumulation over micro-batches equals one big batch; steps lower the loss; frozen initializers and
 * CRF scores behave; the loss through the executor equals the loss of onnxruntime's logits.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OnnxExecutor } from '../../src/autodiff/executor.js';
import { makeMicroBatch, microBatches, trainingRows, type MicroBatch, type TrainRow } from '../../src/autodiff/train/data.js';
import { tokenLossValue } from '../../src/autodiff/train/loss.js';
import { HostAdamW, hostGlobalNorm } from '../../src/autodiff/train/optim.js';
import { CRF_PARAM, Trainer } from '../../src/autodiff/train/trainer.js';
import { crfArrays } from '../../src/distill/crf.js';
import { readExamples } from '../../src/ner/data.js';
import { LabelSet } from '../../src/ner/labels.js';
import { WordPieceTokenizer } from '../../src/ner/tokenizer.js';
import { decodeModel, type onnx } from '../../src/onnx/codec.js';
import { loadModelFolder } from '../../src/onnx/folder.js';
import type { ModelFolder } from '../../src/onnx/types.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DIR = join(REPO, 'fixtures/tiny/bio-crf-op14');
let folder: ModelFolder;
let model: onnx.ModelProto;
let bytes: Uint8Array;
let rows: TrainRow[];
let tok: WordPieceTokenizer;
const executors: OnnxExecutor[] = [];

async function executor(trainable: (n: string) => boolean = () => true): Promise<OnnxExecutor> {
  const ex = await OnnxExecutor.create(model, { backend: 'wasm', trainable });
  executors.push(ex);
  return ex;
}

function micro(idx: number[], maxTokens: number): MicroBatch[] {
  const lengths = rows.map((r) => r.ids.length);
  return microBatches(idx, lengths, maxTokens).map((m) => makeMicroBatch(rows, m, tok.padId));
}

beforeAll(async () => {
  folder = await loadModelFolder({ model: DIR });
  bytes = readFileSync(folder.onnxPath);
  model = decodeModel(bytes, folder.onnxPath);
  tok = await WordPieceTokenizer.fromFiles(folder.vocabPath as string, folder.tokenizerConfig);
  const data = await readExamples(join(REPO, 'fixtures/data/msra_train_sample.jsonl'), { types: ['PER', 'LOC', 'ORG'] });
  rows = trainingRows(data.examples.slice(0, 40), tok, new LabelSet(folder.labels), { windowSize: folder.maxLength - 2, overlap: 31 });
});

afterAll(() => {
  for (const ex of executors) ex.dispose();
});

interface AdamFacts {
  lr: number;
  weight_decay: number;
  initial: number[];
  grads: number[][];
  after: number[][];
}
const ADAM = (JSON.parse(readFileSync(join(REPO, 'test/distill/fixtures/facts.json'), 'utf8')) as { adamw: AdamFacts }).adamw;

describe('HostAdamW', () => {
  it('follows torch.optim.AdamW step by step (facts.json), decay only where asked', () => {
    const v = tf.variable(tf.tensor1d(ADAM.initial));
    const w = tf.variable(tf.tensor1d(ADAM.initial));
    const opt = new HostAdamW(
      [
        { name: 'p', variable: v, decay: true },
        { name: 'q', variable: w, decay: false },
      ],
      { weightDecay: ADAM.weight_decay },
    );
    const before = tf.memory().numTensors;
    ADAM.grads.forEach((g, k) => {
      opt.beginStep();
      opt.update('p', Float32Array.from(g), ADAM.lr);
      // a scale (the clipping factor) multiplies the gradient: 2 · (g / 2) is the same step
      opt.update('q', Float32Array.from(g, (x) => x * 2), ADAM.lr, 0.5);
      ADAM.after[k].forEach((x, i) => expect(v.dataSync()[i]).toBeCloseTo(x, 6));
    });
    expect(opt.steps).toBe(3);
    expect(tf.memory().numTensors).toBe(before);
    // without decay the parameter moves by the Adam term only: it differs from the decayed one
    expect(Array.from(w.dataSync())).not.toEqual(Array.from(v.dataSync()));
    expect(() => opt.update('nope', new Float32Array(6), 0.1)).toThrow(/unknown parameter/);
    expect(() => opt.update('p', new Float32Array(2), 0.1)).toThrow(/2 values/);
    expect(hostGlobalNorm([Float32Array.from([3, 0]), Float32Array.from([4])])).toBe(5);
    tf.dispose([v, w]);
  });
});

describe('Trainer', () => {
  for (const loss of ['crf', 'ce'] as const) {
    it(`${loss}: gradients accumulated over micro-batches equal the gradients of one batch`, async () => {
      const ex = await executor();
      const tr = new Trainer(ex, { loss, crf: folder.crf });
      const idx = Array.from({ length: 12 }, (_, i) => i * 3);
      const whole = micro(idx, 1 << 20);
      const parts = micro(idx, 130);
      expect(whole.length).toBe(1);
      expect(parts.length).toBeGreaterThanOrEqual(3);
      expect(tr.denominator(parts)).toBe(tr.denominator(whole));
      const a = tr.gradients(whole);
      const tensors = tf.memory().numTensors;
      const b = tr.gradients(parts);
      expect(b.loss).toBeCloseTo(a.loss, 5);
      expect([...b.grads.keys()].sort()).toEqual([...a.grads.keys()].sort());
      expect(a.grads.size).toBe(tr.params.length);
      for (const [name, x] of a.grads) {
        const y = b.grads.get(name)!;
        let scale = 0;
        let diff = 0;
        for (let i = 0; i < x.length; i++) {
          scale = Math.max(scale, Math.abs(x[i]));
          diff = Math.max(diff, Math.abs(x[i] - y[i]));
        }
        expect(diff).toBeLessThanOrEqual(1e-5 + 1e-4 * scale);
      }
      expect(tf.memory().numTensors).toBe(tensors);
      tr.dispose();
    });
  }

  it('the loss through the executor equals the loss of onnxruntime\'s logits', async () => {
    const ex = await executor();
    const tr = new Trainer(ex, { loss: 'crf', crf: folder.crf });
    const mb = micro([0, 1, 2, 3, 4], 1 << 20);
    const { loss } = tr.gradients(mb);
    const session = await ort.InferenceSession.create(bytes);
    const b = mb[0];
    const int64 = (a: Int32Array) => new ort.Tensor('int64', BigInt64Array.from(a, (v) => BigInt(v)), [b.rows, b.seq]);
    const out = await session.run({ input_ids: int64(b.ids), attention_mask: int64(b.mask), token_type_ids: int64(new Int32Array(b.ids.length)) });
    await session.release();
    const logits = out.logits.data as Float32Array;
    const expected = tokenLossValue(logits, folder.labels.length, b, 'crf', tr.denominator(mb), crfArrays(folder.crf!));
    expect(loss).toBeCloseTo(expected, 4);
    tr.dispose();
  });

  it('steps lower the loss of the batch; frozen initializers stay put; the CRF scores move', async () => {
    const frozen = 'bert.embeddings.word_embeddings.weight';
    const ex = await executor((n) => n !== frozen);
    expect(ex.variables.has(frozen)).toBe(true);
    const tr = new Trainer(ex, { loss: 'crf', crf: folder.crf, weightDecay: 0.01, clipNorm: 1 });
    expect(tr.params.some((p) => p.name === frozen)).toBe(false);
    expect(tr.params.filter((p) => p.name.startsWith('\u0000crf')).map((p) => p.name)).toEqual(Object.values(CRF_PARAM));
    // decay on weight matrices only, never on the CRF scores
    for (const p of tr.params) expect(p.decay).toBe(!p.name.startsWith('\u0000crf') && p.variable.rank >= 2);
    const before = ex.variables.get(frozen)!.dataSync().slice();
    const mb = micro([5, 6, 7, 8, 9, 10, 11, 12], 1 << 20);
    const first = tr.step(mb, 3e-3);
    const tensors = tf.memory().numTensors;
    let last = first;
    for (let i = 0; i < 5; i++) last = tr.step(mb, 3e-3);
    expect(tf.memory().numTensors).toBe(tensors); // nothing accumulates on the device
    expect(tr.steps).toBe(6);
    expect(first.gradNorm).toBeGreaterThan(0);
    expect(last.loss).toBeLessThan(first.loss * 0.9);
    expect(Array.from(ex.variables.get(frozen)!.dataSync())).toEqual(Array.from(before));
    const crf = tr.crf()!;
    expect(crf.labels).toEqual(folder.crf!.labels);
    expect(crf.transitions.flat().some((v, i) => Math.abs(v - folder.crf!.transitions.flat()[i]) > 1e-4)).toBe(true);
    const ck = tr.checkpoint();
    expect(ck.weights.size).toBe(ex.variables.size);
    expect(ck.crf).toEqual(crf);
    tr.dispose();
  });

  it('cross-entropy trains no CRF; a trainer with nothing to train is refused', async () => {
    const ex = await executor();
    const tr = new Trainer(ex, { loss: 'ce' });
    expect(tr.crf()).toBeUndefined();
    expect(tr.params.length).toBe(ex.trainableVariables().length);
    tr.dispose();
    const none = await executor(() => false);
    expect(() => new Trainer(none, { loss: 'ce' })).toThrow(/nothing to train/);
  });
});
