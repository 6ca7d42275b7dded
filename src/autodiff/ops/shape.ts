/**
 * Shape and data movement: Shape Size Reshape Flatten Transpose Unsqueeze Squeeze Concat Split
 * Slice Gather Expand Tile Range ConstantOfShape Constant Cast CastLike Identity Dropout.
 * Most have a host (plain JS) form so PyTorch's Shape→Gather→Unsqueeze→Concat→Reshape chains are
 * folded on the CPU once per input shape.
 */
import * as tf from '@tensorflow/tfjs';
import {
  broadcastShapes,
  concatHost,
  gatherHost,
  host,
  isHost,
  mapN,
  reshapeHost,
  selectHost,
  sizeOf,
  transposeHost,
  type HostTensor,
} from '../host.js';
import type { NodeView } from '../node.js';
import { decodeTensor, DT, num } from '../tensordata.js';
import { registerOps, type OpContext, type OpExecutor, type Value } from '../registry.js';
import { common, dtypeOf, ints, normAxis, required, tfDtypeOf, toBool, unsupportedType } from './util.js';

type HostIn = readonly (HostTensor | undefined)[];

/** A host input's values as numbers (undefined when the optional input is absent). */
function hostInts(v: HostTensor | undefined): number[] | undefined {
  return v === undefined ? undefined : Array.from(v.data);
}

// ------------------------------------------------------------------------------------ Shape, Size

function shapeSlice(node: NodeView, shape: readonly number[], opset: number): number[] {
  const r = shape.length;
  if (opset < 15) return [...shape];
  let s = node.int('start', 0);
  let e = node.int('end', r);
  if (s < 0) s += r;
  if (e < 0) e += r;
  s = Math.min(Math.max(s, 0), r);
  e = Math.min(Math.max(e, 0), r);
  return shape.slice(s, Math.max(s, e));
}

const shapeOp: OpExecutor = {
  opType: 'Shape',
  shapeOnly: true,
  host: (node, [x], opset) => {
    const dims = shapeSlice(node, required(node, x, 0).shape, opset);
    return [host(DT.INT64, [dims.length], dims)];
  },
  run: (node, [x], ctx) => {
    const dims = shapeSlice(node, required(node, x, 0).shape, ctx.opset);
    return [host(DT.INT64, [dims.length], dims)];
  },
};

const sizeOp: OpExecutor = {
  opType: 'Size',
  shapeOnly: true,
  host: (node, [x]) => [host(DT.INT64, [], [sizeOf(required(node, x, 0).shape)])],
  run: (node, [x]) => [host(DT.INT64, [], [sizeOf(required(node, x, 0).shape)])],
};

// ------------------------------------------------------------------------------------ Reshape

function reshapeTarget(node: NodeView, inShape: readonly number[], spec: readonly number[], allowZero: boolean): number[] {
  const out = spec.map((d, i) => (d === 0 && !allowZero ? inShape[i] : d));
  const total = sizeOf(inShape);
  const neg = out.filter((d) => d === -1).length;
  if (neg > 1) throw node.error(`shape [${spec}] has more than one -1`, 'at most one dimension may be inferred');
  if (neg === 1) {
    const known = out.reduce((p, d) => (d === -1 ? p : p * d), 1);
    const i = out.indexOf(-1);
    out[i] = known === 0 ? 0 : total / known;
  }
  if (sizeOf(out) !== total || out.some((d) => !Number.isInteger(d) || d < 0)) {
    throw node.error(`cannot reshape [${inShape}] to [${spec}]`, 'the target shape does not match the element count');
  }
  return out;
}

function reshapeSpec(node: NodeView, opset: number, shapeIn: number[] | undefined): number[] {
  if (opset < 5) return node.ints('shape') ?? [];
  if (!shapeIn) throw node.error('the shape input is missing', 'Reshape needs a shape input');
  return shapeIn;
}

const reshapeOps: OpExecutor[] = [1, 5].map((sinceVersion) => ({
  opType: 'Reshape',
  sinceVersion,
  host: (node: NodeView, inputs: HostIn, opset: number) => {
    const x = required(node, inputs[0], 0);
    const t = reshapeTarget(node, x.shape, reshapeSpec(node, opset, hostInts(inputs[1])), node.int('allowzero', 0) === 1);
    return [reshapeHost(x, t)];
  },
  run: (node: NodeView, inputs: readonly (Value | undefined)[], ctx: OpContext) => {
    const x = ctx.tensor(required(node, inputs[0], 0));
    const spec = reshapeSpec(node, ctx.opset, inputs[1] === undefined ? undefined : ints(ctx, inputs[1]));
    return [tf.reshape(x, reshapeTarget(node, x.shape, spec, node.int('allowzero', 0) === 1))];
  },
}));

function flattenShape(node: NodeView, shape: readonly number[]): number[] {
  const r = shape.length;
  let axis = node.int('axis', 1);
  if (axis < 0) axis += r;
  if (axis < 0 || axis > r) throw node.error(`axis ${node.int('axis', 1)} is out of range for rank ${r}`, 'axis must be in [-r, r]');
  return [sizeOf(shape.slice(0, axis)), sizeOf(shape.slice(axis))];
}

const flatten: OpExecutor = {
  opType: 'Flatten',
  host: (node, [x]) => [reshapeHost(required(node, x, 0), flattenShape(node, x!.shape))],
  run: (node, [x], ctx) => {
    const t = ctx.tensor(required(node, x, 0));
    return [tf.reshape(t, flattenShape(node, t.shape))];
  },
};

// ------------------------------------------------------------------------------------ Transpose

function perm(node: NodeView, rank: number): number[] {
  const p = node.ints('perm');
  if (!p || p.length === 0) return [...Array(rank).keys()].reverse();
  if (p.length !== rank) throw node.error(`perm [${p}] does not fit rank ${rank}`, 'perm must list every axis once');
  return p.map((a) => normAxis(node, a, rank));
}

const transpose: OpExecutor = {
  opType: 'Transpose',
  host: (node, [x]) => [transposeHost(required(node, x, 0), perm(node, x!.shape.length))],
  run: (node, [x], ctx) => {
    const t = ctx.tensor(required(node, x, 0));
    return [tf.transpose(t, perm(node, t.rank))];
  },
};

// ------------------------------------------------------------------------------------ Unsqueeze, Squeeze

function unsqueezeShape(node: NodeView, shape: readonly number[], axes: number[]): number[] {
  const r = shape.length + axes.length;
  const norm = axes.map((a) => normAxis(node, a, r)).sort((a, b) => a - b);
  if (new Set(norm).size !== norm.length) throw node.error(`axes [${axes}] repeat an axis`, 'each axis may appear once');
  const out: number[] = [];
  let j = 0;
  for (let i = 0; i < r; i++) out.push(norm.includes(i) ? 1 : shape[j++]);
  return out;
}

function squeezeShape(node: NodeView, shape: readonly number[], axes: number[] | undefined): number[] {
  if (!axes || axes.length === 0) return shape.filter((d) => d !== 1);
  const norm = new Set(axes.map((a) => normAxis(node, a, shape.length)));
  for (const a of norm) {
    if (shape[a] !== 1) throw node.error(`cannot squeeze axis ${a} of size ${shape[a]}`, 'only size-1 axes can be squeezed');
  }
  return shape.filter((_, i) => !norm.has(i));
}

function axesOf(node: NodeView, opset: number, v: number[] | undefined): number[] | undefined {
  return opset < 13 ? node.ints('axes') : v;
}

const unsqueezeOps: OpExecutor[] = [1, 13].map((sinceVersion) => ({
  opType: 'Unsqueeze',
  sinceVersion,
  host: (node: NodeView, inputs: HostIn, opset: number) => {
    const x = required(node, inputs[0], 0);
    return [reshapeHost(x, unsqueezeShape(node, x.shape, axesOf(node, opset, hostInts(inputs[1])) ?? []))];
  },
  run: (node: NodeView, inputs: readonly (Value | undefined)[], ctx: OpContext) => {
    const x = ctx.tensor(required(node, inputs[0], 0));
    const axes = axesOf(node, ctx.opset, inputs[1] === undefined ? undefined : ints(ctx, inputs[1])) ?? [];
    return [tf.reshape(x, unsqueezeShape(node, x.shape, axes))];
  },
}));

const squeezeOps: OpExecutor[] = [1, 13].map((sinceVersion) => ({
  opType: 'Squeeze',
  sinceVersion,
  host: (node: NodeView, inputs: HostIn, opset: number) => {
    const x = required(node, inputs[0], 0);
    return [reshapeHost(x, squeezeShape(node, x.shape, axesOf(node, opset, hostInts(inputs[1]))))];
  },
  run: (node: NodeView, inputs: readonly (Value | undefined)[], ctx: OpContext) => {
    const x = ctx.tensor(required(node, inputs[0], 0));
    const axes = axesOf(node, ctx.opset, inputs[1] === undefined ? undefined : ints(ctx, inputs[1]));
    return [tf.reshape(x, squeezeShape(node, x.shape, axes))];
  },
}));

// ------------------------------------------------------------------------------------ Concat, Split

const concat: OpExecutor = {
  opType: 'Concat',
  check: (node) => {
    if (!node.has('axis')) throw node.error('attribute axis is missing', 'Concat needs an axis');
  },
  host: (node, inputs) => {
    const xs = inputs.filter((x): x is HostTensor => x !== undefined);
    const axis = normAxis(node, node.int('axis', 0), xs[0].shape.length);
    return [concatHost(xs, axis, xs[0].dtype)];
  },
  run: (node, inputs, ctx) => {
    const xs = common(inputs.filter((x): x is Value => x !== undefined).map((x) => ctx.tensor(x)));
    const axis = normAxis(node, node.int('axis', 0), xs[0].rank);
    const nonEmpty = xs.filter((x) => x.size > 0);
    if (nonEmpty.length === 0) {
      const shape = [...xs[0].shape];
      shape[axis] = xs.reduce((s, x) => s + x.shape[axis], 0);
      return [tf.zeros(shape, xs[0].dtype)];
    }
    return [nonEmpty.length === 1 ? tf.clone(nonEmpty[0]) : tf.concat(nonEmpty, axis)];
  },
};

function splitSizes(node: NodeView, dim: number, opset: number, splitIn: number[] | undefined): number[] {
  const n = node.outputs.length;
  const given = opset < 13 ? node.ints('split') : splitIn;
  if (given && given.length > 0) {
    if (given.reduce((a, b) => a + b, 0) !== dim || given.length !== n) {
      throw node.error(`split [${given}] does not fit dimension ${dim} into ${n} outputs`, 'the split sizes must sum to the axis size');
    }
    return given;
  }
  const parts = opset >= 18 ? node.int('num_outputs', n) : n;
  if (opset >= 18) {
    const size = Math.ceil(dim / parts);
    return Array.from({ length: parts }, (_, i) => Math.max(0, Math.min(size, dim - i * size)));
  }
  if (dim % parts !== 0) throw node.error(`cannot split ${dim} into ${parts} equal parts`, 'give explicit split sizes');
  return Array<number>(parts).fill(dim / parts);
}

const splitOps: OpExecutor[] = [1, 13, 18].map((sinceVersion) => ({
  opType: 'Split',
  sinceVersion,
  host: (node: NodeView, inputs: HostIn, opset: number) => {
    const x = required(node, inputs[0], 0);
    const axis = normAxis(node, node.int('axis', 0), x.shape.length);
    const sizes = splitSizes(node, x.shape[axis], opset, hostInts(inputs[1]));
    let start = 0;
    return sizes.map((s) => {
      const sel = x.shape.map((d, i) => (i === axis ? Array.from({ length: s }, (_, k) => start + k) : [...Array(d).keys()]));
      start += s;
      return selectHost(x, sel);
    });
  },
  run: (node: NodeView, inputs: readonly (Value | undefined)[], ctx: OpContext) => {
    const x = ctx.tensor(required(node, inputs[0], 0));
    const axis = normAxis(node, node.int('axis', 0), x.rank);
    const sizes = splitSizes(node, x.shape[axis], ctx.opset, inputs[1] === undefined ? undefined : ints(ctx, inputs[1]));
    return tf.split(x, sizes, axis);
  },
}));

// ------------------------------------------------------------------------------------ Slice

interface SliceAxis {
  start: number;
  end: number;
  step: number;
}

/** Per-axis (start, end, step) after ONNX's negative-index and clamping rules. */
function slicePlan(
  node: NodeView,
  shape: readonly number[],
  starts: number[],
  ends: number[],
  axes: number[] | undefined,
  steps: number[] | undefined,
): SliceAxis[] {
  const plan: SliceAxis[] = shape.map((d) => ({ start: 0, end: d, step: 1 }));
  const ax = axes ?? starts.map((_, i) => i);
  if (starts.length !== ends.length || ax.length !== starts.length || (steps && steps.length !== starts.length)) {
    throw node.error('starts, ends, axes and steps differ in length', 'the model is malformed');
  }
  ax.forEach((a0, j) => {
    const a = normAxis(node, a0, shape.length);
    const dim = shape[a];
    const step = steps ? steps[j] : 1;
    if (step === 0) throw node.error('a step is 0', 'slice steps must be non-zero');
    let s = starts[j];
    let e = ends[j];
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    if (step > 0) {
      s = Math.min(Math.max(s, 0), dim);
      e = Math.min(Math.max(e, 0), dim);
    } else {
      s = Math.min(Math.max(s, 0), dim - 1);
      e = Math.min(Math.max(e, -1), dim - 1);
    }
    plan[a] = { start: s, end: e, step };
  });
  return plan;
}

function axisIndices(p: SliceAxis): number[] {
  const out: number[] = [];
  if (p.step > 0) for (let i = p.start; i < p.end; i += p.step) out.push(i);
  else for (let i = p.start; i > p.end; i += p.step) out.push(i);
  return out;
}

function sliceArgs(node: NodeView, opset: number, get: (i: number) => number[] | undefined): [number[], number[], number[] | undefined, number[] | undefined] {
  if (opset < 10) {
    return [node.ints('starts') ?? [], node.ints('ends') ?? [], node.ints('axes'), undefined];
  }
  const starts = get(1);
  const ends = get(2);
  if (!starts || !ends) throw node.error('starts/ends inputs are missing', 'Slice needs starts and ends');
  return [starts, ends, get(3), get(4)];
}

function sliceDevice(x: tf.Tensor, plan: SliceAxis[]): tf.Tensor {
  const begin = plan.map((p) => (p.step > 0 ? p.start : Math.max(p.end + 1, 0)));
  const size = plan.map((p, i) => {
    const n = p.step > 0 ? p.end - p.start : p.start - p.end;
    return Math.max(0, Math.min(n, x.shape[i] - begin[i]));
  });
  if (size.some((s) => s === 0)) {
    const outShape = plan.map((p) => axisIndices(p).length);
    return tf.zeros(outShape, x.dtype);
  }
  let y = plan.every((p, i) => begin[i] === 0 && size[i] === x.shape[i]) ? x : tf.slice(x, begin, size);
  plan.forEach((p, axis) => {
    if (p.step === 1) return;
    if (p.step === -1) {
      y = tf.reverse(y, axis);
      return;
    }
    // |step| > 1: pick the strided positions inside the sliced box.
    const local = axisIndices(p).map((i) => i - begin[axis]);
    y = tf.gather(y, tf.tensor1d(local, 'int32'), axis);
  });
  return y === x ? tf.clone(x) : y;
}

const sliceOps: OpExecutor[] = [1, 10].map((sinceVersion) => ({
  opType: 'Slice',
  sinceVersion,
  host: (node: NodeView, inputs: HostIn, opset: number) => {
    const x = required(node, inputs[0], 0);
    const [s, e, a, st] = sliceArgs(node, opset, (i) => hostInts(inputs[i]));
    const plan = slicePlan(node, x.shape, s, e, a, st);
    return [selectHost(x, plan.map(axisIndices))];
  },
  run: (node: NodeView, inputs: readonly (Value | undefined)[], ctx: OpContext) => {
    const x = ctx.tensor(required(node, inputs[0], 0));
    const [s, e, a, st] = sliceArgs(node, ctx.opset, (i) => (inputs[i] === undefined ? undefined : ints(ctx, inputs[i]!)));
    return [sliceDevice(x, slicePlan(node, x.shape, s, e, a, st))];
  },
}));

// ------------------------------------------------------------------------------------ Gather

function normIndex(node: NodeView, i: number, dim: number): number {
  const j = i < 0 ? i + dim : i;
  if (j < 0 || j >= dim) throw node.error(`index ${i} is out of range for a dimension of ${dim}`, 'indices must be in [-dim, dim-1]');
  return j;
}

const gather: OpExecutor = {
  opType: 'Gather',
  host: (node, [data, idx]) => {
    const x = required(node, data, 0);
    const ix = required(node, idx, 1);
    const axis = normAxis(node, node.int('axis', 0), x.shape.length);
    const dim = x.shape[axis];
    return [gatherHost(x, Array.from(ix.data, (i) => normIndex(node, i, dim)), ix.shape, axis)];
  },
  run: (node, [data, idx], ctx) => {
    const x = ctx.tensor(required(node, data, 0));
    const iv = required(node, idx, 1);
    const axis = normAxis(node, node.int('axis', 0), x.rank);
    const dim = x.shape[axis];
    let indices: tf.Tensor;
    if (isHost(iv)) {
      indices = tf.tensor(Array.from(iv.data, (i) => normIndex(node, i, dim)), [...iv.shape], 'int32');
    } else {
      const it = iv.dtype === 'int32' ? iv : tf.cast(iv, 'int32');
      indices = tf.where(tf.less(it, tf.scalar(0, 'int32')), tf.add(it, tf.scalar(dim, 'int32')), it);
    }
    return [tf.gather(x, indices, axis)];
  },
};

// ------------------------------------------------------------------------------------ Expand, Tile

const expand: OpExecutor = {
  opType: 'Expand',
  sinceVersion: 8,
  host: (node, [x, s]) => {
    const xt = required(node, x, 0);
    const target = Array.from(required(node, s, 1).data);
    const out = broadcastShapes(xt.shape, target);
    if (!out) throw node.error(`cannot expand [${xt.shape}] to [${target}]`, 'the shapes must broadcast');
    return [mapN([xt, host(DT.BOOL, out, new Float64Array(sizeOf(out)))], (v) => v[0], xt.dtype)];
  },
  run: (node, [x, s], ctx) => {
    const xt = ctx.tensor(required(node, x, 0));
    const target = ints(ctx, required(node, s, 1));
    const out = broadcastShapes(xt.shape, target);
    if (!out) throw node.error(`cannot expand [${xt.shape}] to [${target}]`, 'the shapes must broadcast');
    const same = out.length === xt.rank && out.every((d, i) => d === xt.shape[i]);
    return [same ? tf.clone(xt) : tf.broadcastTo(xt, out)];
  },
};

const tile: OpExecutor = {
  opType: 'Tile',
  sinceVersion: 6,
  host: (node, [x, r]) => {
    const xt = required(node, x, 0);
    const reps = Array.from(required(node, r, 1).data);
    return [selectHost(xt, xt.shape.map((d, i) => Array.from({ length: d * reps[i] }, (_, k) => k % d)))];
  },
  run: (node, [x, r], ctx) => {
    const xt = ctx.tensor(required(node, x, 0));
    return [tf.tile(xt, ints(ctx, required(node, r, 1)))];
  },
};

// ------------------------------------------------------------------------------------ Range, ConstantOfShape, Constant

function rangeHost(node: NodeView, start: HostTensor, limit: number, delta: number): HostTensor {
  if (delta === 0) throw node.error('delta is 0', 'Range needs a non-zero delta');
  const s = start.data[0];
  const n = Math.max(Math.ceil((limit - s) / delta), 0);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = s + i * delta;
  return host(start.dtype, [n], out);
}

const range: OpExecutor = {
  opType: 'Range',
  sinceVersion: 11,
  host: (node, [s, l, d]) => [rangeHost(node, required(node, s, 0), required(node, l, 1).data[0], required(node, d, 2).data[0])],
  run: (node, [s, l, d], ctx) => [
    rangeHost(node, ctx.host(required(node, s, 0)), ctx.host(required(node, l, 1)).data[0], ctx.host(required(node, d, 2)).data[0]),
  ],
};

function constantOfShape(node: NodeView, shape: number[]): HostTensor {
  const v = node.tensor('value');
  const t = v ? decodeTensor(v, node.name) : { dataType: DT.FLOAT, dims: [1], data: new Float64Array([0]) };
  const out = new Float64Array(sizeOf(shape)).fill(t.data[0] ?? 0);
  return host(t.dataType, shape, out);
}

const constantOfShapeOp: OpExecutor = {
  opType: 'ConstantOfShape',
  sinceVersion: 9,
  check: (node) => {
    const v = node.tensor('value');
    if (v && tfDtypeOf(v.dataType ?? 0) === undefined) unsupportedType(node, v.dataType ?? 0);
  },
  host: (node, [s]) => [constantOfShape(node, Array.from(required(node, s, 0).data))],
  run: (node, [s], ctx) => [constantOfShape(node, ints(ctx, required(node, s, 0)))],
};

/** The value of a Constant node (every value_* form, sparse_value densified). */
export function constantValue(node: NodeView): HostTensor {
  const a = node.attrs;
  const t = node.tensor('value');
  if (t) {
    const d = decodeTensor(t, node.name);
    return host(d.dataType, d.dims, d.data);
  }
  if (a.has('value_float')) return host(DT.FLOAT, [], [node.float('value_float', 0)]);
  if (a.has('value_floats')) {
    const v = node.floats('value_floats') ?? [];
    return host(DT.FLOAT, [v.length], v);
  }
  if (a.has('value_int')) return host(DT.INT64, [], [node.int('value_int', 0)]);
  if (a.has('value_ints')) {
    const v = node.ints('value_ints') ?? [];
    return host(DT.INT64, [v.length], v);
  }
  const sp = a.get('sparse_value');
  if (sp && sp.type === 'sparse') {
    const s = sp.value;
    const dims = (s.dims ?? []).map((x) => num(x));
    const values = decodeTensor(s.values ?? {}, node.name);
    const indices = decodeTensor(s.indices ?? {}, node.name);
    const out = new Float64Array(sizeOf(dims));
    const nnz = values.data.length;
    const strides = dims.map((_, i) => sizeOf(dims.slice(i + 1)));
    for (let k = 0; k < nnz; k++) {
      let flat = 0;
      if (indices.dims.length === 1) flat = indices.data[k];
      else for (let j = 0; j < dims.length; j++) flat += indices.data[k * dims.length + j] * strides[j];
      out[flat] = values.data[k];
    }
    return host(values.dataType, dims, out);
  }
  throw node.error('has no value attribute the executor can read (value_string(s) are not supported)', 'use a numeric constant');
}

const constant: OpExecutor = {
  opType: 'Constant',
  check: (node) => {
    const v = constantValue(node);
    if (tfDtypeOf(v.dtype) === undefined) unsupportedType(node, v.dtype);
  },
  host: (node) => [constantValue(node)],
  run: (node) => [constantValue(node)],
};

// ------------------------------------------------------------------------------------ Cast, Identity, Dropout

function castHost(x: HostTensor, to: number): HostTensor {
  return host(to, x.shape, Float64Array.from(x.data));
}

function castDevice(x: tf.Tensor, to: number): tf.Tensor {
  const dt = tfDtypeOf(to)!;
  if (x.dtype === dt) return tf.clone(x);
  return dt === 'bool' ? toBool(x) : tf.cast(x, dt);
}

const cast: OpExecutor = {
  opType: 'Cast',
  sinceVersion: 6,
  check: (node) => {
    const to = node.int('to');
    if (to === undefined) throw node.error('attribute to is missing', 'Cast needs a target type');
    if (tfDtypeOf(to) === undefined) unsupportedType(node, to);
  },
  host: (node, [x]) => [castHost(required(node, x, 0), node.int('to', DT.FLOAT))],
  run: (node, [x], ctx) => [castDevice(ctx.tensor(required(node, x, 0)), node.int('to', DT.FLOAT))],
};

const castLike: OpExecutor = {
  opType: 'CastLike',
  sinceVersion: 15,
  host: (node, [x, like]) => [castHost(required(node, x, 0), required(node, like, 1).dtype)],
  run: (node, [x, like], ctx) => {
    const to = dtypeOf(required(node, like, 1));
    if (tfDtypeOf(to) === undefined) unsupportedType(node, to);
    return [castDevice(ctx.tensor(required(node, x, 0)), to)];
  },
};

const identity: OpExecutor = {
  opType: 'Identity',
  host: (node, [x]) => [required(node, x, 0)],
  run: (node, [x]) => [required(node, x, 0)],
};

const dropout: OpExecutor = {
  opType: 'Dropout',
  run: (node, inputs, ctx) => {
    const xv = required(node, inputs[0], 0);
    const training =
      ctx.opset >= 12 ? inputs[2] !== undefined && ctx.host(inputs[2]).data[0] !== 0 : false;
    const ratio = ctx.opset >= 12 ? (inputs[1] === undefined ? 0.5 : ctx.host(inputs[1]).data[0]) : node.float('ratio', 0.5);
    const wantMask = node.outputs.length > 1 && node.outputs[1] !== '';
    if (!training || ratio === 0) {
      const out: Value[] = [xv];
      if (wantMask) out.push(tf.ones([...xv.shape], 'bool'));
      return out;
    }
    const x = ctx.tensor(xv);
    const keep = tf.greaterEqual(tf.randomUniform(x.shape, 0, 1), ratio);
    const y = tf.div(tf.mul(x, tf.cast(keep, x.dtype)), 1 - ratio);
    return wantMask ? [y, keep] : [y];
  },
};

registerOps(
  shapeOp,
  sizeOp,
  ...reshapeOps,
  flatten,
  transpose,
  ...unsqueezeOps,
  ...squeezeOps,
  concat,
  ...splitOps,
  ...sliceOps,
  gather,
  expand,
  tile,
  range,
  constantOfShapeOp,
  constant,
  cast,
  castLike,
  identity,
  dropout,
);
