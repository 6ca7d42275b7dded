/**
 * One place for ONNX tensor data: read any `TensorProto` storage (raw_data little-endian, or the
 * typed fields float_data / int32_data / int64_data / double_data / uint64_data / string_data) into
 * a typed array, convert to float32 or numbers, and build tensors (always as raw_data).
 *
 * Representation by data type (`TensorData.data`):
 *   FLOAT Float32Array · DOUBLE Float64Array · INT8 Int8Array · UINT8 Uint8Array · INT16 Int16Array ·
 *   UINT16 Uint16Array · INT32 Int32Array · UINT32 Uint32Array · INT64 BigInt64Array ·
 *   UINT64 BigUint64Array · BOOL boolean[] · STRING string[] (UTF-8 decoded) ·
 *   FLOAT16 / BFLOAT16 Uint16Array of bit patterns · FLOAT8* Uint8Array of bit patterns ·
 *   COMPLEX64 Float32Array / COMPLEX128 Float64Array of interleaved (re, im) pairs ·
 *   INT4 Int8Array / UINT4 Uint8Array / FLOAT4E2M1 Uint8Array (bit patterns), one element per entry (unpacked).
 */
import type Long from 'long';
import { GraphError } from '../errors.js';
import { onnx } from './codec.js';

/** TensorProto.DataType values from the ONNX specification (onnx.proto). */
export const DataType = {
  UNDEFINED: 0,
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  COMPLEX64: 14,
  COMPLEX128: 15,
  BFLOAT16: 16,
  FLOAT8E4M3FN: 17,
  FLOAT8E4M3FNUZ: 18,
  FLOAT8E5M2: 19,
  FLOAT8E5M2FNUZ: 20,
  UINT4: 21,
  INT4: 22,
  FLOAT4E2M1: 23,
} as const;
export type DataType = (typeof DataType)[keyof typeof DataType];

const DATA_TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(DataType).map(([k, v]) => [v, k]));

/** "FLOAT16" for 10, "dtype 99" for an unknown value. */
export function dataTypeName(dataType: number): string {
  return DATA_TYPE_NAMES[dataType] ?? `dtype ${dataType}`;
}

/** TensorProto.DataLocation.EXTERNAL */
export const EXTERNAL = 1;

export type TensorValues =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | boolean[]
  | string[];

export interface TensorData {
  dataType: number;
  dims: number[];
  data: TensorValues;
}

/** Bytes per element in raw_data (0.5 for the 4-bit types; undefined for STRING/UNDEFINED/unknown). */
export function elementSize(dataType: number): number | undefined {
  switch (dataType) {
    case DataType.FLOAT:
    case DataType.INT32:
    case DataType.UINT32:
      return 4;
    case DataType.UINT8:
    case DataType.INT8:
    case DataType.BOOL:
    case DataType.FLOAT8E4M3FN:
    case DataType.FLOAT8E4M3FNUZ:
    case DataType.FLOAT8E5M2:
    case DataType.FLOAT8E5M2FNUZ:
      return 1;
    case DataType.UINT16:
    case DataType.INT16:
    case DataType.FLOAT16:
    case DataType.BFLOAT16:
      return 2;
    case DataType.INT64:
    case DataType.DOUBLE:
    case DataType.UINT64:
    case DataType.COMPLEX64:
      return 8;
    case DataType.COMPLEX128:
      return 16;
    case DataType.UINT4:
    case DataType.INT4:
    case DataType.FLOAT4E2M1:
      return 0.5;
    default:
      return undefined;
  }
}

/** Whether the data type is a floating-point type (float, double, (b)float16, float8, float4). */
export function isFloatType(dataType: number): boolean {
  return (
    dataType === DataType.FLOAT ||
    dataType === DataType.DOUBLE ||
    dataType === DataType.FLOAT16 ||
    dataType === DataType.BFLOAT16 ||
    (dataType >= DataType.FLOAT8E4M3FN && dataType <= DataType.FLOAT8E5M2FNUZ) ||
    dataType === DataType.FLOAT4E2M1
  );
}

const TWO_53 = 2 ** 53;

function isLong(v: unknown): v is Long {
  return typeof v === 'object' && v !== null && 'low' in v && 'high' in v && typeof (v as Long).toString === 'function';
}

/** Exact bigint of an int64/uint64 protobuf value (number, Long, bigint or decimal string). */
export function toBigInt(v: number | Long | bigint | string): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new RangeError(`not an integer: ${v}`);
    return BigInt(v);
  }
  if (typeof v === 'string') return BigInt(v);
  if (isLong(v)) return BigInt(v.toString());
  throw new TypeError(`not an integer value: ${String(v)}`);
}

/**
 * A protobuf int64 (number or Long) as a JavaScript number. Throws GraphError when its magnitude is
 * above 2^53 (not exactly representable), unless `clamp` is set, which saturates to
 * ±Number.MAX_SAFE_INTEGER (right for "to the end" sentinels such as Slice's INT64_MAX).
 */
export function toNumber(v: number | Long | bigint, opts: { clamp?: boolean; what?: string } = {}): number {
  if (typeof v === 'number') {
    if (Math.abs(v) <= TWO_53 || !Number.isFinite(v)) return v;
    if (opts.clamp) return v > 0 ? Number.MAX_SAFE_INTEGER : -Number.MAX_SAFE_INTEGER;
  } else {
    const b = typeof v === 'bigint' ? v : toBigInt(v);
    if (b <= BigInt(TWO_53) && b >= -BigInt(TWO_53)) return Number(b);
    if (opts.clamp) return b > 0n ? Number.MAX_SAFE_INTEGER : -Number.MAX_SAFE_INTEGER;
  }
  throw new GraphError(`${opts.what ?? 'int64 value'} ${String(v)} is above 2^53 and cannot be used as a JavaScript number`, {
    hint: 'the model holds an integer too large for this use; check the exporter, or clamp it to the valid range',
  });
}

/** The dims of a tensor as numbers. */
export function dimsOf(t: onnx.ITensorProto): number[] {
  return (t.dims ?? []).map((d) => toNumber(d, { what: `dim of tensor "${t.name ?? ''}"` }));
}

/** Number of elements for `dims` (1 for a scalar). */
export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

// ------------------------------------------------------------------------------------ float16 & co

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half-precision bits → number. */
export function float16ToFloat32(bits: number): number {
  const s = bits & 0x8000 ? -1 : 1;
  const e = (bits >> 10) & 0x1f;
  const m = bits & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 0x1f) return m === 0 ? s * Infinity : NaN;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** number → IEEE half-precision bits (round to nearest even; overflow → ±Inf). */
export function float32ToFloat16(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // underflows to ±0
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let r = mant >>> shift;
    if (rest > half || (rest === half && r & 1)) r++;
    return sign | r;
  }
  let r = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && r & 1)) {
    r++;
    if (r === 0x400) {
      r = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | r;
}

/** bfloat16 bits → number. */
export function bfloat16ToFloat32(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0];
}

/** number → bfloat16 bits (round to nearest even, NaN kept). */
export function float32ToBfloat16(value: number): number {
  f32[0] = value;
  const x = u32[0];
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Decode one 8-bit (FLOAT8E4M3FN/FNUZ, FLOAT8E5M2/FNUZ) or 4-bit (FLOAT4E2M1) float bit pattern. */
export function smallFloatToFloat32(bits: number, dataType: number): number {
  let expBits: number;
  let manBits: number;
  let bias: number;
  const total = dataType === DataType.FLOAT4E2M1 ? 4 : 8;
  const signBit = 1 << (total - 1);
  const fnuz = dataType === DataType.FLOAT8E4M3FNUZ || dataType === DataType.FLOAT8E5M2FNUZ;
  switch (dataType) {
    case DataType.FLOAT8E4M3FN:
      [expBits, manBits, bias] = [4, 3, 7];
      break;
    case DataType.FLOAT8E4M3FNUZ:
      [expBits, manBits, bias] = [4, 3, 8];
      break;
    case DataType.FLOAT8E5M2:
      [expBits, manBits, bias] = [5, 2, 15];
      break;
    case DataType.FLOAT8E5M2FNUZ:
      [expBits, manBits, bias] = [5, 2, 16];
      break;
    case DataType.FLOAT4E2M1:
      [expBits, manBits, bias] = [2, 1, 1];
      break;
    default:
      throw new GraphError(`${dataTypeName(dataType)} is not an 8- or 4-bit float type`, {
        hint: 'use float16ToFloat32 / bfloat16ToFloat32 for 16-bit types',
      });
  }
  if (fnuz && bits === 0x80) return NaN;
  const s = bits & signBit ? -1 : 1;
  const e = (bits >> manBits) & ((1 << expBits) - 1);
  const m = bits & ((1 << manBits) - 1);
  const eMax = (1 << expBits) - 1;
  if (dataType === DataType.FLOAT8E4M3FN && e === eMax && m === (1 << manBits) - 1) return NaN;
  if (dataType === DataType.FLOAT8E5M2 && e === eMax) return m === 0 ? s * Infinity : NaN;
  if (e === 0) return s * m * 2 ** (1 - bias - manBits);
  return s * (1 + m / (1 << manBits)) * 2 ** (e - bias);
}

// ------------------------------------------------------------------------------------ reading

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function tensorLabel(t: onnx.ITensorProto): string {
  return t.name ? `tensor "${t.name}"` : 'unnamed tensor';
}

function sizeError(t: onnx.ITensorProto, what: string, got: number, want: number): GraphError {
  return new GraphError(
    `${tensorLabel(t)} (${dataTypeName(t.dataType ?? 0)}, dims [${dimsOf(t).join(', ')}]) has ${got} ${what}, expected ${want}`,
    { node: t.name ?? undefined, hint: 'the tensor data does not match its shape; re-export the model' },
  );
}

type TypedCtor<T> = { new (buffer: ArrayBufferLike, byteOffset: number, length: number): T; new (length: number): T; BYTES_PER_ELEMENT: number };

/** View (or aligned copy) of little-endian `raw` as `ctor`; copies when unaligned or `copy`. */
function rawAs<T extends { slice(): T }>(ctor: TypedCtor<T>, raw: Uint8Array, n: number, copy: boolean): T {
  if (raw.byteOffset % ctor.BYTES_PER_ELEMENT === 0) {
    const view = new ctor(raw.buffer, raw.byteOffset, n);
    return copy ? view.slice() : view;
  }
  const bytes = new Uint8Array(raw.subarray(0, n * ctor.BYTES_PER_ELEMENT)); // aligned copy (Buffer#slice would not copy)
  return new ctor(bytes.buffer, 0, n);
}

/** Big-endian hosts: read every element through a DataView (exported for tests). */
export function readRawDataView(dataType: number, raw: Uint8Array, n: number): TensorValues {
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const fill = <T extends { [i: number]: number | bigint }>(out: T, size: number, get: (o: number) => number | bigint): T => {
    for (let i = 0; i < n; i++) out[i] = get(i * size);
    return out;
  };
  switch (dataType) {
    case DataType.FLOAT:
      return fill(new Float32Array(n), 4, (o) => dv.getFloat32(o, true));
    case DataType.COMPLEX64:
      return fill(new Float32Array(n), 4, (o) => dv.getFloat32(o, true));
    case DataType.DOUBLE:
    case DataType.COMPLEX128:
      return fill(new Float64Array(n), 8, (o) => dv.getFloat64(o, true));
    case DataType.INT16:
      return fill(new Int16Array(n), 2, (o) => dv.getInt16(o, true));
    case DataType.UINT16:
    case DataType.FLOAT16:
    case DataType.BFLOAT16:
      return fill(new Uint16Array(n), 2, (o) => dv.getUint16(o, true));
    case DataType.INT32:
      return fill(new Int32Array(n), 4, (o) => dv.getInt32(o, true));
    case DataType.UINT32:
      return fill(new Uint32Array(n), 4, (o) => dv.getUint32(o, true));
    case DataType.INT64:
      return fill(new BigInt64Array(n), 8, (o) => dv.getBigInt64(o, true));
    case DataType.UINT64:
      return fill(new BigUint64Array(n), 8, (o) => dv.getBigUint64(o, true));
    default:
      throw new GraphError(`no DataView reader for ${dataTypeName(dataType)}`, { hint: 'this is a ranerc bug; please report it' });
  }
}

function unpack4(bytes: ArrayLike<number>, n: number, signed: boolean): Int8Array | Uint8Array {
  const out = signed ? new Int8Array(n) : new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const b = bytes[i >> 1] & 0xff;
    const nib = i & 1 ? b >> 4 : b & 0x0f;
    out[i] = signed && nib >= 8 ? nib - 16 : nib;
  }
  return out;
}

function readRaw(t: onnx.ITensorProto, dataType: number, raw: Uint8Array, n: number, copy: boolean): TensorValues {
  const size = elementSize(dataType);
  const perElem = dataType === DataType.COMPLEX64 || dataType === DataType.COMPLEX128 ? 2 : 1;
  if (size === undefined) {
    throw new GraphError(`${tensorLabel(t)} has data type ${dataTypeName(dataType)}, which cannot be stored in raw_data`, {
      node: t.name ?? undefined,
      hint: 'the model may come from a newer ONNX version than ranerc supports',
    });
  }
  const want = Math.ceil(n * size);
  if (raw.length !== want) throw sizeError(t, 'bytes of raw_data', raw.length, want);
  switch (dataType) {
    case DataType.UINT8:
    case DataType.FLOAT8E4M3FN:
    case DataType.FLOAT8E4M3FNUZ:
    case DataType.FLOAT8E5M2:
    case DataType.FLOAT8E5M2FNUZ:
      return copy ? new Uint8Array(raw) : new Uint8Array(raw.buffer, raw.byteOffset, raw.length);
    case DataType.INT8:
      return copy ? new Int8Array(raw) : new Int8Array(raw.buffer, raw.byteOffset, n);
    case DataType.BOOL:
      return Array.from(raw, (b) => b !== 0);
    case DataType.UINT4:
    case DataType.FLOAT4E2M1:
      return unpack4(raw, n, false);
    case DataType.INT4:
      return unpack4(raw, n, true);
  }
  if (!LITTLE_ENDIAN) return readRawDataView(dataType, raw, n * perElem);
  switch (dataType) {
    case DataType.FLOAT:
    case DataType.COMPLEX64:
      return rawAs(Float32Array, raw, n * perElem, copy);
    case DataType.DOUBLE:
    case DataType.COMPLEX128:
      return rawAs(Float64Array, raw, n * perElem, copy);
    case DataType.INT16:
      return rawAs(Int16Array, raw, n, copy);
    case DataType.UINT16:
    case DataType.FLOAT16:
    case DataType.BFLOAT16:
      return rawAs(Uint16Array, raw, n, copy);
    case DataType.INT32:
      return rawAs(Int32Array, raw, n, copy);
    case DataType.UINT32:
      return rawAs(Uint32Array, raw, n, copy);
    case DataType.INT64:
      return rawAs(BigInt64Array, raw, n, copy);
    case DataType.UINT64:
      return rawAs(BigUint64Array, raw, n, copy);
  }
  throw new GraphError(`${tensorLabel(t)}: unsupported data type ${dataTypeName(dataType)}`, {
    node: t.name ?? undefined,
    hint: 'the model may come from a newer ONNX version than ranerc supports',
  });
}

function checkLen(t: onnx.ITensorProto, field: string, got: number, want: number): void {
  if (got !== want) throw sizeError(t, `values in ${field}`, got, want);
}

function readTyped(t: onnx.ITensorProto, dataType: number, n: number): TensorValues {
  const i32 = t.int32Data ?? [];
  switch (dataType) {
    case DataType.FLOAT:
    case DataType.COMPLEX64: {
      const want = dataType === DataType.COMPLEX64 ? 2 * n : n;
      checkLen(t, 'float_data', t.floatData?.length ?? 0, want);
      return Float32Array.from(t.floatData ?? []);
    }
    case DataType.DOUBLE:
    case DataType.COMPLEX128: {
      const want = dataType === DataType.COMPLEX128 ? 2 * n : n;
      checkLen(t, 'double_data', t.doubleData?.length ?? 0, want);
      return Float64Array.from(t.doubleData ?? []);
    }
    case DataType.INT64:
      checkLen(t, 'int64_data', t.int64Data?.length ?? 0, n);
      return BigInt64Array.from((t.int64Data ?? []).map((v) => BigInt.asIntN(64, toBigInt(v))));
    case DataType.UINT32:
      checkLen(t, 'uint64_data', t.uint64Data?.length ?? 0, n);
      return Uint32Array.from((t.uint64Data ?? []).map((v) => Number(BigInt.asUintN(32, toBigInt(v)))));
    case DataType.UINT64:
      checkLen(t, 'uint64_data', t.uint64Data?.length ?? 0, n);
      return BigUint64Array.from((t.uint64Data ?? []).map((v) => BigInt.asUintN(64, toBigInt(v))));
    case DataType.STRING: {
      checkLen(t, 'string_data', t.stringData?.length ?? 0, n);
      const dec = new TextDecoder();
      return (t.stringData ?? []).map((b) => dec.decode(b));
    }
    case DataType.UINT4:
    case DataType.INT4:
    case DataType.FLOAT4E2M1:
      checkLen(t, 'int32_data', i32.length, Math.ceil(n / 2));
      return unpack4(i32, n, dataType === DataType.INT4);
  }
  checkLen(t, 'int32_data', i32.length, n);
  switch (dataType) {
    case DataType.INT32:
      return Int32Array.from(i32);
    case DataType.INT8:
      return Int8Array.from(i32);
    case DataType.UINT8:
    case DataType.FLOAT8E4M3FN:
    case DataType.FLOAT8E4M3FNUZ:
    case DataType.FLOAT8E5M2:
    case DataType.FLOAT8E5M2FNUZ:
      return Uint8Array.from(i32);
    case DataType.INT16:
      return Int16Array.from(i32);
    case DataType.UINT16:
    case DataType.FLOAT16:
    case DataType.BFLOAT16:
      return Uint16Array.from(i32);
    case DataType.BOOL:
      return i32.map((v) => v !== 0);
  }
  throw new GraphError(`${tensorLabel(t)}: unsupported data type ${dataTypeName(dataType)}`, {
    node: t.name ?? undefined,
    hint: 'the model may come from a newer ONNX version than ranerc supports',
  });
}

function hasRaw(t: onnx.ITensorProto): t is onnx.ITensorProto & { rawData: Uint8Array } {
  return t.rawData != null && Object.prototype.hasOwnProperty.call(t, 'rawData');
}

/**
 * Read a tensor's values. By default the result is a fresh array the caller may mutate; with
 * `view: true`, aligned little-endian raw_data is returned as a view that shares memory with the
 * tensor (read-only by convention). Throws GraphError for data that does not match the dims, for
 * unresolved external data and for unsupported types.
 */
export function readTensor(t: onnx.ITensorProto, opts: { view?: boolean } = {}): TensorData {
  const dataType = t.dataType ?? DataType.UNDEFINED;
  const dims = dimsOf(t);
  const n = elementCount(dims);
  if (t.dataLocation === EXTERNAL) {
    throw new GraphError(`${tensorLabel(t)} is stored in external data that was not loaded`, {
      node: t.name ?? undefined,
      hint: 'load the model with loadModel() (src/onnx/external.ts), which resolves external data',
    });
  }
  if (t.segment) {
    throw new GraphError(`${tensorLabel(t)} is a segment of a larger tensor, which ranerc does not support`, {
      node: t.name ?? undefined,
      hint: 're-save the model with onnx.save_model so every tensor is whole',
    });
  }
  if (dataType === DataType.UNDEFINED) {
    throw new GraphError(`${tensorLabel(t)} has no data type`, { node: t.name ?? undefined, hint: 're-export the model' });
  }
  const data =
    hasRaw(t) && dataType !== DataType.STRING && (t.rawData.length > 0 || n === 0)
      ? readRaw(t, dataType, t.rawData, n, !opts.view)
      : readTyped(t, dataType, n);
  return { dataType, dims, data };
}

/** Values as float32 (ints and bools converted, (b)float16/float8/float4 decoded). Always a fresh array. */
export function tensorToFloat32(t: onnx.ITensorProto | TensorData): Float32Array {
  return isTensorData(t) ? valuesToFloat32(t) : valuesToFloat32(readTensor(t, { view: true }), t.name ?? undefined);
}

/** Whether `t` is already-read {@link TensorData} rather than a TensorProto. */
export function isTensorData(t: onnx.ITensorProto | TensorData): t is TensorData {
  return 'data' in t && t.data !== undefined;
}

function valuesToFloat32(td: TensorData, name?: string): Float32Array {
  const { dataType, data } = td;
  const n = data.length;
  const out = new Float32Array(n);
  switch (dataType) {
    case DataType.FLOAT16:
      for (let i = 0; i < n; i++) out[i] = float16ToFloat32((data as Uint16Array)[i]);
      return out;
    case DataType.BFLOAT16:
      for (let i = 0; i < n; i++) out[i] = bfloat16ToFloat32((data as Uint16Array)[i]);
      return out;
    case DataType.FLOAT8E4M3FN:
    case DataType.FLOAT8E4M3FNUZ:
    case DataType.FLOAT8E5M2:
    case DataType.FLOAT8E5M2FNUZ:
    case DataType.FLOAT4E2M1:
      for (let i = 0; i < n; i++) out[i] = smallFloatToFloat32((data as Uint8Array)[i], dataType);
      return out;
    case DataType.BOOL:
      for (let i = 0; i < n; i++) out[i] = (data as boolean[])[i] ? 1 : 0;
      return out;
    case DataType.STRING:
    case DataType.COMPLEX64:
    case DataType.COMPLEX128:
      throw new GraphError(`${name ? `tensor "${name}"` : 'tensor'} of type ${dataTypeName(dataType)} has no float32 value`, {
        node: name,
        hint: 'only real numeric tensors convert to float32',
      });
  }
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    for (let i = 0; i < n; i++) out[i] = Number(data[i]);
    return out;
  }
  out.set(data as ArrayLike<number>);
  return out;
}

/**
 * Values as plain numbers (for small tensors: shapes, axes, scalars). Integers above 2^53 throw a
 * GraphError unless `clamp` saturates them (see {@link toNumber}); float types are decoded.
 */
export function tensorToNumbers(t: onnx.ITensorProto | TensorData, opts: { clamp?: boolean } = {}): number[] {
  const td = isTensorData(t) ? t : readTensor(t, { view: true });
  const { data } = td;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    return Array.from(data, (v) => toNumber(v, { clamp: opts.clamp, what: 'int64 element' }));
  }
  if (td.dataType === DataType.STRING) {
    throw new GraphError('string tensor has no numeric value', { hint: 'only numeric tensors convert to numbers' });
  }
  if (
    td.dataType === DataType.FLOAT16 ||
    td.dataType === DataType.BFLOAT16 ||
    td.dataType === DataType.BOOL ||
    (td.dataType >= DataType.FLOAT8E4M3FN && td.dataType <= DataType.FLOAT8E5M2FNUZ) ||
    td.dataType === DataType.FLOAT4E2M1
  ) {
    return Array.from(valuesToFloat32(td));
  }
  return Array.from(data as ArrayLike<number>);
}

// ------------------------------------------------------------------------------------ writing

export type TensorInput = TensorValues | number[] | bigint[];

function toBig(v: number | bigint | boolean | string, what: string): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  throw new GraphError(`${what}: ${String(v)} is not an integer`, { hint: 'pass integers (or bigints) for int64 tensors' });
}

/** The typed array whose memory layout is the raw_data encoding of each type. */
const NATIVE_ARRAY: Record<number, { new (n: number): unknown } | undefined> = {
  [DataType.FLOAT]: Float32Array,
  [DataType.COMPLEX64]: Float32Array,
  [DataType.DOUBLE]: Float64Array,
  [DataType.COMPLEX128]: Float64Array,
  [DataType.INT8]: Int8Array,
  [DataType.UINT8]: Uint8Array,
  [DataType.INT16]: Int16Array,
  [DataType.UINT16]: Uint16Array,
  [DataType.FLOAT16]: Uint16Array,
  [DataType.BFLOAT16]: Uint16Array,
  [DataType.INT32]: Int32Array,
  [DataType.UINT32]: Uint32Array,
  [DataType.INT64]: BigInt64Array,
  [DataType.UINT64]: BigUint64Array,
};

/** Little-endian bytes of `values` for `dataType` (the raw_data encoding). */
export function encodeRaw(dataType: number, values: TensorInput, name = 'tensor'): Uint8Array {
  const n = values.length;
  const num = (i: number): number => {
    const v = values[i];
    return typeof v === 'boolean' ? (v ? 1 : 0) : Number(v);
  };
  const le = <T extends { buffer: ArrayBufferLike; byteOffset: number; byteLength: number }>(arr: T): Uint8Array => {
    if (!LITTLE_ENDIAN) throw new GraphError('writing tensors on a big-endian host is not supported', { hint: 'run ranerc on a little-endian machine' });
    return new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
  };
  const fromNums = <T extends { [i: number]: number; buffer: ArrayBufferLike; byteOffset: number; byteLength: number }>(
    out: T,
    conv: (x: number) => number = (x) => x,
  ): Uint8Array => {
    for (let i = 0; i < n; i++) out[i] = conv(num(i));
    return le(out);
  };
  const bits = values instanceof Uint16Array || values instanceof Uint8Array;
  const same = NATIVE_ARRAY[dataType];
  if (same && values instanceof same && LITTLE_ENDIAN) {
    // the matching typed array: one memcpy
    const v = values as unknown as { buffer: ArrayBufferLike; byteOffset: number; byteLength: number };
    return new Uint8Array(v.buffer, v.byteOffset, v.byteLength).slice();
  }
  switch (dataType) {
    case DataType.FLOAT:
    case DataType.COMPLEX64:
      return fromNums(new Float32Array(n));
    case DataType.DOUBLE:
    case DataType.COMPLEX128:
      return fromNums(new Float64Array(n));
    case DataType.INT8:
      return fromNums(new Int8Array(n));
    case DataType.UINT8:
      return fromNums(new Uint8Array(n));
    case DataType.BOOL:
      return fromNums(new Uint8Array(n), (x) => (x ? 1 : 0));
    case DataType.INT16:
      return fromNums(new Int16Array(n));
    case DataType.UINT16:
      return fromNums(new Uint16Array(n));
    case DataType.INT32:
      return fromNums(new Int32Array(n));
    case DataType.UINT32:
      return fromNums(new Uint32Array(n));
    case DataType.FLOAT16:
      return bits ? fromNums(new Uint16Array(n)) : fromNums(new Uint16Array(n), float32ToFloat16);
    case DataType.BFLOAT16:
      return bits ? fromNums(new Uint16Array(n)) : fromNums(new Uint16Array(n), float32ToBfloat16);
    case DataType.INT64: {
      const out = new BigInt64Array(n);
      for (let i = 0; i < n; i++) out[i] = BigInt.asIntN(64, toBig(values[i], name));
      return le(out);
    }
    case DataType.UINT64: {
      const out = new BigUint64Array(n);
      for (let i = 0; i < n; i++) out[i] = BigInt.asUintN(64, toBig(values[i], name));
      return le(out);
    }
    case DataType.FLOAT8E4M3FN:
    case DataType.FLOAT8E4M3FNUZ:
    case DataType.FLOAT8E5M2:
    case DataType.FLOAT8E5M2FNUZ:
      if (!(values instanceof Uint8Array)) {
        throw new GraphError(`${name}: pass ${dataTypeName(dataType)} values as a Uint8Array of bit patterns`, {
          hint: 'ranerc does not convert numbers to float8',
        });
      }
      return new Uint8Array(values);
    case DataType.UINT4:
    case DataType.INT4:
    case DataType.FLOAT4E2M1: {
      const out = new Uint8Array(Math.ceil(n / 2));
      for (let i = 0; i < n; i++) out[i >> 1] |= (num(i) & 0x0f) << ((i & 1) * 4);
      return out;
    }
  }
  throw new GraphError(`${name}: cannot write data type ${dataTypeName(dataType)} as raw_data`, {
    hint: 'STRING tensors use string_data; other types are not supported',
  });
}

/**
 * A new TensorProto with `data` stored in raw_data (STRING: string_data). For FLOAT16/BFLOAT16 a
 * Uint16Array is taken as bit patterns and anything else as values (rounded to nearest even);
 * float8 types need a Uint8Array of bit patterns; 4-bit types take one element per entry (packed here).
 */
export function makeTensor(
  name: string,
  dataType: number,
  dims: readonly number[],
  data: TensorInput | boolean[] | string[],
): onnx.TensorProto {
  const n = elementCount(dims);
  const perElem = dataType === DataType.COMPLEX64 || dataType === DataType.COMPLEX128 ? 2 : 1;
  if (data.length !== n * perElem) {
    throw new GraphError(`tensor "${name}": ${data.length} values for dims [${dims.join(', ')}] (${n * perElem} needed)`, {
      node: name,
      hint: 'pass exactly one value per element',
    });
  }
  const t = new onnx.TensorProto({ name, dataType, dims: dims.slice() });
  if (dataType === DataType.STRING) {
    const enc = new TextEncoder();
    t.stringData = (data as unknown[]).map((s) => (typeof s === 'string' ? enc.encode(s) : (s as Uint8Array)));
  } else {
    t.rawData = encodeRaw(dataType, data as TensorInput, `tensor "${name}"`);
  }
  return t;
}

/** raw_data bytes of any (loaded) tensor, converting typed-field storage; a view when already raw. */
export function tensorRawBytes(t: onnx.ITensorProto): Uint8Array {
  const dataType = t.dataType ?? 0;
  if (hasRaw(t) && (t.rawData.length > 0 || elementCount(dimsOf(t)) === 0)) {
    readTensor(t, { view: true }); // validates size
    return t.rawData;
  }
  const td = readTensor(t);
  return encodeRaw(dataType, td.data as TensorInput, tensorLabel(t));
}

/** Bytes the tensor's data occupies (raw or typed storage, as raw_data would hold it). */
export function tensorByteLength(t: onnx.ITensorProto): number {
  if (hasRaw(t) && t.rawData.length > 0) return t.rawData.length;
  const size = elementSize(t.dataType ?? 0);
  if (size === undefined) return (t.stringData ?? []).reduce((s, b) => s + b.length, 0);
  return Math.ceil(elementCount(dimsOf(t)) * size);
}
