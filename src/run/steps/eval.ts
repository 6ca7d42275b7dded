/**
 * `kind: eval` — entity precision/recall/F1 of a model on labelled data, with the same pipeline and
 * report as `ranerc eval` (Predictor windows and batches, CRF or argmax, seqeval chunks, exact spans).
 * Every variant of a recipe is scored by one of these (the recipe's `measure.eval`).
 */
import { loadModelFolder } from '../../onnx/folder.js';
import { newReport } from '../../report/environment.js';
import type { EvalDetails, Report } from '../../report/schema.js';
import { evaluateFolder } from '../../runtime/evaluate.js';
import { setting, type StepContext, type StepDefinition, type StepOutcome, type StepSettings } from './types.js';

async function runEval(ctx: StepContext, s: StepSettings): Promise<StepOutcome> {
  const modelPath = setting.str(s, 'model');
  const dataPath = setting.str(s, 'data');
  const mode = setting.str(s, 'mode') as 'default' | 'strict';
  const maxLength = setting.optNum(s, 'max-length');
  const threads = setting.optNum(s, 'threads');
  const batch = setting.num(s, 'batch');
  const folder = await loadModelFolder({ model: modelPath });
  const bar = ctx.progress(`${ctx.name}`, 0);
  let evaluation;
  try {
    evaluation = await evaluateFolder(folder, modelPath, dataPath, {
      windowSize: maxLength === undefined ? undefined : maxLength - 2,
      overlap: setting.optNum(s, 'overlap'),
      threads,
      batchSize: batch,
      mode,
      noCrf: !setting.bool(s, 'crf'),
      skipUnknownTypes: setting.bool(s, 'skip-unknown-types'),
      onProgress: (done, total) => {
        bar.setTotal(total);
        bar.update(done, 'sentences');
      },
    });
  } finally {
    bar.stop();
  }
  const { scores, details, model } = evaluation;
  const report: Report<EvalDetails, 'eval'> = newReport(
    'eval',
    { model: modelPath, data: dataPath, mode, batch, crf: details.decoder === 'crf', threads: threads ?? 'default' },
    details,
    { threads },
  );
  report.models.push(model);
  report.data = { files: [evaluation.data] };
  report.warnings.push(...evaluation.warnings);
  return {
    outputs: {},
    f1: scores,
    model,
    data: [evaluation.data],
    report,
    facts: { decoder: details.decoder, sentences: evaluation.sentences, predictMs: Math.round(details.predictMs) },
    warnings: [...report.warnings],
  };
}

export const evalStep: StepDefinition = {
  kind: 'eval',
  summary: 'entity precision/recall/F1 (micro and per type) of a model on labelled data, as `ranerc eval`',
  version: 1,
  inherits: ['threads'],
  outputs: [],
  fields: {
    model: { type: 'model', required: true, doc: 'the model folder to score' },
    data: { type: 'file', required: true, doc: 'labelled JSONL or CoNLL data' },
    mode: { type: 'enum', values: ['default', 'strict'], default: 'default', doc: 'chunk decoding: seqeval default (lenient) or strict' },
    batch: { type: 'integer', min: 1, max: 4096, default: 32, doc: 'windows per onnxruntime run' },
    'max-length': { type: 'integer', min: 3, doc: "tokens per model input incl. [CLS]/[SEP] (default: the folder's maximum)" },
    overlap: { type: 'integer', min: 0, doc: 'tokens shared by consecutive windows of a long text' },
    'skip-unknown-types': { type: 'boolean', default: false, doc: 'skip gold entities whose type the model lacks' },
    crf: { type: 'boolean', default: true, doc: 'decode with the CRF when the folder has crf.json' },
    threads: { type: 'integer', min: 1, max: 1024, nullable: true, doc: 'onnxruntime intra-op threads (default: the recipe\'s threads)' },
  },
  run: runEval,
};
