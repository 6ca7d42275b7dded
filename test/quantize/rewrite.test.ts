/**
 * The graph rewrite on one-op graphs, run in onnxruntime: every format (QDQ, QOperator, dynamic) computes
 * what the ONNX operator definitions say for the quantized tensors (simulated here from the parameters the
 * rewrite chose), stays within the worst-case quantization error of the float result, uses the stable
 * names, and shares one quantizer per tensor.
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { GraphError, UsageError } from '../../src/errors.js';
import { DataType, makeTensor, readTensor } from '../../src/onnx/tensor.js';
import { floatTensorOf } from '../../src/quantize/naming.js';
import { planQuantization } from '../../src/quantize/plan.js';
import { dynamicQuantizeLinear, fakeQuantize, type QParams } from '../../src/quantize/qparams.js';
import { AT, buildModel, countOps, floatInit, initializer, noise, quantize, run } from './helpers.js';

/** [m, k] × [k, n] in float64 (row-major flat arrays). */
function matmul(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let t = 0; t < k; t++) s += a[i * k + t] * b[t * n + j];
    out[i * n + j] = s;
  }
  return out;
}

/** Worst-case |ŷ − y| for y = a·b with quantized a, b (element-wise bound). */
function bound(a: ArrayLike<number>, aq: ArrayLike<number>, b: ArrayLike<number>, bq: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let t = 0; t < k; t++) s += Math.abs(a[i * k + t] - aq[i * k + t]) * Math.abs(bq[t * n + j]) + Math.abs(a[i * k + t]) * Math.abs(b[t * n + j] - bq[t * n + j]);
    out[i * n + j] = s;
  }
  return out;
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: (i: number) => number, what: string): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= tol(i))) throw new Error(`${what}[${i}]: got ${got[i]}, want ${want[i]} (|diff| ${d} > ${tol(i)})`);
  }
}

const dynamicParams = (x: Float32Array): QParams => {
  const d = dynamicQuantizeLinear(x);
  return { type: 'uint8', scale: Float32Array.of(d.scale), zeroPoint: Int32Array.of(d.zeroPoint) };
};

describe('MatMul activation × weight', () => {
  const [M, K, N] = [6, 8, 5];
  const W = noise(K * N, 7, 0.8);
  W[3] = 1.9; // one outlier column
  const x = noise(M * K, 11, 2.5);
  x[5] = -4; // asymmetric range
  const model = buildModel({
    nodes: [{ opType: 'MatMul', name: 'mm', input: ['x', 'W'], output: ['y'] }],
    initializers: [floatInit('W', [K, N], W)],
    inputs: [{ name: 'x', dims: [2, 3, K] }],
    outputs: ['y'],
  });
  const feeds = { x: new ort.Tensor('float32', x, [2, 3, K]) };
  const calib = [{ feeds }];

  for (const variant of [
    { name: 'QDQ per tensor', opts: {} },
    { name: 'QDQ per channel', opts: { perChannel: true } },
    { name: 'QOperator per tensor', opts: { format: 'qoperator' as const } },
    { name: 'QOperator per channel', opts: { format: 'qoperator' as const, perChannel: true } },
    { name: 'dynamic', opts: { mode: 'dynamic' as const } },
    { name: 'dynamic per channel', opts: { mode: 'dynamic' as const, perChannel: true } },
  ]) {
    it(`${variant.name}: onnxruntime computes the quantized product, within the quantization error of the float one`, async () => {
      const q = await quantize(model, calib, variant.opts);
      expect(q.quantized).toEqual(['mm']);
      const yFloat = (await run(model, feeds)).y.data as Float32Array;
      const y = (await run(q.model, feeds)).y.data as Float32Array;
      const wp = q.params.get('W')!;
      expect(wp.scale.length).toBe(variant.opts.perChannel ? N : 1);
      const xp = variant.opts.mode === 'dynamic' ? dynamicParams(x) : q.params.get('x')!;
      const xq = fakeQuantize(x, xp);
      const wq = fakeQuantize(W, wp, [K, N]);
      const sim = matmul(xq, wq, M, K, N);
      const err = bound(x, xq, W, wq, M, K, N);
      const ref = matmul(x, W, M, K, N);
      for (let i = 0; i < ref.length; i++) expect(Math.abs(yFloat[i] - ref[i])).toBeLessThan(1e-5);
      if (variant.opts.format === 'qoperator') {
        // QLinearMatMul requantizes its output with the calibrated output range
        const yp = q.params.get('y')!;
        const want = fakeQuantize(Float32Array.from(sim), yp);
        expectClose(y, want, () => yp.scale[0] * 1.001, 'y vs requantized simulation');
        expectClose(y, ref, (i) => err[i] + yp.scale[0] * 0.5 + 1e-5, 'y vs float');
        expect(countOps(q.model)).toMatchObject({ QuantizeLinear: 1, QLinearMatMul: 1, DequantizeLinear: 1 });
      } else {
        expectClose(y, sim, (i) => 1e-5 * (1 + Math.abs(sim[i])), 'y vs simulation');
        expectClose(y, ref, (i) => err[i] + 1e-5, 'y vs float');
      }
      // the error really is quantization error: not zero, and far below the signal
      let e2 = 0;
      let s2 = 0;
      for (let i = 0; i < ref.length; i++) {
        e2 += (y[i] - ref[i]) ** 2;
        s2 += ref[i] ** 2;
      }
      expect(e2).toBeGreaterThan(0);
      expect(10 * Math.log10(s2 / e2)).toBeGreaterThan(25);
      // the weight is stored once, as int8, under its stable name; the float weight is gone
      const wqT = initializer(q.model, 'W_quantized')!;
      expect(wqT.dataType).toBe(DataType.INT8);
      const wInts = Array.from(readTensor(wqT).data as Int8Array);
      expect(Math.max(...wInts.map(Math.abs))).toBe(127); // symmetric: the largest |w| maps to ±127, −128 unused
      expect(Math.min(...wInts)).toBeGreaterThanOrEqual(-127);
      expect(initializer(q.model, 'W')).toBeUndefined();
      expect(readTensor(initializer(q.model, 'W_scale')!).dims).toEqual(variant.opts.perChannel ? [N] : []);
      for (const t of q.model.graph!.initializer!) {
        const base = floatTensorOf(t.name!);
        expect(base === 'W' || base === 'x' || base === 'y', `${t.name} pairs with a float tensor`).toBe(true);
      }
    });
  }

  it('QDQ layout: Q/DQ pair on the activation, DQ on the int8 weight (axis 1 per channel), MatMul kept', async () => {
    const q = await quantize(model, calib, { perChannel: true });
    const nodes = q.model.graph!.node!;
    const byName = Object.fromEntries(nodes.map((n) => [n.name, n]));
    expect(byName.x_QuantizeLinear).toMatchObject({ opType: 'QuantizeLinear', input: ['x', 'x_scale', 'x_zero_point'], output: ['x_quantized'] });
    expect(byName.x_DequantizeLinear).toMatchObject({ opType: 'DequantizeLinear', input: ['x_quantized', 'x_scale', 'x_zero_point'], output: ['x_DequantizeLinear_Output'] });
    expect(byName.W_DequantizeLinear).toMatchObject({ input: ['W_quantized', 'W_scale', 'W_zero_point'], output: ['W_DequantizeLinear_Output'] });
    expect(byName.W_DequantizeLinear.attribute).toEqual([{ name: 'axis', type: AT.INT, i: 1 }]);
    expect(byName.mm).toMatchObject({ opType: 'MatMul', input: ['x_DequantizeLinear_Output', 'W_DequantizeLinear_Output'], output: ['y'] });
    expect(initializer(q.model, 'x_zero_point')!.dataType).toBe(DataType.UINT8);
    expect(initializer(q.model, 'W_zero_point')!.dataType).toBe(DataType.INT8);
  });

  it('dynamic layout: DynamicQuantizeLinear → MatMulInteger → Cast → Mul(Mul(a_scale, b_scale)) (onnxruntime fuses it)', async () => {
    const q = await quantize(model, calib, { mode: 'dynamic' });
    expect(q.model.graph!.node!.map((n) => n.opType)).toEqual(['DynamicQuantizeLinear', 'MatMulInteger', 'Cast', 'Mul', 'Mul']);
    const [dql, mmi, , scales, out] = q.model.graph!.node!;
    expect(dql.output).toEqual(['x_quantized', 'x_scale', 'x_zero_point']);
    expect(mmi.input).toEqual(['x_quantized', 'W_quantized', 'x_zero_point', 'W_zero_point']);
    expect(scales.input).toEqual(['x_scale', 'W_scale']);
    expect(out.output).toEqual(['y']);
  });
});

describe('activation × activation MatMul (attention products)', () => {
  const a = noise(2 * 4 * 6, 3, 1.5);
  const b = noise(2 * 6 * 3, 5, 0.9);
  const model = buildModel({
    nodes: [{ opType: 'MatMul', name: 'qk', input: ['a', 'b'], output: ['y'] }],
    inputs: [
      { name: 'a', dims: [2, 4, 6] },
      { name: 'b', dims: [2, 6, 3] },
    ],
    outputs: ['y'],
  });
  const feeds = { a: new ort.Tensor('float32', a, [2, 4, 6]), b: new ort.Tensor('float32', b, [2, 6, 3]) };
  for (const opts of [{}, { format: 'qoperator' as const }, { mode: 'dynamic' as const }]) {
    it(`${JSON.stringify(opts)}: both inputs uint8, result per batch within the bound`, async () => {
      const q = await quantize(model, [{ feeds }], opts);
      expect(q.plan.nodes[0].inputs.map((i) => i.kind)).toEqual(['activation', 'activation']);
      const y = (await run(q.model, feeds)).y.data as Float32Array;
      const dyn = opts.mode === 'dynamic';
      const ap = dyn ? dynamicParams(a) : q.params.get('a')!;
      const bp = dyn ? dynamicParams(b) : q.params.get('b')!;
      const aq = fakeQuantize(a, ap);
      const bq = fakeQuantize(b, bp);
      for (let batch = 0; batch < 2; batch++) {
        const sa = a.subarray(batch * 24, batch * 24 + 24);
        const sb = b.subarray(batch * 18, batch * 18 + 18);
        const ref = matmul(sa, sb, 4, 6, 3);
        const err = bound(sa, aq.subarray(batch * 24, batch * 24 + 24), sb, bq.subarray(batch * 18, batch * 18 + 18), 4, 6, 3);
        const extra = opts.format === 'qoperator' ? q.params.get('y')!.scale[0] * 0.5 : 0;
        expectClose(y.subarray(batch * 12, batch * 12 + 12), ref, (i) => err[i] + extra + 1e-5, `batch ${batch}`);
      }
      expect(initializer(q.model, 'a_zero_point')?.dataType ?? DataType.UINT8).toBe(DataType.UINT8);
    });
  }
});

describe('Gemm', () => {
  const [M, K, N] = [4, 8, 5];
  const A = noise(M * K, 21, 1.2);
  const B = noise(N * K, 22, 0.6); // [N, K], transB = 1
  const C = noise(N, 23, 0.3);
  const model = buildModel({
    nodes: [{ opType: 'Gemm', name: 'fc', input: ['A', 'B', 'C'], output: ['y'], attribute: [{ name: 'transB', type: AT.INT, i: 1 }] }],
    initializers: [floatInit('B', [N, K], B), floatInit('C', [N], C)],
    inputs: [{ name: 'A', dims: [M, K] }],
    outputs: ['y'],
  });
  const feeds = { A: new ort.Tensor('float32', A, [M, K]) };
  const Bt = new Float32Array(K * N);
  for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) Bt[k * N + n] = B[n * K + k];
  const ref = matmul(A, Bt, M, K, N).map((v, i) => v + C[i % N]);

  for (const opts of [{}, { perChannel: true }, { format: 'qoperator' as const }, { mode: 'dynamic' as const, perChannel: true }]) {
    it(`${JSON.stringify(opts)}: output within the quantization error of A·Bᵀ + C`, async () => {
      const q = await quantize(model, [{ feeds }], opts);
      expect(q.quantized).toEqual(['fc']);
      const y = (await run(q.model, feeds)).y.data as Float32Array;
      const ap = opts.mode === 'dynamic' ? dynamicParams(A) : q.params.get('A')!;
      const wp = q.params.get('B')!;
      const Aq = fakeQuantize(A, ap);
      // QDQ keeps B as [N, K] (per-channel axis 0); the integer paths store it transposed [K, N] (axis 1)
      const qdq = !opts.format && !opts.mode;
      const BqT = qdq ? (() => {
        const bq = fakeQuantize(B, wp, [N, K]);
        const t = new Float32Array(K * N);
        for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) t[k * N + n] = bq[n * K + k];
        return t;
      })() : fakeQuantize(Bt, wp, [K, N]);
      const err = bound(A, Aq, Bt, BqT, M, K, N);
      // the int32 bias (QDQ) adds at most half a bias step per output
      const biasStep = qdq ? Math.max(...Array.from(readTensor(initializer(q.model, 'C_scale')!).data as Float32Array)) / 2 : 0;
      expectClose(y, ref, (i) => err[i] + biasStep + 1e-5, 'y');
      if (qdq) {
        const cq = initializer(q.model, 'C_quantized')!;
        expect(cq.dataType).toBe(DataType.INT32);
        const cs = readTensor(initializer(q.model, 'C_scale')!).data as Float32Array;
        expect(cs.length).toBe(opts.perChannel ? N : 1);
        for (let j = 0; j < cs.length; j++) expect(cs[j]).toBe(Math.fround(ap.scale[0] * wp.scale[j]));
        expect(countOps(q.model)).toMatchObject({ Gemm: 1, DequantizeLinear: 3, QuantizeLinear: 1 });
      } else {
        expect(countOps(q.model)).toMatchObject({ MatMulInteger: 1, Add: 1 });
        expect(readTensor(initializer(q.model, 'B_quantized')!).dims).toEqual([K, N]);
      }
    });
  }

  it('Gemm with alpha ≠ 1 stays float in QOperator, with the reason', async () => {
    const m2 = buildModel({
      nodes: [{ opType: 'Gemm', name: 'fc', input: ['A', 'B', 'C'], output: ['y'], attribute: [{ name: 'transB', type: AT.INT, i: 1 }, { name: 'alpha', type: AT.FLOAT, f: 0.5 }] }],
      initializers: [floatInit('B', [N, K], B), floatInit('C', [N], C)],
      inputs: [{ name: 'A', dims: [M, K] }],
      outputs: ['y'],
    });
    const q = await quantize(m2, [{ feeds }], { format: 'qoperator' });
    expect(q.quantized).toEqual([]);
    expect(q.plan.leftInFloat).toEqual([{ node: 'fc', opType: 'Gemm', reason: expect.stringContaining('alpha 0.5') }]);
    // QDQ keeps the Gemm and its attributes, so alpha is honoured
    const qq = await quantize(m2, [{ feeds }], {});
    const y = (await run(qq.model, feeds)).y.data as Float32Array;
    const y0 = (await run(m2, feeds)).y.data as Float32Array;
    expectClose(y, y0, () => 0.05, 'alpha Gemm');
  });
});

describe('Gather (embedding lookup)', () => {
  const [V, H] = [10, 4];
  const table = noise(V * H, 31, 0.5);
  table[7] = 1.25;
  const ids = BigInt64Array.from([1n, 2n, 9n, 0n, 0n, 3n]);
  const model = buildModel({
    nodes: [{ opType: 'Gather', name: 'emb', input: ['E', 'ids'], output: ['h'] }],
    initializers: [floatInit('E', [V, H], table)],
    inputs: [{ name: 'ids', dims: [2, 3], type: DataType.INT64 }],
    outputs: ['h'],
  });
  const feeds = { ids: new ort.Tensor('int64', ids, [2, 3]) };

  for (const opts of [{}, { perChannel: true }, { format: 'qoperator' as const }, { mode: 'dynamic' as const }]) {
    it(`${JSON.stringify(opts)}: int8 rows are gathered, then only they are dequantized`, async () => {
      const q = await quantize(model, [{ feeds }], opts);
      expect(q.quantized).toEqual(['emb']);
      const nodes = q.model.graph!.node!;
      expect(nodes.map((n) => n.opType)).toEqual(['Gather', 'DequantizeLinear']);
      expect(nodes[0].input).toEqual(['E_quantized', 'ids']);
      expect(nodes[1].input![0]).toBe(nodes[0].output![0]); // DequantizeLinear reads the gathered rows, not the table
      expect(nodes[1].output).toEqual(['h']);
      const p = q.params.get('E')!;
      const rows = fakeQuantize(table, p, [V, H]);
      const h = (await run(q.model, feeds)).h.data as Float32Array;
      const want: number[] = [];
      for (const id of ids) want.push(...rows.subarray(Number(id) * H, Number(id) * H + H));
      expect(Array.from(h)).toEqual(want);
      expect(p.scale.length).toBe(opts.perChannel ? H : 1);
    });
  }

  it('shape/index Gathers (integer data) are not candidates', () => {
    const m = buildModel({
      nodes: [
        { opType: 'Shape', name: 's', input: ['x'], output: ['shape'] },
        { opType: 'Gather', name: 'g', input: ['shape', 'zero'], output: ['d0'] },
        { opType: 'Identity', name: 'i', input: ['x'], output: ['y'] },
      ],
      initializers: [makeTensor('zero', DataType.INT64, [], BigInt64Array.of(0n))],
      inputs: [{ name: 'x', dims: [2, 3] }],
      outputs: ['y'],
    });
    const plan = planQuantization(m, { format: 'qdq', mode: 'static', perChannel: false });
    expect(plan.nodes).toEqual([]);
    expect(plan.leftInFloat).toEqual([]);
    expect(plan.floatByDesign).toMatchObject({ Shape: 1, Identity: 1 });
  });
});

describe('planning', () => {
  const W1 = noise(4 * 3, 41);
  const W2 = noise(4 * 2, 42);
  const model = (opset = 14) =>
    buildModel({
      nodes: [
        { opType: 'MatMul', name: 'a', input: ['x', 'W1'], output: ['y1'] },
        { opType: 'MatMul', name: 'b', input: ['x', 'W2'], output: ['y2'] },
        { opType: 'Softmax', name: 'sm', input: ['y1'], output: ['p'] },
      ],
      initializers: [floatInit('W1', [4, 3], W1), floatInit('W2', [4, 2], W2)],
      inputs: [{ name: 'x', dims: [5, 4] }],
      outputs: ['p', 'y2'],
      opset,
    });
  const feeds = { x: new ort.Tensor('float32', noise(20, 43), [5, 4]) };

  it('an activation read by two quantized nodes gets one QuantizeLinear/DequantizeLinear pair', async () => {
    const q = await quantize(model(), [{ feeds }]);
    expect(countOps(q.model)).toMatchObject({ QuantizeLinear: 1, DequantizeLinear: 3, MatMul: 2, Softmax: 1 });
    expect(q.plan.floatByDesign).toEqual({ Softmax: 1 });
  });

  it('--exclude by node name and by op type; unknown names are a usage error', async () => {
    const byName = await quantize(model(), [{ feeds }], { exclude: ['b'] });
    expect(byName.quantized).toEqual(['a']);
    expect(byName.plan.leftInFloat).toEqual([{ node: 'b', opType: 'MatMul', reason: 'excluded by --exclude b' }]);
    expect(initializer(byName.model, 'W2')?.dataType).toBe(DataType.FLOAT); // kept float for the float node
    const byType = planQuantization(model(), { format: 'qdq', mode: 'static', perChannel: false, exclude: ['MatMul'] });
    expect(byType.nodes).toEqual([]);
    expect(byType.leftInFloat.map((f) => f.reason)).toEqual(['excluded by --exclude MatMul', 'excluded by --exclude MatMul']);
    expect(() => planQuantization(model(), { format: 'qdq', mode: 'static', perChannel: false, exclude: ['nope'] })).toThrow(UsageError);
  });

  it('per-channel needs opset 13: older models get per-tensor weights', async () => {
    expect(planQuantization(model(12), { format: 'qdq', mode: 'static', perChannel: true }).perChannel).toBe(false);
    expect(planQuantization(model(13), { format: 'qdq', mode: 'static', perChannel: true }).perChannel).toBe(true);
    const q = await quantize(model(12), [{ feeds }], { perChannel: true });
    expect(q.params.get('W1')!.scale.length).toBe(1);
    const y = await run(q.model, feeds);
    expect(y.p.dims).toEqual([5, 3]);
  });

  it('refuses already-quantized models and opsets without QuantizeLinear / DynamicQuantizeLinear', async () => {
    const q = await quantize(model(), [{ feeds }]);
    expect(() => planQuantization(q.model, { format: 'qdq', mode: 'static', perChannel: false })).toThrow(GraphError);
    expect(() => planQuantization(model(9), { format: 'qdq', mode: 'static', perChannel: false })).toThrow(/opset 9/);
    expect(() => planQuantization(model(10), { format: 'qoperator', mode: 'dynamic', perChannel: false })).toThrow(/DynamicQuantizeLinear/);
  });

  it('integer MatMuls are left float with the reason', () => {
    const m = buildModel({
      nodes: [
        { opType: 'Cast', name: 'c', input: ['x'], output: ['xi'], attribute: [{ name: 'to', type: AT.INT, i: DataType.INT32 }] },
        { opType: 'MatMul', name: 'im', input: ['xi', 'xi'], output: ['yi'] },
        { opType: 'Cast', name: 'c2', input: ['yi'], output: ['y'], attribute: [{ name: 'to', type: AT.INT, i: DataType.FLOAT }] },
      ],
      inputs: [{ name: 'x', dims: [3, 3] }],
      outputs: ['y'],
    });
    const plan = planQuantization(m, { format: 'qdq', mode: 'static', perChannel: false });
    expect(plan.nodes).toEqual([]);
    expect(plan.leftInFloat).toEqual([{ node: 'im', opType: 'MatMul', reason: 'input "xi" is not float32' }]);
  });
});
