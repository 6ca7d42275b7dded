#!/usr/bin/env node
/**
 * Training throughput of `ranerc finetune` (the ONNX → tfjs executor + trainer) on the backend that
 * runs, printed as JSON lines and a summary:
 *
 *   npm run build && node bench/finetune.mjs [--model fixtures/teacher/model] [--backend auto|wasm|cpu|tensorflow]
 *        [--steps 5] [--batch 32] [--no-synthetic] [--kernels] [--acceptance [--noise 0.6] [--epochs 1]
 *        [--lr 5e-4] [--eval-every 25] [--out DIR]]
 *
 * Sections:
 * - steps (always): optimizer steps of the Trainer (CRF NLL when the folder has crf.json, AdamW, clipping) on
 *   real batches of fixtures/data/msra_train_sample.jsonl, cut as finetune cuts them (--batch rows, micro-batches
 *   under the default token budget); the first step is a warm-up, the next --steps are timed. Reports real
 *   tokens (attention mask 1) per second of wall time and of process CPU time (the machine may be shared:
 *   CPU time is the steadier number), with the SIMD batched MatMul on and, on wasm, off (the "before").
 * - synthetic (unless --no-synthetic): forward+backward of cross-entropy at batch 8 × 128 tokens (the shape
 *   bench/autodiff-throughput.mjs reports), SIMD on and off.
 * - kernels (--kernels): attention's batched product [B·H, T, d] · [B·H, d, T] as tf.matMul (tfjs-wasm's
 *   batched loop), as B·H 2-D XNNPACK products of fresh operands, and as the SIMD kernel: GFLOP/s of CPU time.
 * - acceptance (--acceptance): bench/weaken-teacher.mjs's weakening (w += S·rms(w)·N(0,1) on every tensor,
 *   --noise S, seed 7), then finetuneModelFolder for --epochs on the 4,000-sentence MSRA training sample with
 *   the 500-sentence dev sample; dev F1 before/after (onnxruntime, as `ranerc eval`), minutes, tokens/s.
 * Every section prints the backend, the CPU count and the load average.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../dist/autodiff/backend.js';
import { OnnxExecutor } from '../dist/autodiff/executor.js';
import { setSimdMatMulEnabled, simdMatMul } from '../dist/autodiff/simd-matmul.js';
import { makeMicroBatch, planEpoch, trainingRows } from '../dist/autodiff/train/data.js';
import { defaultMaxBatchTokens, finetuneModelFolder } from '../dist/autodiff/train/finetune.js';
import { Trainer } from '../dist/autodiff/train/trainer.js';
import { withInitializers } from '../dist/autodiff/weights.js';
import { readExamples } from '../dist/ner/data.js';
import { LabelSet } from '../dist/ner/labels.js';
import { WordPieceTokenizer } from '../dist/ner/tokenizer.js';
import { defaultOverlap } from '../dist/ner/windows.js';
import { decodeModel } from '../dist/onnx/codec.js';
import { loadModelFolder, writeModelFolder } from '../dist/onnx/folder.js';
import { isFloatType, tensorToFloat32 } from '../dist/onnx/tensor.js';
import { mulberry32 } from '../dist/runtime/bench.js';

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const modelDir = opt('model', join(repo, 'fixtures/teacher/model'));
const backendPref = opt('backend', 'auto');
const STEPS = Number(opt('steps', '5'));
const BATCH = Number(opt('batch', '32'));
const trainPath = join(repo, 'fixtures/data/msra_train_sample.jsonl');
const devPath = join(repo, 'fixtures/data/msra_dev_sample.jsonl');
if (!existsSync(modelDir)) {
  console.error(`no model folder at ${modelDir}: pass --model DIR`);
  process.exit(2);
}

const cpuMs = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};
const load = () => loadavg().map((l) => Number(l.toFixed(2)));
const emit = (obj) => console.log(JSON.stringify(obj));
const summary = [];

const backend = await initBackend(backendPref);
const folder = await loadModelFolder({ model: modelDir });
const model = decodeModel(readFileSync(folder.onnxPath), folder.onnxPath);
const machine = { backend: backend.name, ...(backend.reason ? { backendReason: backend.reason } : {}), cpus: cpus().length, node: process.version };
emit({ section: 'machine', ...machine, model: modelDir, loadAverage: load() });

// ------------------------------------------------------------------------------------ steps

const labels = new LabelSet(folder.labels);
const tok = await WordPieceTokenizer.fromFiles(folder.vocabPath, folder.tokenizerConfig);
const windowSize = folder.maxLength - 2;
const train = await readExamples(trainPath, { types: labels.types });
const rows = trainingRows(train.examples, tok, labels, { windowSize, overlap: defaultOverlap(windowSize) });

async function steps(simd) {
  setSimdMatMulEnabled(simd);
  const ex = await OnnxExecutor.create(model, { backend: backend.name });
  const params = [...ex.variables.values()].reduce((s, v) => s + v.size, 0);
  const maxTokens = defaultMaxBatchTokens(folder.config, params, windowSize + 2);
  const plan = planEpoch(rows.map((r) => r.ids.length), { batchRows: BATCH, maxTokens }, mulberry32(1));
  const tr = new Trainer(ex, { loss: folder.crf ? 'crf' : 'ce', crf: folder.crf });
  const la = load();
  let tokens = 0;
  let padded = 0;
  let w0 = 0;
  let c0 = 0;
  let tensorsAfterWarmup = 0;
  for (let s = 0; s <= STEPS; s++) {
    if (s === 1) {
      tensorsAfterWarmup = tf.memory().numTensors;
      w0 = performance.now();
      c0 = cpuMs();
    }
    const r = tr.step(
      plan[s].map((idx) => makeMicroBatch(rows, idx, tok.padId)),
      1e-4,
    );
    if (s > 0) {
      tokens += r.tokens;
      padded += r.paddedTokens;
    }
  }
  const wall = performance.now() - w0;
  const cpu = cpuMs() - c0;
  const res = {
    section: 'steps',
    simd: simd && backend.name === 'wasm',
    loss: folder.crf ? 'crf' : 'ce',
    batch: BATCH,
    maxBatchTokens: maxTokens,
    steps: STEPS,
    tokens,
    paddedTokens: padded,
    wallSeconds: wall / 1000,
    cpuSeconds: cpu / 1000,
    tokensPerSec: tokens / (wall / 1000),
    tokensPerCpuSec: tokens / (cpu / 1000),
    tensorsAfterWarmup,
    tensorsAtEnd: tf.memory().numTensors,
    loadAverage: [la, load()],
    ...machine,
  };
  tr.dispose();
  ex.dispose();
  setSimdMatMulEnabled(true);
  emit(res);
  return res;
}

const variants = backend.name === 'wasm' ? [true, false] : [true];
for (const simd of variants) {
  const r = await steps(simd);
  summary.push(
    `training steps (batch ${BATCH}, ${r.loss}, ${r.steps} timed) on ${backend.name}${backend.name === 'wasm' ? `, SIMD batched MatMul ${simd ? 'on' : 'off'}` : ''}: ` +
      `${r.tokensPerSec.toFixed(0)} tokens/s wall, ${r.tokensPerCpuSec.toFixed(0)} tokens/s of CPU time (load ${r.loadAverage[0][0]})`,
  );
}

// ------------------------------------------------------------------------------------ synthetic 8 x 128

if (!argv.includes('--no-synthetic')) {
  const B = 8;
  const T = 128;
  for (const simd of variants) {
    setSimdMatMulEnabled(simd);
    const ex = await OnnxExecutor.create(model, { backend: backend.name });
    const vocab = ex.variables.get('bert.embeddings.word_embeddings.weight')?.shape[0] ?? 100;
    const shape = [B, T];
    const feeds = {};
    for (const io of ex.inputs) {
      feeds[io.name] =
        io.name === 'input_ids'
          ? tf.tensor(Array.from({ length: B * T }, (_, i) => 1 + ((i * 7919) % (vocab - 1))), shape, 'int32')
          : io.name === 'attention_mask'
            ? tf.ones(shape, 'int32')
            : tf.zeros(shape, 'int32');
    }
    const out = ex.outputs[0].name;
    const L = folder.labels.length;
    const labelsT = tf.tensor(Array.from({ length: B * T }, (_, i) => (i * 31) % L), shape, 'int32');
    const vars = ex.trainableVariables();
    const step = () => {
      const { value, grads } = tf.variableGrads(() => tf.tidy(() => tf.losses.softmaxCrossEntropy(tf.oneHot(labelsT, L), ex.run(feeds)[out])), vars);
      value.dataSync();
      for (const g of Object.values(grads)) g.dataSync();
      tf.dispose([value, grads]);
    };
    step();
    const la = load();
    const w0 = performance.now();
    const c0 = cpuMs();
    const reps = 3;
    for (let r = 0; r < reps; r++) step();
    const wall = (performance.now() - w0) / reps;
    const cpu = (cpuMs() - c0) / reps;
    const res = {
      section: 'synthetic',
      simd: simd && backend.name === 'wasm',
      batch: B,
      seq: T,
      msPerStep: wall,
      cpuMsPerStep: cpu,
      tokensPerSec: (B * T) / (wall / 1000),
      tokensPerCpuSec: (B * T) / (cpu / 1000),
      loadAverage: [la, load()],
      ...machine,
    };
    emit(res);
    summary.push(
      `forward+backward ${B} x ${T}${backend.name === 'wasm' ? `, SIMD ${simd ? 'on' : 'off'}` : ''}: ${res.tokensPerSec.toFixed(0)} tokens/s wall, ${res.tokensPerCpuSec.toFixed(0)} tokens/s of CPU time`,
    );
    tf.dispose([labelsT, feeds]);
    ex.dispose();
  }
  setSimdMatMulEnabled(true);
}

// ------------------------------------------------------------------------------------ kernels

if (argv.includes('--kernels') && backend.name === 'wasm') {
  const gflops = (flops, ms) => flops / ms / 1e6;
  for (const [G, M, K, N] of [
    [64, 128, 32, 128],
    [64, 128, 128, 32],
    [256, 52, 32, 52],
    [24, 128, 64, 128],
  ]) {
    const a = tf.randomNormal([G, M, K]);
    const b = tf.randomNormal([G, K, N]);
    const time = (f) => {
      f();
      const c0 = cpuMs();
      for (let i = 0; i < 5; i++) f();
      return (cpuMs() - c0) / 5;
    };
    const batched = time(() => tf.tidy(() => void tf.matMul(a, b).dataSync()));
    const looped = time(() =>
      tf.tidy(() => {
        // fresh right-hand operands, as in training: XNNPACK packs each one
        const bs = tf.unstack(tf.add(b, 0));
        const as = tf.unstack(a);
        void tf.stack(as.map((x, i) => tf.matMul(x, bs[i]))).dataSync();
      }),
    );
    const simd = time(() => tf.tidy(() => void simdMatMul(a, b).dataSync()));
    const flops = 2 * G * M * K * N;
    const res = { section: 'kernels', shape: [G, M, K, N], tfBatchedGflops: gflops(flops, batched), looped2dGflops: gflops(flops, looped), simdGflops: gflops(flops, simd), loadAverage: load() };
    emit(res);
    summary.push(
      `batched product [${G}, ${M}, ${K}] x [${G}, ${K}, ${N}]: tf.matMul ${res.tfBatchedGflops.toFixed(2)}, ${G} 2-D products ${res.looped2dGflops.toFixed(2)}, SIMD kernel ${res.simdGflops.toFixed(2)} GFLOP/s of CPU time`,
    );
    tf.dispose([a, b]);
  }
}

// ------------------------------------------------------------------------------------ acceptance

if (argv.includes('--acceptance')) {
  const noise = Number(opt('noise', '0.6'));
  const epochs = Number(opt('epochs', '1'));
  const lr = Number(opt('lr', '5e-4'));
  const evalEvery = opt('eval-every') === undefined ? undefined : Number(opt('eval-every'));
  const base = opt('out') ?? mkdtempSync(join(tmpdir(), 'ranerc-finetune-bench-'));
  const weak = join(base, 'weak');
  // the same weakening as bench/weaken-teacher.mjs (seed 7, Box–Muller pairs)
  const rand = mulberry32(7);
  let spare;
  const gauss = () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = rand();
    const v = rand();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
  const values = new Map();
  for (const t of model.graph.initializer) {
    if (!isFloatType(t.dataType ?? 0)) continue;
    const w = tensorToFloat32(t);
    if (w.length < 2) continue;
    let ss = 0;
    for (const x of w) ss += x * x;
    const s = noise * Math.sqrt(ss / w.length);
    for (let i = 0; i < w.length; i++) w[i] += s * gauss();
    values.set(t.name, w);
  }
  await writeModelFolder(weak, folder, withInitializers(model, values), {
    provenance: { ranerc: 'bench', command: 'bench/finetune.mjs --acceptance', createdAt: new Date().toISOString(), settings: { noise, seed: 7 } },
  });
  const la = load();
  const t0 = performance.now();
  const c0 = cpuMs();
  let lastLine = 0;
  const r = await finetuneModelFolder({
    model: weak,
    train: trainPath,
    dev: devPath,
    out: join(base, 'finetuned'),
    epochs,
    lr,
    evalEvery,
    backend: backend.name,
    log: (line) => console.error(line),
    onProgress: (p) => {
      if (p.phase === 'train' && performance.now() - lastLine > 60_000) {
        lastLine = performance.now();
        console.error(`step ${p.step}/${p.totalSteps}: loss ${p.loss.toFixed(4)}, ${p.tokensPerSec.toFixed(0)} tokens/s, load ${load()[0]}`);
      }
    },
  });
  const minutes = (performance.now() - t0) / 60000;
  const res = {
    section: 'acceptance',
    noise,
    epochs,
    lr,
    steps: r.details.steps,
    devF1Before: r.f1.before.micro.f1,
    devF1After: r.f1.after.micro.f1,
    perTypeBefore: Object.fromEntries(Object.entries(r.f1.before.perType).map(([k, v]) => [k, v.f1])),
    perTypeAfter: Object.fromEntries(Object.entries(r.f1.after.perType).map(([k, v]) => [k, v.f1])),
    bestStep: r.details.best.step,
    minutes,
    cpuMinutes: (cpuMs() - c0) / 60000,
    trainSeconds: r.details.trainSeconds,
    evalSeconds: r.details.evalSeconds,
    tokensPerSec: r.details.tokensPerSec,
    loadAverage: [la, load()],
    out: r.outDir,
    ...machine,
  };
  emit(res);
  summary.push(
    `acceptance: teacher weakened with noise ${noise}: dev F1 ${(res.devF1Before * 100).toFixed(2)} → ${(res.devF1After * 100).toFixed(2)} after ${epochs} epoch(s) ` +
      `(${res.steps} steps, best step ${res.bestStep}) in ${minutes.toFixed(1)} min, ${res.tokensPerSec.toFixed(0)} tokens/s on ${backend.name}, load ${la[0]} → ${load()[0]}`,
  );
  if (opt('out') === undefined) rmSync(base, { recursive: true, force: true });
}

console.log('');
for (const line of summary) console.log(line);
