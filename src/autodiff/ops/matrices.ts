/** MatMul (numpy semantics, batch broadcasting) and Gemm. */
import * as tf from '@tensorflow/tfjs';
import { broadcastShapes } from '../host.js';
import type { NodeView } from '../node.js';
import { registerOps, type OpExecutor } from '../registry.js';
import { simdMatMul, simdMatMulUsable } from '../simd-matmul.js';
import { required } from './util.js';

function toFloat(t: tf.Tensor): tf.Tensor {
  return t.dtype === 'float32' ? t : tf.cast(t, 'float32');
}

/**
 * A 2-D product whose gradient uses explicit transposes: dA = dy · transpose(B), dB = transpose(A) · dy.
 * tfjs' own MatMul gradient asks for transposed products, which the wasm backend runs on a slow
 * non-XNNPACK path (~10x slower than the plain product); a transpose is a cheap copy.
 */
const matMul2d = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [a, b, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    // tidy: tfjs runs a custom gradient outside any scope, so without it the transposed operands
    // (and the packed XNNPACK copies the wasm backend keeps for them) of every layer would stay
    // alive until the whole backward pass ends — for BERT-base two extra copies of all weights
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
      tf.tidy(() => {
        const [sa, sb] = saved as [tf.Tensor2D, tf.Tensor2D];
        return [tf.matMul(dy as tf.Tensor2D, tf.transpose(sb)), tf.matMul(tf.transpose(sa), dy as tf.Tensor2D)];
      }),
  };
});

function product2d(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return tf.getBackend() === 'wasm' ? matMul2d(a, b) : tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D);
}

/** numpy.matmul on tfjs: 1-D operands promoted and squeezed, batch dims broadcast. */
export function matmul(node: NodeView, a0: tf.Tensor, b0: tf.Tensor): tf.Tensor {
  const intOut = a0.dtype === 'int32' && b0.dtype === 'int32';
  let a = toFloat(a0);
  let b = toFloat(b0);
  const aVec = a.rank === 1;
  const bVec = b.rank === 1;
  if (aVec) a = a.reshape([1, a.shape[0]]);
  if (bVec) b = b.reshape([b.shape[0], 1]);
  const k = (a.shape as number[])[a.rank - 1];
  if (b.shape[b.rank - 2] !== k) {
    throw node.error(`inner dimensions differ: [${a0.shape}] × [${b0.shape}]`, 'the operands do not fit; check the model inputs');
  }
  let y: tf.Tensor;
  if (b.rank === 2) {
    // [..., M, K] × [K, N]: one GEMM over all leading rows.
    const lead = a.shape.slice(0, -1);
    const m = lead.reduce((p, q) => p * q, 1);
    y = product2d(a.rank === 2 ? a : a.reshape([m, k]), b).reshape([...lead, (b.shape as number[])[1]]);
  } else {
    const batchA = a.shape.slice(0, -2);
    const batchB = b.shape.slice(0, -2);
    const batch = broadcastShapes(batchA, batchB);
    if (!batch) throw node.error(`batch dimensions [${batchA}] and [${batchB}] do not broadcast`, 'check the model inputs');
    const m = a.shape[a.rank - 2];
    const n = b.shape[b.rank - 1];
    const aB = batchA.length === batch.length && batchA.every((d, i) => d === batch[i]) ? a : tf.broadcastTo(a, [...batch, m, k]);
    const bB = batchB.length === batch.length && batchB.every((d, i) => d === batch[i]) ? b : tf.broadcastTo(b, [...batch, k, n]);
    // wasm: attention's batched products ([B, H, T, d] · [B, H, d, T]) go to the SIMD kernel
    // (simd-matmul.ts), ~6-15x faster than the backend's own batched loop
    y = simdMatMulUsable(aB, bB) ? simdMatMul(aB, bB) : tf.matMul(aB, bB);
  }
  const shape = y.shape.slice();
  if (bVec) shape.pop();
  if (aVec) shape.splice(shape.length - (bVec ? 1 : 2), 1);
  if (aVec || bVec) y = y.reshape(shape);
  return intOut ? tf.cast(y, 'int32') : y;
}

const ops: OpExecutor[] = [
  {
    opType: 'MatMul',
    sinceVersion: 1,
    run: (node, inputs, ctx) => [
      matmul(node, ctx.tensor(required(node, inputs[0], 0)), ctx.tensor(required(node, inputs[1], 1))),
    ],
  },
  {
    opType: 'Gemm',
    sinceVersion: 7,
    run: (node, inputs, ctx) => {
      const a = toFloat(ctx.tensor(required(node, inputs[0], 0)));
      const b = toFloat(ctx.tensor(required(node, inputs[1], 1)));
      const alpha = node.float('alpha', 1);
      const beta = node.float('beta', 1);
      const transA = node.int('transA', 0) !== 0;
      const transB = node.int('transB', 0) !== 0;
      // Explicit transposes: the wasm backend's XNNPACK path only takes untransposed operands (its
      // transposeB path is ~10x slower for a [1024, 256] x [1024, 256]^T product).
      let y = product2d(transA ? tf.transpose(a) : a, transB ? tf.transpose(b) : b);
      if (alpha !== 1) y = tf.mul(y, alpha);
      const cv = inputs[2];
      if (cv !== undefined && beta !== 0) {
        const c = toFloat(ctx.tensor(cv));
        y = tf.add(y, beta === 1 ? c : tf.mul(c, beta));
      }
      return [y];
    },
  },
];

registerOps(...ops);
