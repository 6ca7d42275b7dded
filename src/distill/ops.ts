/**
 * Small tfjs building blocks for the students, written for the wasm backend's fast paths: the wasm
 * BatchMatMul kernel sends only 2-D, untransposed products to XNNPACK (anything else runs a naive
 * loop), and tfjs's own matMul gradient uses transposed operands. `dense` therefore has a custom
 * gradient with explicit transposes.
 */
import * as tf from '@tensorflow/tfjs';

/** x [N, I] · w [I, O] (+ b [O]), with a gradient made of untransposed 2-D matMuls. */
export function dense(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor2D {
  const inputs = b ? [x, w, b] : [x, w];
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [xi, wi, bi] = args.slice(0, inputs.length) as tf.Tensor[];
    const save = args[inputs.length] as tf.GradSaveFunc;
    save([xi, wi]);
    const y = bi ? tf.add(tf.matMul(xi as tf.Tensor2D, wi as tf.Tensor2D), bi) : tf.matMul(xi as tf.Tensor2D, wi as tf.Tensor2D);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => {
      const [xs, ws] = saved;
      const dx = tf.matMul(dy as tf.Tensor2D, tf.transpose(ws) as tf.Tensor2D);
      const dw = tf.matMul(tf.transpose(xs) as tf.Tensor2D, dy as tf.Tensor2D);
      return bi ? [dx, dw, tf.sum(dy, 0)] : [dx, dw];
    };
    return { value: y, gradFunc };
  });
  return op(...inputs) as tf.Tensor2D;
}

/**
 * An inverted-dropout mask (values 0 or 1/(1 − rate)) drawn from `rand`, so training is reproducible
 * whatever tfjs's own random state is.
 */
export function dropoutMask(shape: number[], rate: number, rand: () => number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const keep = 1 / (1 - rate);
  const m = new Float32Array(n);
  for (let i = 0; i < n; i++) m[i] = rand() < rate ? 0 : keep;
  return tf.tensor(m, shape);
}

/** x · mask when training with rate > 0, else x. */
export function dropout(x: tf.Tensor, rate: number, rand: (() => number) | undefined): tf.Tensor {
  if (!rand || rate <= 0) return x;
  return tf.mul(x, dropoutMask(x.shape, rate, rand));
}
