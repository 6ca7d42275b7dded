#!/usr/bin/env node
/**
 * Throughput of the ONNX → tfjs executor on a BERT token classifier: forward, and forward+backward
 * (cross-entropy on random labels, gradients for every float initializer), in tokens per second,
 * plus the live tensor count across calls (it must not grow).
 *
 *   npm run build && node bench/autodiff-throughput.mjs [--model PATH] [--backend wasm|cpu|auto]
 *        [--batch 8] [--seq 128] [--reps 3] [--no-backward]
 *
 * --model defaults to fixtures/teacher/model/model.onnx when it exists, else
 * /tmp/teacher_smoke/model.onnx (an HF-layout 4-layer 256-hidden opset-14 export).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus, loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { OnnxExecutor } from '../dist/autodiff/executor.js';
import { decodeModel } from '../dist/onnx/codec.js';

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const fallback = [join(repo, 'fixtures/teacher/model/model.onnx'), '/tmp/teacher_smoke/model.onnx'].find((p) => existsSync(p));
const modelPath = opt('model', fallback);
if (!modelPath || !existsSync(modelPath)) {
  console.error('no model: pass --model PATH');
  process.exit(2);
}
const B = Number(opt('batch', 8));
const T = Number(opt('seq', 128));
const REPS = Number(opt('reps', 3));
const backward = !argv.includes('--no-backward');

const model = decodeModel(readFileSync(modelPath), modelPath);
const t0 = performance.now();
const ex = await OnnxExecutor.create(model, { backend: opt('backend', 'wasm') });
const createMs = performance.now() - t0;
const params = [...ex.variables.values()].reduce((s, v) => s + v.size, 0);
const inputs = ex.inputs.map((i) => i.name);
const vocab = ex.variables.get('bert.embeddings.word_embeddings.weight')?.shape[0] ?? 100;
console.log(
  `model ${modelPath}: ${params} float parameters, ${ex.variables.size} variables; backend ${ex.backend.name}` +
    `${ex.backend.reason ? ` (${ex.backend.reason})` : ''}; compiled in ${createMs.toFixed(0)} ms`,
);
console.log(
  `batch ${B} x ${T} tokens, median of ${REPS} after one warm-up; node ${process.version}; ` +
    `${cpus().length} CPUs, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} (single-threaded wasm: a loaded machine slows it)`,
);

const ids = Array.from({ length: B * T }, (_, i) => 1 + ((i * 7919) % (vocab - 1)));
const feeds = {};
for (const name of inputs) {
  feeds[name] =
    name === 'input_ids'
      ? tf.tensor(ids, [B, T], 'int32')
      : name === 'attention_mask'
        ? tf.ones([B, T], 'int32')
        : tf.zeros([B, T], 'int32');
}
const out0 = ex.run(feeds);
const logitsName = Object.keys(out0)[0];
const labelsN = out0[logitsName].shape.at(-1);
tf.dispose(out0);
const labels = tf.tensor(Array.from({ length: B * T }, (_, i) => (i * 31) % labelsN), [B, T], 'int32');

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function measure(label, step) {
  step(); // warm-up (constants converted, shape cache filled)
  const before = tf.memory().numTensors;
  const ms = [];
  for (let r = 0; r < REPS; r++) {
    const s = performance.now();
    step();
    ms.push(performance.now() - s);
  }
  const after = tf.memory().numTensors;
  const m = median(ms);
  console.log(
    `${label.padEnd(18)} ${m.toFixed(0).padStart(7)} ms/batch  ${((B * T) / (m / 1000)).toFixed(0).padStart(7)} tokens/s` +
      `   tensors ${before} -> ${after}   runs ${ms.map((x) => x.toFixed(0)).join(' ')}`,
  );
}

measure('forward', () => {
  const out = ex.run(feeds);
  out[logitsName].dataSync();
  tf.dispose(out);
});

if (backward) {
  const vars = ex.trainableVariables();
  measure('forward+backward', () => {
    const { value, grads } = tf.variableGrads(
      () =>
        tf.tidy(() => {
          const logits = ex.run(feeds)[logitsName];
          return tf.losses.softmaxCrossEntropy(tf.oneHot(labels, labelsN), logits);
        }),
      vars,
    );
    value.dataSync();
    for (const g of Object.values(grads)) g.dataSync();
    tf.dispose([value, grads]);
  });
}
tf.dispose([feeds, labels]);
ex.dispose();
