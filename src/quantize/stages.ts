/**
 * The stages of `quantizeModelFolder` (src/quantize/index.ts), each a function of what the previous
 * stages produced: calibration (static ranges), the per-node SQNR table, F1 before/after with the
 * accuracy guard, and latency before/after with the onnxruntime profile of both models.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import type { NerTokenizer } from '../ner/tokenizers/index.js';
import type { Example, F1Scores } from '../ner/types.js';
import type { onnx } from '../onnx/codec.js';
import { saveModel } from '../onnx/external.js';
import type { ModelFolder } from '../onnx/types.js';
import type { Progress } from '../report/progress.js';
import { benchRow, makeBenchBatch, measureInterleaved, syntheticBenchInputs, textBenchInputs, type BenchInputs, type BenchRow } from '../runtime/bench.js';
import { scoreFolder } from '../runtime/evaluate.js';
import { profilePair, type ProfileDetails } from '../runtime/profile.js';
import { NerSession } from '../runtime/session.js';
import { sha256File } from '../util/fs.js';
import {
  collectRanges,
  DEFAULT_BINS,
  DEFAULT_PERCENTILE,
  DEFAULT_QUANTIZED_BINS,
  FULL_OUTPUT_BATCH_TOKENS,
  measureSqnr,
  planBatches,
  type TokenBatch,
} from './calibrate.js';
import { tensorsToCalibrate, withNodesInFloat } from './plan.js';
import { combineSqnrDb, sqnrDb, type QParams } from './qparams.js';
import type {
  CalibrationMethod,
  CalibrationSettings,
  GuardTry,
  NodeSqnr,
  QuantizeDetails,
  QuantizeOptions,
  QuantMode,
  QuantPlan,
  RewriteResult,
  TensorRange,
} from './types.js';

/** Runs `work` under a progress bar titled `title` (stopped when done). */
export type WithBar = <T>(title: string, total: number, work: (p: Progress) => Promise<T>) => Promise<T>;

/** Window and batch settings shared by the stages. */
export interface BatchSettings {
  windowSize: number;
  overlap: number;
  batchSize: number;
  maxBatchTokens: number;
}

const DEFAULT_MAX_TRIES = 5;

/** dB value for JSON: finite numbers as they are, anything else (exact, no data) as null. */
function db(x: number): number | null {
  return Number.isFinite(x) ? x : null;
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

// ---- calibration

export interface CalibrationStage {
  ranges: Map<string, TensorRange>;
  calibration: CalibrationSettings;
  /** The plan with nodes whose tensors are not float32 returned to float. */
  plan: QuantPlan;
  warnings: string[];
}

/** Static ranges of every tensor the plan quantizes, from `texts` run through the float model. */
export async function calibrateStage(
  model: onnx.IModelProto,
  plan: QuantPlan,
  tokenizer: NerTokenizer,
  texts: string[],
  file: string,
  opts: { method: CalibrationMethod; percentile?: number; threads?: number; batch: BatchSettings; withBar: WithBar },
): Promise<CalibrationStage> {
  const t0 = performance.now();
  const { method } = opts;
  const fullOutputs = method !== 'minmax';
  const calibBatchOpts = fullOutputs ? { ...opts.batch, maxBatchTokens: FULL_OUTPUT_BATCH_TOKENS } : opts.batch;
  const { batches, windows, tokens } = planBatches(tokenizer, texts, calibBatchOpts);
  const percentile = opts.percentile ?? DEFAULT_PERCENTILE;
  const res = await opts.withBar('calibrate', batches.length, (bar) =>
    collectRanges(model, tensorsToCalibrate(plan), batches, {
      method,
      percentile,
      numBins: DEFAULT_BINS,
      numQuantizedBins: DEFAULT_QUANTIZED_BINS,
      threads: opts.threads,
      onBatch: (d) => bar.update(d, 'batches'),
    }),
  );
  const warnings: string[] = [];
  let out = plan;
  if (res.notFloat.size > 0) {
    const bad = new Set(plan.nodes.filter((n) => [...n.inputs.map((p) => p.tensor), ...n.calibrateOutputs].some((t) => res.notFloat.has(t))).map((n) => n.label));
    out = withNodesInFloat(plan, bad, (label) => {
      const n = plan.nodes.find((x) => x.label === label)!;
      const t = [...n.inputs.map((p) => p.tensor), ...n.calibrateOutputs].find((x) => res.notFloat.has(x))!;
      return `"${t}" is ${res.notFloat.get(t)}, not float32`;
    });
  }
  const nonFinite = [...res.ranges.values()].filter((r) => r.nonFinite > 0);
  if (nonFinite.length > 0) {
    warnings.push(`${nonFinite.length} calibrated tensor(s) held NaN/Inf values, left out of their ranges (first: "${nonFinite[0].tensor}")`);
  }
  const calibration: CalibrationSettings = {
    file,
    sha256: await sha256File(file),
    method,
    percentile: method === 'percentile' ? percentile : undefined,
    numBins: method === 'minmax' ? undefined : DEFAULT_BINS,
    numQuantizedBins: method === 'entropy' ? DEFAULT_QUANTIZED_BINS : undefined,
    sentences: texts.length,
    windows,
    tokens,
    batchSize: calibBatchOpts.batchSize,
    maxBatchTokens: calibBatchOpts.maxBatchTokens,
    windowSize: opts.batch.windowSize,
    overlap: opts.batch.overlap,
    tensors: res.ranges.size,
    ms: performance.now() - t0,
    collection: method === 'minmax' ? 'reduce-in-graph' : 'extra-outputs',
  };
  return { ranges: res.ranges, calibration, plan: out, warnings };
}

// ---- SQNR table

/** Per quantized node: its inputs' SQNR (weights exactly, activations measured on `texts`) and its output's. */
export async function sqnrStage(
  model: onnx.IModelProto,
  plan: QuantPlan,
  full: RewriteResult,
  ranges: Map<string, TensorRange>,
  tokenizer: NerTokenizer,
  texts: string[],
  opts: { mode: QuantMode; threads?: number; batch: BatchSettings; withBar: WithBar },
): Promise<NodeSqnr[]> {
  const batches: TokenBatch[] = texts.length > 0 ? planBatches(tokenizer, texts, { ...opts.batch, maxBatchTokens: FULL_OUTPUT_BATCH_TOKENS }).batches : [];
  const quantizedNodes = plan.nodes.filter((n) => full.quantized.includes(n.label));
  const actParams = new Map<string, QParams | 'dynamic'>();
  for (const n of quantizedNodes) {
    for (const p of n.inputs) {
      if (p.kind !== 'activation') continue;
      const params = full.params.get(p.tensor);
      if (opts.mode === 'dynamic') actParams.set(p.tensor, 'dynamic');
      else if (params) actParams.set(p.tensor, params);
    }
  }
  const measured = await opts.withBar('sqnr', batches.length, (bar) =>
    measureSqnr(model, full.model, batches, {
      activations: actParams,
      outputs: quantizedNodes.map((n) => n.output),
      threads: opts.threads,
      onBatch: (d) => bar.update(d, 'batches'),
    }),
  );
  return quantizedNodes.map((n) => {
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
}

// ---- F1 before/after and the accuracy guard

export interface GuardStage {
  chosen: RewriteResult;
  chosenPlan: QuantPlan;
  before: F1Scores;
  after: F1Scores;
  guard?: QuantizeDetails['guard'];
  budgetMet?: boolean;
  warnings: string[];
}

/**
 * F1 of the float model and of `full` on `examples`; with `opts.maxF1Drop`, the guard: return the worst
 * nodes (local SQNR) to float, 1, 3, 7, ... of them, until F1 drops at most the budget. The guard chooses
 * on the same examples it reports F1 on (the report says so: `guard.inSample`).
 */
export async function guardStage(
  folder: ModelFolder,
  plan: QuantPlan,
  full: RewriteResult,
  sqnrRows: readonly NodeSqnr[],
  examples: Example[],
  rewrite: (p: QuantPlan) => RewriteResult,
  opts: QuantizeOptions & { windowSize: number; overlap: number; defaultBatch: number; withBar: WithBar },
): Promise<GuardStage> {
  const warnings: string[] = [];
  const score = (onnxPath: string, bar: Progress): Promise<F1Scores> =>
    scoreFolder({ ...folder, onnxPath, externalDataFiles: undefined }, examples, {
      threads: opts.threads,
      batchSize: opts.batchSize ?? opts.defaultBatch,
      windowSize: opts.windowSize,
      overlap: opts.overlap,
      onProgress: (done) => bar.update(done, 'sentences'),
    });
  const tmp = await mkdtemp(join(tmpdir(), 'ranerc-quantize-'));
  try {
    const n = examples.length;
    const before = await opts.withBar('eval float', n, (bar) => score(folder.onnxPath, bar));
    const evalCandidate = async (m: onnx.IModelProto, k: number): Promise<{ scores: F1Scores; bytes: number }> => {
      const path = join(tmp, `try-${k}.onnx`);
      const saved = await saveModel(m, path, { externalData: 'auto' });
      const s = await opts.withBar(`eval int8 #${k}`, n, (bar) => score(path, bar));
      await rm(path, { force: true });
      await rm(`${path}.data`, { force: true });
      return { scores: s, bytes: saved.fileBytes + saved.externalBytes };
    };
    const first = await evalCandidate(full.model, 0);
    const budget = opts.maxF1Drop;
    if (budget === undefined) return { chosen: full, chosenPlan: plan, before, after: first.scores, warnings };
    const drop = (s: F1Scores): number => (before.micro.f1 - s.micro.f1) * 100;
    const maxTries = opts.maxTries ?? DEFAULT_MAX_TRIES;
    const tries: GuardTry[] = [{ try: 0, floatNodes: [], f1: first.scores.micro.f1, dropPoints: drop(first.scores), bytes: first.bytes, withinBudget: drop(first.scores) <= budget + 1e-9 }];
    const candidates: Array<{ result: RewriteResult; plan: QuantPlan; scores: F1Scores }> = [{ result: full, plan, scores: first.scores }];
    // worst local SQNR first; exact (null) last
    const ranked = [...sqnrRows].sort((x, y) => (x.localSqnrDb ?? Infinity) - (y.localSqnrDb ?? Infinity)).map((r) => r.node);
    for (let t = 1; t <= maxTries && !tries[tries.length - 1].withinBudget; t++) {
      const k = Math.min(ranked.length, 2 ** t - 1);
      const back = ranked.slice(0, k);
      if (back.length === tries[tries.length - 1].floatNodes.length) break;
      const p = withNodesInFloat(plan, new Set(back), (label) => {
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
    const budgetMet = met >= 0;
    if (!budgetMet) {
      warnings.push(
        `F1 budget NOT met: the best model found drops ${tries[best].dropPoints.toFixed(2)} points (budget ${budget}) after ${tries.length - 1} guard tries; it was written anyway`,
      );
    }
    return {
      chosen: candidates[best].result,
      chosenPlan: candidates[best].plan,
      before,
      after: candidates[best].scores,
      guard: { maxF1DropPoints: budget, maxTries, tries, chosen: best, met: budgetMet, inSample: true },
      budgetMet,
      warnings,
    };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

// ---- latency before/after, and the profile

export interface LatencyStage {
  before: BenchRow[];
  after: BenchRow[];
  beforeLoad: number;
  afterLoad: number;
  bench: NonNullable<QuantizeDetails['bench']>;
  profile?: ProfileDetails;
}

/**
 * Time the float and the quantized model on the same batches in interleaved rounds, then profile both
 * under onnxruntime at the first (seq, batch) point (traces in a temporary folder, not kept).
 */
export async function latencyStage(
  floatPath: string,
  int8Path: string,
  folder: ModelFolder,
  tokenizer: NerTokenizer,
  texts: string[],
  opts: { seqLens: number[]; batchSizes: number[]; seconds: number; threads?: number; profile: boolean; withBar: WithBar },
): Promise<LatencyStage> {
  const { seqLens, batchSizes, seconds } = opts;
  const rounds = 4;
  const source = texts.length > 0 ? 'data' : 'synthetic';
  const inputs: BenchInputs = source === 'data' ? textBenchInputs(tokenizer, texts) : syntheticBenchInputs(tokenizer);
  const tooLong = seqLens.filter((s) => s > folder.maxLength || s < 3);
  if (tooLong.length > 0) {
    throw new UsageError(`--seq ${tooLong.join(',')} outside [3, ${folder.maxLength}] (the model's maximum length)`, {
      hint: `pick sequence lengths of at most ${folder.maxLength}`,
    });
  }
  const a = await NerSession.open(floatPath, { threads: opts.threads });
  let out: Omit<LatencyStage, 'profile'>;
  try {
    const b = await NerSession.open(int8Path, { threads: opts.threads });
    try {
      const ra: BenchRow[] = [];
      const rb: BenchRow[] = [];
      await opts.withBar('bench', seqLens.length * batchSizes.length * rounds, async (bar) => {
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
      });
      out = { before: ra, after: rb, beforeLoad: a.loadMs, afterLoad: b.loadMs, bench: { seqLens, batchSizes, rounds, seconds, inputs: source } };
    } finally {
      await b.close();
    }
  } finally {
    await a.close();
  }
  if (!opts.profile) return out;
  const tmp = await mkdtemp(join(tmpdir(), 'ranerc-quantize-profile-'));
  try {
    const profile = await opts.withBar('profile', 1, () =>
      profilePair(floatPath, int8Path, makeBenchBatch(inputs, seqLens[0], batchSizes[0]), { dir: tmp, threads: opts.threads, saveOptimized: false }),
    );
    profile.measuredSpeedup = out.before[0].p50Ms / out.after[0].p50Ms;
    profile.float.trace = '(not kept)';
    if (profile.int8) profile.int8.trace = '(not kept)';
    return { ...out, profile };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
