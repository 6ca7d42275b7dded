/** LayerNormalization (opset 17) and BatchNormalization / InstanceNormalization (inference). */
import * as tf from '@tensorflow/tfjs';
import { registerOps, type OpExecutor } from '../registry.js';
import { normAxis, required } from './util.js';

function f32(t: tf.Tensor): tf.Tensor {
  return t.dtype === 'float32' ? t : tf.cast(t, 'float32');
}

const layerNorm: OpExecutor = {
  opType: 'LayerNormalization',
  sinceVersion: 17,
  run: (node, inputs, ctx) => {
    const x = f32(ctx.tensor(required(node, inputs[0], 0)));
    const scale = f32(ctx.tensor(required(node, inputs[1], 1)));
    const bias = inputs[2] === undefined ? undefined : f32(ctx.tensor(inputs[2]));
    const rank = x.rank;
    const axis = normAxis(node, node.int('axis', -1), rank);
    const eps = node.float('epsilon', 1e-5);
    const axes = [...Array(rank - axis).keys()].map((i) => i + axis);
    const mean = tf.mean(x, axes, true);
    const d = tf.sub(x, mean);
    const variance = tf.mean(tf.square(d), axes, true);
    const inv = tf.rsqrt(tf.add(variance, eps));
    let y = tf.mul(tf.mul(d, inv), scale);
    if (bias) y = tf.add(y, bias);
    return [y, mean, inv].slice(0, Math.max(1, node.outputs.length));
  },
};

/** Per-channel [C] parameter reshaped to broadcast over [N, C, ...spatial]. */
function channel(t: tf.Tensor, rank: number): tf.Tensor {
  return rank <= 2 ? t : t.reshape([t.shape[0], ...Array<number>(rank - 2).fill(1)]);
}

const batchNorm: OpExecutor = {
  opType: 'BatchNormalization',
  sinceVersion: 7,
  check: (node, opset) => {
    if (opset < 9 && node.int('spatial', 1) !== 1) {
      throw node.error('spatial=0 is not supported', 're-export with opset ≥ 9');
    }
    if (node.int('training_mode', 0) !== 0 || node.outputs.filter((o) => o !== '').length > 1) {
      throw node.error('training mode (running statistics outputs) is not supported', 'export the model in eval mode');
    }
  },
  run: (node, inputs, ctx) => {
    const x = f32(ctx.tensor(required(node, inputs[0], 0)));
    const [scale, b, mean, variance] = [1, 2, 3, 4].map((i) => channel(f32(ctx.tensor(required(node, inputs[i], i))), x.rank));
    const eps = node.float('epsilon', 1e-5);
    return [tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps))), scale), b)];
  },
};

const instanceNorm: OpExecutor = {
  opType: 'InstanceNormalization',
  sinceVersion: 6,
  run: (node, inputs, ctx) => {
    const x = f32(ctx.tensor(required(node, inputs[0], 0)));
    const scale = channel(f32(ctx.tensor(required(node, inputs[1], 1))), x.rank);
    const b = channel(f32(ctx.tensor(required(node, inputs[2], 2))), x.rank);
    const eps = node.float('epsilon', 1e-5);
    const axes = [...Array(x.rank - 2).keys()].map((i) => i + 2);
    const mean = tf.mean(x, axes, true);
    const d = tf.sub(x, mean);
    const variance = tf.mean(tf.square(d), axes, true);
    return [tf.add(tf.mul(tf.mul(d, tf.rsqrt(tf.add(variance, eps))), scale), b)];
  },
};

registerOps(layerNorm, batchNorm, instanceNorm);
