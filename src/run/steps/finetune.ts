/**
 * `kind: finetune` — fine-tune every float weight of a model folder's ONNX graph through the ONNX → tfjs
 * executor and write the same graph with the best dev-F1 weights, with `finetuneModelFolder`
 * (src/autodiff/train/). The usual use is recovery after pruning: `model: ${pruned.model}`. Output:
 * `${name.model}`; the training curve is kept beside the step's report. The recipe's `seed` is the
 * default seed of the batch order.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BackendPreference } from '../../autodiff/backend.js';
import { CURVE_FILE, finetuneModelFolder, type FinetuneProgress } from '../../autodiff/train/finetune.js';
import type { LossKind } from '../../autodiff/train/loss.js';
import type { Progress } from '../../report/progress.js';
import { setting, type StepContext, type StepDefinition, type StepOutcome, type StepSettings } from './types.js';

async function runFinetune(ctx: StepContext, s: StepSettings): Promise<StepOutcome> {
  let bar: Progress | undefined;
  const onProgress = (p: FinetuneProgress) => {
    bar ??= ctx.progress(`${ctx.name}: train`, p.totalSteps);
    bar.setTotal(p.totalSteps);
    bar.update(p.step, `epoch ${p.epoch}, loss ${p.loss.toFixed(3)}${p.devF1 === undefined ? '' : `, dev F1 ${(p.devF1 * 100).toFixed(2)}`}`);
  };
  let result;
  try {
    result = await finetuneModelFolder({
      model: setting.str(s, 'model'),
      train: setting.str(s, 'train'),
      dev: setting.str(s, 'dev'),
      out: join(ctx.dir, 'model'),
      epochs: setting.optNum(s, 'epochs'),
      lr: setting.optNum(s, 'lr'),
      batch: setting.optNum(s, 'batch'),
      maxBatchTokens: setting.optNum(s, 'max-batch-tokens'),
      warmupRatio: setting.optNum(s, 'warmup-ratio'),
      weightDecay: setting.optNum(s, 'weight-decay'),
      clipNorm: setting.optNum(s, 'clip-norm'),
      maxMinutes: setting.optNum(s, 'max-minutes'),
      seed: setting.num(s, 'seed'),
      backend: setting.str(s, 'backend') as BackendPreference,
      freeze: setting.strs(s, 'freeze'),
      evalEvery: setting.optNum(s, 'eval-every'),
      loss: setting.str(s, 'loss') as 'auto' | LossKind,
      maxLength: setting.optNum(s, 'max-length'),
      overlap: setting.optNum(s, 'overlap'),
      skipUnknownTypes: setting.bool(s, 'skip-unknown-types'),
      threads: setting.optNum(s, 'threads'),
      onProgress,
      log: (line) => ctx.log(line),
    });
  } finally {
    bar?.stop();
  }
  await writeFile(join(ctx.dir, CURVE_FILE), result.curveSvg);
  const d = result.details;
  return {
    outputs: { model: 'model' },
    report: result.report,
    facts: {
      loss: d.loss,
      steps: d.steps,
      bestStep: d.best.step,
      devF1Before: result.f1.before.micro.f1,
      devF1After: result.f1.after.micro.f1,
      stoppedBy: d.stoppedBy,
    },
    warnings: [...result.report.warnings],
  };
}

export const finetuneStep: StepDefinition = {
  kind: 'finetune',
  summary: 'fine-tune every float weight of the ONNX graph (tfjs executor) and keep the best dev-F1 weights, as `ranerc finetune`',
  version: 1,
  inherits: ['seed', 'threads'],
  outputs: ['model'],
  fields: {
    model: { type: 'model', required: true, doc: 'the model folder to fine-tune (e.g. ${pruned.model})' },
    train: { type: 'file', required: true, doc: 'labelled training data (JSONL or CoNLL)' },
    dev: { type: 'file', required: true, doc: 'labelled dev data: F1 for checkpoint selection' },
    epochs: { type: 'integer', min: 1, max: 10000, doc: 'passes over the training data' },
    lr: { type: 'number', min: 0, doc: 'peak learning rate' },
    batch: { type: 'integer', min: 1, doc: 'rows (sentence windows) per optimizer step' },
    'max-batch-tokens': { type: 'integer', min: 1, doc: 'padded tokens per micro-batch' },
    'warmup-ratio': { type: 'number', min: 0, max: 1, doc: 'fraction of the planned steps spent warming up' },
    'weight-decay': { type: 'number', min: 0, doc: 'decoupled weight decay on matrices' },
    'clip-norm': { type: 'number', min: 0, doc: 'global gradient-norm clip (0 disables)' },
    'max-minutes': { type: 'number', min: 0, doc: 'stop training after this many minutes' },
    freeze: { type: 'string-list', default: [], doc: 'initializers whose names contain one of these are kept fixed' },
    'eval-every': { type: 'integer', min: 1, doc: 'evaluate on dev every this many steps (default: each epoch)' },
    loss: { type: 'enum', values: ['auto', 'ce', 'crf'], default: 'auto', doc: 'objective: CRF NLL when the folder has crf.json (auto), or token cross-entropy' },
    'max-length': { type: 'integer', min: 3, doc: "tokens per model input incl. [CLS]/[SEP] (default: the folder's maximum)" },
    overlap: { type: 'integer', min: 0, doc: 'window overlap for long texts' },
    'skip-unknown-types': { type: 'boolean', default: false, doc: 'skip gold entities of types the model lacks' },
    backend: { type: 'enum', values: ['auto', 'tensorflow', 'wasm', 'cpu'], default: 'auto', doc: 'tfjs backend for training' },
    seed: { type: 'integer', min: 0, max: 2 ** 31 - 1, doc: "seed of the batch order (default: the recipe's seed)" },
    threads: { type: 'integer', min: 1, max: 1024, nullable: true, doc: "onnxruntime intra-op threads (default: the recipe's threads)" },
  },
  run: runFinetune,
};
