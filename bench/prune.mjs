#!/usr/bin/env node
/**
 * Measurements for `ranerc prune` (issue 5), printed as JSON lines and a summary:
 *
 *   npm run build && node bench/prune.mjs [--teacher DIR] [--bert-base DIR] [--brute DIR]
 *        [--data F] [--eval F] [--ratio 0.25] [--ffn-ratio 0] [--threads N] [--seconds 10]
 *        [--bert-sentences 64] [--cache DIR] [--only teacher|bert-base|brute]
 *
 * --teacher DIR  prune DIR at --ratio with importance on --data, F1 on --eval before → pruned, and
 *                p50 latency (batch 1, sequence 128) of both models in one process (alternating runs).
 *                Default fixtures/teacher/model with fixtures/data/msra_dev_sample.jsonl and
 *                msra_test_sample.jsonl.
 * --bert-base DIR  the same on a BERT-base-shaped export (make one with
 *                `/usr/bin/python3 fixtures/tools/make_bert_base.py --out /tmp/bert-base`; never commit it):
 *                latency before/after and importance scoring time (on --bert-sentences sentences).
 * --brute DIR    brute force on a tiny model (default fixtures/tiny/bio-crf-op14): the loss increase of
 *                removing each head alone (onnxruntime, gated model) vs its importance; Spearman's rho and
 *                whether the lowest-ranked head costs less than the highest-ranked.
 * --cache DIR    reuse importance scores across runs (e.g. to re-time latency); default: no cache.
 * curve (issue 17): ratio 0 / 20 / 40 % (that fraction of the heads and of the FFN neurons) → parameters,
 *                F1 on --eval (teacher) and p50 at batch 1, sequence 128, the three models timed together
 *                in interleaved blocks; the same p50s for --bert-base (random weights: no F1).
 * target (issue 17): pruneToTarget — teacher --target-speedup 1.25 (--teacher-speedup) with recovery
 *                fine-tuning on the MSRA train sample (dev F1 per round, test F1 before → after), and
 *                BERT-base --target-speedup 1.33 (--bert-speedup) with label-free KL importance.
 *                `--only curve|target` runs one of them.
 * Sections whose folder does not exist are skipped. Every run notes the load average (shared machine).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { readExamples } from '../dist/ner/data.js';
import { LabelSet } from '../dist/ner/labels.js';
import { WordPieceTokenizer } from '../dist/ner/tokenizer.js';
import { findAttentionBlocks } from '../dist/onnx/attention.js';
import { encodeModel } from '../dist/onnx/codec.js';
import { loadModel } from '../dist/onnx/external.js';
import { loadModelFolder } from '../dist/onnx/folder.js';
import { batchRows, scoringRows } from '../dist/prune/data.js';
import { computeImportance } from '../dist/prune/importance.js';
import { pruneModelFolder } from '../dist/prune/prune.js';
import { pruneToTarget } from '../dist/prune/target-run.js';
import { measureInterleaved, makeBenchBatch, syntheticBenchInputs } from '../dist/runtime/bench.js';
import { NerSession } from '../dist/runtime/session.js';
import { normalizeByLayer, rankAscending, spearman } from '../dist/prune/scores.js';
import { gatedModel } from '../dist/prune/surgery.js';

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const teacher = opt('teacher', join(repo, 'fixtures/teacher/model'));
const bertBase = opt('bert-base', '/tmp/bert-base');
const brute = opt('brute', join(repo, 'fixtures/tiny/bio-crf-op14'));
const data = opt('data', join(repo, 'fixtures/data/msra_dev_sample.jsonl'));
const evalData = opt('eval', join(repo, 'fixtures/data/msra_test_sample.jsonl'));
const ratio = Number(opt('ratio', '0.25'));
const ffnRatio = Number(opt('ffn-ratio', '0'));
const cacheDir = opt('cache') ?? false;
const threads = opt('threads') ? Number(opt('threads')) : undefined;
const seconds = Number(opt('seconds', '10'));
const bertSentences = Number(opt('bert-sentences', '64'));
const only = opt('only'); // teacher | bert-base | brute | curve | target

const load = () => loadavg().map((x) => Number(x.toFixed(2)));
const emit = (o) => console.log(JSON.stringify({ ...o, loadavg: load() }));
console.error(`cpus ${cpus().length} (${cpus()[0]?.model}), load average ${load().join(' ')}`);

async function pruneRun(name, model, extra) {
  const tmp = mkdtempSync(join(tmpdir(), 'ranerc-bench-prune-'));
  try {
    const t0 = performance.now();
    const r = await pruneModelFolder({
      model,
      data,
      out: join(tmp, 'out'),
      ratio,
      ffnRatio,
      threads,
      cacheDir,
      bench: { seqLen: 128, batch: 1, seconds },
      log: (l) => console.error(`[${name}] ${l}`),
      ...extra,
    });
    const d = r.details;
    emit({
      section: name,
      model,
      ratio,
      heads: d.heads,
      neurons: d.neurons ?? null,
      attentionParameters: [d.parameters.attentionBefore, d.parameters.attentionAfter],
      attentionRatio: d.parameters.attentionAfter / d.parameters.attentionBefore,
      ffnParameters: [d.parameters.ffnBefore, d.parameters.ffnAfter],
      parameters: [d.parameters.before, d.parameters.after],
      bytes: r.report.models.map((m) => m.bytes),
      f1: r.f1 ? [r.f1.before.micro.f1, r.f1.pruned.micro.f1] : null,
      f1DropPoints: r.f1 ? (r.f1.before.micro.f1 - r.f1.pruned.micro.f1) * 100 : null,
      maxAbsDiffVsGated: d.equivalence?.maxAbsDiff,
      latency: d.latency,
      importance: d.rounds.map((x) => ({ rows: x.rows, tokens: x.tokens, ms: Math.round(x.ms), backend: x.backend, cached: x.cached })),
      totalMs: Math.round(performance.now() - t0),
    });
    return r;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function bruteForce(dir) {
  const folder = await loadModelFolder({ model: dir });
  const model = (await loadModel(folder.onnxPath)).model;
  const blocks = findAttentionBlocks(model).blocks;
  const labels = new LabelSet(folder.labels);
  const tok = await WordPieceTokenizer.fromFiles(folder.vocabPath, folder.tokenizerConfig);
  const { examples } = await readExamples(data, { types: labels.types, unknownTypes: 'skip' });
  const rows = scoringRows(examples, tok, labels, { windowSize: folder.maxLength - 2, overlap: 16 });
  const batches = batchRows(rows, { maxRows: 16, maxTokens: 2048, padId: tok.padId });
  const imp = await computeImportance(model, blocks, batches);
  const lossOf = async (m) => {
    const s = await ort.InferenceSession.create(encodeModel(m), { logSeverityLevel: 3 });
    let sum = 0;
    let n = 0;
    for (const b of batches) {
      const feeds = {};
      for (const name of s.inputNames) {
        const src = name === 'input_ids' ? b.ids : name === 'attention_mask' ? b.mask : new Int32Array(b.ids.length);
        feeds[name] = new ort.Tensor('int64', BigInt64Array.from(src, (x) => BigInt(x)), [b.batch, b.seqLen]);
      }
      const out = Float32Array.from((await s.run(feeds))[s.outputNames[0]].data);
      const L = out.length / (b.batch * b.seqLen);
      for (let i = 0; i < b.batch * b.seqLen; i++) {
        if (!b.lossMask[i]) continue;
        let mx = -Infinity;
        for (let j = 0; j < L; j++) mx = Math.max(mx, out[i * L + j]);
        let z = 0;
        for (let j = 0; j < L; j++) z += Math.exp(out[i * L + j] - mx);
        sum -= out[i * L + b.labels[i]] - mx - Math.log(z);
        n++;
      }
    }
    await s.release();
    return sum / n;
  };
  const base = await lossOf(model);
  const norm = normalizeByLayer(imp.heads);
  const heads = [];
  for (let l = 0; l < blocks.length; l++) {
    for (let h = 0; h < blocks[l].numHeads; h++) {
      const delta = (await lossOf(gatedModel(model, blocks, { heads: blocks.map((_, k) => (k === l ? [h] : [])) }))) - base;
      heads.push({ layer: l, head: h, importance: imp.heads[l][h], normalized: norm[l][h], lossIncrease: delta });
    }
  }
  const order = rankAscending(norm);
  const find = (u) => heads.find((x) => x.layer === u.layer && x.head === u.index);
  const lowest = find(order[0]);
  const highest = find(order[order.length - 1]);
  emit({
    section: 'brute',
    model: dir,
    sentences: examples.length,
    tokens: imp.tokens,
    baseLoss: base,
    spearmanNormalized: spearman(heads.map((x) => x.normalized), heads.map((x) => x.lossIncrease)),
    spearmanRaw: spearman(heads.map((x) => x.importance), heads.map((x) => x.lossIncrease)),
    lowest,
    highest,
    lowestCostsLess: lowest.lossIncrease < highest.lossIncrease,
    heads,
  });
}

if ((!only || only === 'brute') && existsSync(brute)) await bruteForce(brute);
if ((!only || only === 'teacher') && existsSync(teacher)) await pruneRun('teacher', teacher, { eval: evalData });
if ((!only || only === 'bert-base') && existsSync(bertBase)) {
  await pruneRun('bert-base', bertBase, { maxSentences: bertSentences, skipUnknownTypes: true, verify: true });
}

// ------------------------------------------------------------------ issue 17: the curve and the targets

const f1Pct = (x) => (x === null || x === undefined ? '' : (x * 100).toFixed(2));

async function curve(name, model, extra) {
  const tmp = mkdtempSync(join(tmpdir(), 'ranerc-bench-curve-'));
  try {
    const paths = [join(model, 'model.onnx')];
    const rows = [{ ratio: 0 }];
    for (const r of [0.2, 0.4]) {
      const res = await pruneModelFolder({ model, data, out: join(tmp, `r${r}`), ratio: r, ffnRatio: r, threads, cacheDir, bench: false, verify: true, log: (l) => console.error(`[${name} ${r}] ${l}`), ...extra });
      paths.push(res.onnxPath);
      rows.push({ ratio: r, parameters: res.details.parameters.after, f1: res.f1?.pruned.micro.f1 ?? null, before: res.details.parameters.before, f1Before: res.f1?.before.micro.f1 ?? null });
    }
    rows[0].parameters = rows[1].before;
    rows[0].f1 = rows[1].f1Before;
    const folder = await loadModelFolder({ model });
    const tok = await WordPieceTokenizer.fromFiles(folder.vocabPath, folder.tokenizerConfig);
    const feed = makeBenchBatch(syntheticBenchInputs(tok), 128, 1);
    const sessions = [];
    for (const p of paths) sessions.push(await NerSession.open(p, { threads }));
    const start = load();
    const stats = await measureInterleaved(sessions.map((s) => () => s.runFlat(feed)), { rounds: 6, warmup: 5, iterations: 30, seconds });
    for (const s of sessions) await s.close();
    rows.forEach((r, i) => {
      r.p50Ms = stats[i].p50;
      r.speedup = stats[0].p50 / stats[i].p50;
    });
    emit({ section: `curve-${name}`, model, loadAvgStart: start, rows: rows.map(({ before, f1Before, ...r }) => r) });
    console.error(`\n${name}: ratio (heads and FFN) → parameters, F1, p50 (batch 1, seq 128, one interleaved run; load ${start.join(' ')} → ${load().join(' ')})`);
    for (const r of rows) console.error(`  ${String(r.ratio * 100).padStart(3)}%  ${String(r.parameters).padStart(11)}  F1 ${f1Pct(r.f1).padStart(6)}  p50 ${r.p50Ms.toFixed(2).padStart(8)} ms  ${r.speedup.toFixed(3)}×`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function target(name, model, extra) {
  const tmp = mkdtempSync(join(tmpdir(), 'ranerc-bench-target-'));
  try {
    const t0 = performance.now();
    const r = await pruneToTarget({ model, data, out: join(tmp, 'out'), threads, log: (l) => console.error(`[${name} target] ${l}`), ...extra });
    const d = r.details;
    const chosen = d.roundsRun.find((x) => x.round === d.chosenRound);
    emit({
      section: `target-${name}`,
      model,
      target: d.target,
      verdict: d.verdict,
      chosenRound: d.chosenRound,
      speedup: chosen.speedup,
      costModel: { ...d.costModel.model, cached: d.costModel.cached, loadAvg: [d.costModel.loadAvgStart, d.costModel.loadAvgEnd] },
      rounds: d.roundsRun.map((x) => ({ round: x.round, heads: x.heads, neurons: x.neurons, layers: x.layers, parameters: x.parameters, before: x.beforeP50Ms, after: x.afterP50Ms, speedup: x.speedup, devF1: x.devF1 ?? null, devF1Pruned: x.devF1Pruned ?? null, predictedSavingMs: x.predictedSavingMs, loadAvg: x.loadAvg })),
      testF1: r.f1 ? [r.f1.before.micro.f1, r.f1.after.micro.f1] : null,
      testF1DropPoints: r.f1 ? (r.f1.before.micro.f1 - r.f1.after.micro.f1) * 100 : null,
      totalMs: Math.round(performance.now() - t0),
    });
    console.error(`\n${name}: --target-speedup ${d.target.speedup}: ${d.verdict}, round ${d.chosenRound}, measured ${chosen.speedup.toFixed(3)}×` + (r.f1 ? `, test F1 ${f1Pct(r.f1.before.micro.f1)} → ${f1Pct(r.f1.after.micro.f1)}` : ''));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const teacherSpeedup = Number(opt('teacher-speedup', '1.25'));
const bertSpeedup = Number(opt('bert-speedup', '1.33'));
const train = opt('train', join(repo, 'fixtures/data/msra_train_sample.jsonl'));
if ((!only || only === 'curve') && existsSync(teacher)) await curve('teacher', teacher, { eval: evalData });
if ((!only || only === 'curve') && existsSync(bertBase)) await curve('bert-base', bertBase, { maxSentences: bertSentences, skipUnknownTypes: true, importanceLoss: 'kl', target: 'predicted' });
if ((!only || only === 'target') && existsSync(teacher)) {
  await target('teacher', teacher, { targetSpeedup: teacherSpeedup, rounds: 2, maxRounds: 4, dev: data, eval: evalData, maxSentences: 200, recovery: { train, epochs: 1, maxMinutes: 1.5, lr: 1e-4 }, latencyCacheDir: false });
}
if ((!only || only === 'target') && existsSync(bertBase)) {
  await target('bert-base', bertBase, { targetSpeedup: bertSpeedup, importanceLoss: 'kl', maxSentences: bertSentences, latencyCacheDir: false });
}
