#!/usr/bin/env node
/**
 * Benchmark (not a test): what onnxruntime does with a weights-only model (int8 weights behind
 * DequantizeLinear, float MatMul/Gather). Writes the weights-only model of --model, then opens it twice —
 * with default session options and with `session.disable_quant_qdq = 1` — writes each optimized graph,
 * counts the DequantizeLinear nodes left in it (left = dequantized on every call; gone = constant-folded at
 * load), and times the float model and both sessions interleaved in one process at one (seq, batch).
 *
 *   npm run build && node bench/weights-only.mjs --model DIR [--seq 64] [--batch 1] [--threads 2] [--seconds 4]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import ort from 'onnxruntime-node';
import { quantizeModelFolder } from '../dist/quantize/index.js';
import { makeBenchBatch, measureInterleaved, syntheticBenchInputs } from '../dist/runtime/bench.js';
import { WordPieceTokenizer } from '../dist/ner/tokenizer.js';
import { loadModelFolder } from '../dist/onnx/folder.js';
import { loadModel } from '../dist/onnx/external.js';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const model = resolve(args.model ?? 'fixtures/teacher/model');
const seq = Number(args.seq ?? 64);
const batch = Number(args.batch ?? 1);
const threads = Number(args.threads ?? 2);
const seconds = Number(args.seconds ?? 4);
const tmp = mkdtempSync(join(tmpdir(), 'ranerc-wo-'));
try {
  const wo = await quantizeModelFolder({ model, out: join(tmp, 'wo'), weightsOnly: true, perChannel: true, bench: false });
  const folder = await loadModelFolder({ model });
  const tok = await WordPieceTokenizer.fromFiles(folder.vocabPath, folder.tokenizerConfig);
  const feedB = makeBenchBatch(syntheticBenchInputs(tok), seq, batch);
  const base = { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' };
  const open = (path, extra, opt) => ort.InferenceSession.create(path, { ...base, ...(extra ? { extra } : {}), optimizedModelFilePath: opt });
  const sessions = {
    float: await open(folder.onnxPath, undefined, join(tmp, 'float.opt.onnx')),
    'weights-only (default options)': await open(wo.onnxPath, undefined, join(tmp, 'wo.opt.onnx')),
    'weights-only (session.disable_quant_qdq=1)': await open(wo.onnxPath, { session: { disable_quant_qdq: '1' } }, join(tmp, 'wo-noqdq.opt.onnx')),
  };
  const opt = { float: 'float.opt.onnx', 'weights-only (default options)': 'wo.opt.onnx', 'weights-only (session.disable_quant_qdq=1)': 'wo-noqdq.opt.onnx' };
  const feeds = (s) => {
    const f = {};
    for (const name of s.inputNames) {
      const data = name.includes('mask') ? BigInt64Array.from(feedB.mask, BigInt) : name.includes('type') ? new BigInt64Array(seq * batch) : BigInt64Array.from(feedB.ids, BigInt);
      f[name] = new ort.Tensor('int64', data, [batch, seq]);
    }
    return f;
  };
  const names = Object.keys(sessions);
  const fs = names.map((n) => feeds(sessions[n]));
  const la0 = loadavg()[0];
  const stats = await measureInterleaved(names.map((n, i) => () => sessions[n].run(fs[i])), { rounds: 4, warmup: 3, iterations: 12, seconds });
  const la1 = loadavg()[0];
  console.log(`model ${model}; seq ${seq} × batch ${batch}; ${threads} threads; ${seconds} s per model; load average ${la0.toFixed(2)} → ${la1.toFixed(2)}`);
  console.log(`weights-only file ${(wo.after.bytes / wo.before.bytes).toFixed(3)}× the float file; ${wo.report.details.nodes.quantized} nodes with int8 weights`);
  for (const [i, n] of names.entries()) {
    const g = (await loadModel(join(tmp, opt[n]))).model.graph;
    const ops = {};
    for (const node of g.node ?? []) ops[node.opType] = (ops[node.opType] ?? 0) + 1;
    console.log(`${n.padEnd(44)} p50 ${stats[i].p50.toFixed(3)} ms  speed-up ${(stats[0].p50 / stats[i].p50).toFixed(2)}×  optimized graph: ${Object.entries(ops).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(", ")}`);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
