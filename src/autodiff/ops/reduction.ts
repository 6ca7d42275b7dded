/**
 * Reductions: ReduceSum/Mean/Max/Min/Prod/L1/L2/LogSum/LogSumExp/SumSquare (axes as attribute
 * before opset 13 for ReduceSum and 18 for the others, as an input from then on), ArgMax/ArgMin,
 * CumSum.
 */
import * as tf from '@tensorflow/tfjs';
import { reduceHost, type HostTensor } from '../host.js';
import type { NodeView } from '../node.js';
import { registerOps, type OpContext, type OpExecutor, type Value } from '../registry.js';
import { ints, normAxis, required } from './util.js';

interface ReduceSpec {
  opType: string;
  /** Opset from which axes is an input. */
  axesInputSince: number;
  device: (x: tf.Tensor, axes: number[], keep: boolean) => tf.Tensor;
  /** Host accumulation (init, step, finish) for shape-like data; absent → device only. */
  host?: [number, (acc: number, x: number) => number, ((acc: number, n: number) => number)?];
}

/** Resolve axes; undefined means "no-op" (empty axes with noop_with_empty_axes=1). */
function reduceAxes(
  node: NodeView,
  rank: number,
  opset: number,
  since: number,
  axesValue: number[] | undefined,
): number[] | undefined {
  let axes: number[] | undefined;
  if (opset < since) axes = node.ints('axes');
  else axes = axesValue;
  if (!axes || axes.length === 0) {
    if (opset >= since && node.int('noop_with_empty_axes', 0) === 1) return undefined;
    return [...Array(rank).keys()];
  }
  return [...new Set(axes.map((a) => normAxis(node, a, rank)))].sort((a, b) => a - b);
}

function axesInput(ctx: OpContext | undefined, inputs: readonly (Value | HostTensor | undefined)[]): number[] | undefined {
  const v = inputs[1];
  if (v === undefined) return undefined;
  if (ctx) return ints(ctx, v);
  return Array.from((v as HostTensor).data);
}

function reduceOp(spec: ReduceSpec): OpExecutor[] {
  const versions = [1, spec.axesInputSince];
  return versions.map((sinceVersion) => ({
    opType: spec.opType,
    sinceVersion,
    host: spec.host
      ? (node: NodeView, inputs: readonly (HostTensor | undefined)[], opset: number): HostTensor[] => {
          const x = required(node, inputs[0], 0);
          const axes = reduceAxes(node, x.shape.length, opset, spec.axesInputSince, axesInput(undefined, inputs));
          if (!axes) return [x];
          const [init, step, finish] = spec.host!;
          return [reduceHost(x, axes, node.int('keepdims', 1) !== 0, init, step, finish)];
        }
      : undefined,
    run: (node: NodeView, inputs: readonly (Value | undefined)[], ctx: OpContext): Value[] => {
      const x = ctx.tensor(required(node, inputs[0], 0));
      const axes = reduceAxes(node, x.rank, ctx.opset, spec.axesInputSince, axesInput(ctx, inputs));
      if (!axes) return [tf.clone(x)];
      const keep = node.int('keepdims', 1) !== 0;
      const y = spec.device(x, axes, keep);
      return [y.dtype === x.dtype ? y : tf.cast(y, x.dtype)];
    },
  }));
}

const f32 = (x: tf.Tensor): tf.Tensor => (x.dtype === 'float32' ? x : tf.cast(x, 'float32'));

const reductions: OpExecutor[] = [
  ...reduceOp({ opType: 'ReduceSum', axesInputSince: 13, device: (x, a, k) => tf.sum(x, a, k), host: [0, (s, v) => s + v] }),
  ...reduceOp({
    opType: 'ReduceMean', axesInputSince: 18, device: (x, a, k) => tf.mean(f32(x), a, k),
    host: [0, (s, v) => s + v, (s, n) => s / n],
  }),
  ...reduceOp({ opType: 'ReduceMax', axesInputSince: 18, device: (x, a, k) => tf.max(x, a, k), host: [-Infinity, Math.max] }),
  ...reduceOp({ opType: 'ReduceMin', axesInputSince: 18, device: (x, a, k) => tf.min(x, a, k), host: [Infinity, Math.min] }),
  ...reduceOp({ opType: 'ReduceProd', axesInputSince: 18, device: (x, a, k) => tf.prod(x, a, k), host: [1, (s, v) => s * v] }),
  ...reduceOp({ opType: 'ReduceL1', axesInputSince: 18, device: (x, a, k) => tf.sum(tf.abs(x), a, k) }),
  ...reduceOp({ opType: 'ReduceL2', axesInputSince: 18, device: (x, a, k) => tf.sqrt(tf.sum(tf.square(f32(x)), a, k)) }),
  ...reduceOp({ opType: 'ReduceLogSum', axesInputSince: 18, device: (x, a, k) => tf.log(tf.sum(f32(x), a, k)) }),
  ...reduceOp({ opType: 'ReduceLogSumExp', axesInputSince: 18, device: (x, a, k) => tf.logSumExp(f32(x), a, k) }),
  ...reduceOp({ opType: 'ReduceSumSquare', axesInputSince: 18, device: (x, a, k) => tf.sum(tf.square(x), a, k) }),
];

function argOp(opType: 'ArgMax' | 'ArgMin'): OpExecutor {
  return {
    opType,
    sinceVersion: 1,
    run: (node, inputs, ctx) => {
      const x = ctx.tensor(required(node, inputs[0], 0));
      const axis = normAxis(node, node.int('axis', 0), x.rank);
      const keep = node.int('keepdims', 1) !== 0;
      const last = node.int('select_last_index', 0) === 1;
      const f = opType === 'ArgMax' ? tf.argMax : tf.argMin;
      let idx = last ? tf.sub(tf.scalar(x.shape[axis] - 1, 'int32'), f(tf.reverse(x, axis), axis)) : f(x, axis);
      if (keep) idx = tf.expandDims(idx, axis);
      return [idx];
    },
  };
}

const cumsum: OpExecutor = {
  opType: 'CumSum',
  sinceVersion: 11,
  run: (node, inputs, ctx) => {
    const x = ctx.tensor(required(node, inputs[0], 0));
    const axis = normAxis(node, ints(ctx, required(node, inputs[1], 1))[0], x.rank);
    return [tf.cumsum(x, axis, node.int('exclusive', 0) === 1, node.int('reverse', 0) === 1)];
  },
};

registerOps(...reductions, argOp('ArgMax'), argOp('ArgMin'), cumsum);
