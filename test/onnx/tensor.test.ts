import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Long from 'long';
import { describe, expect, it } from 'vitest';
import { GraphError } from '../../src/errors.js';
import { decodeModel, encodeModel, onnx } from '../../src/onnx/codec.js';
import {
  bfloat16ToFloat32,
  DataType,
  dimsOf,
  float16ToFloat32,
  float32ToBfloat16,
  float32ToFloat16,
  makeTensor,
  readRawDataView,
  readTensor,
  smallFloatToFloat32,
  tensorRawBytes,
  tensorToFloat32,
  tensorToNumbers,
  toNumber,
  type TensorData,
  type TensorValues,
} from '../../src/onnx/tensor.js';
import { fixture, graphOf, ONNX_TESTDATA, ort, reference, session } from './helpers.js';

const dtypesModel = decodeModel(readFileSync(fixture('dtypes.onnx')), 'dtypes.onnx');
const init = (name: string): onnx.TensorProto => graphOf(dtypesModel).initializer.find((t) => t.name === name) as onnx.TensorProto;

/** Values in a JSON-comparable form (bigints as strings). */
function jsonable(data: TensorValues): Array<number | string | boolean> {
  return Array.from(data as ArrayLike<number | bigint | boolean | string>, (v) => (typeof v === 'bigint' ? v.toString() : v));
}

/** A one-node model: `op`(initializer W) → y. */
function castModel(w: onnx.ITensorProto, op: string, outType: number, attrs: onnx.IAttributeProto[] = [], opset = 21): Uint8Array {
  return encodeModel({
    irVersion: 10,
    opsetImport: [{ domain: '', version: opset }],
    graph: {
      name: 'g',
      node: [{ opType: op, input: [w.name!], output: ['y'], attribute: attrs }],
      initializer: [w],
      output: [{ name: 'y', type: { tensorType: { elemType: outType } } }],
    },
  });
}
const castTo = (to: number): onnx.IAttributeProto[] => [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: to }];

async function runOne(model: Uint8Array): Promise<ort.Tensor> {
  const s = await session(model);
  const out = await s.run({});
  await s.release();
  return out.y;
}

describe('readTensor against numpy (reference.json) and onnxruntime', () => {
  const names = Object.keys(reference.dtypes);

  it.each(names)('%s', (name) => {
    const ref = reference.dtypes[name];
    const td = readTensor(init(name));
    expect(td.dataType).toBe(ref.dataType);
    expect(td.dims).toEqual(ref.dims);
    if (ref.bits) {
      expect(Array.from(td.data as Uint16Array)).toEqual(ref.bits);
      expect(Array.from(tensorToFloat32(init(name)))).toEqual(ref.values.map((v) => Math.fround(v as number)));
    } else if (ref.dataType === DataType.FLOAT) {
      expect(Array.from(td.data as Float32Array)).toEqual(ref.values.map((v) => Math.fround(v as number)));
    } else {
      expect(jsonable(td.data)).toEqual(ref.values);
    }
  });

  it('gives what onnxruntime returns for the same initializers (Identity outputs)', async () => {
    const s = await session(readFileSync(fixture('dtypes.onnx')));
    const out = await s.run({});
    let checked = 0;
    for (const [key, t] of Object.entries(out)) {
      const td = readTensor(init(key.replace(/^out_/, '')));
      expect(t.dims, key).toEqual(td.dims);
      const ortData = t.type === 'bool' ? Array.from(t.data as Uint8Array, (b) => b !== 0) : Array.from(t.data as ArrayLike<unknown>);
      expect(Array.from(td.data as ArrayLike<unknown>), key).toEqual(ortData);
      checked++;
    }
    expect(checked).toBe(27);
    await s.release();
  });

  it('reads raw_data at unaligned offsets, and views only when asked', () => {
    for (const name of ['f32_raw', 'f64_raw', 'i64_raw', 'u16_raw', 'i32_raw']) {
      const t = init(name);
      const shifted = new Uint8Array(t.rawData.length + 3);
      shifted.set(t.rawData, 1);
      const moved = onnx.TensorProto.create({ ...t, rawData: shifted.subarray(1, 1 + t.rawData.length) });
      expect(moved.rawData.byteOffset % 2).toBe(1);
      expect(jsonable(readTensor(moved).data)).toEqual(jsonable(readTensor(t).data));
      expect(jsonable(readTensor(moved, { view: true }).data)).toEqual(jsonable(readTensor(t).data));
    }
    const aligned = makeTensor('a', DataType.FLOAT, [4], [1, 2, 3, 4]);
    const view = readTensor(aligned, { view: true }).data as Float32Array;
    expect(view.buffer).toBe(aligned.rawData.buffer);
    const copy = readTensor(aligned).data as Float32Array;
    copy[0] = 99;
    expect(readTensor(aligned).data[0]).toBe(1);
  });

  it('the DataView reader (big-endian hosts) agrees with the typed-array path', () => {
    for (const name of ['f32_raw', 'f64_raw', 'f16_raw', 'i16_raw', 'u16_raw', 'i32_raw', 'u32_raw', 'i64_raw', 'u64_raw']) {
      const t = init(name);
      const n = dimsOf(t).reduce((a, b) => a * b, 1);
      expect(jsonable(readRawDataView(t.dataType, t.rawData, n)), name).toEqual(jsonable(readTensor(t).data));
    }
  });

  it('rejects data that does not match the dims, and unloaded external data', () => {
    const bad = onnx.TensorProto.create({ name: 'w', dataType: DataType.FLOAT, dims: [3], rawData: new Uint8Array(8) });
    expect(() => readTensor(bad)).toThrow(GraphError);
    expect(() => readTensor(bad)).toThrow(/"w".*8 bytes of raw_data, expected 12/);
    const typed = onnx.TensorProto.create({ name: 'v', dataType: DataType.INT64, dims: [2, 2], int64Data: [1, 2, 3] });
    expect(() => readTensor(typed)).toThrow(/int64_data/);
    const ext = onnx.TensorProto.create({ name: 'e', dataType: DataType.FLOAT, dims: [1], dataLocation: 1 });
    expect(() => readTensor(ext)).toThrow(/external data/);
  });
});

describe('number conversions follow the standards and onnxruntime', () => {
  it('float16 → float32 for all 65536 bit patterns equals onnxruntime Cast', async () => {
    const bits = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const y = (await runOne(castModel(makeTensor('W', DataType.FLOAT16, [65536], bits), 'Cast', DataType.FLOAT, castTo(1)))).data as Float32Array;
    const mine = tensorToFloat32(makeTensor('W', DataType.FLOAT16, [65536], bits));
    for (let i = 0; i < 65536; i++) {
      if (Number.isNaN(y[i])) expect(Number.isNaN(mine[i])).toBe(true);
      else if (mine[i] !== y[i]) expect.fail(`bits ${i}: ${mine[i]} vs ${y[i]}`);
    }
    expect(float16ToFloat32(0x7bff)).toBe(65504);
    expect(float16ToFloat32(0x0001)).toBe(2 ** -24);
  });

  it('bfloat16 → float32 for all bit patterns equals onnxruntime Cast', async () => {
    const bits = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const y = (await runOne(castModel(makeTensor('W', DataType.BFLOAT16, [65536], bits), 'Cast', DataType.FLOAT, castTo(1)))).data as Float32Array;
    for (let i = 0; i < 65536; i++) {
      const m = bfloat16ToFloat32(i);
      if (Number.isNaN(y[i])) expect(Number.isNaN(m)).toBe(true);
      else if (m !== y[i]) expect.fail(`bits ${i}: ${m} vs ${y[i]}`);
    }
  });

  it('float32 → float16 / bfloat16 rounds like onnxruntime Cast (nearest even)', async () => {
    const n = 20000;
    const raw = new Uint32Array(n);
    let x = 12345;
    for (let i = 0; i < n; i++) raw[i] = x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const vals = new Float32Array(raw.buffer);
    vals.set([1 + 2 ** -11, 1 + 3 * 2 ** -11, 65520, 65519, 2 ** -25, 3 * 2 ** -26, -0, Infinity, -Infinity], 0);
    const w = makeTensor('W', DataType.FLOAT, [n], vals);
    const h = (await runOne(castModel(w, 'Cast', DataType.FLOAT16, castTo(DataType.FLOAT16)))).data as Uint16Array;
    for (let i = 0; i < n; i++) {
      const mine = float32ToFloat16(vals[i]);
      if (Number.isNaN(vals[i])) expect((mine & 0x7c00) === 0x7c00 && (mine & 0x3ff) !== 0).toBe(true);
      else if (mine !== h[i]) expect.fail(`${vals[i]}: ${mine.toString(16)} vs ${h[i].toString(16)}`);
    }
    expect([float32ToFloat16(1 + 2 ** -11), float32ToFloat16(1 + 3 * 2 ** -11), float32ToFloat16(65520)]).toEqual([0x3c00, 0x3c02, 0x7c00]);
    // bfloat16 cannot be a session output in onnxruntime-node: compare float → bf16 → float instead
    const model = encodeModel({
      irVersion: 10,
      opsetImport: [{ domain: '', version: 21 }],
      graph: {
        name: 'g',
        node: [
          { opType: 'Cast', input: ['W'], output: ['b'], attribute: castTo(DataType.BFLOAT16) },
          { opType: 'Cast', input: ['b'], output: ['y'], attribute: castTo(DataType.FLOAT) },
        ],
        initializer: [w],
        output: [{ name: 'y', type: { tensorType: { elemType: DataType.FLOAT } } }],
      },
    });
    const back = (await runOne(model)).data as Float32Array;
    for (let i = 0; i < n; i++) {
      const mine = bfloat16ToFloat32(float32ToBfloat16(vals[i]));
      if (Number.isNaN(vals[i])) expect(Number.isNaN(mine)).toBe(true);
      else if (mine !== back[i]) expect.fail(`${vals[i]}: ${mine} vs ${back[i]}`);
    }
  });

  it.each([
    ['FLOAT8E4M3FN', DataType.FLOAT8E4M3FN],
    ['FLOAT8E4M3FNUZ', DataType.FLOAT8E4M3FNUZ],
    ['FLOAT8E5M2', DataType.FLOAT8E5M2],
    ['FLOAT8E5M2FNUZ', DataType.FLOAT8E5M2FNUZ],
  ])('%s → float32 for all 256 bit patterns equals onnxruntime Cast', async (_name, dt) => {
    const bits = Uint8Array.from({ length: 256 }, (_, i) => i);
    const y = (await runOne(castModel(makeTensor('W', dt, [256], bits), 'Cast', DataType.FLOAT, castTo(1)))).data as Float32Array;
    const mine = tensorToFloat32(makeTensor('W', dt, [256], bits));
    for (let i = 0; i < 256; i++) {
      if (Number.isNaN(y[i])) expect(Number.isNaN(mine[i]), `bits ${i}`).toBe(true);
      else expect(mine[i], `bits ${i}`).toBe(y[i]);
    }
  });

  it('float8 / float4 extremes from the ONNX specification', () => {
    expect(smallFloatToFloat32(0x7e, DataType.FLOAT8E4M3FN)).toBe(448);
    expect(smallFloatToFloat32(0x7f, DataType.FLOAT8E4M3FN)).toBeNaN();
    expect(smallFloatToFloat32(0x7f, DataType.FLOAT8E4M3FNUZ)).toBe(240);
    expect(smallFloatToFloat32(0x7b, DataType.FLOAT8E5M2)).toBe(57344);
    expect(smallFloatToFloat32(0x7c, DataType.FLOAT8E5M2)).toBe(Infinity);
    expect(smallFloatToFloat32(0x80, DataType.FLOAT8E5M2FNUZ)).toBeNaN();
    // FLOAT4E2M1 (onnxruntime has no CPU kernel for it): the spec's table of 16 values
    const fp4 = Array.from({ length: 16 }, (_, i) => smallFloatToFloat32(i, DataType.FLOAT4E2M1));
    expect(fp4).toEqual([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, -1, -1.5, -2, -3, -4, -6]);
  });

  it('INT4 / UINT4 packing matches onnxruntime', async () => {
    const vals = [0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1, 5];
    const t = makeTensor('W', DataType.INT4, [17], vals);
    expect(t.rawData.length).toBe(9);
    expect(t.rawData[0]).toBe(0x10); // first element in the low nibble
    const y = (await runOne(castModel(t, 'Cast', DataType.FLOAT, castTo(1)))).data as Float32Array;
    expect(Array.from(y)).toEqual(vals);
    expect(Array.from(readTensor(t).data as Int8Array)).toEqual(vals);
    const u = makeTensor('U', DataType.UINT4, [3], [15, 0, 9]);
    expect(Array.from((await runOne(castModel(u, 'Cast', DataType.FLOAT, castTo(1)))).data as Float32Array)).toEqual([15, 0, 9]);
  });
});

describe('makeTensor / tensorToNumbers / toNumber', () => {
  it('round-trips every type through raw_data and onnxruntime', async () => {
    const cases: Array<[number, number[] | bigint[] | boolean[], string]> = [
      [DataType.FLOAT, [1.5, -2, 0], 'float32'],
      [DataType.DOUBLE, [1e300, -1e-300], 'float64'],
      [DataType.INT8, [-128, 127], 'int8'],
      [DataType.UINT8, [0, 255], 'uint8'],
      [DataType.INT16, [-32768, 32767], 'int16'],
      [DataType.UINT16, [0, 65535], 'uint16'],
      [DataType.INT32, [-(2 ** 31), 2 ** 31 - 1], 'int32'],
      [DataType.UINT32, [0, 2 ** 32 - 1], 'uint32'],
      [DataType.INT64, [-(2n ** 63n), 2n ** 63n - 1n], 'int64'],
      [DataType.UINT64, [0n, 2n ** 64n - 1n], 'uint64'],
      [DataType.BOOL, [true, false, true], 'bool'],
    ];
    for (const [dt, vals, ortType] of cases) {
      const t = makeTensor('W', dt, [vals.length], vals);
      const y = await runOne(castModel(t, 'Identity', dt, [], 13));
      expect(y.type).toBe(ortType);
      const ortVals = Array.from(y.data as ArrayLike<unknown>, (v) => (ortType === 'bool' ? v !== 0 : v));
      expect(ortVals, ortType).toEqual(vals.map((v) => (dt === DataType.INT64 || dt === DataType.UINT64 ? BigInt(v) : v)));
      expect(Array.from(readTensor(t).data as ArrayLike<unknown>)).toEqual(ortVals);
    }
    const s = makeTensor('s', DataType.STRING, [2], ['a', '中文']);
    expect(readTensor(s).data).toEqual(['a', '中文']);
    expect(() => makeTensor('w', DataType.FLOAT, [2, 2], [1, 2, 3])).toThrow(GraphError);
  });

  it('tensorToNumbers handles shapes, and int64 beyond 2^53 only when clamped', () => {
    const shape = makeTensor('shape', DataType.INT64, [3], [1n, -1n, 768n]);
    expect(tensorToNumbers(shape)).toEqual([1, -1, 768]);
    const ends = makeTensor('ends', DataType.INT64, [1], [2n ** 63n - 1n]);
    expect(() => tensorToNumbers(ends)).toThrow(GraphError);
    expect(tensorToNumbers(ends, { clamp: true })).toEqual([Number.MAX_SAFE_INTEGER]);
    expect(tensorToNumbers(init('f16_raw'))).toEqual(reference.dtypes.f16_raw.values);
    expect(tensorToNumbers(init('b_typed'))).toEqual([1, 0, 1, 1]);
    expect(toNumber(Long.fromString('9007199254740992'))).toBe(2 ** 53);
    expect(() => toNumber(Long.fromString('9007199254740993'))).toThrow(/2\^53/);
    expect(toNumber(Long.fromString('-42'))).toBe(-42);
    expect(toNumber(Long.fromString('-9223372036854775808'), { clamp: true })).toBe(-Number.MAX_SAFE_INTEGER);
  });

  it('tensorRawBytes converts typed-field storage to the raw_data encoding', () => {
    for (const name of Object.keys(reference.dtypes).filter((n) => n.endsWith('_typed') && n !== 'str_typed')) {
      const typed = init(name);
      const raw = onnx.TensorProto.create({ name, dataType: typed.dataType, dims: typed.dims, rawData: tensorRawBytes(typed) });
      expect(jsonable(readTensor(raw).data), name).toEqual(jsonable(readTensor(typed).data));
      const rawTwin = graphOf(dtypesModel).initializer.find((t) => t.name === name.replace('_typed', '_raw'));
      if (rawTwin) expect(Buffer.from(tensorRawBytes(typed)).equals(Buffer.from(rawTwin.rawData ?? [])), name).toBe(true);
    }
  });
});

describe.skipIf(!existsSync(ONNX_TESTDATA))("ONNX's test data (libonnx-testdata)", () => {
  const dirs = existsSync(ONNX_TESTDATA) ? readdirSync(join(ONNX_TESTDATA, 'node')).map((d) => join(ONNX_TESTDATA, 'node', d)) : [];

  it('reads every input/output tensor file', () => {
    let n = 0;
    const types = new Set<number>();
    for (const d of dirs) {
      const set = join(d, 'test_data_set_0');
      if (!existsSync(set) || !existsSync(join(d, 'model.onnx'))) continue;
      const g = graphOf(decodeModel(readFileSync(join(d, 'model.onnx'))));
      const isTensor = (v: onnx.IValueInfoProto | undefined): boolean => Boolean(v?.type?.tensorType);
      const inputs = g.input.filter((i) => !g.initializer.some((t) => t.name === i.name));
      for (const f of readdirSync(set)) {
        const m = /^(input|output)_(\d+)\.pb$/.exec(f);
        if (!m) continue;
        const info = m[1] === 'input' ? inputs[Number(m[2])] : g.output[Number(m[2])];
        if (!isTensor(info)) continue; // sequence / optional / map values are other protos
        const td = readTensor(onnx.TensorProto.decode(readFileSync(join(set, f))));
        const per = td.dataType === DataType.COMPLEX64 || td.dataType === DataType.COMPLEX128 ? 2 : 1;
        expect(td.data.length, `${set}/${f}`).toBe(td.dims.reduce((a, b) => a * b, 1) * per);
        types.add(td.dataType);
        n++;
      }
    }
    expect(n).toBeGreaterThan(2000);
    expect(types.size).toBeGreaterThanOrEqual(12);
  });

  const toOrt = (td: TensorData): ort.Tensor => {
    const names: Record<number, ort.Tensor.Type> = {
      [DataType.FLOAT]: 'float32', [DataType.DOUBLE]: 'float64', [DataType.FLOAT16]: 'float16', [DataType.INT8]: 'int8',
      [DataType.UINT8]: 'uint8', [DataType.INT16]: 'int16', [DataType.UINT16]: 'uint16', [DataType.INT32]: 'int32',
      [DataType.UINT32]: 'uint32', [DataType.INT64]: 'int64', [DataType.UINT64]: 'uint64', [DataType.BOOL]: 'bool', [DataType.STRING]: 'string',
    };
    const type = names[td.dataType];
    if (!type) throw new Error(`no onnxruntime type for ${td.dataType}`);
    return new ort.Tensor(type, td.data as never, td.dims);
  };

  it.each([
    'test_cast_FLOAT_to_FLOAT16', 'test_cast_FLOAT16_to_FLOAT', 'test_cast_DOUBLE_to_FLOAT', 'test_cast_FLOAT_to_DOUBLE',
    'test_cast_STRING_to_FLOAT', 'test_equal', 'test_where_example', 'test_gather_0',
    'test_reshape_negative_dim', 'test_matmul_2d', 'test_layer_normalization_3d_axis_negative_1_epsilon', 'test_softmax_axis_1',
    'test_erf', 'test_concat_2d_axis_0', 'test_argmax_default_axis_example',
  ])('%s: inputs read by readTensor give the expected outputs in onnxruntime', async (name) => {
    const dir = join(ONNX_TESTDATA, 'node', name);
    const set = join(dir, 'test_data_set_0');
    const s = await session(readFileSync(join(dir, 'model.onnx')));
    const feeds: Record<string, ort.Tensor> = {};
    s.inputNames.forEach((n, i) => (feeds[n] = toOrt(readTensor(onnx.TensorProto.decode(readFileSync(join(set, `input_${i}.pb`)))))));
    const out = await s.run(feeds);
    s.outputNames.forEach((n, i) => {
      const want = readTensor(onnx.TensorProto.decode(readFileSync(join(set, `output_${i}.pb`))));
      const got = out[n];
      expect(got.dims).toEqual(want.dims);
      if (want.dataType === DataType.FLOAT || want.dataType === DataType.DOUBLE || want.dataType === DataType.FLOAT16) {
        const g = want.dataType === DataType.FLOAT16 ? tensorToFloat32({ ...want, data: got.data as Uint16Array }) : (got.data as Float32Array);
        const w = tensorToFloat32(want);
        for (let k = 0; k < w.length; k++) {
          if (Number.isNaN(w[k])) expect(g[k]).toBeNaN();
          else if (!Number.isFinite(w[k])) expect(g[k]).toBe(w[k]);
          else expect(Math.abs(g[k] - w[k])).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(w[k])));
        }
      } else if (want.dataType === DataType.BOOL) {
        expect(Array.from(got.data as Uint8Array, (b) => b !== 0)).toEqual(want.data);
      } else {
        expect(Array.from(got.data as ArrayLike<unknown>)).toEqual(Array.from(want.data as ArrayLike<unknown>));
      }
    });
    await s.release();
  });
});
