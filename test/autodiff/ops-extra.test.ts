/**
 * One-node models against onnxruntime-node for what the ONNX 1.12 node-test data does not cover in
 * float32: older-opset semantics (Softmax/LogSoftmax coerced to 2-D before opset 13, axes as
 * attributes before 13/18, Slice attributes before 10, Clip attributes before 11, Split forms),
 * opset-18 axes inputs, and ops whose test data is float64 (CumSum, ReduceLogSumExp, CastLike) or
 * newer than 1.12 (Gelu-20); every Constant value_* form; Cast between float, ints and bool (the
 * 1.12 Cast cases are float16/float64/string only); Pow with constant exponents.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { OnnxExecutor } from '../../src/autodiff/executor.js';
import { decodeModel, onnx as onnxNs, type onnx } from '../../src/onnx/codec.js';
import { DataType, makeTensor } from '../../src/onnx/tensor.js';
import { lcgFloats, maxAbsDiff, oneNodeModel, ortRun } from './helpers.js';

const F = DataType.FLOAT;
const ints = (name: string, v: number[]): onnx.IAttributeProto => ({ name, type: 7, ints: v });
const int = (name: string, v: number): onnx.IAttributeProto => ({ name, type: 2, i: v });
const flt = (name: string, v: number): onnx.IAttributeProto => ({ name, type: 1, f: v });
const str = (name: string, v: string): onnx.IAttributeProto => ({ name, type: 3, s: new TextEncoder().encode(v) });
const i64 = (name: string, v: Array<number | bigint>): onnx.ITensorProto =>
  makeTensor(name, DataType.INT64, [v.length], v.map((x) => BigInt(x)));

interface Case {
  title: string;
  opType: string;
  opset: number;
  dims: number[];
  attributes?: onnx.IAttributeProto[];
  initializers?: onnx.ITensorProto[];
  nodeInputs?: string[];
  outputs?: string[];
}

const X = [2, 3, 4];
const cases: Case[] = [
  { title: 'Softmax-11 axis=1 (2-D coercion)', opType: 'Softmax', opset: 11, dims: X, attributes: [int('axis', 1)] },
  { title: 'Softmax-11 default axis', opType: 'Softmax', opset: 11, dims: X },
  { title: 'Softmax-13 axis=1 (one axis)', opType: 'Softmax', opset: 13, dims: X, attributes: [int('axis', 1)] },
  { title: 'LogSoftmax-11 axis=1 (2-D coercion)', opType: 'LogSoftmax', opset: 11, dims: X, attributes: [int('axis', 1)] },
  { title: 'LogSoftmax-11 axis=-1', opType: 'LogSoftmax', opset: 11, dims: X, attributes: [int('axis', -1)] },
  { title: 'LogSoftmax-13 axis=0', opType: 'LogSoftmax', opset: 13, dims: X, attributes: [int('axis', 0)] },
  { title: 'ReduceSum-11 axes attr, keepdims 0', opType: 'ReduceSum', opset: 11, dims: X, attributes: [ints('axes', [0, 2]), int('keepdims', 0)] },
  { title: 'ReduceSum-13 axes input', opType: 'ReduceSum', opset: 13, dims: X, initializers: [i64('axes', [-1])] },
  { title: 'ReduceSum-13 empty axes, noop', opType: 'ReduceSum', opset: 13, dims: X, attributes: [int('noop_with_empty_axes', 1)] },
  { title: 'ReduceMean-11 axes attr', opType: 'ReduceMean', opset: 11, dims: X, attributes: [ints('axes', [-1])] },
  { title: 'ReduceMean-18 axes input', opType: 'ReduceMean', opset: 18, dims: X, initializers: [i64('axes', [1])], attributes: [int('keepdims', 0)] },
  { title: 'ReduceMax-18 axes input', opType: 'ReduceMax', opset: 18, dims: X, initializers: [i64('axes', [0, 1])] },
  { title: 'ReduceLogSumExp-13 float32', opType: 'ReduceLogSumExp', opset: 13, dims: X, attributes: [ints('axes', [1])] },
  { title: 'ReduceL2-18 axes input', opType: 'ReduceL2', opset: 18, dims: X, initializers: [i64('axes', [2])] },
  { title: 'CumSum exclusive reverse', opType: 'CumSum', opset: 14, dims: X, initializers: [i64('axis', [1])], attributes: [int('exclusive', 1), int('reverse', 1)] },
  { title: 'CumSum axis -1', opType: 'CumSum', opset: 14, dims: X, initializers: [i64('axis', [-1])] },
  { title: 'Unsqueeze-11 axes attr', opType: 'Unsqueeze', opset: 11, dims: X, attributes: [ints('axes', [0, -1])] },
  { title: 'Squeeze-11 axes attr', opType: 'Squeeze', opset: 11, dims: [2, 1, 4, 1], attributes: [ints('axes', [1])] },
  { title: 'Squeeze-13 no axes', opType: 'Squeeze', opset: 13, dims: [2, 1, 4, 1] },
  { title: 'Split-11 split attr', opType: 'Split', opset: 11, dims: X, attributes: [int('axis', 2), ints('split', [1, 3])], outputs: ['y', 'z'] },
  { title: 'Split-13 split input', opType: 'Split', opset: 13, dims: X, initializers: [i64('split', [2, 1])], attributes: [int('axis', 1)], outputs: ['y', 'z'] },
  { title: 'Split-18 num_outputs (uneven)', opType: 'Split', opset: 18, dims: [2, 7], attributes: [int('axis', 1), int('num_outputs', 3)], outputs: ['y', 'z', 'w'] },
  { title: 'Slice-9 attributes', opType: 'Slice', opset: 9, dims: X, attributes: [ints('starts', [1, -3]), ints('ends', [1000, -1]), ints('axes', [1, 2])] },
  {
    title: 'Slice-13 negative steps, clamped ends',
    opType: 'Slice', opset: 13, dims: [5, 6],
    initializers: [i64('starts', [100, -1]), i64('ends', [-100, 0]), i64('axes', [0, 1]), i64('steps', [-2, -3])],
  },
  {
    title: 'Slice-13 step 2 from a negative start',
    opType: 'Slice', opset: 13, dims: [5, 6],
    initializers: [i64('starts', [-4]), i64('ends', [9223372036854775807n]), i64('axes', [1]), i64('steps', [2])],
  },
  { title: 'Clip-6 attributes', opType: 'Clip', opset: 6, dims: X, attributes: [flt('min', -0.2), flt('max', 0.3)] },
  { title: 'Transpose default perm', opType: 'Transpose', opset: 13, dims: X },
  { title: 'Flatten axis -1', opType: 'Flatten', opset: 13, dims: X, attributes: [int('axis', -1)] },
  { title: 'Gelu-20 exact', opType: 'Gelu', opset: 20, dims: X },
  { title: 'Gelu-20 tanh', opType: 'Gelu', opset: 20, dims: X, attributes: [str('approximate', 'tanh')] },
  {
    title: 'CastLike-15 float → int32 (like)',
    opType: 'CastLike', opset: 15, dims: X,
    initializers: [makeTensor('like', DataType.INT32, [1], [0])],
  },
  { title: 'Dropout-12 inference identity with mask', opType: 'Dropout', opset: 13, dims: X, outputs: ['y', 'mask'] },
  {
    title: 'Expand to a higher rank',
    opType: 'Expand', opset: 13, dims: [3, 1], initializers: [i64('shape', [2, 1, 4])],
  },
  { title: 'Tile', opType: 'Tile', opset: 13, dims: [2, 3], initializers: [i64('repeats', [2, 3])] },
];

describe('one-node models vs onnxruntime-node', () => {
  for (const c of cases) {
    it(c.title, async () => {
      const outputs = (c.outputs ?? ['y']).map((name) => ({ name, elemType: name === 'mask' ? DataType.BOOL : c.opType === 'CastLike' ? DataType.INT32 : F }));
      const bytes = oneNodeModel({
        opType: c.opType,
        opset: c.opset,
        inputs: [{ name: 'x', elemType: F, dims: c.dims }],
        outputs,
        attributes: c.attributes,
        initializers: c.initializers,
      });
      const n = c.dims.reduce((a, b) => a * b, 1);
      const x = lcgFloats(n, c.title.length, c.opType === 'CastLike' ? 40 : 2);
      const ref = await ortRun(bytes, { x: { data: x, dims: c.dims, type: 'float32' } });
      for (const backend of ['cpu', 'wasm'] as const) {
        const ex = await OnnxExecutor.create(decodeModel(bytes), { backend });
        const out = ex.run({ x: tf.tensor(x, c.dims) });
        for (const o of outputs) {
          expect(out[o.name].shape, `${backend} ${o.name}`).toEqual([...ref[o.name].dims]);
          expect(out[o.name].size).toBeGreaterThan(0);
          const got = Array.from(out[o.name].dataSync(), Number);
          expect(maxAbsDiff(got, ref[o.name].data), `${backend} ${o.name}`).toBeLessThan(2e-6);
        }
        tf.dispose(out);
        ex.dispose();
      }
    });
  }
});

/** x → [Constant c] → Add(x, c) → y, or x → Cast → y, built by hand (two nodes where needed). */
function twoNodeModel(nodes: onnx.INodeProto[], opset: number, outType: number, initializers: onnx.ITensorProto[] = []): Uint8Array {
  const vi = (name: string, elemType: number, dims?: number[]): onnx.IValueInfoProto => ({
    name,
    type: { tensorType: { elemType, shape: dims ? { dim: dims.map((d) => ({ dimValue: d })) } : undefined } },
  });
  return onnxNs.ModelProto.encode(
    onnxNs.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: opset }],
      graph: { name: 'g', node: nodes, input: [vi('x', F, X)], output: [vi('y', outType)], initializer: initializers },
    }),
  ).finish();
}

/** Max |a − b| where NaN must meet NaN. */
function diffNaN(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    if (Number.isNaN(a[i]) || Number.isNaN(b[i])) {
      if (!(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return Infinity;
      continue;
    }
    m = Math.max(m, Math.abs(a[i] - b[i]));
  }
  return m;
}

async function compareWithOrt(bytes: Uint8Array, scale = 2): Promise<void> {
  const x = lcgFloats(24, 77, scale);
  const ref = await ortRun(bytes, { x: { data: x, dims: X, type: 'float32' } });
  for (const backend of ['cpu', 'wasm'] as const) {
    const ex = await OnnxExecutor.create(decodeModel(bytes), { backend });
    const out = ex.run({ x: tf.tensor(x, X) });
    expect(out.y.shape, backend).toEqual([...ref.y.dims]);
    expect(diffNaN(Array.from(out.y.dataSync(), Number), ref.y.data), backend).toBeLessThan(2e-6);
    tf.dispose(out);
    ex.dispose();
  }
}

describe('Constant (every value_* form), Cast, Pow with constant exponents vs onnxruntime-node', () => {
  const constCases: Array<[string, onnx.IAttributeProto, number]> = [
    ['value (tensor)', { name: 'value', type: 4, t: makeTensor('', F, [4], [1, -2, 3.5, 0.25]) }, F],
    ['value_float', { name: 'value_float', type: 1, f: 1.5 }, F],
    ['value_floats', { name: 'value_floats', type: 6, floats: [0.5, -1, 2, 4] }, F],
    ['value_int', { name: 'value_int', type: 2, i: 3 }, DataType.INT64],
    ['value_ints', { name: 'value_ints', type: 7, ints: [1, -2, 3, 7] }, DataType.INT64],
    [
      'sparse_value',
      {
        name: 'sparse_value',
        type: 11,
        sparseTensor: { dims: [4], values: makeTensor('', F, [2], [2.5, -1]), indices: makeTensor('', DataType.INT64, [2], [1, 3]) },
      },
      F,
    ],
  ];
  for (const [title, attr, type] of constCases) {
    it(`Constant ${title}`, async () => {
      const nodes: onnx.INodeProto[] = [{ name: 'c', opType: 'Constant', output: ['c'], attribute: [attr] }];
      if (type === F) nodes.push({ name: 'add', opType: 'Add', input: ['x', 'c'], output: ['y'] });
      else {
        nodes.push({ name: 'cf', opType: 'Cast', input: ['c'], output: ['cf'], attribute: [int('to', F)] });
        nodes.push({ name: 'add', opType: 'Add', input: ['x', 'cf'], output: ['y'] });
      }
      await compareWithOrt(twoNodeModel(nodes, 14, F));
    });
  }

  for (const [to, title] of [
    [DataType.INT64, 'FLOAT → INT64 (truncation toward zero)'],
    [DataType.INT32, 'FLOAT → INT32'],
    [DataType.BOOL, 'FLOAT → BOOL'],
    [DataType.UINT8, 'FLOAT → UINT8 (non-negative input)'],
  ] as const) {
    it(`Cast ${title}`, async () => {
      const nodes: onnx.INodeProto[] =
        to === DataType.UINT8
          ? [
              { name: 'a', opType: 'Abs', input: ['x'], output: ['ax'] },
              { name: 'c', opType: 'Cast', input: ['ax'], output: ['y'], attribute: [int('to', to)] },
            ]
          : [{ name: 'c', opType: 'Cast', input: ['x'], output: ['y'], attribute: [int('to', to)] }];
      await compareWithOrt(twoNodeModel(nodes, 13, to), 9);
    });
  }

  it('Cast BOOL → FLOAT and INT64 → FLOAT round trip', async () => {
    const nodes: onnx.INodeProto[] = [
      { name: 'g', opType: 'Greater', input: ['x', 'zero'], output: ['b'] },
      { name: 'bf', opType: 'Cast', input: ['b'], output: ['bf'], attribute: [int('to', F)] },
      { name: 'xi', opType: 'Cast', input: ['x'], output: ['xi'], attribute: [int('to', DataType.INT64)] },
      { name: 'xf', opType: 'Cast', input: ['xi'], output: ['xf'], attribute: [int('to', F)] },
      { name: 'add', opType: 'Add', input: ['bf', 'xf'], output: ['y'] },
    ];
    await compareWithOrt(twoNodeModel(nodes, 13, F, [makeTensor('zero', F, [], [0])]), 9);
  });

  for (const e of [2, 0.5, 3, -1]) {
    it(`Pow with a constant exponent ${e} (NaN where the reference has NaN)`, async () => {
      const nodes: onnx.INodeProto[] = [{ name: 'p', opType: 'Pow', input: ['x', 'e'], output: ['y'] }];
      await compareWithOrt(twoNodeModel(nodes, 13, F, [makeTensor('e', F, [], [e])]));
    });
  }
});
