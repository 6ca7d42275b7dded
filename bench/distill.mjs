#!/usr/bin/env node
/**
 * Measurements for `ranerc distill` (issue 6), printed as JSON lines and a summary:
 *
 *   npm run build && node bench/distill.mjs [--only step|run] [--batch 16] [--seq 50] [--emb 64] [--hidden 128]
 *        [--vocab 4278] [--steps 5] [--teacher DIR --train F --dev F --test F --minutes 14 --out DIR]
 *
 * step  forward+backward throughput of one BiLSTM student batch on the tfjs wasm backend, three ways:
 *       (1) the student as an ONNX graph (Gather → LSTM → MatMul + Add) trained through OnnxExecutor,
 *       (2) a hand-written per-step tfjs BiLSTM differentiated by tfjs autodiff,
 *       (3) the fused op ranerc uses (src/distill/bilstm.ts: custom gradient, plain 2-D matMuls).
 *       Wall and CPU time per step and real tokens per second, each after one warm-up step.
 * run   the acceptance command: distillStudent with the fixture teacher on MSRA train (default
 *       fixtures/teacher/model, ../shared/data/msra/train.jsonl, fixtures/data/msra_dev_sample.jsonl,
 *       fixtures/data/msra_test_sample.jsonl), a fresh teacher-logit cache, within --minutes (or
 *       --train-minutes per student); prints the report summary (teacher vs student F1, p50 latency,
 *       sizes) and the wall time. [--unlabeled F] [--augment K] [--compare-hard]
 *       [--kd-losses marginal,emission]: one run per soft loss, same data/seed/cache (see runBench).
 * Every section notes the load average (the machine is shared).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../dist/autodiff/backend.js';
import { OnnxExecutor } from '../dist/autodiff/executor.js';
import { biLstm } from '../dist/distill/bilstm.js';
import { distillStudent, distillTable, writeDistillReport } from '../dist/distill/index.js';
import { createStudent } from '../dist/distill/students.js';
import { mulberry32 } from '../dist/runtime/bench.js';

const argv = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const only = arg('only');
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const emit = (o) => console.log(JSON.stringify({ ...o, load: load(), cores: cpus().length }));

function clock() {
  const t = performance.now();
  const c = process.cpuUsage();
  return () => {
    const d = process.cpuUsage(c);
    return { wallMs: performance.now() - t, cpuMs: (d.user + d.system) / 1000 };
  };
}

async function stepBench() {
  const backend = await initBackend('wasm');
  const B = Number(arg('batch', 16));
  const S = Number(arg('seq', 50));
  const E = Number(arg('emb', 64));
  const H = Number(arg('hidden', 128));
  const V = Number(arg('vocab', 4278));
  const steps = Number(arg('steps', 5));
  const L = 7;
  const rand = mulberry32(1);
  const lens = Int32Array.from({ length: B }, (_, b) => S - (b % 8));
  const ids = new Int32Array(B * S);
  const mask = new Int32Array(B * S);
  for (let b = 0; b < B; b++) for (let t = 0; t < lens[b]; t++) {
    ids[b * S + t] = 5 + Math.floor(rand() * (V - 5));
    mask[b * S + t] = 1;
  }
  const realTokens = lens.reduce((a, b) => a + b, 0);
  const target = tf.randomNormal([B, S, L], 0, 1, 'float32', 3);
  const loss = (logits) => tf.mean(tf.square(tf.sub(logits, target)));

  // (1) ONNX graph through the executor: export a fused-op student, compile its graph
  const spec = { kind: 'bilstm', vocabSize: V, numLabels: L, embeddingDim: E, hidden: H, layers: 1, heads: 0, ffn: 0, maxPositions: 512, dropout: 0, crf: false };
  const student = createStudent(spec, mulberry32(2));
  const ex = await OnnxExecutor.create(student.toOnnx(), { backend: 'wasm' });
  const exVars = ex.trainableVariables();
  const feeds = { input_ids: tf.tensor2d(ids, [B, S], 'int32'), attention_mask: tf.tensor2d(mask, [B, S], 'int32') };
  const executorStep = () => {
    const { value, grads } = tf.variableGrads(() => loss(ex.run(feeds).logits), exVars);
    value.dataSync();
    tf.dispose([value, ...Object.values(grads)]);
  };

  // (2) per-step tfjs BiLSTM with autodiff, same sizes
  const v = (shape, seed) => tf.variable(tf.randomNormal(shape, 0, 0.1, 'float32', seed));
  const emb = v([V, E], 1);
  const W = [v([E, 4 * H], 2), v([E, 4 * H], 3)];
  const R = [v([H, 4 * H], 4), v([H, 4 * H], 5)];
  const bias = [v([4 * H], 6), v([4 * H], 7)];
  const Wo = v([2 * H, L], 8);
  const bo = v([L], 9);
  const maskF = tf.tensor2d(Float32Array.from(mask), [B, S]);
  const naiveStep = () => {
    const { value, grads } = tf.variableGrads(() => {
      const x = tf.gather(emb, feeds.input_ids);
      const outs = [0, 1].map((d) => {
        let h = tf.zeros([B, H]);
        let c = tf.zeros([B, H]);
        const ys = new Array(S);
        const order = d === 0 ? [...Array(S).keys()] : [...Array(S).keys()].reverse();
        for (const t of order) {
          const xt = tf.reshape(tf.slice(x, [0, t, 0], [B, 1, E]), [B, E]);
          const [gi, go, gf, gc] = tf.split(tf.add(tf.add(tf.matMul(xt, W[d]), tf.matMul(h, R[d])), bias[d]), 4, 1);
          const cn = tf.add(tf.mul(tf.sigmoid(gf), c), tf.mul(tf.sigmoid(gi), tf.tanh(gc)));
          const hn = tf.mul(tf.sigmoid(go), tf.tanh(cn));
          const m = tf.reshape(tf.slice(maskF, [0, t], [B, 1]), [B, 1]);
          h = tf.add(tf.mul(m, hn), tf.mul(tf.sub(1, m), h));
          c = tf.add(tf.mul(m, cn), tf.mul(tf.sub(1, m), c));
          ys[t] = tf.mul(m, hn);
        }
        return tf.stack(ys, 1);
      });
      const hcat = tf.reshape(tf.concat(outs, 2), [B * S, 2 * H]);
      return loss(tf.reshape(tf.add(tf.matMul(hcat, Wo), bo), [B, S, L]));
    }, [emb, ...W, ...R, ...bias, Wo, bo]);
    value.dataSync();
    tf.dispose([value, ...Object.values(grads)]);
  };

  // (3) the fused op (what ranerc trains with)
  const fusedStep = () => {
    const { value, grads } = tf.variableGrads(() => loss(student.forward({ rows: B, seq: S, ids, mask })), student.params.map((p) => p.variable));
    value.dataSync();
    tf.dispose([value, ...Object.values(grads)]);
  };

  const rows = [];
  for (const [name, fn] of [['onnx-executor', executorStep], ['tfjs-autodiff-per-step', naiveStep], ['fused-custom-gradient', fusedStep]]) {
    fn();
    const c = clock();
    for (let i = 0; i < steps; i++) fn();
    const { wallMs, cpuMs } = c();
    const row = {
      section: 'step',
      impl: name,
      backend: backend.name,
      batch: B,
      seq: S,
      embedding: E,
      hidden: H,
      msPerStep: +(wallMs / steps).toFixed(1),
      cpuMsPerStep: +(cpuMs / steps).toFixed(1),
      tokensPerSec: Math.round((realTokens * steps) / (wallMs / 1000)),
      tokensPerCpuSec: Math.round((realTokens * steps) / (cpuMs / 1000)),
    };
    rows.push(row);
    emit(row);
  }
  const fused = rows[2];
  console.log(
    `\nforward+backward, batch ${B} × ${S}, E ${E}, H ${H}, wasm (load ${load()}):\n` +
      rows.map((r) => `  ${r.impl.padEnd(24)} ${String(r.msPerStep).padStart(8)} ms/step  ${String(r.tokensPerSec).padStart(7)} tokens/s  (${r.tokensPerCpuSec} tokens/CPU-s)`).join('\n') +
      `\n  fused vs executor: ${(fused.tokensPerCpuSec / rows[0].tokensPerCpuSec).toFixed(1)}× per CPU-second`,
  );
  ex.dispose();
  student.dispose();
}

async function runOne(variant, cache, common) {
  const out = join(tmpdir(), `ranerc-distill-bench-student-${variant.kd}`);
  const reportDir = join(arg('report-dir', join(tmpdir(), 'ranerc-distill-bench-report')), variant.kd);
  emit({ section: 'run', phase: 'start', kdLoss: variant.kd, compareHard: variant.compareHard });
  const t0 = performance.now();
  const res = await distillStudent({ ...common, out, cacheDir: cache, kdLoss: variant.kd, compareHard: variant.compareHard });
  await writeDistillReport(reportDir, res);
  const d = res.report.details;
  const row = {
    section: 'run',
    kdLoss: variant.kd,
    wallS: +((performance.now() - t0) / 1000).toFixed(1),
    trainMinutesEach: common.trainMinutes,
    evalSet: d.evaluation.set,
    teacherF1: d.evaluation.teacherF1,
    studentF1: d.evaluation.studentF1,
    hardOnlyF1: d.evaluation.hardOnlyF1,
    distillMinusHard: d.comparison.distillMinusHard,
    f1Ratio: d.comparison.f1Ratio,
    speedup: d.comparison.speedup,
    sizeRatio: d.comparison.sizeRatio,
    transferTexts: d.transfer.usedTexts,
    labelledTexts: d.transfer.labelledTexts,
    unlabelledTexts: d.transfer.unlabelledTexts,
    augmented: d.transfer.augmented,
    steps: d.training.steps,
    epochs: +d.training.epochs.toFixed(2),
    hardSteps: d.hardOnly?.training.steps,
    hardEpochs: d.hardOnly ? +d.hardOnly.training.epochs.toFixed(2) : undefined,
    tokensPerSec: Math.round(d.training.tokensPerSec),
    report: reportDir,
  };
  emit(row);
  console.log(`\n${distillTable(res.report)}`);
  return row;
}

/**
 * --kd-losses marginal,emission: one distillStudent run per soft loss on the same data, seed and
 * teacher-logit cache (filled by the first run, so the teacher pass costs nothing after it); each
 * student trains for exactly --train-minutes (wall clock, evaluations included), the first run also
 * trains the hard-label-only student for the same window (--compare-hard semantics).
 */
async function runBench() {
  const cache = mkdtempSync(join(tmpdir(), 'ranerc-distill-cache-'));
  const minutes = arg('minutes');
  const trainMinutes = arg('train-minutes');
  const common = {
    teacher: arg('teacher', join(REPO, 'fixtures/teacher/model')),
    train: arg('train', join(REPO, '..', 'shared/data/msra/train.jsonl')),
    dev: arg('dev', join(REPO, 'fixtures/data/msra_dev_sample.jsonl')),
    test: arg('test', join(REPO, 'fixtures/data/msra_test_sample.jsonl')),
    unlabeled: arg('unlabeled'),
    augment: arg('augment') !== undefined ? Number(arg('augment')) : undefined,
    maxMinutes: minutes !== undefined ? Number(minutes) : trainMinutes === undefined ? 14 : undefined,
    trainMinutes: trainMinutes !== undefined ? Number(trainMinutes) : undefined,
    seed: Number(arg('seed', 13)),
    threads: arg('threads') !== undefined ? Number(arg('threads')) : undefined,
  };
  const kds = arg('kd-losses', 'marginal').split(',');
  const rows = [];
  try {
    for (const [i, kd] of kds.entries()) {
      rows.push(await runOne({ kd: kd === 'emission' ? 'kl' : kd, compareHard: i === 0 && argv.includes('--compare-hard') }, cache, common));
    }
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
  console.log(
    `\nMSRA test-sample F1 (load ${load()}, ${common.trainMinutes ?? '?'} training minutes per student):\n` +
      rows.map((r) => `  ${r.kdLoss.padEnd(9)} distilled ${(100 * r.studentF1).toFixed(2)}` + (r.hardOnlyF1 !== undefined ? `  hard-only ${(100 * r.hardOnlyF1).toFixed(2)}  (${r.distillMinusHard >= 0 ? '+' : ''}${r.distillMinusHard.toFixed(2)})` : '') + `  teacher ${(100 * r.teacherF1).toFixed(2)}  ratio ${(100 * r.f1Ratio).toFixed(1)} %`).join('\n'),
  );
}

if (!only || only === 'step') await stepBench();
if (only === 'run') await runBench();
