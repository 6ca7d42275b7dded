/**
 * The hand-assembled WebAssembly SIMD batched product (src/autodiff/simd-matmul.ts) against float64
 * sums computed here and against tfjs' own matMul and autodiff on the cpu backend: every remainder of
 * the 4-row × 8-column blocking, rank 3 and 4, and the gradients.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/autodiff/backend.js';
import { batchMatMulModule, setSimdMatMulEnabled, simdMatMul, simdMatMulUnavailable, simdMatMulUsable } from '../../src/autodiff/simd-matmul.js';
import { lcgInts } from './helpers.js';

function values(n: number, seed: number): Float32Array {
  return Float32Array.from(lcgInts(n, 0, 2001, seed), (v) => (v - 1000) / 500);
}

/** C = A · B per batch in float64 (row-major). */
function reference(a: Float32Array, b: Float32Array, G: number, M: number, K: number, N: number): Float64Array {
  const c = new Float64Array(G * M * N);
  for (let g = 0; g < G; g++)
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += a[g * M * K + i * K + k] * b[g * K * N + k * N + j];
        c[g * M * N + i * N + j] = s;
      }
  return c;
}

function maxDiff(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}

beforeAll(async () => {
  await initBackend('wasm');
});

afterAll(() => {
  setSimdMatMulEnabled(true);
});

describe('SIMD batched matMul on wasm', () => {
  it('is a valid WebAssembly module and the kernel is usable here', () => {
    expect(WebAssembly.validate(batchMatMulModule())).toBe(true);
    const a = tf.zeros([2, 3, 4]);
    const b = tf.zeros([2, 4, 5]);
    expect(simdMatMulUsable(a, b)).toBe(true);
    expect(simdMatMulUnavailable()).toBeUndefined();
    expect(simdMatMulUsable(a, tf.zeros([3, 4, 5]))).toBe(false); // batch dims differ
    tf.dispose([a, b]);
  });

  it('equals float64 sums for every row and column remainder (M mod 4, N mod 8), K from 1', () => {
    const before = tf.memory().numTensors;
    let seed = 1;
    for (const M of [1, 2, 3, 4, 5, 7, 8, 13]) {
      for (const N of [1, 3, 4, 7, 8, 9, 15, 16, 17]) {
        for (const K of [1, 5, 32]) {
          const G = 2;
          const av = values(G * M * K, seed++);
          const bv = values(G * K * N, seed++);
          const c = tf.tidy(() => simdMatMul(tf.tensor(av, [G, M, K]), tf.tensor(bv, [G, K, N])));
          expect(c.shape).toEqual([G, M, N]);
          const d = maxDiff(c.dataSync(), reference(av, bv, G, M, K, N));
          expect(d, `M ${M} K ${K} N ${N}`).toBeLessThan(1e-5 * Math.max(1, K));
          c.dispose();
        }
      }
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rank 4 attention shapes equal tf.matMul on the cpu backend', async () => {
    const shapes: Array<[number[], number[]]> = [
      [[2, 3, 17, 8], [2, 3, 8, 17]],
      [[2, 3, 17, 17], [2, 3, 17, 8]],
    ];
    for (const [sa, sb] of shapes) {
      const av = values(sa.reduce((x, y) => x * y), 7);
      const bv = values(sb.reduce((x, y) => x * y), 8);
      const mine = tf.tidy(() => simdMatMul(tf.tensor(av, sa), tf.tensor(bv, sb)).dataSync().slice());
      await tf.setBackend('cpu');
      const ref = tf.tidy(() => tf.matMul(tf.tensor(av, sa), tf.tensor(bv, sb)).dataSync().slice());
      await initBackend('wasm');
      expect(maxDiff(mine, ref)).toBeLessThan(1e-4);
    }
  });

  it('gradients (dA = dC·Bᵀ, dB = Aᵀ·dC) equal tfjs autodiff of matMul on the cpu backend', async () => {
    const sa = [3, 6, 5];
    const sb = [3, 5, 11];
    const av = values(90, 21);
    const bv = values(165, 22);
    const wv = values(198, 23);
    const f = (mm: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor) => (a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(mm(a, b), tf.tensor(wv, [3, 6, 11]))) as tf.Scalar;
    const run = (mm: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor) =>
      tf.tidy(() => tf.grads(f(mm))([tf.tensor(av, sa), tf.tensor(bv, sb)]).map((g) => g.dataSync().slice()));
    const mine = run(simdMatMul);
    await tf.setBackend('cpu');
    const ref = run((a, b) => tf.matMul(a, b));
    await initBackend('wasm');
    expect(maxDiff(mine[0], ref[0])).toBeLessThan(1e-4);
    expect(maxDiff(mine[1], ref[1])).toBeLessThan(1e-4);
  });

  it('falls back to tf.matMul when switched off or off wasm', async () => {
    const a = tf.ones([2, 2, 3]);
    const b = tf.ones([2, 3, 2]);
    setSimdMatMulEnabled(false);
    expect(simdMatMulUsable(a, b)).toBe(false);
    expect(Array.from(simdMatMul(a, b).dataSync())).toEqual(new Array(8).fill(3));
    setSimdMatMulEnabled(true);
    tf.dispose([a, b]);
    await tf.setBackend('cpu');
    const c = tf.ones([1, 1, 1]);
    expect(simdMatMulUsable(c, c)).toBe(false);
    c.dispose();
    await initBackend('wasm');
  });
});
