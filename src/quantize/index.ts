/**
 * `quantizeModelFolder`: the whole `ranerc quantize` pipeline as a library call (the CLI and the recipe
 * runner call it): plan → calibrate (static) → rewrite → SQNR pass → F1 before/after and the accuracy
 * guard (with `eval`) → write the output folder → latency before/after (same run, inputs and threads) →
 * report. Nothing is printed; progress goes through `opts.progress`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { InputError, UsageError } from '../errors.js';
import { readExamples, readTextLines } from '../ner/data.js';
import { LabelSet } from '../ner/labels.js';
import { loadTokenizer } from '../ner/tokenizers/index.js';
import type { Example, F1Scores } from '../ner/types.js';
import { defaultOverlap } from '../ner/windows.js';
import type { onnx } from '../onnx/codec.js';
import { loadModel, saveModel } from '../onnx/external.js';
import { countModelParameters } from '../onnx/graph.js';
import { loadModelFolder, writeModelFolder } from '../onnx/folder.js';
import type { ModelFolder, Provenance } from '../onnx/types.js';
import { newReport, ranercVersion } from '../report/environment.js';
import { summarizeData, summarizeModel } from '../report/models.js';
import type { Progress } from '../report/progress.js';
import type { DataFileSummary } from '../report/schema.js';
import { benchRow, makeBenchBatch, measureInterleaved, peakRssBytes, syntheticBenchInputs, textBenchInputs, type BenchInputs, type BenchRow } from '../runtime/bench.js';
import { scoreFolder } from '../runtime/evaluate.js';
import { NerSession } from '../runtime/session.js';
import { sha256File } from '../util/fs.js';
import { collectRanges, DEFAULT_BINS, DEFAULT_QUANTIZED_BINS, FULL_OUTPUT_BATCH_TOKENS, measureSqnr, planBatches, type TokenBatch } from './calibrate.js';
import { planQuantization, tensorsToCalibrate, withNodesInFloat } from './plan.js';
import { combineSqnrDb, sqnrDb, type QParams, type Range } from './qparams.js';
import './report.js';
import { rewriteModel } from './rewrite.js';
import type {
  CalibrationSettings,
  FloatNode,
  GuardTry,
  NodeSqnr,
  QuantFormat,
  QuantizeDetails,
  QuantizeOptions,
  QuantizeResult,
  QuantMode,
  QuantPlan,
  RewriteResult,
  TensorRange,
} from './types.js';

export * from './types.js';
export { planQuantization, tensorsToCalibrate } from './plan.js';
export { rewriteModel } from './rewrite.js';
export { collectRanges, measureSqnr, planBatches } from './calibrate.js';

const SILENT: Progress = { setTotal() {}, update() {}, stop() {}, visible: false };

/** Windows per onnxruntime run and padded tokens per run: `ranerc eval`'s defaults. */
const DEFAULT_BATCH = 32;
/** Padded tokens per calibration run (min/max): bounds activation memory (BERT-base at 2048 tokens: ~1 GB). */
const CALIB_MAX_BATCH_TOKENS = 2048;
const DEFAULT_SQNR_SENTENCES = 16;
const DEFAULT_MAX_TRIES = 5;

/** dB value for JSON: finite numbers as they are, anything else (exact, no data) as null. */
function db(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

/** Read calibration texts: `.txt` one sentence per line, else JSONL/CoNLL (entities ignored). */
async function readCalibTexts(path: string, limit?: number): Promise<{ texts: string[]; format: string }> {
  let examples: Example[];
  let format = 'text';
  if (extname(path).toLowerCase() === '.txt') examples = await readTextLines(path);
  else {
    const r = await readExamples(path, { unknownTypes: 'skip' });
    examples = r.examples;
    format = r.format;
  }
  const texts = examples.map((e) => e.text).filter((t) => t.trim().length > 0);
  if (texts.length === 0) {
    throw new InputError('the calibration file has no sentences', {
      file: path,
      hint: 'pass sentences like the ones the model will see: JSONL {"text": ...} lines, CoNLL, or a .txt with one sentence per line',
    });
  }
  return { texts: limit === undefined ? texts : texts.slice(0, limit), format };
}

function validate(opts: QuantizeOptions): { mode: QuantMode; format: QuantFormat } {
  const mode: QuantMode = opts.dynamic ? 'dynamic' : 'static';
  if (opts.dynamic && opts.format === 'qdq') {
    throw new UsageError('--dynamic writes DynamicQuantizeLinear + MatMulInteger (operator format); --format qdq does not apply', {
      hint: 'leave --format out with --dynamic, or drop --dynamic for static QDQ',
    });
  }
  const format: QuantFormat = mode === 'dynamic' ? 'qoperator' : (opts.format ?? 'qdq');
  if (mode === 'static' && !opts.calib) {
    throw new UsageError('static quantization needs calibration data (--calib)', {
      hint: 'pass --calib FILE with a few hundred sentences like the ones the model will see, or use --dynamic',
    });
  }
  if (opts.maxF1Drop !== undefined && !opts.eval) {
    throw new UsageError('--max-f1-drop needs --eval (labelled data to measure F1 on)', { hint: 'pass --eval test.jsonl' });
  }
  if (opts.method === 'percentile' && opts.percentile !== undefined && !(opts.percentile > 50 && opts.percentile <= 100)) {
    throw new UsageError(`--percentile must be in (50, 100], got ${opts.percentile}`, { hint: 'typical values are 99.9 to 99.999' });
  }
  if (opts.calibSize !== undefined && !(Number.isInteger(opts.calibSize) && opts.calibSize >= 1)) {
    throw new UsageError(`--calib-size must be a positive integer, got ${opts.calibSize}`, { hint: 'e.g. --calib-size 200' });
  }
  return { mode, format };
}

/** F1 of `folder`'s tokenizer and labels with the ONNX file `onnxPath`, as `ranerc eval` scores it. */
function scoreOnnx(folder: ModelFolder, onnxPath: string, examples: Example[], opts: QuantizeOptions, windowSize: number, overlap: number, bar: Progress): Promise<F1Scores> {
  return scoreFolder({ ...folder, onnxPath, externalDataFiles: undefined }, examples, {
    threads: opts.threads,
    batchSize: opts.batchSize ?? DEFAULT_BATCH,
    windowSize,
    overlap,
    onProgress: (done) => bar.update(done, 'sentences'),
  });
}

/** Time two sessions on the same batches in interleaved blocks (`measureInterleaved`); rows of each. */
async function benchPair(
  a: NerSession,
  b: NerSession,
  inputs: BenchInputs,
  seqLens: number[],
  batchSizes: number[],
  seconds: number,
  rounds: number,
  bar: Progress,
): Promise<[BenchRow[], BenchRow[]]> {
  const ra: BenchRow[] = [];
  const rb: BenchRow[] = [];
  let point = 0;
  for (const seq of seqLens) {
    for (const batch of batchSizes) {
      const feed = makeBenchBatch(inputs, seq, batch);
      const done = point * rounds;
      const [sa, sb] = await measureInterleaved([() => a.runFlat(feed), () => b.runFlat(feed)], {
        rounds,
        warmup: 3,
        iterations: 3 * rounds,
        seconds,
        onRound: (r) => bar.update(done + r, `seq ${seq} × batch ${batch}`),
      });
      ra.push(benchRow(seq, batch, sa));
      rb.push(benchRow(seq, batch, sb));
      point++;
    }
  }
  return [ra, rb];
}

function rangeOf(t: TensorRange): Range {
  return { min: t.min, max: t.max };
}

function scaleSummary(p: QParams): NodeSqnr['inputs'][number]['scale'] {
  if (p.scale.length === 1) return p.scale[0];
  let min = Infinity;
  let max = -Infinity;
  for (const s of p.scale) {
    if (s < min) min = s;
    if (s > max) max = s;
  }
  return { min, max, channels: p.scale.length };
}

/**
 * Quantize a model folder to INT8 and write a drop-in replacement folder at `opts.out`; returns the
 * report (not written: the caller writes it with `writeReport`/`emitReport`).
 */
export async function quantizeModelFolder(opts: QuantizeOptions): Promise<QuantizeResult> {
  const tStart = performance.now();
  const timings = { load: 0, calibrate: 0, rewrite: 0, sqnr: 0, eval: 0, bench: 0, write: 0, total: 0 };
  const { mode, format } = validate(opts);
  const progress = opts.progress ?? (() => SILENT);
  const withBar = async <T>(title: string, total: number, work: (p: Progress) => Promise<T>): Promise<T> => {
    const p = progress(title, total);
    try {
      return await work(p);
    } finally {
      p.stop();
    }
  };
  const folder = typeof opts.model === 'string' ? await loadModelFolder({ model: opts.model, labels: opts.labels, vocab: opts.vocab }) : opts.model;
  const modelPath = typeof opts.model === 'string' ? opts.model : opts.model.dir;
  const outDir = resolve(opts.out);
  if (outDir === resolve(folder.dir)) {
    throw new UsageError('--out is the input model folder', { hint: 'write the quantized model to a new folder' });
  }
  const loaded = await loadModel(folder.onnxPath);
  const model = loaded.model;
  timings.load = performance.now() - tStart;
  const perChannelAsked = opts.perChannel ?? false;
  let plan: QuantPlan = planQuantization(model, { format, mode, perChannel: perChannelAsked, exclude: opts.exclude });
  const warnings: string[] = [];
  if (perChannelAsked && !plan.perChannel) {
    warnings.push(`per-channel weights need opset 13 (DequantizeLinear axis); the model has opset ${plan.opset}, so weights are per tensor`);
  }
  if (plan.nodes.length === 0) {
    warnings.push('no node could be quantized; the output is the float model');
  }

  const tokenizer = await loadTokenizer(folder);
  const windowSize = opts.maxLength !== undefined ? opts.maxLength - 2 : folder.maxLength - 2;
  const overlap = opts.overlap ?? defaultOverlap(windowSize);
  const batchOpts = { windowSize, overlap, batchSize: opts.batchSize ?? DEFAULT_BATCH, maxBatchTokens: CALIB_MAX_BATCH_TOKENS };
  const calibData = opts.calib ? await readCalibTexts(opts.calib, opts.calibSize) : undefined;
  const calibTexts = calibData?.texts ?? [];

  // ---- calibration (static)
  const method = opts.method ?? 'minmax';
  let calibration: CalibrationSettings | undefined;
  let ranges = new Map<string, TensorRange>();
  if (mode === 'static' && opts.calib) {
    const t0 = performance.now();
    const fullOutputs = method !== 'minmax';
    const calibBatchOpts = fullOutputs ? { ...batchOpts, maxBatchTokens: FULL_OUTPUT_BATCH_TOKENS } : batchOpts;
    const { batches, windows, tokens } = planBatches(tokenizer, calibTexts, calibBatchOpts);
    const tensors = tensorsToCalibrate(plan);
    const res = await withBar('calibrate', batches.length, (bar) =>
      collectRanges(model, tensors, batches, {
        method,
        percentile: opts.percentile ?? 99.99,
        numBins: DEFAULT_BINS,
        numQuantizedBins: DEFAULT_QUANTIZED_BINS,
        threads: opts.threads,
        onBatch: (d) => bar.update(d, 'batches'),
      }),
    );
    ranges = res.ranges;
    if (res.notFloat.size > 0) {
      const bad = new Set(plan.nodes.filter((n) => [...n.inputs.map((p) => p.tensor), ...n.calibrateOutputs].some((t) => res.notFloat.has(t))).map((n) => n.label));
      plan = withNodesInFloat(plan, bad, (label) => {
        const n = plan.nodes.find((x) => x.label === label)!;
        const t = [...n.inputs.map((p) => p.tensor), ...n.calibrateOutputs].find((x) => res.notFloat.has(x))!;
        return `"${t}" is ${res.notFloat.get(t)}, not float32`;
      });
    }
    const nonFinite = [...ranges.values()].filter((r) => r.nonFinite > 0);
    if (nonFinite.length > 0) {
      warnings.push(`${nonFinite.length} calibrated tensor(s) held NaN/Inf values, left out of their ranges (first: "${nonFinite[0].tensor}")`);
    }
    calibration = {
      file: opts.calib,
      sha256: await sha256File(opts.calib),
      method,
      percentile: method === 'percentile' ? (opts.percentile ?? 99.99) : undefined,
      numBins: method === 'minmax' ? undefined : DEFAULT_BINS,
      numQuantizedBins: method === 'entropy' ? DEFAULT_QUANTIZED_BINS : undefined,
      sentences: calibTexts.length,
      windows,
      tokens,
      batchSize: calibBatchOpts.batchSize,
      maxBatchTokens: calibBatchOpts.maxBatchTokens,
      windowSize,
      overlap,
      tensors: ranges.size,
      ms: performance.now() - t0,
      collection: method === 'minmax' ? 'reduce-in-graph' : 'extra-outputs',
    };
    timings.calibrate = calibration.ms;
  }
  const rangeMap = new Map<string, Range>([...ranges].map(([k, v]) => [k, rangeOf(v)]));
  const rewrite = (p: QuantPlan): RewriteResult => rewriteModel(model, p, rangeMap, { format, mode, perChannel: p.perChannel });

  let t0 = performance.now();
  const full = rewrite(plan);
  timings.rewrite = performance.now() - t0;

  // ---- SQNR table
  t0 = performance.now();
  const sqnrTexts = calibTexts.slice(0, opts.sqnrSize ?? DEFAULT_SQNR_SENTENCES);
  const sqnrBatches: TokenBatch[] =
    sqnrTexts.length > 0 ? planBatches(tokenizer, sqnrTexts, { ...batchOpts, maxBatchTokens: FULL_OUTPUT_BATCH_TOKENS }).batches : [];
  const quantizedNodes = plan.nodes.filter((n) => full.quantized.includes(n.label));
  const actParams = new Map<string, QParams | 'dynamic'>();
  for (const n of quantizedNodes) {
    for (const p of n.inputs) {
      if (p.kind !== 'activation') continue;
      const params = full.params.get(p.tensor);
      if (mode === 'dynamic') actParams.set(p.tensor, 'dynamic');
      else if (params) actParams.set(p.tensor, params);
    }
  }
  const measured = await withBar('sqnr', sqnrBatches.length, (bar) =>
    measureSqnr(model, full.model, sqnrBatches, {
      activations: actParams,
      outputs: quantizedNodes.map((n) => n.output),
      threads: opts.threads,
      onBatch: (d) => bar.update(d, 'batches'),
    }),
  );
  const sqnrRows: NodeSqnr[] = quantizedNodes.map((n) => {
    const inputs = n.inputs.map((p) => {
      const params = full.params.get(p.tensor);
      const value =
        p.kind === 'weight' ? (full.weightSqnrDb.get(p.tensor) ?? NaN) : measured.activations.has(p.tensor) ? sqnrDb(measured.activations.get(p.tensor)!) : NaN;
      const r = ranges.get(p.tensor);
      return {
        tensor: p.tensor,
        kind: p.kind,
        scale: params ? scaleSummary(params) : NaN,
        zeroPoint: params && params.zeroPoint.length === 1 ? params.zeroPoint[0] : undefined,
        range: r ? { min: r.min, max: r.max } : undefined,
        sqnrDb: db(value),
        raw: value,
      };
    });
    const local = combineSqnrDb(inputs.map((i) => i.raw).filter((v) => !Number.isNaN(v)));
    const out = measured.outputs.get(n.output);
    return {
      node: n.label,
      opType: n.opType,
      inputs: inputs.map(({ raw: _raw, ...rest }) => rest),
      localSqnrDb: inputs.every((i) => Number.isNaN(i.raw)) ? null : db(local),
      output: n.output,
      outputSqnrDb: out && out.count > 0 ? db(sqnrDb(out)) : null,
    };
  });
  timings.sqnr = performance.now() - t0;

  // ---- F1 before/after and the accuracy guard
  let chosen: RewriteResult = full;
  let chosenPlan = plan;
  let beforeScores: F1Scores | undefined;
  let afterScores: F1Scores | undefined;
  let guard: QuantizeDetails['guard'];
  let budgetMet: boolean | undefined;
  let evalData: DataFileSummary | undefined;
  if (opts.eval) {
    t0 = performance.now();
    const types = new LabelSet(folder.labels).types;
    const data = await readExamples(opts.eval, { types, unknownTypes: 'skip' });
    if (data.skipped.length > 0) warnings.push(`${data.skipped.length} gold entities of types the model lacks were skipped in ${opts.eval}`);
    evalData = await summarizeData(opts.eval, {
      format: data.format,
      sentences: data.examples.length,
      entities: data.examples.reduce((s, e) => s + e.entities.length, 0),
      skipped: data.skipped.length,
    });
    const tmp = await mkdtemp(join(tmpdir(), 'ranerc-quantize-'));
    try {
      const n = data.examples.length;
      beforeScores = await withBar('eval float', n, (bar) => scoreOnnx(folder, folder.onnxPath, data.examples, opts, windowSize, overlap, bar));
      const evalCandidate = async (m: onnx.IModelProto, k: number): Promise<{ scores: F1Scores; bytes: number }> => {
        const path = join(tmp, `try-${k}.onnx`);
        const saved = await saveModel(m, path, { externalData: 'auto' });
        const s = await withBar(`eval int8 #${k}`, n, (bar) => scoreOnnx(folder, path, data.examples, opts, windowSize, overlap, bar));
        await rm(path, { force: true });
        await rm(`${path}.data`, { force: true });
        return { scores: s, bytes: saved.fileBytes + saved.externalBytes };
      };
      const first = await evalCandidate(full.model, 0);
      afterScores = first.scores;
      const budget = opts.maxF1Drop;
      const drop = (s: F1Scores): number => (beforeScores!.micro.f1 - s.micro.f1) * 100;
      if (budget !== undefined) {
        const maxTries = opts.maxTries ?? DEFAULT_MAX_TRIES;
        const tries: GuardTry[] = [
          { try: 0, floatNodes: [], f1: first.scores.micro.f1, dropPoints: drop(first.scores), bytes: first.bytes, withinBudget: drop(first.scores) <= budget + 1e-9 },
        ];
        const candidates: Array<{ result: RewriteResult; plan: QuantPlan; scores: F1Scores }> = [{ result: full, plan, scores: first.scores }];
        // worst local SQNR first; exact (null) last
        const ranked = [...sqnrRows].sort((x, y) => (x.localSqnrDb ?? Infinity) - (y.localSqnrDb ?? Infinity)).map((r) => r.node);
        for (let t = 1; t <= maxTries && !tries[tries.length - 1].withinBudget; t++) {
          const k = Math.min(ranked.length, 2 ** t - 1);
          const back = ranked.slice(0, k);
          if (back.length === tries[tries.length - 1].floatNodes.length) break;
          const set = new Set(back);
          const p = withNodesInFloat(plan, set, (label) => {
            const row = sqnrRows.find((r) => r.node === label);
            return `returned to float by the accuracy guard (local SQNR ${row?.localSqnrDb === null || row?.localSqnrDb === undefined ? 'n/a' : `${row.localSqnrDb.toFixed(1)} dB`}, rank ${ranked.indexOf(label) + 1})`;
          });
          const r = rewrite(p);
          const e = await evalCandidate(r.model, t);
          const d = drop(e.scores);
          tries.push({ try: t, floatNodes: back, f1: e.scores.micro.f1, dropPoints: d, bytes: e.bytes, withinBudget: d <= budget + 1e-9 });
          candidates.push({ result: r, plan: p, scores: e.scores });
        }
        const met = tries.findIndex((x) => x.withinBudget);
        let best = met;
        if (best < 0) {
          best = 0;
          tries.forEach((x, i) => {
            if (x.f1 > tries[best].f1) best = i;
          });
        }
        chosen = candidates[best].result;
        chosenPlan = candidates[best].plan;
        afterScores = candidates[best].scores;
        budgetMet = met >= 0;
        guard = { maxF1DropPoints: budget, maxTries, tries, chosen: best, met: budgetMet };
        if (!budgetMet) {
          warnings.push(
            `F1 budget NOT met: the best model found drops ${tries[best].dropPoints.toFixed(2)} points (budget ${budget}) after ${tries.length - 1} guard tries; it was written anyway`,
          );
        }
      }
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
    timings.eval = performance.now() - t0;
  }

  // ---- write the folder
  t0 = performance.now();
  const leftInFloat: FloatNode[] = [...chosenPlan.leftInFloat, ...chosen.leftInFloat];
  const srcSha = await sha256File(folder.onnxPath);
  const settingsForProvenance: Record<string, unknown> = {
    mode,
    format,
    perChannel: plan.perChannel,
    weights: 'int8 symmetric (zero point 0, [-127, 127])',
    activations: mode === 'static' ? 'uint8 asymmetric (range widened to include 0)' : 'uint8 per batch (DynamicQuantizeLinear)',
    calibration: calibration
      ? { file: calibration.file, sha256: calibration.sha256, method, percentile: calibration.percentile, numBins: calibration.numBins, numQuantizedBins: calibration.numQuantizedBins, sentences: calibration.sentences, windows: calibration.windows, tokens: calibration.tokens }
      : undefined,
    exclude: opts.exclude ?? [],
    quantizedNodes: chosen.quantized.length,
    floatNodes: leftInFloat.map((f) => f.node),
    maxF1Drop: opts.maxF1Drop,
  };
  const provenance: Provenance = {
    ranerc: ranercVersion(),
    command: 'quantize',
    createdAt: new Date().toISOString(),
    source: { path: folder.onnxPath, sha256: srcSha },
    settings: settingsForProvenance,
  };
  const written = await writeModelFolder(outDir, folder, chosen.model, { provenance });
  timings.write = performance.now() - t0;
  const outFolder = await loadModelFolder({ model: outDir });

  // ---- latency before/after
  let beforeLatency: BenchRow[] | undefined;
  let afterLatency: BenchRow[] | undefined;
  let beforeLoad: number | undefined;
  let afterLoad: number | undefined;
  let bench: QuantizeDetails['bench'];
  if (opts.bench !== false) {
    t0 = performance.now();
    const seqLens = opts.seqLens ?? [64];
    const batchSizes = opts.batchSizes ?? [1];
    const seconds = opts.benchSeconds ?? 4;
    const rounds = 4;
    const source = calibTexts.length > 0 ? 'data' : 'synthetic';
    const inputs: BenchInputs = source === 'data' ? textBenchInputs(tokenizer, calibTexts) : syntheticBenchInputs(tokenizer);
    const tooLong = seqLens.filter((s) => s > folder.maxLength || s < 3);
    if (tooLong.length > 0) {
      throw new UsageError(`--seq ${tooLong.join(',')} outside [3, ${folder.maxLength}] (the model's maximum length)`, {
        hint: `pick sequence lengths of at most ${folder.maxLength}`,
      });
    }
    const a = await NerSession.open(folder.onnxPath, { threads: opts.threads });
    try {
      const b = await NerSession.open(written.onnxPath, { threads: opts.threads });
      try {
        [beforeLatency, afterLatency] = await withBar('bench', seqLens.length * batchSizes.length * rounds, (bar) =>
          benchPair(a, b, inputs, seqLens, batchSizes, seconds, rounds, bar),
        );
        beforeLoad = a.loadMs;
        afterLoad = b.loadMs;
      } finally {
        await b.close();
      }
    } finally {
      await a.close();
    }
    bench = { seqLens, batchSizes, rounds, seconds, inputs: source };
    timings.bench = performance.now() - t0;
  }
  const peak = peakRssBytes();

  // ---- report
  const byOpType: QuantizeDetails['nodes']['byOpType'] = {};
  const bump = (op: string, key: 'quantized' | 'float'): void => {
    byOpType[op] ??= { quantized: 0, float: 0 };
    byOpType[op][key]++;
  };
  for (const label of chosen.quantized) bump(plan.nodes.find((n) => n.label === label)?.opType ?? '?', 'quantized');
  for (const f of leftInFloat) bump(f.opType, 'float');
  timings.total = performance.now() - tStart;
  const details: QuantizeDetails = {
    mode,
    format,
    perChannel: plan.perChannel,
    perChannelDowngraded: perChannelAsked && !plan.perChannel ? true : undefined,
    opset: plan.opset,
    calibration,
    sqnrSentences: sqnrTexts.length,
    nodes: { quantized: chosen.quantized.length, leftInFloat: leftInFloat.length, byOpType },
    sqnr: sqnrRows,
    leftInFloat,
    floatByDesign: plan.floatByDesign,
    guard,
    ranges: ranges.size > 0 ? [...ranges.values()] : undefined,
    bench,
    timingsMs: timings,
    peakRssBytes: peak,
  };
  const settings = opts.settings ?? {
    model: modelPath,
    out: opts.out,
    calib: opts.calib ?? null,
    calibSize: opts.calibSize ?? null,
    method: mode === 'static' ? method : null,
    percentile: method === 'percentile' ? (opts.percentile ?? 99.99) : null,
    format,
    perChannel: perChannelAsked,
    exclude: opts.exclude ?? [],
    dynamic: mode === 'dynamic',
    eval: opts.eval ?? null,
    maxF1Drop: opts.maxF1Drop ?? null,
    threads: opts.threads ?? 'default',
  };
  const report = newReport('quantize', settings, details, { threads: opts.threads });
  const before = await summarizeModel(folder, 'before', modelPath);
  const after = await summarizeModel(outFolder, 'after', opts.out);
  after.parameters = countModelParameters(chosen.model.graph ?? {});
  if (beforeScores) before.f1 = beforeScores;
  if (afterScores) after.f1 = afterScores;
  if (beforeLatency) before.latency = beforeLatency;
  if (afterLatency) after.latency = afterLatency;
  if (beforeLoad !== undefined) before.loadMs = beforeLoad;
  if (afterLoad !== undefined) after.loadMs = afterLoad;
  report.models.push(before, after);
  const files: DataFileSummary[] = [];
  if (opts.calib && calibData) {
    files.push(await summarizeData(opts.calib, { format: calibData.format, sentences: calibTexts.length, entities: 0, skipped: 0 }));
  }
  if (evalData) files.push(evalData);
  if (files.length > 0) report.data = { files };
  report.warnings.push(...warnings);
  return {
    report,
    outDir: written.dir,
    onnxPath: written.onnxPath,
    budgetMet,
    before: { bytes: before.bytes, f1: beforeScores?.micro.f1, latency: beforeLatency },
    after: { bytes: after.bytes, f1: afterScores?.micro.f1, latency: afterLatency },
  };
}
