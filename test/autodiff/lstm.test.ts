/**
 * LSTM: PyTorch nn.LSTM exports (bidirectional, batch_first, pack_padded_sequence with lengths, both
 * enforce_sorted variants) against PyTorch's outputs and onnxruntime-node, plus gradients through
 * the recurrence against central finite differences.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { OnnxExecutor } from '../../src/autodiff/executor.js';
import { FIXTURES, lcgFloats, loadModel, maxAbsDiff, ortRun } from './helpers.js';

interface LstmCase {
  batch: number;
  steps: number;
  lens: number[];
  x: number[];
  y: number[];
  unsorted: { lens: number[]; x: number[]; y: number[] };
}
const ref = JSON.parse(readFileSync(join(FIXTURES, 'lstm_reference.json'), 'utf8')) as { cases: LstmCase[] };

describe('LSTM exported from nn.LSTM', () => {
  for (const variant of ['sorted', 'unsorted'] as const) {
    it(`${variant} lengths: equals PyTorch and onnxruntime-node (cpu and wasm)`, async () => {
      const { bytes, model } = loadModel(join(FIXTURES, `lstm_${variant}.onnx`));
      expect((model.graph?.node ?? []).some((n) => n.opType === 'LSTM' && n.attribute?.some((a) => a.name === 'direction'))).toBe(true);
      for (const backend of ['cpu', 'wasm'] as const) {
        const ex = await OnnxExecutor.create(model, { backend });
        for (const c of ref.cases) {
          const d = variant === 'sorted' ? c : c.unsorted;
          const feeds = { x: tf.tensor(d.x, [c.batch, c.steps, 6]), lens: tf.tensor(d.lens, [c.batch], 'int32') };
          const out = ex.run(feeds);
          const got = out.y.dataSync();
          expect(out.y.shape).toEqual([c.batch, c.steps, 3]);
          expect(maxAbsDiff(got, d.y), `${backend} ${c.lens}`).toBeLessThan(1e-5);
          const ort = await ortRun(bytes, {
            x: { data: d.x, dims: [c.batch, c.steps, 6], type: 'float32' },
            lens: { data: d.lens, dims: [c.batch], type: 'int64' },
          });
          expect(maxAbsDiff(got, ort.y.data)).toBeLessThan(1e-5);
          tf.dispose([out, feeds]);
        }
        ex.dispose();
      }
    });
  }

  it('padded steps output the head bias only (zero LSTM output), as PyTorch pads', async () => {
    const { model } = loadModel(join(FIXTURES, 'lstm_sorted.onnx'));
    const ex = await OnnxExecutor.create(model, { backend: 'cpu' });
    const c = ref.cases[0]; // lens [7, 4, 2]
    const feeds = { x: tf.tensor(c.x, [c.batch, c.steps, 6]), lens: tf.tensor(c.lens, [c.batch], 'int32') };
    const y = ex.run(feeds).y;
    const rows = y.arraySync() as number[][][];
    const bias = (model.graph?.initializer ?? []).find((t) => t.name === 'head.bias')!;
    const b = Array.from(new Float32Array(new Uint8Array(bias.rawData!).slice().buffer));
    for (let t = c.lens[2]; t < c.steps; t++) expect(maxAbsDiff(rows[2][t], b)).toBeLessThan(1e-6);
    tf.dispose([y, feeds]);
    ex.dispose();
  });

  it('gradients through the recurrence equal central finite differences', async () => {
    const { model } = loadModel(join(FIXTURES, 'lstm_sorted.onnx'));
    const ex = await OnnxExecutor.create(model, { backend: 'cpu' });
    const c = ref.cases[0];
    const x = tf.tensor(c.x, [c.batch, c.steps, 6]);
    const lens = tf.tensor(c.lens, [c.batch], 'int32');
    const r = tf.tensor(lcgFloats(c.batch * c.steps * 3, 5), [c.batch, c.steps, 3]);
    const loss = (): tf.Scalar => tf.tidy(() => tf.sum(tf.mul(ex.run({ x, lens }).y, r)) as tf.Scalar);
    // The recurrent weights R [2, 20, 5] of the bidirectional LSTM.
    const lstmNode = model.graph!.node!.find((n) => n.opType === 'LSTM')!;
    const rName = lstmNode.input![2];
    const v = ex.variables.get(rName)!;
    const { grads } = tf.variableGrads(loss, [v]);
    const g = grads[v.name].dataSync();
    const base = v.dataSync().slice();
    const eps = 1e-2;
    for (const i of [0, 17, 63, 120, 199]) {
      const at = (delta: number): number => {
        const p = base.slice();
        p[i] += delta;
        v.assign(tf.tensor(p, v.shape));
        return loss().dataSync()[0];
      };
      const fd = (at(eps) - at(-eps)) / (2 * eps);
      expect(Math.abs(fd - g[i]), `R[${i}]`).toBeLessThan(2e-3 * (1 + Math.abs(g[i])));
    }
    v.assign(tf.tensor(base, v.shape));
    tf.dispose([x, lens, r, grads]);
    ex.dispose();
  });
});
