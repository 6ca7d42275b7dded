/**
 * OnnxExecutor behaviour: create-time errors (unsupported ops and attributes, malformed graphs),
 * feed validation, hooks, chosen outputs, the per-shape host cache, write-back of trained values
 * (checked through onnxruntime-node), dispose.
 */
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { OnnxExecutor } from '../../src/autodiff/executor.js';
import { lookupOp } from '../../src/autodiff/registry.js';
import { withInitializers } from '../../src/autodiff/weights.js';
import { GraphError } from '../../src/errors.js';
import { decodeModel, encodeModel, onnx } from '../../src/onnx/codec.js';
import { DataType, makeTensor } from '../../src/onnx/tensor.js';
import { FIXTURES, intTensor, loadModel, maxAbsDiff, oneNodeModel, ortRun } from './helpers.js';

const BERT = join(FIXTURES, 'grad_bert.onnx');
const IDS = [[2, 7, 13, 21, 5, 3], [2, 31, 9, 17, 26, 11]];
const feedsOf = (rows: number[][]): Record<string, tf.Tensor> => ({
  input_ids: intTensor(rows),
  attention_mask: intTensor(rows.map((r) => r.map(() => 1))),
  token_type_ids: intTensor(rows.map((r) => r.map(() => 0))),
});

/** A graph: x → Relu → <op> → y, with the given node for <op>. */
function graphWith(nodes: onnx.INodeProto[], opset = 14): onnx.ModelProto {
  return decodeModel(
    onnx.ModelProto.encode(
      onnx.ModelProto.create({
        irVersion: 8,
        opsetImport: [{ domain: '', version: opset }],
        graph: {
          name: 'g',
          node: nodes,
          input: [{ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 2 }, { dimValue: 3 }] } } } }],
          output: [{ name: 'y', type: { tensorType: { elemType: 1 } } }],
          initializer: [makeTensor('w', DataType.FLOAT, [3], [1, 2, 3])],
        },
      }),
    ).finish(),
  );
}

afterEach(() => vi.restoreAllMocks());

describe('create-time checks', () => {
  it('names every unsupported op type, the first node, and creates nothing', async () => {
    const model = graphWith([
      { name: 'r', opType: 'Relu', input: ['x'], output: ['a'] },
      { name: 'nz', opType: 'NonZero', input: ['a'], output: ['b'] },
      { name: 'hm', opType: 'Hardmax', input: ['a'], output: ['c'] },
      { name: 'add', opType: 'Add', input: ['a', 'w'], output: ['y'] },
    ]);
    const before = tf.memory().numTensors;
    const err = (await OnnxExecutor.create(model, { backend: 'cpu' }).catch((e: unknown) => e)) as GraphError;
    expect(err).toBeInstanceOf(GraphError);
    expect(err.message).toMatch(/NonZero, Hardmax/);
    expect(err.message).toMatch(/"nz"/);
    expect(err.where.node).toBe('nz');
    expect(err.hint).toMatch(/opset/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses an op below its first supported opset, naming the opset', async () => {
    const model = graphWith([{ name: 'lnorm', opType: 'LayerNormalization', input: ['x', 'w'], output: ['y'] }], 14);
    const err = (await OnnxExecutor.create(model, { backend: 'cpu' }).catch((e: unknown) => e)) as GraphError;
    expect(err).toBeInstanceOf(GraphError);
    expect(err.message).toMatch(/LayerNormalization.*opset 14/);
  });

  it('refuses unsupported attribute values with the node name', async () => {
    const cases: Array<[onnx.INodeProto, RegExp]> = [
      [{ name: 'c', opType: 'Cast', input: ['x'], output: ['y'], attribute: [{ name: 'to', type: 2, i: 8 }] }, /STRING/],
      [{ name: 'm', opType: 'Mod', input: ['x', 'w'], output: ['y'], attribute: [{ name: 'fmod', type: 2, i: 3 }] }, /fmod=3/],
      [
        {
          name: 'lstm', opType: 'LSTM', input: ['x', 'w', 'w'], output: ['y'],
          attribute: [{ name: 'activations', type: 8, strings: ['Elu', 'Tanh', 'Tanh'].map((s) => new TextEncoder().encode(s)) }],
        },
        /activation Elu/,
      ],
      [
        { name: 'bn', opType: 'BatchNormalization', input: ['x', 'w', 'w', 'w', 'w'], output: ['y', 'rm', 'rv'], attribute: [{ name: 'training_mode', type: 2, i: 1 }] },
        /training mode/,
      ],
    ];
    for (const [node, re] of cases) {
      const err = (await OnnxExecutor.create(graphWith([node]), { backend: 'cpu' }).catch((e: unknown) => e)) as GraphError;
      expect(err, node.name ?? '').toBeInstanceOf(GraphError);
      expect(err.message).toMatch(re);
      expect(err.where.node).toBe(node.name);
      expect(err.hint).toBeTruthy();
    }
  });

  it('evaluates constant subgraphs at create time and reports their errors there', async () => {
    const shape = makeTensor('s', DataType.INT64, [2], [4, 5]);
    const model = graphWith([
      { name: 'k', opType: 'Constant', output: ['k'], attribute: [{ name: 'value', type: 4, t: makeTensor('', DataType.INT64, [2, 3], [1, 2, 3, 4, 5, 6]) }] },
      { name: 'bad_reshape', opType: 'Reshape', input: ['k', 's'], output: ['r'] },
      { name: 'add', opType: 'Add', input: ['x', 'w'], output: ['y'] },
    ]);
    model.graph!.initializer!.push(shape);
    const err = (await OnnxExecutor.create(model, { backend: 'cpu' }).catch((e: unknown) => e)) as GraphError;
    expect(err).toBeInstanceOf(GraphError);
    expect(err.where.node).toBe('bad_reshape');
    expect(err.message).toMatch(/cannot reshape \[2,3\]/);
  });

  it('rejects a node reading a value nothing provides', async () => {
    const model = graphWith([{ name: 'add', opType: 'Add', input: ['x', 'nowhere'], output: ['y'] }]);
    const err = (await OnnxExecutor.create(model, { backend: 'cpu' }).catch((e: unknown) => e)) as GraphError;
    expect(err).toBeInstanceOf(GraphError);
    expect(err.where.node).toBe('add');
    expect(err.message).toMatch(/nowhere/);
  });

  it('treats an initializer that is also a graph input as a default a feed may replace', async () => {
    const model = graphWith([{ name: 'rs', opType: 'Reshape', input: ['x', 'shape'], output: ['y'] }]);
    model.graph!.initializer!.push(makeTensor('shape', DataType.INT64, [2], [3, 2]));
    model.graph!.input!.push({ name: 'shape', type: { tensorType: { elemType: DataType.INT64 } } });
    const ex = await OnnxExecutor.create(model, { backend: 'cpu' });
    const x = tf.tensor([[1, 2, 3], [4, 5, 6]]);
    const a = ex.run({ x }).y;
    expect(a.shape).toEqual([3, 2]);
    const b = ex.run({ x, shape: tf.tensor([1, 6], [2], 'int32') }).y;
    expect(b.shape).toEqual([1, 6]);
    tf.dispose([a, b, x]);
    ex.dispose();
  });

  it('runs nodes listed out of order (topological sort)', async () => {
    const model = graphWith([
      { name: 'add', opType: 'Add', input: ['a', 'w'], output: ['y'] },
      { name: 'r', opType: 'Relu', input: ['x'], output: ['a'] },
    ]);
    const ex = await OnnxExecutor.create(model, { backend: 'cpu' });
    const y = ex.run({ x: tf.tensor([[-1, 0, 1], [2, -2, 3]]) }).y;
    expect(Array.from(y.dataSync())).toEqual([1, 2, 4, 3, 2, 6]);
    y.dispose();
    ex.dispose();
  });
});

describe('run', () => {
  it('validates feeds and requested outputs', async () => {
    const ex = await OnnxExecutor.create(loadModel(BERT).model, { backend: 'cpu' });
    const f = feedsOf(IDS);
    const { token_type_ids: _t, ...missing } = f;
    expect(() => ex.run(missing)).toThrow(/graph input "token_type_ids" has no feed/);
    expect(() => ex.run({ ...f, extra: tf.zeros([1]) })).toThrow(/"extra" is not a graph input/);
    expect(() => ex.run(f, { outputs: ['no_such_value'] })).toThrow(GraphError);
    tf.dispose(f);
    ex.dispose();
    expect(() => ex.run(feedsOf(IDS))).toThrow(/disposed/);
  });

  it('returns any named value, and graph inputs and constants as tensors', async () => {
    const { model } = loadModel(BERT);
    const ex = await OnnxExecutor.create(model, { backend: 'cpu' });
    const f = feedsOf(IDS);
    const ctxName = '/bert/encoder/layer.0/attention/self/MatMul_1_output_0';
    const out = ex.run(f, { outputs: [ctxName, 'input_ids', 'logits'] });
    expect(out[ctxName].shape).toEqual([2, 2, 6, 8]); // [B, heads, T, head size]
    expect(Array.from(out.input_ids.dataSync())).toEqual(IDS.flat());
    tf.dispose([out, f]);
    ex.dispose();
  });

  it('hooks: afterNode scales a head, tensors transforms an initializer; shape changes are refused', async () => {
    const ex = await OnnxExecutor.create(loadModel(BERT).model, { backend: 'cpu' });
    const f = feedsOf(IDS);
    const base = ex.run(f).logits;
    // Adding 1 to the classifier bias through a tensors hook adds exactly 1 to every logit.
    const shifted = ex.run(f, { hooks: { tensors: { 'classifier.bias': (b) => tf.add(b, 1) } } }).logits;
    expect(maxAbsDiff(tf.sub(shifted, base).dataSync(), new Array<number>(base.size).fill(1))).toBeLessThan(1e-5);
    // Gating every head of both layers by 1 changes nothing; gating by 0 changes the logits.
    const seen: string[] = [];
    const gate = (g: number) => ({
      afterNode: (node: string, _o: string, v: tf.Tensor) => {
        if (!/attention\/self\/MatMul_1$/.test(node)) return v;
        seen.push(node);
        return tf.mul(v, tf.fill([1, 2, 1, 1], g));
      },
    });
    const ones = ex.run(f, { hooks: gate(1) }).logits;
    expect(seen).toEqual(['/bert/encoder/layer.0/attention/self/MatMul_1', '/bert/encoder/layer.1/attention/self/MatMul_1']);
    expect(maxAbsDiff(ones.dataSync(), base.dataSync())).toBeLessThan(1e-6);
    const zeros = ex.run(f, { hooks: gate(0) }).logits;
    expect(maxAbsDiff(zeros.dataSync(), base.dataSync())).toBeGreaterThan(1e-2);
    expect(() => ex.run(f, { hooks: { afterNode: (n, _o, v) => (n.endsWith('MatMul_1') ? tf.sum(v) : v) } })).toThrow(
      /hook changed the shape/,
    );
    tf.dispose([base, shifted, ones, zeros, f]);
    ex.dispose();
  });

  it('evaluates shape subgraphs once per distinct feed shape', async () => {
    const ex = await OnnxExecutor.create(loadModel(BERT).model, { backend: 'cpu' });
    const concat = lookupOp('', 'Concat', 14)!;
    const spy = vi.spyOn(concat, 'host');
    const run = (rows: number[][]) => {
      const f = feedsOf(rows);
      tf.dispose([ex.run(f), f]);
    };
    run(IDS);
    const first = spy.mock.calls.length;
    expect(first).toBeGreaterThan(0); // the head split/merge target shapes
    run(IDS.map((r) => r.map((x) => (x + 1) % 40)));
    expect(spy.mock.calls.length).toBe(first); // same shape, new data: cached
    run([IDS[0]]);
    expect(spy.mock.calls.length).toBe(2 * first); // a new shape: evaluated again
    ex.dispose();
  });
});

describe('trained values back into the ONNX', () => {
  it('exportInitializers + withInitializers give a model onnxruntime runs to the executor\'s logits', async () => {
    const { model } = loadModel(BERT);
    const ex = await OnnxExecutor.create(model, { backend: 'cpu' });
    const f = feedsOf(IDS);
    const before = ex.run(f).logits;
    const q = ex.variables.get('bert.encoder.layer.0.attention.self.query.bias')!;
    q.assign(tf.add(q, 0.5));
    const cls = ex.variables.get('classifier.bias')!;
    cls.assign(tf.add(cls, 1));
    const after = ex.run(f).logits;
    const values = ex.exportInitializers();
    expect(values.size).toBe(ex.variables.size);
    const changed = new Map([...values].filter(([n]) => n === 'bert.encoder.layer.0.attention.self.query.bias' || n === 'classifier.bias'));
    expect(changed.size).toBe(2);
    const written = withInitializers(model, changed);
    // The input model is untouched; untouched initializers are shared.
    expect(model.graph!.initializer!.find((t) => t.name === 'classifier.bias')).not.toBe(
      written.graph!.initializer!.find((t) => t.name === 'classifier.bias'),
    );
    const bytes = encodeModel(written);
    const ort = await ortRun(bytes, {
      input_ids: { data: IDS.flat(), dims: [2, 6], type: 'int64' },
      attention_mask: { data: IDS.flat().map(() => 1), dims: [2, 6], type: 'int64' },
      token_type_ids: { data: IDS.flat().map(() => 0), dims: [2, 6], type: 'int64' },
    });
    expect(maxAbsDiff(ort.logits.data, after.dataSync())).toBeLessThan(1e-4);
    expect(maxAbsDiff(after.dataSync(), before.dataSync())).toBeGreaterThan(0.5);
    // Round trip through the codec keeps the values.
    const again = await OnnxExecutor.create(decodeModel(bytes), { backend: 'cpu' });
    expect(maxAbsDiff(again.variables.get('classifier.bias')!.dataSync(), cls.dataSync())).toBe(0);
    again.dispose();
    tf.dispose([before, after, f]);
    ex.dispose();
  });

  it('refuses unknown names, wrong sizes and non-float initializers', () => {
    const { model } = loadModel(BERT);
    expect(() => withInitializers(model, new Map([['nope', new Float32Array(1)]]))).toThrow(/no initializer "nope"/);
    expect(() => withInitializers(model, new Map([['classifier.bias', new Float32Array(4)]]))).toThrow(/5 elements, 4 values/);
    const m = graphWith([{ name: 'add', opType: 'Add', input: ['x', 'w'], output: ['y'] }]);
    m.graph!.initializer!.push(makeTensor('ints', DataType.INT64, [1], [3]));
    expect(() => withInitializers(m, new Map([['ints', new Float32Array(1)]]))).toThrow(/not a float tensor/);
  });
});

describe('one-node models (sanity of the helper)', () => {
  it('runs a Gemm with transB like onnxruntime', async () => {
    const bytes = oneNodeModel({
      opType: 'Gemm',
      opset: 13,
      inputs: [{ name: 'a', elemType: 1, dims: [2, 3] }],
      outputs: [{ name: 'y', elemType: 1, dims: [2, 4] }],
      initializers: [makeTensor('b', DataType.FLOAT, [4, 3], [...Array(12).keys()].map((i) => i / 10)), makeTensor('c', DataType.FLOAT, [4], [1, 2, 3, 4])],
      attributes: [{ name: 'transB', type: 2, i: 1 }, { name: 'alpha', type: 1, f: 0.5 }],
    });
    const ex = await OnnxExecutor.create(decodeModel(bytes), { backend: 'cpu' });
    const a = [1, -2, 3, 0.5, 0.25, -1];
    const y = ex.run({ a: tf.tensor(a, [2, 3]) }).y;
    const ref = await ortRun(bytes, { a: { data: a, dims: [2, 3], type: 'float32' } });
    expect(maxAbsDiff(y.dataSync(), ref.y.data)).toBeLessThan(1e-6);
    y.dispose();
    ex.dispose();
  });
});

describe('memory', () => {
  it('a 12-layer model at batch 8 x 128: no tensor survives a call, outputs match onnxruntime', async () => {
    const { bytes, model } = loadModel(join(FIXTURES, 'deep12.onnx'));
    const ex = await OnnxExecutor.create(model, { backend: 'wasm' });
    const [B, T] = [8, 128];
    const ids = Array.from({ length: B * T }, (_, i) => 1 + ((i * 37) % 99));
    const mask = Array.from({ length: B * T }, (_, i) => (i % T < T - 9 * Math.floor(i / T) ? 1 : 0));
    const feeds = {
      input_ids: tf.tensor(ids, [B, T], 'int32'),
      attention_mask: tf.tensor(mask, [B, T], 'int32'),
      token_type_ids: tf.zeros([B, T], 'int32'),
    };
    tf.dispose(ex.run(feeds)); // first call converts constants and fills the shape cache
    const counts: number[] = [];
    let logits: Float32Array | undefined;
    for (let i = 0; i < 3; i++) {
      const out = ex.run(feeds);
      logits = out.logits.dataSync() as Float32Array;
      out.logits.dispose();
      counts.push(tf.memory().numTensors);
    }
    expect(new Set(counts).size).toBe(1);
    const ort = await ortRun(bytes, {
      input_ids: { data: ids, dims: [B, T], type: 'int64' },
      attention_mask: { data: mask, dims: [B, T], type: 'int64' },
      token_type_ids: { data: new Array<number>(B * T).fill(0), dims: [B, T], type: 'int64' },
    });
    expect(maxAbsDiff(logits!, ort.logits.data)).toBeLessThan(1e-4);
    tf.dispose(feeds);
    ex.dispose();
  });
});
