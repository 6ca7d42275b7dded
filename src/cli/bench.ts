/**
 * `ranerc bench --model DIR` — onnxruntime latency (p50/p95/p99) and throughput over a grid of sequence
 * lengths × batch sizes, model load time and peak RSS; writes report.json/md.
 */
import { Option, type Command } from 'commander';
import { UsageError } from '../errors.js';
import { readExamples } from '../ner/data.js';
import { loadTokenizer } from '../ner/tokenizers/index.js';
import { newReport } from '../report/environment.js';
import { summarizeModel } from '../report/models.js';
import { withProgress } from '../report/progress.js';
import type { BenchDetails, Report } from '../report/schema.js';
import { fmt, renderTable } from '../report/table.js';
import { benchModel, peakRssBytes, syntheticBenchInputs, textBenchInputs, type BenchInputs, type BenchRow } from '../runtime/bench.js';
import { NerSession } from '../runtime/session.js';
import { action, intListOption, intOption, numberOption, type CliContext } from './context.js';
import {
  addModelOptions,
  addReportOptions,
  addThreadsOption,
  emitReport,
  openModelFolder,
  type ModelFlags,
  type ReportFlags,
} from './options.js';

interface BenchFlags extends ModelFlags, ReportFlags {
  data?: string;
  seq: number[];
  batch: number[];
  warmup: number;
  iterations?: number;
  seconds?: number;
}

/** Defaults: at least 10 timed runs per point, and at least 3 s unless --iterations is given alone. */
export function benchBudget(flags: { iterations?: number; seconds?: number }): { iterations: number; minSeconds: number } {
  return {
    iterations: flags.iterations ?? 10,
    minSeconds: flags.seconds ?? (flags.iterations === undefined ? 3 : 0),
  };
}

/** The latency table printed on the terminal. */
export function benchTable(rows: BenchRow[]): string {
  return renderTable(
    ['seq', 'batch', 'p50 ms', 'p95 ms', 'p99 ms', 'mean ms', 'sent/s', 'tokens/s', 'runs'],
    rows.map((r) => [
      String(r.seqLen),
      String(r.batch),
      fmt.ms(r.p50Ms),
      fmt.ms(r.p95Ms),
      fmt.ms(r.p99Ms),
      fmt.ms(r.meanMs),
      fmt.rate(r.sentencesPerSec),
      fmt.rate(r.tokensPerSec),
      String(r.iterations),
    ]),
    { align: ['right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'] },
  );
}

async function runBench(ctx: CliContext, flags: BenchFlags): Promise<number> {
  const folder = await openModelFolder(flags);
  const tooLong = flags.seq.filter((s) => s > folder.maxLength || s < 3);
  if (tooLong.length > 0) {
    throw new UsageError(`--seq ${tooLong.join(',')} outside [3, ${folder.maxLength}] (the model's maximum length)`, {
      hint: `pick sequence lengths (tokens incl. [CLS]/[SEP]) of at most ${folder.maxLength}`,
    });
  }
  const tokenizer = await loadTokenizer(folder);
  let inputs: BenchInputs;
  if (flags.data !== undefined) {
    const data = await readExamples(flags.data, { unknownTypes: 'skip' });
    const real = textBenchInputs(
      tokenizer,
      data.examples.map((e) => e.text),
    );
    if (real.sequences.length === 0) {
      throw new UsageError('the data file has no text to take token ids from', {
        hint: 'pass a JSONL/CoNLL file with sentences, or leave --data out for synthetic ids',
      });
    }
    inputs = real;
  } else {
    inputs = syntheticBenchInputs(tokenizer);
  }
  const budget = benchBudget(flags);
  const session = await NerSession.open(folder.onnxPath, { threads: flags.threads });
  let rows: BenchRow[];
  let peak: number;
  try {
    const total = flags.seq.length * flags.batch.length;
    rows = await withProgress('bench', total, { interactive: ctx.interactive, json: flags.json }, (bar) =>
      benchModel(session, {
        seqLens: flags.seq,
        batchSizes: flags.batch,
        inputs,
        warmup: flags.warmup,
        iterations: budget.iterations,
        minSeconds: budget.minSeconds,
        onPoint: (i, _n, seq, batch) => bar.update(i, `seq ${seq} × batch ${batch}`),
      }),
    );
    // Read the high-water mark before summarizeModel decodes the model in JS.
    peak = peakRssBytes();
  } finally {
    await session.close();
  }
  const details: BenchDetails = {
    inputs: inputs.source,
    seqLens: flags.seq,
    batchSizes: flags.batch,
    warmup: flags.warmup,
    iterations: budget.iterations,
    seconds: budget.minSeconds,
    peakRssBytes: peak,
    loadMs: session.loadMs,
  };
  const report: Report<BenchDetails, 'bench'> = newReport(
    'bench',
    {
      model: flags.model,
      data: flags.data ?? null,
      seq: flags.seq,
      batch: flags.batch,
      warmup: flags.warmup,
      iterations: budget.iterations,
      seconds: budget.minSeconds,
      threads: flags.threads ?? 'default',
    },
    details,
    { threads: flags.threads },
  );
  const model = await summarizeModel(folder, 'model', flags.model);
  model.latency = rows;
  model.loadMs = session.loadMs;
  report.models.push(model);
  const head =
    `${flags.model}: ${fmt.bytes(model.bytes)}, ${model.parameters === undefined ? '?' : fmt.int(model.parameters)} parameters, ` +
    `load ${fmt.ms(session.loadMs)} ms, peak RSS ${fmt.bytes(peak)}, ${inputs.source} inputs, threads ${flags.threads ?? 'default'}\n\n`;
  await emitReport(ctx, report, flags, head + benchTable(rows));
  return 0;
}

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('bench')
    .description('latency percentiles, throughput, load time and peak memory of a model under onnxruntime');
  addModelOptions(cmd);
  cmd
    .option('-d, --data <file>', 'take token ids from these sentences (default: seeded random ids)')
    .addOption(
      new Option('--seq <list>', 'sequence lengths incl. [CLS]/[SEP], comma-separated')
        .argParser(intListOption('--seq', 3))
        .default([64, 128], '64,128'),
    )
    .addOption(new Option('--batch <list>', 'batch sizes, comma-separated').argParser(intListOption('--batch', 1)).default([1, 8], '1,8'))
    .option('--warmup <n>', 'untimed runs per point', intOption('--warmup', 0, 100000), 5)
    .option('--iterations <n>', 'timed runs per point (default: at least 10, and at least 3 s)', intOption('--iterations', 1, 10000000))
    .option('--seconds <s>', 'time each point for at least this long', numberOption('--seconds', 0, 86400));
  addThreadsOption(cmd);
  addReportOptions(cmd);
  cmd.action(action(ctx, 'bench', (opts: BenchFlags) => runBench(ctx, opts)));
}
