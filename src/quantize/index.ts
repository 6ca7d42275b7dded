/**
 * `quantizeModelFolder`: the whole `ranerc quantize` pipeline as a library call (the CLI and the recipe
 * runner call it): plan → calibrate (static) → rewrite → SQNR pass → F1 before/after and the accuracy
 * guard (with `eval`) → write the output folder → latency before/after (same run, inputs and threads) →
 * report. Nothing is printed; progress goes through `opts.progress`.
 */
import { extname, resolve } from 'node:path';
import { InputError, UsageError } from '../errors.js';
import { readExamples, readTextLines } from '../ner/data.js';
import { LabelSet } from '../ner/labels.js';
import { loadTokenizer } from '../ner/tokenizers/index.js';
import type { Example, F1Scores } from '../ner/types.js';
import { defaultOverlap } from '../ner/windows.js';
import { loadModel } from '../onnx/external.js';
import { countModelParameters } from '../onnx/graph.js';
import { loadModelFolder, writeModelFolder } from '../onnx/folder.js';
import type { Provenance } from '../onnx/types.js';
import { newReport, ranercVersion } from '../report/environment.js';
import { summarizeData, summarizeModel } from '../report/models.js';
import type { Progress } from '../report/progress.js';
import type { DataFileSummary } from '../report/schema.js';
import { peakRssBytes, type BenchRow } from '../runtime/bench.js';
import { cpuFeatures } from '../runtime/cpu.js';
import { sha256File } from '../util/fs.js';
import { DEFAULT_PERCENTILE } from './calibrate.js';
import { planQuantization, weightsOnlyPlan } from './plan.js';
import type { Range } from './qparams.js';
import './report.js';
import { rewriteModel } from './rewrite.js';
import { calibrateStage, guardStage, latencyStage, sqnrStage } from './stages.js';
import type {
  CalibrationSettings,
  FloatNode,
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

/** Read calibration texts: `.txt` one sentence per line, else JSONL/CoNLL (entities ignored). */
export async function readCalibTexts(path: string, limit?: number): Promise<{ texts: string[]; rest: string[]; format: string }> {
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
  return { texts: limit === undefined ? texts : texts.slice(0, limit), rest: limit === undefined ? [] : texts.slice(limit), format };
}

function validate(opts: QuantizeOptions): { mode: QuantMode; format: QuantFormat } {
  if (opts.weightsOnly) {
    if (opts.dynamic) throw new UsageError('weights-only and dynamic quantization exclude each other', { hint: 'pick one' });
    return { mode: 'static', format: 'qdq' };
  }
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
  if (opts.weightsOnly) plan = weightsOnlyPlan(plan);
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
  if (opts.calibrated && !opts.weightsOnly && mode === 'static') {
    ranges = new Map(opts.calibrated.ranges.map((r) => [r.tensor, r]));
    calibration = opts.calibrated.calibration;
  } else if (mode === 'static' && opts.calib && !opts.weightsOnly) {
    const c = await calibrateStage(model, plan, tokenizer, calibTexts, opts.calib, { method, percentile: opts.percentile, threads: opts.threads, batch: batchOpts, withBar });
    ranges = c.ranges;
    plan = c.plan;
    calibration = c.calibration;
    warnings.push(...c.warnings);
    timings.calibrate = calibration.ms;
  }
  const rangeMap = new Map<string, Range>([...ranges].map(([k, v]) => [k, { min: v.min, max: v.max }]));
  const rewrite = (p: QuantPlan): RewriteResult => rewriteModel(model, p, rangeMap, { format, mode, perChannel: p.perChannel });

  let t0 = performance.now();
  const full = rewrite(plan);
  timings.rewrite = performance.now() - t0;

  // ---- SQNR table, on sentences not used for calibration when there are any
  t0 = performance.now();
  const sqnrSize = opts.sqnrSize ?? DEFAULT_SQNR_SENTENCES;
  const heldOut = calibData?.rest ?? [];
  const sqnrSource: QuantizeDetails['sqnrSource'] = heldOut.length > 0 ? 'held-out' : 'calibration';
  const sqnrTexts = (heldOut.length > 0 ? heldOut : calibTexts).slice(0, sqnrSize);
  const sqnrRows = await sqnrStage(model, plan, full, ranges, tokenizer, sqnrTexts, { mode, threads: opts.threads, batch: batchOpts, withBar });
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
    const g = await guardStage(folder, plan, full, sqnrRows, data.examples, rewrite, { ...opts, windowSize, overlap, defaultBatch: DEFAULT_BATCH, withBar });
    ({ chosen, chosenPlan, guard, budgetMet } = g);
    beforeScores = g.before;
    afterScores = g.after;
    warnings.push(...g.warnings);
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
    weightsOnly: opts.weightsOnly ? true : undefined,
    activations: opts.weightsOnly ? 'float (weights-only: DequantizeLinear on the int8 weights, float compute)' : mode === 'static' ? 'uint8 asymmetric (range widened to include 0)' : 'uint8 per batch (DynamicQuantizeLinear)',
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

  // ---- latency before/after, and the profile of both models
  let beforeLatency: BenchRow[] | undefined;
  let afterLatency: BenchRow[] | undefined;
  let beforeLoad: number | undefined;
  let afterLoad: number | undefined;
  let bench: QuantizeDetails['bench'];
  let profile: QuantizeDetails['profile'];
  if (opts.bench !== false) {
    t0 = performance.now();
    const l = await latencyStage(folder.onnxPath, written.onnxPath, folder, tokenizer, calibTexts, {
      seqLens: opts.seqLens ?? [64],
      batchSizes: opts.batchSizes ?? [1],
      seconds: opts.benchSeconds ?? 4,
      threads: opts.threads,
      profile: opts.profile !== false,
      withBar,
    });
    ({ before: beforeLatency, after: afterLatency, beforeLoad, afterLoad, bench, profile } = l);
    timings.bench = performance.now() - t0;
  }
  const peak = peakRssBytes();
  const cpu = cpuFeatures();
  if (cpu && !cpu.vnni) {
    warnings.push(
      `this CPU has no VNNI (flags: ${cpu.flags.join(', ') || 'none of avx2/avx512f'}): onnxruntime's u8×s8 kernels may saturate and run slower; measure before shipping (reduce_range is not implemented yet)`,
    );
  }

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
    weightsOnly: opts.weightsOnly ? true : undefined,
    perChannelDowngraded: perChannelAsked && !plan.perChannel ? true : undefined,
    opset: plan.opset,
    calibration,
    sqnrSentences: sqnrTexts.length,
    sqnrSource,
    nodes: { quantized: chosen.quantized.length, leftInFloat: leftInFloat.length, byOpType },
    sqnr: sqnrRows,
    leftInFloat,
    floatByDesign: plan.floatByDesign,
    guard,
    ranges: ranges.size > 0 ? [...ranges.values()] : undefined,
    bench,
    cpu,
    profile,
    timingsMs: timings,
    peakRssBytes: peak,
  };
  const settings = opts.settings ?? {
    model: modelPath,
    out: opts.out,
    calib: opts.calib ?? null,
    calibSize: opts.calibSize ?? null,
    method: mode === 'static' ? method : null,
    percentile: method === 'percentile' ? (opts.percentile ?? DEFAULT_PERCENTILE) : null,
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
