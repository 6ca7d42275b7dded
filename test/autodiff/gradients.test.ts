/**
 * Gradients through a PyTorch-exported BERT token classifier (test/autodiff/fixtures/grad_bert.onnx):
 * d(loss)/d(weights) and d(loss)/d(per-head gate hook variables) equal PyTorch autograd's and central
 * finite differences, on cpu and on wasm (where the embedding gradient uses ranerc's
 * UnsortedSegmentSum kernel).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { OnnxExecutor, type ExecutorHooks } from '../../src/autodiff/executor.js';
import { FIXTURES, intTensor, loadModel, maxAbsDiff } from './helpers.js';

interface GradRef {
  input_ids: number[][];
  attention_mask: number[][];
  token_type_ids: number[][];
  labels: number[][];
  logits: number[];
  loss: number;
  grads: Record<string, { shape: number[]; grad: number[] }>;
  gate_nodes: string[];
  gate_grads: number[][];
  heads: number;
}

const ref = JSON.parse(readFileSync(join(FIXTURES, 'grad_reference.json'), 'utf8')) as GradRef;
const { model } = loadModel(join(FIXTURES, 'grad_bert.onnx'));
const LABELS = 5;

/** mean over real tokens of cross-entropy(logits, labels) — the loss the reference used. */
function lossOf(ex: OnnxExecutor, feeds: Record<string, tf.Tensor>, labels: tf.Tensor, mask: tf.Tensor, hooks?: ExecutorHooks): tf.Scalar {
  return tf.tidy(() => {
    const logits = ex.run(feeds, { hooks }).logits;
    const logp = tf.logSoftmax(logits);
    const nll = tf.neg(tf.sum(tf.mul(logp, tf.oneHot(labels, LABELS)), -1));
    const m = tf.cast(mask, 'float32');
    return tf.div(tf.sum(tf.mul(nll, m)), tf.sum(m)) as tf.Scalar;
  });
}

function gateHooks(gates: tf.Variable[]): ExecutorHooks {
  return {
    afterNode: (nodeName, _out, value) => {
      const layer = ref.gate_nodes.indexOf(nodeName);
      return layer < 0 ? value : tf.mul(value, tf.reshape(gates[layer], [1, ref.heads, 1, 1]));
    },
  };
}

/** |a − b| ≤ atol + rtol·|b| elementwise; returns the worst ratio (≤ 1 passes). */
function worst(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol: number): number {
  let w = 0;
  for (let i = 0; i < b.length; i++) w = Math.max(w, Math.abs(a[i] - b[i]) / (atol + rtol * Math.abs(b[i])));
  return w;
}

describe('gradients through grad_bert.onnx', () => {
  const feeds = (): Record<string, tf.Tensor> => ({
    input_ids: intTensor(ref.input_ids),
    attention_mask: intTensor(ref.attention_mask),
    token_type_ids: intTensor(ref.token_type_ids),
  });
  const labels = intTensor(ref.labels);
  const mask = intTensor(ref.attention_mask);
  afterAll(() => tf.dispose([labels, mask]));

  for (const backend of ['cpu', 'wasm'] as const) {
    it(`${backend}: logits, loss and every reference gradient equal PyTorch autograd`, async () => {
      const ex = await OnnxExecutor.create(model, { backend });
      expect(ex.backend.name).toBe(backend);
      const f = feeds();
      const logits = ex.run(f).logits;
      expect(maxAbsDiff(logits.dataSync(), ref.logits)).toBeLessThan(1e-5);
      logits.dispose();

      const gates = ref.gate_nodes.map(() => tf.variable(tf.ones([ref.heads])));
      const names = Object.keys(ref.grads);
      const vars = [...names.map((n) => ex.variables.get(n)!), ...gates];
      expect(vars.every((v) => v !== undefined)).toBe(true);
      const { value, grads } = tf.variableGrads(() => lossOf(ex, f, labels, mask, gateHooks(gates)), vars);
      expect(Math.abs(value.dataSync()[0] - ref.loss)).toBeLessThan(1e-5);
      for (const n of names) {
        const g = grads[ex.variables.get(n)!.name];
        expect(g.shape, n).toEqual(ref.grads[n].shape);
        expect(worst(g.dataSync(), ref.grads[n].grad, 2e-6, 1e-3), n).toBeLessThanOrEqual(1);
      }
      gates.forEach((gv, l) => {
        expect(worst(grads[gv.name].dataSync(), ref.gate_grads[l], 2e-6, 1e-3), `gate ${l}`).toBeLessThanOrEqual(1);
      });
      // Rows of the embedding table no token used get exactly zero gradient.
      const used = new Set(ref.input_ids.flat());
      const wg = grads[ex.variables.get('bert.embeddings.word_embeddings.weight')!.name].arraySync() as number[][];
      wg.forEach((row, id) => {
        if (!used.has(id)) expect(row.every((x) => x === 0), `row ${id}`).toBe(true);
      });
      tf.dispose([value, grads, gates, f]);
      ex.dispose();
    });
  }

  it('weight and gate gradients equal central finite differences (float32, eps 1e-2)', async () => {
    const ex = await OnnxExecutor.create(model, { backend: 'cpu' });
    const f = feeds();
    const gates = ref.gate_nodes.map(() => tf.variable(tf.ones([ref.heads])));
    const hooks = gateHooks(gates);
    const probes: Array<[tf.Variable, number[]]> = [
      [ex.variables.get('bert.embeddings.word_embeddings.weight')!, [7 * 16 + 3, 31 * 16 + 11, 2 * 16]],
      [ex.variables.get('classifier.bias')!, [0, 4]],
      [ex.variables.get('bert.encoder.layer.0.attention.self.query.bias')!, [1, 9]],
      [gates[0], [0, 1]],
      [gates[1], [0, 1]],
    ];
    const vars = probes.map(([v]) => v);
    const { grads } = tf.variableGrads(() => lossOf(ex, f, labels, mask, hooks), vars);
    const eps = 1e-2;
    for (const [v, idx] of probes) {
      const g = grads[v.name].dataSync();
      const base = v.dataSync().slice();
      for (const i of idx) {
        const at = (d: number): number => {
          const p = base.slice();
          p[i] += d;
          v.assign(tf.tensor(p, v.shape));
          const l = lossOf(ex, f, labels, mask, hooks);
          const x = l.dataSync()[0];
          l.dispose();
          return x;
        };
        const fd = (at(eps) - at(-eps)) / (2 * eps);
        expect(Math.abs(fd - g[i]), `${v.name}[${i}] fd ${fd} vs ${g[i]}`).toBeLessThan(5e-4 + 1e-2 * Math.abs(g[i]));
      }
      v.assign(tf.tensor(base, v.shape));
    }
    tf.dispose([grads, gates, f]);
    ex.dispose();
  });

  it('trains: a few Adam steps on the trainable variables lower the loss; frozen ones stay put', async () => {
    const ex = await OnnxExecutor.create(model, { backend: 'wasm', trainable: (n) => !n.startsWith('bert.embeddings.') });
    const frozen = ex.variables.get('bert.embeddings.word_embeddings.weight')!;
    expect(frozen.trainable).toBe(false);
    expect(ex.trainableVariables().length).toBe(ex.variables.size - 5);
    const before = frozen.dataSync().slice();
    const f = feeds();
    const opt = tf.train.adam(1e-2);
    const losses: number[] = [];
    for (let step = 0; step < 5; step++) {
      const l = opt.minimize(() => lossOf(ex, f, labels, mask), true, ex.trainableVariables())!;
      losses.push(l.dataSync()[0]);
      l.dispose();
    }
    expect(losses[0]).toBeCloseTo(ref.loss, 4);
    expect(losses[4]).toBeLessThan(losses[0] - 0.1);
    expect(maxAbsDiff(frozen.dataSync(), before)).toBe(0);
    opt.dispose();
    tf.dispose(f);
    ex.dispose();
  });
});
