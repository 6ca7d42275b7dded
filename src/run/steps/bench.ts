/**
 * `kind: bench` — onnxruntime latency percentiles and throughput of a model over sequence lengths ×
 * batch sizes, with the timing of `ranerc bench` (benchModel's inputs and statistics). Every variant of
 * a recipe is timed by one of these (`measure.bench`); the runner times them together (runTogether),
 * interleaved in rounds, so the latencies it compares share the machine's conditions. Timings depend
 * on the machine, so the machine's description is part of the cache key.
 */
import { InputError } from '../../errors.js';
import { readExamples } from '../../ner/data.js';
import { loadTokenizer } from '../../ner/tokenizers/index.js';
import { loadModelFolder } from '../../onnx/folder.js';
import { newReport } from '../../report/environment.js';
import { summarizeModel } from '../../report/models.js';
import type { BenchDetails, Report } from '../../report/schema.js';
import { benchRow, makeBenchBatch, measureInterleaved, peakRssBytes, syntheticBenchInputs, textBenchInputs, type BenchInputs, type BenchRow } from '../../runtime/bench.js';
import { NerSession } from '../../runtime/session.js';
import { setting, type StepContext, type StepDefinition, type StepOutcome, type StepSettings } from './types.js';

interface Opened {
  modelPath: string;
  folder: Awaited<ReturnType<typeof loadModelFolder>>;
  session: NerSession;
  inputs: BenchInputs;
}

/** Token ids for a model: from the data file's sentences, or seeded random ids over its vocabulary. */
async function benchInputs(folder: Opened['folder'], dataPath: string | undefined): Promise<BenchInputs> {
  const tokenizer = await loadTokenizer(folder);
  if (dataPath !== undefined) {
    const data = await readExamples(dataPath, { unknownTypes: 'skip' });
    const inputs = textBenchInputs(
      tokenizer,
      data.examples.map((e) => e.text),
    );
    if (inputs.sequences.length === 0) {
      throw new InputError('the bench data file has no text to take token ids from', {
        file: dataPath,
        hint: 'give bench a JSONL/CoNLL file with sentences, or leave its data out for seeded random ids',
      });
    }
    return inputs;
  }
  return syntheticBenchInputs(tokenizer);
}

/** The settings every model of a group must share (everything but the model). */
const SHARED = ['data', 'seq', 'batch', 'warmup', 'iterations', 'seconds', 'rounds', 'threads'] as const;

/**
 * Time one or more models over the same grid. Each (seq, batch) point is measured in `rounds` rounds;
 * in each round every model runs its share of the iterations and seconds in turn (after `warmup`
 * untimed runs in the first round and one in the others), so slow phases of a shared machine fall on
 * all models alike. A model's samples from all rounds make its percentiles.
 */
async function runBenchGroup(items: ReadonlyArray<{ ctx: StepContext; settings: StepSettings }>): Promise<StepOutcome[]> {
  const s = items[0].settings;
  for (const it of items) {
    for (const k of SHARED) {
      if (JSON.stringify(it.settings[k]) !== JSON.stringify(s[k])) throw new Error(`bench steps timed together must share ${k}`);
    }
  }
  const dataPath = setting.optStr(s, 'data');
  const seqLens = setting.ints(s, 'seq');
  const batchSizes = setting.ints(s, 'batch');
  const warmup = setting.num(s, 'warmup');
  const iterations = setting.num(s, 'iterations');
  const seconds = setting.num(s, 'seconds');
  const rounds = setting.num(s, 'rounds');
  const threads = setting.optNum(s, 'threads');
  const opened: Opened[] = [];
  try {
    for (const it of items) {
      const modelPath = setting.str(it.settings, 'model');
      const folder = await loadModelFolder({ model: modelPath });
      const tooLong = seqLens.filter((n) => n > folder.maxLength);
      if (tooLong.length > 0) {
        throw new InputError(`bench seq ${tooLong.join(',')} is longer than the model's maximum length ${folder.maxLength}`, {
          file: modelPath,
          hint: `set measure.bench.seq (or the step's seq) to lengths of at most ${folder.maxLength}`,
        });
      }
      const inputs = await benchInputs(folder, dataPath);
      opened.push({ modelPath, folder, inputs, session: await NerSession.open(folder.onnxPath, { threads }) });
    }
    const points = seqLens.flatMap((seq) => batchSizes.map((batch) => [seq, batch] as const));
    const title = items.length === 1 ? items[0].ctx.name : `bench (${items.length} models interleaved)`;
    const bar = items[0].ctx.progress(title, points.length * rounds);
    const rows: BenchRow[][] = opened.map(() => []);
    try {
      for (const [p, [seq, batch]] of points.entries()) {
        const feeds = opened.map((o) => makeBenchBatch(o.inputs, seq, batch));
        const stats = await measureInterleaved(
          opened.map((o, m) => () => o.session.runFlat(feeds[m])),
          {
            rounds,
            warmup,
            iterations,
            seconds,
            onRound: (r) => bar.update(p * rounds + r, `seq ${seq} × batch ${batch}, round ${Math.min(r + 1, rounds)}/${rounds}`),
          },
        );
        opened.forEach((_, m) => rows[m].push(benchRow(seq, batch, stats[m])));
      }
    } finally {
      bar.stop();
    }
    const peak = peakRssBytes();
    const outcomes: StepOutcome[] = [];
    for (const [m, o] of opened.entries()) {
      const details: BenchDetails = {
        inputs: o.inputs.source,
        seqLens,
        batchSizes,
        warmup,
        iterations,
        seconds,
        peakRssBytes: peak,
        loadMs: o.session.loadMs,
      };
      const report: Report<BenchDetails, 'bench'> = newReport(
        'bench',
        { model: o.modelPath, data: dataPath ?? null, seq: seqLens, batch: batchSizes, warmup, iterations, seconds, rounds, threads: threads ?? 'default' },
        details,
        { threads },
      );
      const model = await summarizeModel(o.folder, 'model', o.modelPath);
      model.latency = rows[m];
      model.loadMs = o.session.loadMs;
      report.models.push(model);
      const others = items.filter((_, j) => j !== m).map((x) => x.ctx.name);
      if (others.length) report.warnings.push(`timed interleaved with ${others.join(', ')} (${rounds} rounds per point)`);
      outcomes.push({
        outputs: {},
        latency: rows[m],
        model,
        report,
        facts: { loadMs: o.session.loadMs, peakRssBytes: peak, rounds, interleavedWith: others.join(', ') || null },
      });
    }
    return outcomes;
  } finally {
    for (const o of opened) await o.session.close();
  }
}

export const benchStep: StepDefinition = {
  kind: 'bench',
  summary: 'onnxruntime latency (p50/p95/p99) and throughput over sequence lengths × batch sizes, as `ranerc bench`',
  version: 2,
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
    seconds: { type: 'number', min: 0, max: 86400, default: 2, doc: 'time each point for at least this many seconds (per model)' },
    rounds: { type: 'integer', min: 1, max: 1000, default: 5, doc: 'rounds per point; models timed together take turns in each round' },
    threads: { type: 'integer', min: 1, max: 1024, nullable: true, doc: "onnxruntime intra-op threads (default: the recipe's threads)" },
  },
  run: async (ctx, s) => (await runBenchGroup([{ ctx, settings: s }]))[0],
  runTogether: runBenchGroup,
};
