/**
 * `kind: distill` — knowledge distillation of a teacher model folder into a small student (BiLSTM-CRF by
 * default), exported to ONNX, with `distillStudent` (src/distill/). Output: `${name.model}`, the student's
 * model folder; the loss and dev-F1 curves are kept beside the step's report. Teacher logits are cached
 * in the run folder (`cache/distill/`). The recipe's `seed` is the default seed, so the same recipe and
 * data give the same student.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BackendPreference } from '../../autodiff/backend.js';
import { distillStudent, type DistillProgress, type StudentKind } from '../../distill/index.js';
import type { KdLossName, TemperatureScheduleName } from '../../distill/loss.js';
import type { Progress } from '../../report/progress.js';
import { setting, type StepContext, type StepDefinition, type StepOutcome, type StepSettings } from './types.js';

/** One progress bar per distillation phase (teacher logits, training, evaluation, ...). */
function phaseBars(ctx: StepContext): { onProgress: (e: DistillProgress) => void; stop: () => void } {
  let phase: string | undefined;
  let bar: Progress | undefined;
  const stop = () => {
    bar?.stop();
    bar = undefined;
  };
  return {
    stop,
    onProgress(e) {
      const total = 'planned' in e ? e.planned : e.total;
      if (e.phase !== phase) {
        stop();
        phase = e.phase;
        bar = ctx.progress(`${ctx.name}: ${e.phase}`, total);
      }
      bar?.setTotal(total);
      if ('step' in e) bar?.update(e.step, `loss ${e.loss.toFixed(3)}, ${Math.round(e.tokensPerSec)} tok/s${e.devF1 === undefined ? '' : `, dev F1 ${(e.devF1 * 100).toFixed(2)}`}`);
      else bar?.update(e.done);
    },
  };
}

async function runDistill(ctx: StepContext, s: StepSettings): Promise<StepOutcome> {
  const bars = phaseBars(ctx);
  let result;
  try {
    result = await distillStudent({
      teacher: setting.str(s, 'teacher'),
      train: setting.str(s, 'train'),
      dev: setting.str(s, 'dev'),
      out: join(ctx.dir, 'model'),
      unlabeled: setting.optStr(s, 'unlabeled'),
      test: setting.optStr(s, 'test'),
      student: setting.str(s, 'student') as StudentKind,
      temperature: setting.num(s, 'temperature'),
      alpha: setting.num(s, 'alpha'),
      temperatureSchedule: setting.str(s, 'temperature-schedule') as TemperatureScheduleName,
      kdLoss: ((k) => (k === 'emission' ? 'kl' : k))(setting.optStr(s, 'kd-loss')) as KdLossName | undefined,
      epochs: setting.optNum(s, 'epochs'),
      maxMinutes: setting.optNum(s, 'max-minutes'),
      maxSteps: setting.optNum(s, 'max-steps'),
      transferLimit: setting.optNum(s, 'transfer-limit'),
      embeddingDim: setting.optNum(s, 'embedding-dim'),
      hidden: setting.optNum(s, 'hidden'),
      layers: setting.optNum(s, 'layers'),
      heads: setting.optNum(s, 'heads'),
      ffn: setting.optNum(s, 'ffn'),
      dropout: setting.optNum(s, 'dropout'),
      lr: setting.optNum(s, 'lr'),
      weightDecay: setting.optNum(s, 'weight-decay'),
      clipNorm: setting.optNum(s, 'clip-norm'),
      batchTokens: setting.optNum(s, 'batch-tokens'),
      patience: setting.optNum(s, 'patience'),
      seed: setting.num(s, 'seed'),
      compareHard: setting.bool(s, 'compare-hard'),
      threads: setting.optNum(s, 'threads'),
      backend: setting.str(s, 'backend') as BackendPreference,
      cacheDir: join(ctx.cacheDir, 'teacher-logits'),
      skipUnknownTypes: setting.bool(s, 'skip-unknown-types'),
      benchSeconds: setting.num(s, 'bench-seconds'),
      onProgress: bars.onProgress,
    });
  } finally {
    bars.stop();
  }
  const d = result.report.details;
  await writeFile(join(ctx.dir, d.curvesFile), result.curvesSvg);
  const facts: StepOutcome['facts'] = {
    student: d.student.modelType,
    parameters: d.student.parameters,
    teacherF1: d.evaluation.teacherF1,
    studentF1: d.evaluation.studentF1,
    transferTexts: d.transfer.usedTexts,
    subsampled: d.transfer.subsampled,
  };
  if (d.comparison.distillMinusHard !== undefined) facts.distillMinusHard = d.comparison.distillMinusHard;
  return { outputs: { model: 'model' }, report: result.report, facts, warnings: [...result.report.warnings] };
}

export const distillStep: StepDefinition = {
  kind: 'distill',
  summary: 'temperature-scaled knowledge distillation into a BiLSTM-CRF (or BiLSTM / transformer) student exported to ONNX, as `ranerc distill`',
  version: 1,
  inherits: ['seed', 'threads'],
  outputs: ['model'],
  fields: {
    teacher: { type: 'model', required: true, doc: 'the teacher model folder' },
    train: { type: 'file', required: true, doc: 'labelled transfer/training data (JSONL or CoNLL)' },
    dev: { type: 'file', required: true, doc: 'labelled dev data for early stopping' },
    unlabeled: { type: 'file', doc: 'unlabelled text, one sentence a line, added to the transfer set' },
    test: { type: 'file', doc: 'labelled data for the teacher-vs-student comparison in the step report (default: dev)' },
    student: { type: 'enum', values: ['bilstm-crf', 'bilstm', 'transformer'], default: 'bilstm-crf', doc: 'the student architecture' },
    temperature: { type: 'number', min: 0.01, max: 100, default: 4, doc: 'softmax temperature T of the soft loss' },
    alpha: { type: 'number', min: 0, max: 1, default: 0.7, doc: 'weight of the soft (KD) loss; 1 − alpha weighs the hard loss' },
    'temperature-schedule': { type: 'enum', values: ['constant', 'linear'], default: 'constant', doc: 'T throughout, or linear decay from T to 1' },
    'kd-loss': { type: 'enum', values: ['marginal', 'emission', 'kl', 'ce', 'mse'], doc: 'soft loss (default: as `ranerc distill`; emission = kl)' },
    epochs: { type: 'integer', min: 1, max: 10000, doc: 'training epochs at most' },
    'max-minutes': { type: 'number', min: 0, doc: 'hard time budget, teacher logits included' },
    'max-steps': { type: 'integer', min: 1, doc: 'training steps at most' },
    'transfer-limit': { type: 'integer', min: 1, doc: 'use at most this many transfer texts (a seeded sample)' },
    'embedding-dim': { type: 'integer', min: 1, doc: 'student embedding size' },
    hidden: { type: 'integer', min: 1, doc: 'student hidden size (per LSTM direction)' },
    layers: { type: 'integer', min: 1, max: 64, doc: 'student layers' },
    heads: { type: 'integer', min: 1, doc: 'attention heads (transformer student)' },
    ffn: { type: 'integer', min: 1, doc: 'feed-forward size (transformer student)' },
    dropout: { type: 'number', min: 0, max: 1, doc: 'dropout' },
    lr: { type: 'number', min: 0, doc: 'AdamW learning rate' },
    'weight-decay': { type: 'number', min: 0, doc: 'AdamW decoupled weight decay' },
    'clip-norm': { type: 'number', min: 0, doc: 'gradient clipping by global norm' },
    'batch-tokens': { type: 'integer', min: 1, doc: 'tokens per training batch' },
    patience: { type: 'integer', min: 1, doc: 'early stopping: dev evaluations without improvement' },
    'compare-hard': { type: 'boolean', default: false, doc: 'also train the student on hard labels only and compare (in the step report)' },
    'skip-unknown-types': { type: 'boolean', default: false, doc: 'skip gold entities of types the teacher lacks' },
    backend: { type: 'enum', values: ['auto', 'tensorflow', 'wasm', 'cpu'], default: 'auto', doc: 'tfjs backend for training' },
    'bench-seconds': { type: 'number', min: 0, max: 3600, default: 1, doc: "seconds per model of the teacher-vs-student latency in the step report (the run's table is timed by measure.bench)" },
    seed: { type: 'integer', min: 0, max: 2 ** 31 - 1, doc: "seed of sampling, initialisation and batch order (default: the recipe's seed)" },
    threads: { type: 'integer', min: 1, max: 1024, nullable: true, doc: "onnxruntime intra-op threads (default: the recipe's threads)" },
  },
  run: runDistill,
};
