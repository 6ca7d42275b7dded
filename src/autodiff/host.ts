/**
 * Host values: small tensors (shapes, indices, scalar constants) evaluated in plain JS so that the
 * tfjs graph only holds real tensor math. Values are row-major Float64Array (bool as 0/1) tagged
 * with their ONNX element type; arithmetic rounds results to that type.
 */
import { DT, isFloatType } from './tensordata.js';

export interface HostTensor {
  readonly kind: 'host';
  /** ONNX element type (TensorProto.DataType). */
  readonly dtype: number;
  readonly shape: readonly number[];
  readonly data: Float64Array;
}

export function host(dtype: number, shape: readonly number[], data: Float64Array | readonly number[]): HostTensor {
  const arr = data instanceof Float64Array ? data : Float64Array.from(data);
  const n = sizeOf(shape);
  if (arr.length !== n) throw new Error(`host tensor: ${arr.length} values for shape [${shape.join(', ')}]`);
  return { kind: 'host', dtype, shape: [...shape], data: round(dtype, arr) };
}

export function isHost(v: unknown): v is HostTensor {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'host';
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** Round values to what the ONNX element type can hold (in place; returns the array). */
export function round(dtype: number, a: Float64Array): Float64Array {
  if (dtype === DT.DOUBLE) return a;
  if (isFloatType(dtype)) {
    // float32 and the narrower float types (held as float32 by tfjs).
    for (let i = 0; i < a.length; i++) a[i] = Math.fround(a[i]);
    return a;
  }
  switch (dtype) {
    case DT.BOOL:
      for (let i = 0; i < a.length; i++) a[i] = a[i] !== 0 && !Number.isNaN(a[i]) ? 1 : 0;
      break;
    case DT.INT8:
      for (let i = 0; i < a.length; i++) a[i] = (Math.trunc(a[i]) << 24) >> 24;
      break;
    case DT.UINT8:
      for (let i = 0; i < a.length; i++) a[i] = Math.trunc(a[i]) & 0xff;
      break;
    case DT.INT16:
      for (let i = 0; i < a.length; i++) a[i] = (Math.trunc(a[i]) << 16) >> 16;
      break;
    case DT.UINT16:
      for (let i = 0; i < a.length; i++) a[i] = Math.trunc(a[i]) & 0xffff;
      break;
    case DT.INT32:
      for (let i = 0; i < a.length; i++) a[i] = Math.trunc(a[i]) | 0;
      break;
    case DT.UINT32:
      for (let i = 0; i < a.length; i++) a[i] = Math.trunc(a[i]) >>> 0;
      break;
    default:
      // INT64 / UINT64: exact to 2^53, which is all shape arithmetic needs.
      for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i])) a[i] = Math.trunc(a[i]);
  }
  return a;
}

/** Numpy-style broadcast of two shapes; undefined when incompatible. */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] | undefined {
  const r = Math.max(a.length, b.length);
  const out = new Array<number>(r);
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    if (da === db || db === 1) out[i] = da;
    else if (da === 1) out[i] = db;
    else return undefined;
  }
  return out;
}

/** Index map: for each flat output index, the flat index into `shape` broadcast to `outShape`. */
export function broadcastIndex(shape: readonly number[], outShape: readonly number[]): Int32Array {
  const n = sizeOf(outShape);
  const idx = new Int32Array(n);
  const r = outShape.length;
  const inStrides = stridesOf(shape);
  const offs = r - shape.length;
  const coord = new Array<number>(r).fill(0);
  for (let k = 0; k < n; k++) {
    let flat = 0;
    for (let i = 0; i < shape.length; i++) {
      if (shape[i] !== 1) flat += coord[i + offs] * inStrides[i];
    }
    idx[k] = flat;
    for (let i = r - 1; i >= 0; i--) {
      if (++coord[i] < outShape[i]) break;
      coord[i] = 0;
    }
  }
  return idx;
}

export function mapUnary(a: HostTensor, fn: (x: number) => number, dtype = a.dtype): HostTensor {
  const out = new Float64Array(a.data.length);
  for (let i = 0; i < out.length; i++) out[i] = fn(a.data[i]);
  return host(dtype, a.shape, out);
}

/** Elementwise over any number of broadcast inputs. */
export function mapN(inputs: readonly HostTensor[], fn: (xs: number[]) => number, dtype: number): HostTensor {
  let shape: number[] = [];
  for (const t of inputs) {
    const s = broadcastShapes(shape, t.shape);
    if (!s) throw new Error(`shapes [${shape}] and [${t.shape}] do not broadcast`);
    shape = s;
  }
  const idx = inputs.map((t) => broadcastIndex(t.shape, shape));
  const n = sizeOf(shape);
  const out = new Float64Array(n);
  const xs = new Array<number>(inputs.length);
  for (let k = 0; k < n; k++) {
    for (let j = 0; j < inputs.length; j++) xs[j] = inputs[j].data[idx[j][k]];
    out[k] = fn(xs);
  }
  return host(dtype, shape, out);
}

export function mapBinary(a: HostTensor, b: HostTensor, fn: (x: number, y: number) => number, dtype = a.dtype): HostTensor {
  return mapN([a, b], (xs) => fn(xs[0], xs[1]), dtype);
}

export function reshapeHost(a: HostTensor, shape: readonly number[]): HostTensor {
  return host(a.dtype, shape, a.data);
}

export function transposeHost(a: HostTensor, perm: readonly number[]): HostTensor {
  const shape = perm.map((p) => a.shape[p]);
  const inStrides = stridesOf(a.shape);
  const n = a.data.length;
  const out = new Float64Array(n);
  const r = shape.length;
  const coord = new Array<number>(r).fill(0);
  for (let k = 0; k < n; k++) {
    let flat = 0;
    for (let i = 0; i < r; i++) flat += coord[i] * inStrides[perm[i]];
    out[k] = a.data[flat];
    for (let i = r - 1; i >= 0; i--) {
      if (++coord[i] < shape[i]) break;
      coord[i] = 0;
    }
  }
  return host(a.dtype, shape, out);
}

/** Take `indices` (already non-negative) along `axis`: out shape = a[:axis] + idxShape + a[axis+1:]. */
export function gatherHost(a: HostTensor, indices: readonly number[], idxShape: readonly number[], axis: number): HostTensor {
  const outer = sizeOf(a.shape.slice(0, axis));
  const inner = sizeOf(a.shape.slice(axis + 1));
  const dim = a.shape[axis];
  const out = new Float64Array(outer * indices.length * inner);
  let o = 0;
  for (let i = 0; i < outer; i++) {
    for (const ix of indices) {
      const base = (i * dim + ix) * inner;
      for (let j = 0; j < inner; j++) out[o++] = a.data[base + j];
    }
  }
  return host(a.dtype, [...a.shape.slice(0, axis), ...idxShape, ...a.shape.slice(axis + 1)], out);
}

export function concatHost(parts: readonly HostTensor[], axis: number, dtype: number): HostTensor {
  const first = parts[0];
  const outer = sizeOf(first.shape.slice(0, axis));
  const shape = [...first.shape];
  shape[axis] = parts.reduce((s, p) => s + p.shape[axis], 0);
  const out = new Float64Array(sizeOf(shape));
  let o = 0;
  for (let i = 0; i < outer; i++) {
    for (const p of parts) {
      const chunk = sizeOf(p.shape.slice(axis));
      out.set(p.data.subarray(i * chunk, (i + 1) * chunk), o);
      o += chunk;
    }
  }
  return host(dtype, shape, out);
}

/** Per-axis index lists (any order, repeats allowed): the cartesian selection. */
export function selectHost(a: HostTensor, perAxis: readonly (readonly number[])[]): HostTensor {
  const shape = perAxis.map((ix) => ix.length);
  const strides = stridesOf(a.shape);
  const n = sizeOf(shape);
  const out = new Float64Array(n);
  const r = shape.length;
  const coord = new Array<number>(r).fill(0);
  for (let k = 0; k < n; k++) {
    let flat = 0;
    for (let i = 0; i < r; i++) flat += perAxis[i][coord[i]] * strides[i];
    out[k] = a.data[flat];
    for (let i = r - 1; i >= 0; i--) {
      if (++coord[i] < shape[i]) break;
      coord[i] = 0;
    }
  }
  return host(a.dtype, shape, out);
}

/** Reduce over `axes` (sorted, non-negative) with an accumulator. */
export function reduceHost(
  a: HostTensor,
  axes: readonly number[],
  keepDims: boolean,
  init: number,
  step: (acc: number, x: number) => number,
  finish: (acc: number, count: number) => number = (acc) => acc,
  dtype = a.dtype,
): HostTensor {
  const r = a.shape.length;
  const reduced = new Set(axes);
  const outShapeKeep = a.shape.map((d, i) => (reduced.has(i) ? 1 : d));
  const outStrides = stridesOf(outShapeKeep);
  const nOut = sizeOf(outShapeKeep);
  const acc = new Float64Array(nOut).fill(init);
  const coord = new Array<number>(r).fill(0);
  let count = 1;
  for (const ax of axes) count *= a.shape[ax];
  for (let k = 0; k < a.data.length; k++) {
    let o = 0;
    for (let i = 0; i < r; i++) if (!reduced.has(i)) o += coord[i] * outStrides[i];
    acc[o] = step(acc[o], a.data[k]);
    for (let i = r - 1; i >= 0; i--) {
      if (++coord[i] < a.shape[i]) break;
      coord[i] = 0;
    }
  }
  for (let i = 0; i < nOut; i++) acc[i] = finish(acc[i], count);
  const shape = keepDims ? outShapeKeep : a.shape.filter((_, i) => !reduced.has(i));
  return host(dtype, shape, acc);
}

export function isFloatHost(t: HostTensor): boolean {
  return isFloatType(t.dtype);
}

/** Values as a plain number array (for shape-like inputs). */
export function toInts(t: HostTensor): number[] {
  return Array.from(t.data);
}
