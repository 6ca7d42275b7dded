/**
 * Activations: Relu Sigmoid Tanh Softmax LogSoftmax Softplus Softsign Elu Selu LeakyRelu
 * HardSigmoid HardSwish ThresholdedRelu Celu PRelu Gelu.
 */
import * as tf from '@tensorflow/tfjs';
import type { NodeView } from '../node.js';
import { registerOps, type OpContext, type OpExecutor, type Value } from '../registry.js';
import { noGrad, normAxis, required } from './util.js';

function floatIn(node: NodeView, inputs: readonly (Value | undefined)[], ctx: OpContext): tf.Tensor {
  const x = ctx.tensor(required(node, inputs[0], 0));
  return x.dtype === 'float32' ? x : tf.cast(x, 'float32');
}

function act(opType: string, f: (x: tf.Tensor, node: NodeView) => tf.Tensor, sinceVersion = 6): OpExecutor {
  return { opType, sinceVersion, run: (node, inputs, ctx) => [f(floatIn(node, inputs, ctx), node)] };
}

/** x > t as a mask the gradient tape may pass through. */
function above(x: tf.Tensor, t: number): tf.Tensor {
  return noGrad((a) => tf.greater(a, t), [x]);
}

/** Softmax-like op along one axis: `f` works on the last axis. */
function alongAxis(node: NodeView, x: tf.Tensor, opset: number, f: (t: tf.Tensor) => tf.Tensor): tf.Tensor {
  const rank = x.shape.length;
  if (rank === 0) return f(x.reshape([1])).reshape([]);
  if (opset < 13) {
    // Opset < 13: coerce to 2-D [prod(shape[:axis]), prod(shape[axis:])] and normalise rows.
    const axis = normAxis(node, node.int('axis', 1), rank);
    const outer = x.shape.slice(0, axis).reduce((a, b) => a * b, 1);
    const inner = x.shape.slice(axis).reduce((a, b) => a * b, 1);
    return f(x.reshape([outer, inner])).reshape(x.shape);
  }
  const axis = normAxis(node, node.int('axis', -1), rank);
  if (axis === rank - 1) return f(x);
  const perm = [...Array(rank).keys()];
  perm[axis] = rank - 1;
  perm[rank - 1] = axis;
  return tf.transpose(f(tf.transpose(x, perm)), perm);
}

function softmaxLike(opType: string, f: (t: tf.Tensor) => tf.Tensor): OpExecutor[] {
  return [1, 13].map((sinceVersion) => ({
    opType,
    sinceVersion,
    run: (node: NodeView, inputs: readonly (Value | undefined)[], ctx: OpContext) => [
      alongAxis(node, floatIn(node, inputs, ctx), ctx.opset, f),
    ],
  }));
}

const SELU_ALPHA = 1.6732632423543772;
const SELU_GAMMA = 1.0507009873554805;

const ops: OpExecutor[] = [
  {
    opType: 'Relu',
    sinceVersion: 6,
    run: (node, inputs, ctx) => [tf.relu(ctx.tensor(required(node, inputs[0], 0)))],
  },
  act('Sigmoid', (x) => tf.sigmoid(x)),
  act('Tanh', (x) => tf.tanh(x)),
  act('Softplus', (x) => tf.softplus(x), 1),
  act('Softsign', (x) => tf.div(x, tf.add(tf.abs(x), 1)), 1),
  act('Elu', (x, n) => {
    const alpha = n.float('alpha', 1);
    return tf.where(above(x, 0), x, tf.mul(alpha, tf.sub(tf.exp(x), 1)));
  }),
  act('Selu', (x, n) => {
    const alpha = n.float('alpha', SELU_ALPHA);
    const gamma = n.float('gamma', SELU_GAMMA);
    return tf.mul(gamma, tf.where(above(x, 0), x, tf.mul(alpha, tf.sub(tf.exp(x), 1))));
  }),
  act('LeakyRelu', (x, n) => tf.leakyRelu(x, n.float('alpha', 0.01))),
  act('HardSigmoid', (x, n) => tf.clipByValue(tf.add(tf.mul(x, n.float('alpha', 0.2)), n.float('beta', 0.5)), 0, 1)),
  act('HardSwish', (x) => tf.mul(x, tf.clipByValue(tf.add(tf.div(x, 6), 0.5), 0, 1)), 14),
  act('ThresholdedRelu', (x, n) => tf.where(above(x, n.float('alpha', 1)), x, tf.zerosLike(x)), 10),
  act('Celu', (x, n) => {
    const alpha = n.float('alpha', 1);
    return tf.add(tf.relu(x), tf.minimum(0, tf.mul(alpha, tf.sub(tf.exp(tf.div(x, alpha)), 1))));
  }, 12),
  {
    opType: 'PRelu',
    sinceVersion: 7,
    run: (node, inputs, ctx) => {
      const x = floatIn(node, inputs, ctx);
      const slope = ctx.tensor(required(node, inputs[1], 1));
      // relu(x) - slope * relu(-x): differentiable in x and slope, broadcasts slope.
      return [tf.sub(tf.relu(x), tf.mul(tf.cast(slope, 'float32'), tf.relu(tf.neg(x))))];
    },
  },
  {
    opType: 'Gelu',
    sinceVersion: 20,
    check: (node) => {
      const a = node.string('approximate', 'none');
      if (a !== 'none' && a !== 'tanh') throw node.error(`approximate="${a}" is unknown`, 'use "none" or "tanh"');
    },
    run: (node, inputs, ctx) => {
      const x = floatIn(node, inputs, ctx);
      if (node.string('approximate', 'none') === 'tanh') {
        const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
        return [tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)))];
      }
      return [tf.mul(tf.mul(0.5, x), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))))];
    },
  },
  ...softmaxLike('Softmax', (t) => tf.softmax(t)),
  ...softmaxLike('LogSoftmax', (t) => tf.logSoftmax(t)),
];

registerOps(...ops);
