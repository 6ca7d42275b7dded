/**
 * `kind: eval` — entity precision/recall/F1 of a model on labelled data, with the same pipeline and
 * report as `ranerc eval` (Predictor windows and batches, CRF or argmax, seqeval chunks, exact spans).
 * Every variant of a recipe is scored by one of these (the recipe's `measure.eval`).
 */
import { unalignedEntities } from '../../ner/align.js';
import { readExamples } from '../../ner/data.js';
import { scoreSpans } from '../../ner/metrics.js';
import { loadModelFolder } from '../../onnx/folder.js';
import { newReport } from '../../report/environment.js';
import { summarizeData, summarizeModel } from '../../report/models.js';
import type { EvalDetails, Report } from '../../report/schema.js';
import { Predictor } from '../../runtime/predict.js';
import { setting, type StepContext, type StepDefinition, type StepOutcome, type StepSettings } from './types.js';

async function runEval(ctx: StepContext, s: StepSettings): Promise<StepOutcome> {
  const modelPath = setting.str(s, 'model');
  const dataPath = setting.str(s, 'data');
  const mode = setting.str(s, 'mode') as 'default' | 'strict';
  const maxLength = setting.optNum(s, 'max-length');
  const threads = setting.optNum(s, 'threads');
  const batch = setting.num(s, 'batch');
  const folder = await loadModelFolder({ model: modelPath });
  const predictor = await Predictor.open(folder, {
    windowSize: maxLength === undefined ? undefined : maxLength - 2,
    overlap: setting.optNum(s, 'overlap'),
    threads,
    batchSize: batch,
    mode,
    noCrf: !setting.bool(s, 'crf'),
  });
  try {
    const data = await readExamples(dataPath, {
      types: predictor.labels.types,
      unknownTypes: setting.bool(s, 'skip-unknown-types') ? 'skip' : 'error',
    });
    const texts = data.examples.map((e) => e.text);
    const bar = ctx.progress(`${ctx.name}`, texts.length);
    let results;
    const t0 = performance.now();
    try {
      predictor.onProgress = (done) => bar.update(done, 'sentences');
      results = await predictor.predictWithTokens(texts);
    } finally {
      bar.stop();
    }
    const predictMs = performance.now() - t0;
    const gold = data.examples.map((e) => e.entities);
    const scores = scoreSpans(
      gold,
      results.map((r) => r.entities),
    );
    let unaligned = 0;
    let windowed = 0;
    data.examples.forEach((ex, i) => {
      unaligned += unalignedEntities(ex, results[i].tokens).length;
      if (results[i].tokens.length > predictor.windowSize) windowed++;
    });
    const details: EvalDetails = {
      mode,
      subword: 'first',
      decoder: predictor.decoder,
      windowSize: predictor.windowSize,
      overlap: predictor.overlap,
      windowedSentences: windowed,
      batchSize: predictor.batchSize,
      predictMs,
      sentencesPerSec: texts.length / Math.max(predictMs / 1000, 1e-9),
    };
    const report: Report<EvalDetails, 'eval'> = newReport(
      'eval',
      { model: modelPath, data: dataPath, mode, batch, crf: predictor.decoder === 'crf', threads: threads ?? 'default' },
      details,
      { threads },
    );
    const model = await summarizeModel(folder, 'model', modelPath);
    model.f1 = scores;
    model.loadMs = predictor.session.loadMs;
    report.models.push(model);
    const dataSummary = await summarizeData(dataPath, {
      format: data.format,
      sentences: data.examples.length,
      entities: gold.reduce((n, g) => n + g.length, 0),
      skipped: data.skipped.length,
      unalignedGold: unaligned,
    });
    report.data = { files: [dataSummary] };
    if (data.skipped.length > 0) {
      const first = data.skipped[0];
      report.warnings.push(`${data.skipped.length} gold entities were skipped (first: ${first.file}:${first.line}: ${first.reason})`);
    }
    if (unaligned > 0) report.warnings.push(`${unaligned} gold entities have a boundary inside a token and cannot be predicted exactly`);
    return {
      outputs: {},
      f1: scores,
      model,
      data: [dataSummary],
      report,
      facts: { decoder: predictor.decoder, sentences: texts.length, predictMs: Math.round(predictMs) },
      warnings: [...report.warnings],
    };
  } finally {
    await predictor.close();
  }
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
