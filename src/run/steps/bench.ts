/**
 * `kind: bench` — onnxruntime latency percentiles and throughput of a model over sequence lengths ×
 * batch sizes, as `ranerc bench`. Every variant of a recipe is timed by one of these (`measure.bench`),
 * one after another in the same process with the same settings. Timings depend on the machine, so the
 * machine's description is part of the cache key.
 */
import { InputError } from '../../errors.js';
import { readExamples } from '../../ner/data.js';
import { WordPieceTokenizer } from '../../ner/tokenizer.js';
import { loadModelFolder } from '../../onnx/folder.js';
import { newReport } from '../../report/environment.js';
import { summarizeModel } from '../../report/models.js';
import type { BenchDetails, Report } from '../../report/schema.js';
import { benchModel, peakRssBytes, type BenchInputs } from '../../runtime/bench.js';
import { NerSession } from '../../runtime/session.js';
import { setting, type StepContext, type StepDefinition, type StepOutcome, type StepSettings } from './types.js';

async function runBench(ctx: StepContext, s: StepSettings): Promise<StepOutcome> {
  const modelPath = setting.str(s, 'model');
  const dataPath = setting.optStr(s, 'data');
  const seqLens = setting.ints(s, 'seq');
  const batchSizes = setting.ints(s, 'batch');
  const warmup = setting.num(s, 'warmup');
  const iterations = setting.num(s, 'iterations');
  const seconds = setting.num(s, 'seconds');
  const threads = setting.optNum(s, 'threads');
  const folder = await loadModelFolder({ model: modelPath });
  const tooLong = seqLens.filter((n) => n > folder.maxLength);
  if (tooLong.length > 0) {
    throw new InputError(`bench seq ${tooLong.join(',')} is longer than the model's maximum length ${folder.maxLength}`, {
      file: modelPath,
      hint: `set measure.bench.seq (or the step's seq) to lengths of at most ${folder.maxLength}`,
    });
  }
  const tokenizer = await WordPieceTokenizer.fromFiles(folder.vocabPath, folder.tokenizerConfig);
  let inputs: BenchInputs;
  if (dataPath !== undefined) {
    const data = await readExamples(dataPath, { unknownTypes: 'skip' });
    const sequences = data.examples.map((e) => tokenizer.tokenize(e.text).map((t) => t.id)).filter((q) => q.length > 0);
    if (sequences.length === 0) {
      throw new InputError('the bench data file has no text to take token ids from', {
        file: dataPath,
        hint: 'give bench a JSONL/CoNLL file with sentences, or leave its data out for seeded random ids',
      });
    }
    inputs = { source: 'data', sequences, clsId: tokenizer.clsId, sepId: tokenizer.sepId, padId: tokenizer.padId };
  } else {
    const firstId = tokenizer.vocabSize > 1000 ? 1000 : Math.min(5, tokenizer.vocabSize - 1);
    inputs = {
      source: 'synthetic',
      clsId: tokenizer.clsId,
      sepId: tokenizer.sepId,
      padId: tokenizer.padId,
      vocabSize: tokenizer.vocabSize,
      firstId,
      seed: 1,
    };
  }
  const session = await NerSession.open(folder.onnxPath, { threads });
  const total = seqLens.length * batchSizes.length;
  const bar = ctx.progress(ctx.name, total);
  let rows;
  let peak: number;
  try {
    rows = await benchModel(session, {
      seqLens,
      batchSizes,
      inputs,
      warmup,
      iterations,
      minSeconds: seconds,
      onPoint: (i, _n, seq, batch) => bar.update(i, `seq ${seq} × batch ${batch}`),
    });
    peak = peakRssBytes();
  } finally {
    bar.stop();
    await session.close();
  }
  const details: BenchDetails = {
    inputs: inputs.source,
    seqLens,
    batchSizes,
    warmup,
    iterations,
    seconds,
    peakRssBytes: peak,
    loadMs: session.loadMs,
  };
  const report: Report<BenchDetails, 'bench'> = newReport(
    'bench',
    { model: modelPath, data: dataPath ?? null, seq: seqLens, batch: batchSizes, warmup, iterations, seconds, threads: threads ?? 'default' },
    details,
    { threads },
  );
  const model = await summarizeModel(folder, 'model', modelPath);
  model.latency = rows;
  model.loadMs = session.loadMs;
  report.models.push(model);
  return { outputs: {}, latency: rows, model, report, facts: { loadMs: session.loadMs, peakRssBytes: peak } };
}

export const benchStep: StepDefinition = {
  kind: 'bench',
  summary: 'onnxruntime latency (p50/p95/p99) and throughput over sequence lengths × batch sizes, as `ranerc bench`',
  version: 1,
  inherits: ['threads'],
  outputs: [],
  machineDependent: true,
  fields: {
    model: { type: 'model', required: true, doc: 'the model folder to time' },
    data: { type: 'file', doc: 'take token ids from these sentences (default: seeded random ids)' },
    seq: { type: 'int-list', min: 3, default: [64], doc: 'sequence lengths incl. [CLS]/[SEP]' },
    batch: { type: 'int-list', min: 1, default: [1], doc: 'batch sizes (the latency gate reads batch 1)' },
    warmup: { type: 'integer', min: 0, max: 100000, default: 5, doc: 'untimed runs per point' },
    iterations: { type: 'integer', min: 1, max: 10000000, default: 20, doc: 'timed runs per point (at least)' },
    seconds: { type: 'number', min: 0, max: 86400, default: 2, doc: 'time each point for at least this many seconds' },
    threads: { type: 'integer', min: 1, max: 1024, nullable: true, doc: "onnxruntime intra-op threads (default: the recipe's threads)" },
  },
  run: runBench,
};
