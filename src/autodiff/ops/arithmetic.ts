/**
 * Elementwise arithmetic: Add Sub Mul Div Pow Mod, unary math (Sqrt Exp Log Erf Tanh Neg Abs ...),
 * variadic Min Max Sum Mean, and Clip. Broadcasting is numpy-style (ONNX opset ≥ 7).
 */
import * as tf from '@tensorflow/tfjs';
import { isHost, mapBinary, mapN, mapUnary, type HostTensor } from '../host.js';
import type { NodeView } from '../node.js';
import { DT, isFloatType } from '../tensordata.js';
import { registerOps, type OpContext, type OpExecutor, type Value } from '../registry.js';
import { common, required, scalarOr } from './util.js';

function isIntTensor(t: tf.Tensor): boolean {
  return t.dtype === 'int32';
}

/** Integer division truncating toward zero (ONNX/C semantics; tf.div floors for int32). */
function truncDiv(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const q = tf.floorDiv(a, b);
  const r = tf.sub(a, tf.mul(q, b));
  const zero = tf.scalar(0, 'int32');
  const fix = tf.logicalAnd(tf.notEqual(r, zero), tf.notEqual(tf.less(a, zero), tf.less(b, zero)));
  return tf.where(fix, tf.add(q, tf.scalar(1, 'int32')), q);
}

function binary(
  opType: string,
  device: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor,
  js: (a: number, b: number, dtype: number) => number,
  sinceVersion = 7,
): OpExecutor {
  return {
    opType,
    sinceVersion,
    host: (node, [a, b]) => [mapBinary(required(node, a, 0), required(node, b, 1), (x, y) => js(x, y, a!.dtype))],
    run: (node, inputs, ctx) => {
      const [a, b] = common([ctx.tensor(required(node, inputs[0], 0)), ctx.tensor(required(node, inputs[1], 1))]);
      return [device(a, b)];
    },
  };
}

function isIntType(dt: number): boolean {
  return !isFloatType(dt) && dt !== DT.BOOL;
}

const add = binary('Add', tf.add, (a, b) => a + b);
const sub = binary('Sub', tf.sub, (a, b) => a - b);
const mul = binary('Mul', tf.mul, (a, b) => a * b);
const div = binary(
  'Div',
  (a, b) => (isIntTensor(a) ? truncDiv(a, b) : tf.div(a, b)),
  (a, b, dt) => (isIntType(dt) ? Math.trunc(a / b) : a / b),
);

const pow: OpExecutor = {
  opType: 'Pow',
  sinceVersion: 7,
  host: (node, [a, b]) => [mapBinary(required(node, a, 0), required(node, b, 1), (x, y) => Math.pow(x, y), a!.dtype)],
  run: (node, inputs, ctx) => {
    const xv = required(node, inputs[0], 0);
    const ev = required(node, inputs[1], 1);
    const x = ctx.tensor(xv);
    // Constant exponents of LayerNorm-style graphs: square/sqrt have cheaper, exact gradients.
    if (isHost(ev) && ev.data.length === 1 && x.dtype === 'float32') {
      const e = ev.data[0];
      const bshape = ev.shape.length > x.shape.length;
      if (!bshape) {
        if (e === 2) return [tf.square(x)];
        if (e === 1) return [tf.clone(x)];
        if (e === 0.5) return [tf.sqrt(x)];
      }
    }
    let e = ctx.tensor(ev);
    let base = x;
    if (base.dtype !== 'float32' || e.dtype !== 'float32') {
      base = tf.cast(base, 'float32');
      e = tf.cast(e, 'float32');
    }
    const y = tf.pow(base, e);
    return [x.dtype === 'float32' ? y : tf.cast(y, x.dtype)];
  },
};

const mod: OpExecutor = {
  opType: 'Mod',
  sinceVersion: 10,
  check: (node) => {
    const f = node.int('fmod', 0);
    if (f !== 0 && f !== 1) throw node.error(`fmod=${f} is invalid`, 'fmod must be 0 or 1');
  },
  host: (node, [a, b]) => {
    const fmod = node.int('fmod', 0) === 1;
    return [mapBinary(required(node, a, 0), required(node, b, 1), (x, y) => (fmod ? x % y : x - Math.floor(x / y) * y))];
  },
  run: (node, inputs, ctx) => {
    const [a, b] = common([ctx.tensor(required(node, inputs[0], 0)), ctx.tensor(required(node, inputs[1], 1))]);
    if (node.int('fmod', 0) === 1) {
      // C fmod: sign of the dividend.
      const q = a.dtype === 'int32' ? truncDiv(a, b) : tf.mul(tf.sign(tf.div(a, b)), tf.floor(tf.abs(tf.div(a, b))));
      return [tf.sub(a, tf.mul(q, b))];
    }
    return [tf.mod(a, b)];
  },
};

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function unary(
  opType: string,
  device: (x: tf.Tensor) => tf.Tensor,
  js?: (x: number) => number,
  opts: { sinceVersion?: number; floatOnly?: boolean } = {},
): OpExecutor {
  return {
    opType,
    sinceVersion: opts.sinceVersion ?? 6,
    host: js ? (node, [x]) => [mapUnary(required(node, x, 0), js)] : undefined,
    run: (node, inputs, ctx) => {
      let x = ctx.tensor(required(node, inputs[0], 0));
      if (opts.floatOnly && x.dtype !== 'float32') x = tf.cast(x, 'float32');
      return [device(x)];
    },
  };
}

const unaries: OpExecutor[] = [
  unary('Sqrt', tf.sqrt, Math.sqrt, { floatOnly: true }),
  unary('Exp', tf.exp, Math.exp, { floatOnly: true }),
  unary('Log', tf.log, Math.log, { floatOnly: true }),
  unary('Neg', tf.neg, (x) => -x),
  unary('Abs', tf.abs, Math.abs),
  unary('Reciprocal', tf.reciprocal, (x) => 1 / x, { floatOnly: true }),
  unary('Floor', tf.floor, Math.floor),
  unary('Ceil', tf.ceil, Math.ceil),
  unary('Round', tf.round, roundHalfEven, { sinceVersion: 11 }),
  unary('Sign', tf.sign, Math.sign, { sinceVersion: 9 }),
  unary('Erf', tf.erf, undefined, { sinceVersion: 9, floatOnly: true }),
  unary('Sin', tf.sin, Math.sin, { sinceVersion: 7, floatOnly: true }),
  unary('Cos', tf.cos, Math.cos, { sinceVersion: 7, floatOnly: true }),
  unary('Tan', tf.tan, Math.tan, { sinceVersion: 7, floatOnly: true }),
  unary('Asin', tf.asin, Math.asin, { sinceVersion: 7, floatOnly: true }),
  unary('Acos', tf.acos, Math.acos, { sinceVersion: 7, floatOnly: true }),
  unary('Atan', tf.atan, Math.atan, { sinceVersion: 7, floatOnly: true }),
  unary('Sinh', tf.sinh, Math.sinh, { sinceVersion: 9, floatOnly: true }),
  unary('Cosh', tf.cosh, Math.cosh, { sinceVersion: 9, floatOnly: true }),
  unary('Asinh', tf.asinh, Math.asinh, { sinceVersion: 9, floatOnly: true }),
  unary('Acosh', tf.acosh, Math.acosh, { sinceVersion: 9, floatOnly: true }),
  unary('Atanh', tf.atanh, Math.atanh, { sinceVersion: 9, floatOnly: true }),
];

function variadic(
  opType: string,
  device: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor,
  js: (xs: number[]) => number,
  finish?: (t: tf.Tensor, n: number) => tf.Tensor,
): OpExecutor {
  return {
    opType,
    sinceVersion: 8,
    host: (node, xs) => {
      const present = xs.filter((x): x is HostTensor => x !== undefined);
      return [mapN(present, js, present[0].dtype)];
    },
    run: (node, inputs, ctx) => {
      const xs = common(inputs.filter((x): x is Value => x !== undefined).map((x) => ctx.tensor(x)));
      if (xs.length === 0) throw node.error('needs at least one input', 'the model is malformed');
      let acc = xs[0];
      for (let i = 1; i < xs.length; i++) acc = device(acc, xs[i]);
      if (xs.length === 1) acc = tf.clone(acc);
      return [finish ? finish(acc, xs.length) : acc];
    },
  };
}

const variadics: OpExecutor[] = [
  variadic('Min', tf.minimum, (xs) => Math.min(...xs)),
  variadic('Max', tf.maximum, (xs) => Math.max(...xs)),
  variadic('Sum', tf.add, (xs) => xs.reduce((a, b) => a + b, 0)),
  variadic('Mean', tf.add, (xs) => xs.reduce((a, b) => a + b, 0) / xs.length, (t, n) => tf.div(t, n)),
];

function clipBounds(node: NodeView, inputs: readonly (Value | undefined)[], ctx: OpContext | undefined, opset: number): [Value | number, Value | number] {
  if (opset < 11) return [node.float('min', -Infinity), node.float('max', Infinity)];
  const lo = inputs[1];
  const hi = inputs[2];
  const asNum = (v: Value | undefined, d: number): Value | number => {
    if (v === undefined) return d;
    if (isHost(v) && v.data.length === 1) return v.data[0];
    if (ctx && !isHost(v)) return v;
    return ctx ? scalarOr(ctx, v, d) : d;
  };
  return [asNum(lo, -Infinity), asNum(hi, Infinity)];
}

function clipExec(sinceVersion: number): OpExecutor {
  return {
    opType: 'Clip',
    sinceVersion,
    host: (node, inputs, opset) => {
      const x = required(node, inputs[0], 0);
      const [lo, hi] = clipBounds(node, inputs, undefined, opset) as [number, number];
      return [mapUnary(x, (v) => Math.min(Math.max(v, lo), hi))];
    },
    run: (node, inputs, ctx) => {
      const x = ctx.tensor(required(node, inputs[0], 0));
      const [lo, hi] = clipBounds(node, inputs, ctx, ctx.opset);
      if (typeof lo === 'number' && typeof hi === 'number' && x.dtype === 'float32') {
        return [tf.clipByValue(x, Math.max(lo, -3.4028234663852886e38), Math.min(hi, 3.4028234663852886e38))];
      }
      let y = x;
      if (typeof lo === 'number') { if (lo !== -Infinity) y = tf.maximum(y, tf.scalar(lo, x.dtype)); } else y = tf.maximum(y, tf.cast(ctx.tensor(lo), x.dtype));
      if (typeof hi === 'number') { if (hi !== Infinity) y = tf.minimum(y, tf.scalar(hi, x.dtype)); } else y = tf.minimum(y, tf.cast(ctx.tensor(hi), x.dtype));
      return [y === x ? tf.clone(x) : y];
    },
  };
}

registerOps(add, sub, mul, div, pow, mod, ...unaries, ...variadics, clipExec(6), clipExec(11));
