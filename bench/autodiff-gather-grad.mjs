#!/usr/bin/env node
/**
 * How to compute the embedding gradient (the gradient of tf.gather) on the tfjs wasm backend, which
 * has no UnsortedSegmentSum kernel. Times, for a 21128 × 768 table (bert-base-chinese) and a batch
 * of 8 × 128 token ids:
 *   kernel   ranerc's registered UnsortedSegmentSum kernel (a JS loop over the wasm heap)
 *   scatter  tf.scatterND(ids, dy, [V, D]) (wasm has ScatterNd; it sums duplicate ids)
 *   onehot   one-hot matmul in vocabulary chunks: onehot(ids − c0)ᵀ · dy per chunk, concatenated
 *   grad     the whole gradient of sum(gather(table, ids) · dy) through tf.grad (uses "kernel")
 * and checks that all three strategies give the same matrix. Times exclude reading the result back.
 *
 *   npm run build && node bench/autodiff-gather-grad.mjs [--vocab 21128] [--dim 768] [--batch 8] [--seq 128] [--reps 5]
 */
import { cpus, loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../dist/autodiff/backend.js';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), Number(all[i + 1])]] : acc), []),
);
const V = args.vocab ?? 21128;
const D = args.dim ?? 768;
const B = args.batch ?? 8;
const T = args.seq ?? 128;
const REPS = args.reps ?? 5;
const N = B * T;

const info = await initBackend('wasm');
console.log(
  `backend ${info.name}; table ${V} x ${D}; ids ${B} x ${T} (${N} tokens); median of ${REPS} runs; ` +
    `${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`,
);

const ids = tf.tensor1d(Array.from({ length: N }, (_, i) => (i * 7919 + 13) % V), 'int32');
const dy = tf.randomNormal([N, D], 0, 1, 'float32', 1);
const table = tf.randomNormal([V, D], 0, 0.02, 'float32', 2);

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** wasm kernels run synchronously, so the call's wall time is the computation (no read-back of
 * the 65 MB result, which would dominate and is the same for every strategy). */
function time(f) {
  tf.dispose(f()); // warm-up
  const ms = [];
  for (let r = 0; r < REPS; r++) {
    const t0 = performance.now();
    const out = f();
    ms.push(performance.now() - t0);
    tf.dispose(out);
  }
  return median(ms);
}

const strategies = {
  kernel: () => tf.unsortedSegmentSum(dy, ids, V),
  scatter: () => tf.scatterND(tf.reshape(ids, [N, 1]), dy, [V, D]),
  onehot: () =>
    tf.tidy(() => {
      const chunk = 2048;
      const parts = [];
      for (let c0 = 0; c0 < V; c0 += chunk) {
        const c = Math.min(chunk, V - c0);
        // Ids outside [c0, c0 + c) give all-zero one-hot rows. Explicit transpose: wasm's
        // transposed matmul path is much slower than its XNNPACK path.
        const oh = tf.oneHot(tf.sub(ids, tf.scalar(c0, 'int32')), c);
        parts.push(tf.matMul(tf.transpose(oh), dy));
      }
      return tf.concat(parts, 0);
    }),
  grad: () => tf.grad((t) => tf.sum(tf.mul(tf.gather(t, ids), dy)))(table),
};

const refT = strategies.kernel();
const ref = refT.dataSync().slice();
refT.dispose();
const rows = [];
for (const [name, f] of Object.entries(strategies)) {
  const ms = time(f);
  const out = f();
  const v = out.dataSync();
  let diff = 0;
  for (let i = 0; i < v.length; i++) diff = Math.max(diff, Math.abs(v[i] - ref[i]));
  tf.dispose(out);
  rows.push({ strategy: name, 'median ms': ms.toFixed(1), 'max |diff| vs kernel': diff.toExponential(2) });
}
console.table(rows);
console.log(`tensors alive: ${tf.memory().numTensors}`);
