/**
 * Index computations exporters emit around sequence sorting (e.g. PyTorch's
 * pack_padded_sequence(enforce_sorted=False)): TopK and ScatterElements. Both are index
 * bookkeeping, not differentiable model math: TopK's values have no gradient, and ScatterElements
 * is evaluated on the host.
 */
import * as tf from '@tensorflow/tfjs';
import { host, sizeOf, stridesOf, type HostTensor } from '../host.js';
import type { NodeView } from '../node.js';
import { DT } from '../tensordata.js';
import { registerOps, type OpContext, type OpExecutor, type Value } from '../registry.js';
import { normAxis, required } from './util.js';

function topkK(node: NodeView, opset: number, kIn: HostTensor | undefined): number {
  if (opset < 10) return node.int('k', 1);
  if (!kIn) throw node.error('input K is missing', 'TopK needs K');
  return kIn.data[0];
}

/** TopK along `axis` on the host: ties keep the lower index first (ONNX). */
function topkHost(node: NodeView, x: HostTensor, k: number, axis: number, largest: boolean): [HostTensor, HostTensor] {
  const dim = x.shape[axis];
  if (k < 0 || k > dim) throw node.error(`K=${k} is out of range for an axis of ${dim}`, 'K must be in [0, axis size]');
  const outer = sizeOf(x.shape.slice(0, axis));
  const inner = sizeOf(x.shape.slice(axis + 1));
  const outShape = [...x.shape];
  outShape[axis] = k;
  const vals = new Float64Array(outer * k * inner);
  const idxs = new Float64Array(outer * k * inner);
  const order = [...Array(dim).keys()];
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const at = (j: number): number => x.data[(o * dim + j) * inner + i];
      const sorted = [...order].sort((a, b) => {
        const d = largest ? at(b) - at(a) : at(a) - at(b);
        return d !== 0 && !Number.isNaN(d) ? d : a - b;
      });
      for (let j = 0; j < k; j++) {
        vals[(o * k + j) * inner + i] = at(sorted[j]);
        idxs[(o * k + j) * inner + i] = sorted[j];
      }
    }
  }
  return [host(x.dtype, outShape, vals), host(DT.INT64, outShape, idxs)];
}

function topkDevice(x: tf.Tensor, k: number, axis: number, largest: boolean): tf.Tensor[] {
  const rank = x.rank;
  const perm = [...Array(rank).keys()];
  perm[axis] = rank - 1;
  perm[rank - 1] = axis;
  const moved = axis === rank - 1 ? x : tf.transpose(x, perm);
  const src = largest ? moved : tf.neg(moved);
  const { values, indices } = tf.topk(src, k, true);
  const v = largest ? values : tf.neg(values);
  if (axis === rank - 1) return [v, indices];
  return [tf.transpose(v, perm), tf.transpose(indices, perm)];
}

const topk: OpExecutor[] = [1, 10, 11].map((sinceVersion) => ({
  opType: 'TopK',
  sinceVersion,
  // sorted=0 leaves the order implementation-defined; sorting is a valid order.
  host: (node: NodeView, inputs: readonly (HostTensor | undefined)[], opset: number) => {
    const x = required(node, inputs[0], 0);
    const axis = normAxis(node, node.int('axis', -1), x.shape.length);
    return topkHost(node, x, topkK(node, opset, inputs[1]), axis, opset < 11 || node.int('largest', 1) === 1);
  },
  run: (node: NodeView, inputs: readonly (Value | undefined)[], ctx: OpContext) => {
    const x = ctx.tensor(required(node, inputs[0], 0));
    const axis = normAxis(node, node.int('axis', -1), x.rank);
    const k = topkK(node, ctx.opset, inputs[1] === undefined ? undefined : ctx.host(inputs[1]));
    const largest = ctx.opset < 11 || node.int('largest', 1) === 1;
    if (x.dtype === 'int32' || x.size <= 4096) {
      // Exact ONNX tie order (lower index first) on the host; TopK has no gradient anyway.
      return topkHost(node, ctx.host(x), k, axis, largest);
    }
    return topkDevice(x, k, axis, largest);
  },
}));

function scatterElementsHost(node: NodeView, data: HostTensor, indices: HostTensor, updates: HostTensor, opset: number): HostTensor {
  const rank = data.shape.length;
  const axis = normAxis(node, node.int('axis', 0), rank);
  const reduction = opset >= 16 ? node.string('reduction', 'none') : 'none';
  const out = Float64Array.from(data.data);
  const dStrides = stridesOf(data.shape);
  const coord = new Array<number>(rank).fill(0);
  const dim = data.shape[axis];
  for (let k = 0; k < indices.data.length; k++) {
    let ix = indices.data[k];
    if (ix < 0) ix += dim;
    if (ix < 0 || ix >= dim) throw node.error(`index ${indices.data[k]} is out of range for an axis of ${dim}`, 'indices must be in [-dim, dim-1]');
    let flat = 0;
    for (let i = 0; i < rank; i++) flat += (i === axis ? ix : coord[i]) * dStrides[i];
    const u = updates.data[k];
    if (reduction === 'add') out[flat] += u;
    else if (reduction === 'mul') out[flat] *= u;
    else if (reduction === 'max') out[flat] = Math.max(out[flat], u);
    else if (reduction === 'min') out[flat] = Math.min(out[flat], u);
    else out[flat] = u;
    for (let i = rank - 1; i >= 0; i--) {
      if (++coord[i] < indices.shape[i]) break;
      coord[i] = 0;
    }
  }
  return host(data.dtype, data.shape, out);
}

const scatterElements: OpExecutor[] = [11, 16].map((sinceVersion) => ({
  opType: 'ScatterElements',
  sinceVersion,
  check: (node: NodeView, opset: number) => {
    const r = opset >= 16 ? node.string('reduction', 'none') : 'none';
    if (!['none', 'add', 'mul', 'max', 'min'].includes(r)) throw node.error(`reduction="${r}" is unknown`, 'use none, add, mul, max or min');
  },
  host: (node: NodeView, inputs: readonly (HostTensor | undefined)[], opset: number) => [
    scatterElementsHost(node, required(node, inputs[0], 0), required(node, inputs[1], 1), required(node, inputs[2], 2), opset),
  ],
  run: (node: NodeView, inputs: readonly (Value | undefined)[], ctx: OpContext) => [
    scatterElementsHost(
      node,
      ctx.host(required(node, inputs[0], 0)),
      ctx.host(required(node, inputs[1], 1)),
      ctx.host(required(node, inputs[2], 2)),
      ctx.opset,
    ),
  ],
}));

registerOps(...topk, ...scatterElements);
