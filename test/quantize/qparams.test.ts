/**
 * The quantization arithmetic against independent facts: ONNX's own backend test cases for
 * QuantizeLinear / DequantizeLinear / DynamicQuantizeLinear (Debian libonnx-testdata), onnxruntime running
 * one-node int8 models, and onnxruntime's calibrators run in numpy (fixtures/make_calib_facts.py).
 */
import { readdirSync, readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { decodeModel, encodeModel, onnx } from '../../src/onnx/codec.js';
import { attrInt } from '../../src/onnx/graph.js';
import { DataType, makeTensor, readTensor } from '../../src/onnx/tensor.js';
import {
  activationParams,
  binEdge,
  combineSqnrDb,
  dequantizeLinear,
  dynamicQuantizeLinear,
  entropyRange,
  FLOAT32_MAX,
  newHistogram,
  percentileRange,
  quantizeLinear,
  roundHalfEven,
  sqnr,
  symmetricScale,
  updateHistogram,
  weightParams,
  type QParams,
} from '../../src/quantize/qparams.js';

const NODE_DATA = '/usr/share/libonnx-testdata/data/node';

interface NodeCase {
  name: string;
  node: onnx.INodeProto;
  inputs: ReturnType<typeof readTensor>[];
  outputs: ReturnType<typeof readTensor>[];
}

function loadCase(name: string): NodeCase {
  const dir = `${NODE_DATA}/${name}`;
  const model = decodeModel(readFileSync(`${dir}/model.onnx`));
  const files = readdirSync(`${dir}/test_data_set_0`).sort();
  const read = (prefix: string) =>
    files.filter((f) => f.startsWith(prefix)).map((f) => readTensor(onnx.TensorProto.decode(readFileSync(`${dir}/test_data_set_0/${f}`))));
  return { name, node: model.graph!.node![0], inputs: read('input_'), outputs: read('output_') };
}

function paramsOf(scale: ReturnType<typeof readTensor>, zp: ReturnType<typeof readTensor>, axis: number | undefined, type: 'uint8' | 'int8'): QParams {
  const s = Float32Array.from(scale.data as Float32Array);
  return {
    type,
    scale: s,
    zeroPoint: Int32Array.from(zp.data as ArrayLike<number>),
    axis: s.length > 1 ? axis : undefined,
  };
}

describe('ONNX backend test cases (libonnx-testdata)', () => {
  const cases = readdirSync(NODE_DATA).filter((d) => /^test_(quantizelinear|dequantizelinear|dynamicquantizelinear)/.test(d));

  it('finds the QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear cases', () => {
    expect(cases).toEqual(
      expect.arrayContaining([
        'test_quantizelinear',
        'test_quantizelinear_axis',
        'test_dequantizelinear',
        'test_dequantizelinear_axis',
        'test_dynamicquantizelinear',
        'test_dynamicquantizelinear_max_adjusted',
        'test_dynamicquantizelinear_min_adjusted',
      ]),
    );
  });

  for (const name of cases.filter((c) => c.startsWith('test_quantizelinear'))) {
    it(`${name}: quantizeLinear equals output_0`, () => {
      const c = loadCase(name);
      const [x, scale, zp] = c.inputs;
      const p = paramsOf(scale, zp, attrInt(c.node, 'axis', 1), zp.dataType === DataType.INT8 ? 'int8' : 'uint8');
      const y = quantizeLinear(x.data as Float32Array, p, x.dims);
      expect(Array.from(y)).toEqual(Array.from(c.outputs[0].data as ArrayLike<number>));
    });
  }

  for (const name of cases.filter((c) => c.startsWith('test_dequantizelinear'))) {
    it(`${name}: dequantizeLinear equals output_0`, () => {
      const c = loadCase(name);
      const [x, scale, zp] = c.inputs;
      const p = paramsOf(scale, zp, attrInt(c.node, 'axis', 1), 'uint8');
      expect(Array.from(dequantizeLinear(x.data as Uint8Array, p, x.dims))).toEqual(Array.from(c.outputs[0].data as Float32Array));
    });
  }

  for (const name of cases.filter((c) => c.startsWith('test_dynamicquantizelinear'))) {
    it(`${name}: dynamicQuantizeLinear equals y, y_scale, y_zero_point`, () => {
      const c = loadCase(name);
      const r = dynamicQuantizeLinear(c.inputs[0].data as Float32Array);
      expect(Array.from(r.y)).toEqual(Array.from(c.outputs[0].data as Uint8Array));
      expect(r.scale).toBe((c.outputs[1].data as Float32Array)[0]);
      expect(r.zeroPoint).toBe((c.outputs[2].data as Uint8Array)[0]);
    });
  }
});

/** Run a one-node QuantizeLinear / DequantizeLinear model in onnxruntime. */
async function runOne(op: 'QuantizeLinear' | 'DequantizeLinear', x: ort.Tensor, p: QParams, opset = 13): Promise<ort.Tensor> {
  const zpType = p.type === 'int8' ? DataType.INT8 : DataType.UINT8;
  const pdims = p.scale.length === 1 && p.axis === undefined ? [] : [p.scale.length];
  const xType = op === 'QuantizeLinear' ? DataType.FLOAT : zpType;
  const graph = onnx.GraphProto.create({
    name: 'g',
    node: [
      {
        opType: op,
        name: 'n',
        input: ['x', 's', 'z'],
        output: ['y'],
        attribute: p.axis === undefined ? [] : [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: p.axis }],
      },
    ],
    initializer: [
      makeTensor('s', DataType.FLOAT, pdims, p.scale),
      makeTensor('z', zpType, pdims, p.type === 'int8' ? Int8Array.from(p.zeroPoint) : Uint8Array.from(p.zeroPoint)),
    ],
    input: [{ name: 'x', type: { tensorType: { elemType: xType, shape: { dim: x.dims.map((d) => ({ dimValue: d })) } } } }],
    output: [{ name: 'y', type: { tensorType: { elemType: op === 'QuantizeLinear' ? zpType : DataType.FLOAT } } }],
  });
  const model = onnx.ModelProto.create({ irVersion: 7, opsetImport: [{ domain: '', version: opset }], graph });
  const s = await ort.InferenceSession.create(encodeModel(model), { logSeverityLevel: 3 });
  try {
    return (await s.run({ x }))['y'];
  } finally {
    await s.release();
  }
}

describe('int8 quantize/dequantize vs onnxruntime', () => {
  // ties at .5 (round half to even), saturation on both sides, the zero point offset, tiny values
  const x = Float32Array.from([0, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.49999, 126.5, 127.5, 300, -300, -128.5, 1e-8, -64.25, 63.75]);

  it('per-tensor int8 with zero point 0 and a non-zero zero point', async () => {
    for (const p of [
      { type: 'int8', scale: Float32Array.of(1), zeroPoint: Int32Array.of(0) },
      { type: 'int8', scale: Float32Array.of(0.5), zeroPoint: Int32Array.of(-3) },
      { type: 'int8', scale: Float32Array.of(0.0137), zeroPoint: Int32Array.of(17) },
    ] as QParams[]) {
      const ref = await runOne('QuantizeLinear', new ort.Tensor('float32', x, [x.length]), p);
      expect(Array.from(quantizeLinear(x, p))).toEqual(Array.from(ref.data as Int8Array));
      const q = Int8Array.from(ref.data as Int8Array);
      const dq = await runOne('DequantizeLinear', new ort.Tensor('int8', q, [q.length]), p);
      expect(Array.from(dequantizeLinear(q, p))).toEqual(Array.from(dq.data as Float32Array));
    }
  });

  it('per-channel int8 along axis 0 and 1 of a 2-D tensor', async () => {
    const w = Float32Array.from({ length: 4 * 6 }, (_, i) => Math.sin(i * 1.7) * (1 + (i % 6)) * 0.37);
    for (const axis of [0, 1]) {
      const p = weightParams(w, [4, 6], axis);
      const ref = await runOne('QuantizeLinear', new ort.Tensor('float32', w, [4, 6]), p);
      const ours = quantizeLinear(w, p, [4, 6]);
      expect(Array.from(ours)).toEqual(Array.from(ref.data as Int8Array));
      const dq = await runOne('DequantizeLinear', new ort.Tensor('int8', Int8Array.from(ours), [4, 6]), p);
      expect(Array.from(dequantizeLinear(ours, p, [4, 6]))).toEqual(Array.from(dq.data as Float32Array));
    }
  });
});

describe('scale and zero point', () => {
  const facts = JSON.parse(readFileSync(new URL('./fixtures/calib_facts.json', import.meta.url), 'utf8')) as {
    scaleZeroPoint: Array<{ min: number; max: number; scale: number; zeroPoint: number }>;
    cases: CalibCase[];
  };

  it('round half to even', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, 2.5001].map((v) => roundHalfEven(v) + 0)).toEqual([0, 2, 2, 0, -2, -2, 2, 3]);
  });

  it("activation (uint8) parameters equal onnxruntime's compute_scale_zp in numpy", () => {
    for (const f of facts.scaleZeroPoint) {
      const p = activationParams({ min: f.min, max: f.max });
      expect(p.scale, `${f.min}..${f.max}`).toBe(f.scale);
      expect(p.zeroPoint, `${f.min}..${f.max}`).toBe(f.zeroPoint);
    }
  });

  it('degenerate ranges: width 0, NaN and infinite bounds give finite, usable parameters', () => {
    expect(activationParams({ min: 0, max: 0 })).toEqual({ scale: 1, zeroPoint: 0 });
    expect(activationParams({ min: 2, max: 2 })).toEqual(activationParams({ min: 0, max: 2 })); // widened to include 0
    expect(activationParams({ min: NaN, max: 1 })).toEqual(activationParams({ min: 0, max: 1 }));
    for (const r of [{ min: -Infinity, max: 1 }, { min: -1, max: Infinity }, { min: -Infinity, max: Infinity }]) {
      const p = activationParams(r);
      expect(Number.isFinite(p.scale) && p.scale > 0).toBe(true);
      expect(p.zeroPoint >= 0 && p.zeroPoint <= 255).toBe(true);
    }
    expect(activationParams({ min: -FLOAT32_MAX, max: FLOAT32_MAX }).zeroPoint).toBe(128);
    // every value dequantizes exactly to 0 with the width-0 parameters
    const z: QParams = { type: 'uint8', scale: Float32Array.of(1), zeroPoint: Int32Array.of(0) };
    expect(Array.from(dequantizeLinear(quantizeLinear([0, 0, 0], z), z))).toEqual([0, 0, 0]);
  });

  it('symmetric int8 weights: scale = max|w| / 127 (float32), zero point 0, per tensor and per channel', () => {
    expect(symmetricScale(2.54)).toBe(Math.fround(2.54 / 127));
    expect(symmetricScale(0)).toBe(1);
    const w = Float32Array.from([0.5, -2, 1, 0, 0, 0, -0.25, 0.1, 0.2]); // [3, 3]
    const t = weightParams(w, [3, 3]);
    expect(t.scale[0]).toBe(Math.fround(2 / 127));
    expect(Array.from(t.zeroPoint)).toEqual([0]);
    const rows = weightParams(w, [3, 3], 0);
    expect(Array.from(rows.scale)).toEqual([Math.fround(2 / 127), 1, Math.fround(0.25 / 127)]);
    const cols = weightParams(w, [3, 3], 1);
    expect(Array.from(cols.scale)).toEqual([Math.fround(0.5 / 127), Math.fround(2 / 127), Math.fround(1 / 127)]);
    const q = quantizeLinear(w, cols, [3, 3]);
    expect(Math.max(...Array.from(q, Math.abs))).toBe(127); // the largest magnitude maps to ±127, never −128
    expect(q[1]).toBe(-127);
    // 3-D, channels in the middle
    const w3 = Float32Array.from({ length: 2 * 3 * 2 }, (_, i) => (i % 3) - 1 + i * 0.01);
    const p3 = weightParams(w3, [2, 3, 2], 1);
    for (let c = 0; c < 3; c++) {
      let m = 0;
      for (let o = 0; o < 2; o++) for (let k = 0; k < 2; k++) m = Math.max(m, Math.abs(w3[(o * 3 + c) * 2 + k]));
      expect(p3.scale[c]).toBe(m === 0 ? 1 : Math.fround(m / 127));
    }
    expect(() => weightParams([1, NaN], [2])).toThrow(RangeError);
  });
});

interface CalibCase {
  name: string;
  numBins: number;
  batches: string[];
  hist: number[];
  threshold: number;
  min: number;
  max: number;
  percentile: Record<string, { min: number; max: number; idxLeft: number; idxRight: number }>;
  entropy?: { numQuantizedBins: number; min: number; max: number; index: number };
}

function f32(b64: string): Float32Array {
  const buf = Buffer.from(b64, 'base64');
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

describe("histogram calibrators vs onnxruntime's calibrate.py (numpy)", () => {
  const facts = JSON.parse(readFileSync(new URL('./fixtures/calib_facts.json', import.meta.url), 'utf8')) as { cases: CalibCase[] };

  for (const c of facts.cases) {
    it(`${c.name}: the histogram grows and counts like collect_value/merge_histogram`, () => {
      const batches = c.batches.map(f32);
      let h = newHistogram(batches[0], c.numBins);
      for (const b of batches.slice(1)) h = updateHistogram(h, b);
      expect(h.counts.length).toBe(c.hist.length);
      expect(h.threshold).toBeCloseTo(c.threshold, 10);
      expect(h.min).toBe(c.min);
      expect(h.max).toBe(c.max);
      expect(Array.from(h.counts)).toEqual(c.hist);
    });

    it(`${c.name}: percentile thresholds`, () => {
      const h = { counts: Float64Array.from(c.hist), threshold: c.threshold, min: c.min, max: c.max, nonFinite: 0 };
      for (const [pct, want] of Object.entries(c.percentile)) {
        const r = percentileRange(h, Number(pct));
        const lo = want.min === c.min ? c.min : binEdge(h, want.idxLeft);
        const hi = want.max === c.max ? c.max : binEdge(h, want.idxRight);
        expect(r.min, `${pct} low`).toBeCloseTo(lo, 9);
        expect(r.max, `${pct} high`).toBeCloseTo(hi, 9);
        expect(r.min).toBeCloseTo(want.min, 5);
        expect(r.max).toBeCloseTo(want.max, 5);
      }
    });

    if (c.entropy) {
      const e = c.entropy;
      it(`${c.name}: entropy (KL) threshold`, () => {
        const h = { counts: Float64Array.from(c.hist), threshold: c.threshold, min: c.min, max: c.max, nonFinite: 0 };
        const r = entropyRange(h, e.numQuantizedBins);
        expect(r.min).toBeCloseTo(e.min, 5);
        expect(r.max).toBeCloseTo(e.max, 5);
        // the search really clips: the range is narrower than the data
        expect(r.max - r.min).toBeLessThan(c.max - c.min);
      });
    }
  }

  it('non-finite values are skipped and counted', () => {
    const h = newHistogram([1, NaN, -2, Infinity, 0.5], 8);
    expect(h.nonFinite).toBe(2);
    expect(h.min).toBe(-2);
    expect(h.max).toBe(1);
    expect(h.counts.reduce((a, b) => a + b, 0)).toBe(3);
  });
});

describe('SQNR', () => {
  it('10·log10(Σref² / Σ(ref − approx)²)', () => {
    expect(sqnr([3, 4], [3, 3])).toBeCloseTo(10 * Math.log10(25), 12);
    expect(sqnr([1, 2], [1, 2])).toBe(Infinity);
    expect(combineSqnrDb([20, 20])).toBeCloseTo(20 - 10 * Math.log10(2), 12);
    expect(combineSqnrDb([Infinity, 30])).toBeCloseTo(30, 12);
  });

  it('uniform rounding noise: int8 SQNR of a full-range sine is near 6.02·8 + 1.76 dB', () => {
    const x = Float32Array.from({ length: 100000 }, (_, i) => Math.sin(i * 0.01234));
    const p: QParams = { type: 'uint8', ...(() => { const a = activationParams({ min: -1, max: 1 }); return { scale: Float32Array.of(a.scale), zeroPoint: Int32Array.of(a.zeroPoint) }; })() };
    expect(sqnr(x, dequantizeLinear(quantizeLinear(x, p), p))).toBeCloseTo(6.02 * 8 + 1.76, 0);
  });
});
