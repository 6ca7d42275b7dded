/**
 * The student's training loop: length-bucketed seeded batches, the distillation loss, AdamW (the same
 * HostAdamW as finetune) with linear
 * warm-up and decay, gradient clipping by global norm, periodic dev-F1 evaluation with early stopping
 * (the best checkpoint is restored at the end), and a hard deadline.
 *
 * Reproducibility: every random choice (initialisation, batch order, dropout masks) comes from one
 * seeded generator, the wasm backend is single-threaded, and the learning-rate / temperature schedules
 * depend on the step number and the step budget only (never on the clock). The same seed, data and
 * step budget give the same weights. A deadline sets the step budget once, a quarter of the way in,
 * from the pace so far — before any schedule has started to depend on it (the decay phase is the last
 * 40 % of the budget) — so a time-limited run is reproduced by passing its `plannedSteps` as `maxSteps`.
 */
import * as tf from '@tensorflow/tfjs';
import { mulberry32 } from '../runtime/bench.js';
import { makeBatch, planBatches, type SpecialIds, type TransferItem } from './batches.js';
import { distillLoss, TEMPERATURE_SCHEDULES, type LossOptions, type LossValues, type TemperatureScheduleName } from './loss.js';
import { HostAdamW } from '../autodiff/train/optim.js';
import type { Student } from './students.js';

export interface TrainOptions {
  loss: LossOptions;
  temperatureSchedule: TemperatureScheduleName;
  epochs: number;
  /** Stop after this many optimizer steps (also shortens the schedules). */
  maxSteps?: number;
  lr: number;
  weightDecay: number;
  /** Clip gradients to this global L2 norm. */
  clipNorm: number;
  /** Warm-up steps (linear from 0); default min(100, 5 % of epochs × batches per epoch). */
  warmupSteps?: number;
  /** Padded positions per batch and rows per batch. */
  batchTokens: number;
  batchRows: number;
  seed: number;
  /** `performance.now()` time after which no new step starts. */
  deadline?: number;
  /**
   * With a deadline (and no `maxSteps`): when this share of the time to the deadline has passed
   * (default 0.25), set the step budget to the steps that fit at the pace so far (evaluations
   * included), when fewer than planned.
   */
  calibrationShare?: number;
  /** Clock in milliseconds (default `performance.now`; the deadline is on this clock), injectable for tests. */
  now?: () => number;
  /**
   * Dev evaluations per epoch (default 4) and patience: stop after this many evaluations without a
   * better dev F1 (default 6), never before one epoch and never while the best F1 is still 0.
   */
  evalsPerEpoch?: number;
  patience?: number;
  /** Dev micro F1 of the current student (the same decoding eval uses). */
  evaluate?: (student: Student) => Promise<number>;
  onStep?: (s: StepInfo) => void;
}

export interface StepInfo {
  step: number;
  plannedSteps: number;
  loss: number;
  tokensPerSec: number;
  devF1?: number;
  bestF1?: number;
}

export interface CurvePoint {
  step: number;
  /** Mean loss over the steps since the previous point. */
  loss: number;
  soft: number;
  hard: number;
}

export interface DevPoint {
  step: number;
  epoch: number;
  f1: number;
}

export interface TrainResult {
  steps: number;
  plannedSteps: number;
  epochs: number;
  stoppedBy: 'epochs' | 'steps' | 'early-stopping' | 'time';
  curve: CurvePoint[];
  dev: DevPoint[];
  bestF1?: number;
  bestStep?: number;
  /** Real tokens the student was trained on (counting repeats). */
  tokensSeen: number;
  /** Wall time of the optimizer steps only, and of everything (with evaluations). */
  stepMs: number;
  totalMs: number;
  tokensPerSec: number;
}

/** Share of the step budget at whose end the learning rate (and a temperature schedule) decays. */
export const DECAY_SHARE = 0.4;

/**
 * Progress of the decay phase at `step` of `planned`: 0 until the last 40 % of the steps, then linear to
 * 1 at `planned`.
 */
export function decayProgress(step: number, planned: number): number {
  const start = planned * (1 - DECAY_SHARE);
  return Math.min(1, Math.max(0, (step - start) / Math.max(1, planned - start)));
}

/**
 * Learning rate at `step` (1-based): linear warm-up over `warmup` steps, constant, then linear decay to
 * 5 % over the last 40 % of `planned`.
 */
export function learningRate(base: number, step: number, warmup: number, planned: number): number {
  if (warmup > 0 && step <= warmup) return (base * step) / warmup;
  return base * (1 - 0.95 * decayProgress(step, planned));
}

function snapshot(student: Student): Map<string, Float32Array> {
  const m = new Map<string, Float32Array>();
  for (const p of student.params) m.set(p.name, Float32Array.from(p.variable.dataSync() as Float32Array));
  return m;
}

function restore(student: Student, snap: Map<string, Float32Array>): void {
  for (const p of student.params) {
    const v = snap.get(p.name);
    if (v) tf.tidy(() => p.variable.assign(tf.tensor(v, p.variable.shape)));
  }
}

/** Train `student` on `items`. */
export async function trainStudent(student: Student, items: readonly TransferItem[], special: SpecialIds, opts: TrainOptions): Promise<TrainResult> {
  const now = opts.now ?? (() => performance.now());
  const t0 = now();
  const rand = mulberry32(opts.seed);
  const L = student.spec.numLabels;
  const lengths = items.map((it) => it.ids.length);
  const perEpoch = planBatches(lengths, { maxTokens: opts.batchTokens, maxRows: opts.batchRows }, mulberry32(opts.seed + 1)).length;
  let planned = Math.max(1, Math.round(opts.epochs * perEpoch));
  if (opts.maxSteps !== undefined) planned = Math.min(planned, opts.maxSteps);
  const evalEvery = Math.max(1, Math.floor(perEpoch / (opts.evalsPerEpoch ?? 4)));
  const patience = opts.patience ?? 6;
  const curve: CurvePoint[] = [];
  const dev: DevPoint[] = [];
  let acc = { loss: 0, soft: 0, hard: 0, n: 0 };
  let best: { f1: number; step: number; weights: Map<string, Float32Array> } | undefined;
  let sinceBest = 0;
  let step = 0;
  let tokensSeen = 0;
  let stepMs = 0;
  let stoppedBy: TrainResult['stoppedBy'] = 'epochs';
  let lastLoss = NaN;
  let lastF1: number | undefined;
  const vars = student.params.map((p) => p.variable);

  /** Loss and gradients of one batch (caller disposes). */
  const lossAndGrads = (idx: number[], temperature: number, drop: () => number) => {
    const { input, targets } = makeBatch(idx.map((i) => items[i]), special, L);
    const out: { values?: LossValues } = {};
    const lossOpts: LossOptions = { ...opts.loss, temperature };
    const { value, grads } = tf.variableGrads(() => distillLoss(student.forward(input, drop), targets, lossOpts, student.crf, out), vars);
    return { value, grads, values: out.values! };
  };
  const evaluate = async (): Promise<boolean> => {
    if (!opts.evaluate) return false;
    const f1 = await opts.evaluate(student);
    lastF1 = f1;
    dev.push({ step, epoch: step / perEpoch, f1 });
    if (!best || f1 > best.f1) {
      best = { f1, step, weights: snapshot(student) };
      sinceBest = 0;
    } else {
      sinceBest++;
    }
    return sinceBest >= patience && step >= perEpoch && best.f1 > 0;
  };

  const warmup = opts.warmupSteps ?? Math.min(100, Math.floor(0.05 * Math.max(1, Math.round(opts.epochs * perEpoch))));
  const calibrateAt = opts.deadline !== undefined && opts.maxSteps === undefined ? t0 + (opts.deadline - t0) * (opts.calibrationShare ?? 0.25) : undefined;
  let calibrated = false;
  const curveEvery = Math.max(1, Math.ceil(planned / 400));
  const optimizer = new HostAdamW(student.params, { weightDecay: opts.weightDecay });

  try {
    if (opts.evaluate) await evaluate(); // the starting point of the dev curve
    outer: for (let epoch = 0; ; epoch++) {
      const batches = planBatches(lengths, { maxTokens: opts.batchTokens, maxRows: opts.batchRows }, rand);
      for (const idx of batches) {
        if (step >= planned) {
          stoppedBy = opts.maxSteps !== undefined && planned === opts.maxSteps ? 'steps' : 'epochs';
          break outer;
        }
        if (opts.deadline !== undefined && now() > opts.deadline) {
          stoppedBy = 'time';
          break outer;
        }
        const s0 = now();
        const T = TEMPERATURE_SCHEDULES[opts.temperatureSchedule](opts.loss.temperature, decayProgress(step, planned));
        const { value, grads, values: v } = lossAndGrads(idx, T, rand);
        const byName = new Map<string, Float32Array>();
        for (const p of student.params) {
          const g = grads[p.variable.name];
          if (g) byName.set(p.name, g.dataSync() as Float32Array);
        }
        step++;
        optimizer.step(byName, learningRate(opts.lr, step, warmup, planned), opts.clipNorm);
        tf.dispose([value, ...Object.values(grads)]);
        tokensSeen += v.tokens;
        lastLoss = v.loss;
        acc.loss += v.loss;
        acc.soft += v.soft;
        acc.hard += v.hard;
        acc.n++;
        if (acc.n >= curveEvery) {
          curve.push({ step, loss: acc.loss / acc.n, soft: acc.soft / acc.n, hard: acc.hard / acc.n });
          acc = { loss: 0, soft: 0, hard: 0, n: 0 };
        }
        stepMs += now() - s0;
        if (!calibrated && calibrateAt !== undefined && now() >= calibrateAt) {
          // once, before the decay phase: the steps done so far are the same for any later budget
          calibrated = true;
          const fits = Math.floor((0.97 * step * (opts.deadline! - t0)) / (now() - t0));
          if (fits < planned) planned = Math.max(step + 1, Math.ceil(step / (1 - DECAY_SHARE)), fits);
        }
        opts.onStep?.({ step, plannedSteps: planned, loss: lastLoss, tokensPerSec: tokensSeen / (stepMs / 1000), devF1: lastF1, bestF1: best?.f1 });
        if (step % evalEvery === 0 && step < planned) {
          if (await evaluate()) {
            stoppedBy = 'early-stopping';
            break outer;
          }
          opts.onStep?.({ step, plannedSteps: planned, loss: lastLoss, tokensPerSec: tokensSeen / (stepMs / 1000), devF1: lastF1, bestF1: best?.f1 });
        }
      }
    }
    if (acc.n > 0) curve.push({ step, loss: acc.loss / acc.n, soft: acc.soft / acc.n, hard: acc.hard / acc.n });
    if (opts.evaluate && dev[dev.length - 1]?.step !== step) await evaluate();
    if (best && best.step !== step) restore(student, best.weights);
  } finally {
    optimizer.dispose();
  }
  const totalMs = now() - t0;
  return {
    steps: step,
    plannedSteps: planned,
    epochs: step / perEpoch,
    stoppedBy,
    curve,
    dev,
    bestF1: best?.f1,
    bestStep: best?.step,
    tokensSeen,
    stepMs,
    totalMs,
    tokensPerSec: tokensSeen / Math.max(1e-9, stepMs / 1000),
  };
}
