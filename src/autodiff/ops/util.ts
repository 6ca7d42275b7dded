/** Helpers shared by the op executors. */
import * as tf from '@tensorflow/tfjs';
import { host, isHost, type HostTensor } from '../host.js';
import type { NodeView } from '../node.js';
import { dataTypeName, DT, isFloatType } from '../tensordata.js';
import type { OpContext, Value } from '../registry.js';

/** The tfjs dtype that holds an ONNX element type, or undefined (string, complex). */
export function tfDtypeOf(onnxType: number): 'float32' | 'int32' | 'bool' | undefined {
  if (isFloatType(onnxType)) return 'float32';
  if (onnxType === DT.BOOL) return 'bool';
  switch (onnxType) {
    case DT.INT8: case DT.UINT8: case DT.INT16: case DT.UINT16: case DT.INT32: case DT.INT64:
    case DT.UINT32: case DT.UINT64:
      return 'int32';
    default:
      return undefined;
  }
}

/** The ONNX element type a tfjs tensor stands for (ints are reported as INT64, ONNX's index type). */
export function onnxTypeOfTf(t: tf.Tensor): number {
  return t.dtype === 'float32' ? DT.FLOAT : t.dtype === 'bool' ? DT.BOOL : t.dtype === 'int32' ? DT.INT64 : DT.UNDEFINED;
}

export function dtypeOf(v: Value): number {
  return isHost(v) ? v.dtype : onnxTypeOfTf(v);
}

export function shapeOf(v: Value): number[] {
  return [...v.shape];
}

export function rankOf(v: Value): number {
  return v.shape.length;
}

/** Normalise a possibly negative axis for a given rank; errors name the node. */
export function normAxis(node: NodeView, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= Math.max(rank, 1)) {
    throw node.error(`axis ${axis} is out of range for rank ${rank}`, 'check the model: the axis must be in [-rank, rank-1]');
  }
  return a;
}

export function required<T>(node: NodeView, v: T | undefined, i: number): T {
  if (v === undefined) throw node.error(`input ${i} is missing`, 'the node needs this input; the model is malformed');
  return v;
}

/** A host tensor's values as plain numbers (a scalar or 1-D list). */
export function ints(ctx: OpContext, v: Value): number[] {
  return Array.from(ctx.host(v).data);
}

/** Host scalar from an optional input (or the default). */
export function scalarOr(ctx: OpContext, v: Value | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const h = ctx.host(v);
  return h.data.length > 0 ? h.data[0] : dflt;
}

/**
 * Run an op whose outputs are not differentiable (comparisons, logic) so that the gradient tape
 * sees zero gradients instead of a missing gradient function, when its inputs depend on variables.
 */
export function noGrad(f: (...xs: tf.Tensor[]) => tf.Tensor, xs: tf.Tensor[]): tf.Tensor {
  if (!xs.some((x) => x.dtype === 'float32')) return f(...xs);
  const g = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const inputs = args.slice(0, xs.length) as tf.Tensor[];
    return {
      value: f(...inputs),
      gradFunc: () => inputs.map((x) => tf.zeros(x.shape, 'float32')),
    };
  });
  return g(...xs);
}

/** Cast tensors to a common dtype (float32 > int32 > bool), as ONNX's same-type inputs need. */
export function common(xs: tf.Tensor[]): tf.Tensor[] {
  const dt = xs.some((x) => x.dtype === 'float32') ? 'float32' : xs.some((x) => x.dtype === 'int32') ? 'int32' : 'bool';
  return xs.map((x) => (x.dtype === dt ? x : tf.cast(x, dt)));
}

export function unsupportedType(node: NodeView, onnxType: number): never {
  throw node.error(
    `data type ${dataTypeName(onnxType)} is not supported`,
    'the tfjs executor holds float32, int32 and bool tensors; convert the model to float32 / int64',
  );
}

export function hostScalar(dtype: number, value: number): HostTensor {
  return host(dtype, [], [value]);
}

/**
 * x != 0 as bool. (tf.cast(x, 'bool') from float32 on the wasm backend keeps raw bytes instead of
 * 0/1, so it is not used for this.)
 */
export function toBool(x: tf.Tensor): tf.Tensor {
  if (x.dtype === 'bool') return x;
  return noGrad((t) => tf.notEqual(t, tf.scalar(0, t.dtype)), [x]);
}
