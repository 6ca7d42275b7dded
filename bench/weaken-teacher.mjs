#!/usr/bin/env node
/**
 * Make a weakened copy of a model folder, for showing that `ranerc finetune` recovers accuracy:
 *
 *   npm run build && node bench/weaken-teacher.mjs [--model fixtures/teacher/model] --out DIR
 *        [--noise 0.5] [--reset-classifier] [--seed 7] [--dev fixtures/data/msra_dev_sample.jsonl]
 *
 * --noise S           add Gaussian noise to every float initializer with at least 2 elements:
 *                     w ← w + S · rms(w) · N(0, 1), rms(w) = sqrt(mean(w²)) of that tensor (so S is the
 *                     noise-to-signal ratio of every tensor; default 0.5). S = 0 adds none.
 * --reset-classifier  also re-initialise the classifier (the last MatMul/Gemm weight feeding the logits
 *                     and its bias, as Hugging Face initialises it: N(0, 0.02) and 0) and zero the CRF.
 * Noise comes from a seeded generator (mulberry32 + Box–Muller), so the same flags give the same folder.
 * Prints the dev F1 (onnxruntime, the `ranerc eval` pipeline) of the source and of the weakened folder.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readExamples } from '../dist/ner/data.js';
import { scoreSpans } from '../dist/ner/metrics.js';
import { loadModel } from '../dist/onnx/external.js';
import { loadModelFolder, writeModelFolder } from '../dist/onnx/folder.js';
import { isFloatType, tensorToFloat32 } from '../dist/onnx/tensor.js';
import { withInitializers } from '../dist/autodiff/weights.js';
import { ranercVersion } from '../dist/report/environment.js';
import { mulberry32 } from '../dist/runtime/bench.js';
import { Predictor } from '../dist/runtime/predict.js';
import { sha256File } from '../dist/util/fs.js';

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const modelDir = opt('model', join(repo, 'fixtures/teacher/model'));
const out = opt('out');
const noise = Number(opt('noise', '0.5'));
const reset = argv.includes('--reset-classifier');
const seed = Number(opt('seed', '7'));
const devPath = opt('dev', join(repo, 'fixtures/data/msra_dev_sample.jsonl'));
if (!out || !existsSync(modelDir) || !(noise >= 0)) {
  console.error('usage: node bench/weaken-teacher.mjs [--model DIR] --out DIR [--noise S] [--reset-classifier] [--seed N]');
  process.exit(2);
}

/** Standard normal samples from a seeded uniform generator (Box–Muller). */
function normal(rand) {
  let spare;
  return () => {
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
}

/** The weight and bias initializers of the MatMul/Gemm (+ Add) producing the first graph output. */
function classifierInitializers(model) {
  const graph = model.graph;
  const inits = new Set(graph.initializer.map((t) => t.name));
  const producer = new Map();
  for (const n of graph.node) for (const o of n.output) producer.set(o, n);
  const found = [];
  let cur = producer.get(graph.output[0].name);
  for (let hops = 0; cur && hops < 4; hops++) {
    for (const i of cur.input) if (inits.has(i)) found.push(i);
    if (cur.opType === 'MatMul' || cur.opType === 'Gemm') break;
    cur = cur.input.map((i) => producer.get(i)).find((n) => n !== undefined);
  }
  return found;
}

async function devF1(folder) {
  const dev = await readExamples(devPath, { types: undefined });
  const p = await Predictor.open(folder);
  try {
    const pred = await p.predict(dev.examples.map((e) => e.text));
    return scoreSpans(dev.examples.map((e) => e.entities), pred).micro;
  } finally {
    await p.close();
  }
}

const folder = await loadModelFolder({ model: modelDir });
const { model } = await loadModel(folder.onnxPath);
const gauss = normal(mulberry32(seed));
const values = new Map();
const classifier = reset ? classifierInitializers(model) : [];
for (const t of model.graph.initializer) {
  if (!isFloatType(t.dataType ?? 0)) continue;
  const w = tensorToFloat32(t);
  if (w.length < 2 && !classifier.includes(t.name)) continue;
  if (classifier.includes(t.name)) {
    const isBias = (t.dims ?? []).length === 1;
    for (let i = 0; i < w.length; i++) w[i] = isBias ? 0 : 0.02 * gauss();
  } else if (noise > 0) {
    let ss = 0;
    for (const x of w) ss += x * x;
    const s = noise * Math.sqrt(ss / w.length);
    for (let i = 0; i < w.length; i++) w[i] += s * gauss();
  }
  values.set(t.name, w);
}
let crf = folder.crf;
if (reset && crf) {
  const L = crf.labels.length;
  crf = { labels: crf.labels, transitions: Array.from({ length: L }, () => new Array(L).fill(0)), start: new Array(L).fill(0), end: new Array(L).fill(0) };
}
const written = await writeModelFolder(out, folder, withInitializers(model, values), {
  provenance: {
    ranerc: ranercVersion(),
    command: 'bench/weaken-teacher.mjs',
    createdAt: new Date().toISOString(),
    source: { path: folder.onnxPath, sha256: await sha256File(folder.onnxPath) },
    settings: { noise, resetClassifier: reset, classifier, seed },
  },
  crf: crf ?? null,
});
const before = await devF1(folder);
const after = await devF1(await loadModelFolder({ model: written.dir }));
console.log(
  JSON.stringify({
    source: modelDir,
    out: written.dir,
    noise,
    resetClassifier: reset,
    classifier,
    seed,
    dev: devPath,
    devF1Source: before.f1,
    devF1Weakened: after.f1,
  }),
);
console.log(`dev F1 ${(before.f1 * 100).toFixed(2)} → ${(after.f1 * 100).toFixed(2)} (noise ${noise}${reset ? ', classifier reset' : ''}): ${written.dir}`);
