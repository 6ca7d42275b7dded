/** Comparisons and logic: Equal Less Greater LessOrEqual GreaterOrEqual Not And Or Xor Where IsNaN IsInf. */
import * as tf from '@tensorflow/tfjs';
import { mapBinary, mapN, mapUnary } from '../host.js';
import { DT } from '../tensordata.js';
import { registerOps, type OpExecutor } from '../registry.js';
import { common, noGrad, required, toBool } from './util.js';

function compare(
  opType: string,
  device: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor,
  js: (a: number, b: number) => boolean,
  sinceVersion = 7,
): OpExecutor {
  return {
    opType,
    sinceVersion,
    host: (node, [a, b]) => [mapBinary(required(node, a, 0), required(node, b, 1), (x, y) => (js(x, y) ? 1 : 0), DT.BOOL)],
    run: (node, [a, b], ctx) => {
      const [x, y] = common([ctx.tensor(required(node, a, 0)), ctx.tensor(required(node, b, 1))]);
      return [noGrad(device, [x, y])];
    },
  };
}

function logic(opType: string, device: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor, js: (a: boolean, b: boolean) => boolean): OpExecutor {
  return {
    opType,
    sinceVersion: 7,
    host: (node, [a, b]) => [mapBinary(required(node, a, 0), required(node, b, 1), (x, y) => (js(x !== 0, y !== 0) ? 1 : 0), DT.BOOL)],
    run: (node, [a, b], ctx) => {
      const x = ctx.tensor(required(node, a, 0));
      const y = ctx.tensor(required(node, b, 1));
      return [device(toBool(x), toBool(y))];
    },
  };
}

const ops: OpExecutor[] = [
  compare('Equal', tf.equal, (a, b) => a === b),
  compare('Less', tf.less, (a, b) => a < b),
  compare('Greater', tf.greater, (a, b) => a > b),
  compare('LessOrEqual', tf.lessEqual, (a, b) => a <= b, 12),
  compare('GreaterOrEqual', tf.greaterEqual, (a, b) => a >= b, 12),
  logic('And', tf.logicalAnd, (a, b) => a && b),
  logic('Or', tf.logicalOr, (a, b) => a || b),
  logic('Xor', tf.logicalXor, (a, b) => a !== b),
  {
    opType: 'Not',
    host: (node, [x]) => [mapUnary(required(node, x, 0), (v) => (v === 0 ? 1 : 0), DT.BOOL)],
    run: (node, [x], ctx) => [tf.logicalNot(toBool(ctx.tensor(required(node, x, 0))))],
  },
  {
    opType: 'Where',
    sinceVersion: 9,
    host: (node, [c, a, b]) => [
      mapN([required(node, c, 0), required(node, a, 1), required(node, b, 2)], (v) => (v[0] !== 0 ? v[1] : v[2]), a!.dtype),
    ],
    run: (node, [c, a, b], ctx) => {
      const cond = toBool(ctx.tensor(required(node, c, 0)));
      const [x, y] = common([ctx.tensor(required(node, a, 1)), ctx.tensor(required(node, b, 2))]);
      return [tf.where(cond, x, y)];
    },
  },
  {
    opType: 'IsNaN',
    sinceVersion: 9,
    host: (node, [x]) => [mapUnary(required(node, x, 0), (v) => (Number.isNaN(v) ? 1 : 0), DT.BOOL)],
    run: (node, [x], ctx) => [noGrad((t) => tf.isNaN(t), [ctx.tensor(required(node, x, 0))])],
  },
  {
    opType: 'IsInf',
    sinceVersion: 10,
    run: (node, [x], ctx) => {
      const t = ctx.tensor(required(node, x, 0));
      const pos = node.int('detect_positive', 1) === 1;
      const neg = node.int('detect_negative', 1) === 1;
      return [
        noGrad((v) => {
          const p = pos ? tf.equal(v, Infinity) : tf.zeros(v.shape, 'bool');
          const n = neg ? tf.equal(v, -Infinity) : tf.zeros(v.shape, 'bool');
          return tf.logicalOr(p, n);
        }, [t]),
      ];
    },
  },
];

registerOps(...ops);
