/**
 * Entity F1 of a model folder on labelled data, through the shared prediction pipeline (`Predictor`:
 * windows, batches, CRF Viterbi or argmax, seqeval chunks, exact character spans). `ranerc eval`, the
 * recipe `eval` step and every command that reports F1 before/after (quantize, prune, finetune, distill)
 * score with these two functions, so their numbers can never disagree.
 */
import { unalignedEntities } from '../ner/align.js';
import { readExamples } from '../ner/data.js';
import { scoreSpans } from '../ner/metrics.js';
import type { Example, F1Scores } from '../ner/types.js';
import type { ModelFolder } from '../onnx/types.js';
import { summarizeData, summarizeModel } from '../report/models.js';
import type { DataFileSummary, EvalDetails, ModelSummary } from '../report/schema.js';
import { Predictor, type PredictorOptions } from './predict.js';

/** Micro and per-type F1 of `folder` on `examples` (opens and closes its own session). */
export async function scoreFolder(
  folder: ModelFolder,
  examples: readonly Example[],
  opts: PredictorOptions = {},
): Promise<F1Scores> {
  const predictor = await Predictor.open(folder, opts);
  try {
    const pred = await predictor.predict(examples.map((e) => e.text));
    return scoreSpans(
      examples.map((e) => e.entities),
      pred,
    );
  } finally {
    await predictor.close();
  }
}

export interface EvaluateOptions extends PredictorOptions {
  /** Skip gold entities whose type the model lacks (counted in the data summary) instead of failing. */
  skipUnknownTypes?: boolean;
}

/** Everything `ranerc eval` reports about one model on one data file. */
export interface Evaluation {
  scores: F1Scores;
  details: EvalDetails;
  /** The model summary (role "model") with `f1` and `loadMs` filled in. */
  model: ModelSummary;
  data: DataFileSummary;
  /** Skipped or unpredictable gold entities, as report warnings. */
  warnings: string[];
  sentences: number;
}

/**
 * Score `folder` (named `modelPath` in the report) on the labelled file `dataPath`: read the data
 * (types checked against the model's labels), predict, score, and summarize model and data.
 */
export async function evaluateFolder(
  folder: ModelFolder,
  modelPath: string,
  dataPath: string,
  opts: EvaluateOptions = {},
): Promise<Evaluation> {
  const predictor = await Predictor.open(folder, opts);
  try {
    const data = await readExamples(dataPath, {
      types: predictor.labels.types,
      unknownTypes: opts.skipUnknownTypes ? 'skip' : 'error',
    });
    const texts = data.examples.map((e) => e.text);
    const t0 = performance.now();
    const results = await predictor.predictWithTokens(texts);
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
      mode: opts.mode ?? 'default',
      subword: opts.subword ?? 'first',
      decoder: predictor.decoder,
      windowSize: predictor.windowSize,
      overlap: predictor.overlap,
      windowedSentences: windowed,
      batchSize: predictor.batchSize,
      predictMs,
      sentencesPerSec: texts.length / Math.max(predictMs / 1000, 1e-9),
    };
    const model = await summarizeModel(folder, 'model', modelPath);
    model.f1 = scores;
    model.loadMs = predictor.session.loadMs;
    const dataSummary = await summarizeData(dataPath, {
      format: data.format,
      sentences: data.examples.length,
      entities: gold.reduce((n, g) => n + g.length, 0),
      skipped: data.skipped.length,
      unalignedGold: unaligned,
    });
    const warnings: string[] = [];
    if (data.skipped.length > 0) {
      const first = data.skipped[0];
      warnings.push(
        `${data.skipped.length} gold entit${data.skipped.length === 1 ? 'y was' : 'ies were'} skipped ` +
          `(first: ${first.file}:${first.line}: ${first.reason})`,
      );
    }
    if (unaligned > 0) {
      warnings.push(
        `${unaligned} gold entit${unaligned === 1 ? 'y has' : 'ies have'} a boundary inside a token and cannot be predicted exactly`,
      );
    }
    return { scores, details, model, data: dataSummary, warnings, sentences: texts.length };
  } finally {
    await predictor.close();
  }
}
