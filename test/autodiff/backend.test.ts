/**
 * Backend selection and the wasm UnsortedSegmentSum kernel (the gradient of tf.gather, i.e. of
 * embedding lookups): equal to the cpu backend's own kernel and to finite differences.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../src/autodiff/backend.js';
import { lcgFloats, lcgInts } from './helpers.js';

/** Run `f` on a backend and return plain values (tensors do not outlive the switch). */
async function on<T>(backend: 'cpu' | 'wasm', f: () => T): Promise<T> {
  await initBackend(backend);
  return f();
}

describe('initBackend', () => {
  it('gives the backend asked for, cpu only on request, and says why auto differs', async () => {
    expect(await initBackend('cpu')).toEqual({ name: 'cpu' });
    expect(tf.getBackend()).toBe('cpu');
    expect(await initBackend('wasm')).toEqual({ name: 'wasm' });
    expect(tf.getBackend()).toBe('wasm');
    const auto = await initBackend('auto');
    if (auto.name === 'tensorflow') {
      expect(auto.reason).toBeUndefined();
    } else {
      // @tensorflow/tfjs-node is an optional dependency that does not install here: auto is wasm.
      expect(auto.name).toBe('wasm');
      expect(auto.reason).toMatch(/tfjs-node/);
    }
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeDefined();
  });
});

describe('wasm UnsortedSegmentSum', () => {
  it('equals the cpu kernel, with repeated ids and dropped out-of-range ids', async () => {
    const x = lcgFloats(50 * 7, 3);
    const ids = lcgInts(50, -2, 14, 9); // -2..13 with 12 segments: negatives and 12, 13 are dropped
    const run = (): number[] =>
      tf.tidy(() => Array.from(tf.unsortedSegmentSum(tf.tensor(x, [50, 7]), tf.tensor(ids, [50], 'int32'), 12).dataSync()));
    const cpu = await on('cpu', run);
    const wasm = await on('wasm', run);
    expect(wasm.length).toBe(12 * 7);
    for (let i = 0; i < cpu.length; i++) expect(Math.abs(wasm[i] - cpu[i])).toBeLessThan(1e-5);
    // Spot-check one segment by hand.
    const seg = 5;
    for (let j = 0; j < 7; j++) {
      let s = 0;
      ids.forEach((id, r) => {
        if (id === seg) s += Math.fround(x[r * 7 + j]);
      });
      expect(Math.abs(wasm[seg * 7 + j] - s)).toBeLessThan(1e-5);
    }
  });

  it('makes embedding gradients on wasm equal the cpu backend and finite differences', async () => {
    const vocab = 300;
    const dim = 16;
    const table = lcgFloats(vocab * dim, 21, 0.5);
    const ids = lcgInts(4 * 32, 0, vocab, 22); // a batch of 4 x 32 tokens, with repeats
    const w = lcgFloats(4 * 32 * dim, 23);
    const lossAt = (tbl: tf.Tensor): tf.Scalar =>
      tf.sum(tf.mul(tf.tanh(tf.gather(tbl, tf.tensor(ids, [4, 32], 'int32'))), tf.tensor(w, [4, 32, dim]))) as tf.Scalar;
    const grad = (): Float32Array =>
      tf.tidy(() => tf.grad((t: tf.Tensor) => lossAt(t))(tf.tensor(table, [vocab, dim])).dataSync() as Float32Array);
    const cpu = await on('cpu', grad);
    const wasm = await on('wasm', grad);
    let worst = 0;
    for (let i = 0; i < cpu.length; i++) worst = Math.max(worst, Math.abs(wasm[i] - cpu[i]));
    expect(worst).toBeLessThan(1e-5);
    // Central differences on a few entries of used and unused rows.
    const usedRow = ids[0];
    const unused = [...Array(vocab).keys()].find((r) => !ids.includes(r))!;
    for (const i of [usedRow * dim, usedRow * dim + 7, ids[40] * dim + 3, unused * dim + 1]) {
      const at = (d: number): number =>
        tf.tidy(() => {
          const t = table.slice();
          t[i] += d;
          return lossAt(tf.tensor(t, [vocab, dim])).dataSync()[0];
        });
      const eps = 1e-2;
      const fd = (at(eps) - at(-eps)) / (2 * eps);
      expect(Math.abs(fd - wasm[i]), `entry ${i}`).toBeLessThan(2e-3 * (1 + Math.abs(wasm[i])));
    }
    expect(Array.from(wasm.slice(unused * dim, unused * dim + dim)).every((v) => v === 0)).toBe(true);
  });
});
