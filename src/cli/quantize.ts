/**
 * `ranerc quantize --model DIR --calib data.jsonl --out DIR` — INT8 quantization that rewrites the ONNX
 * graph (static QDQ by default; QOperator; dynamic), with F1 before/after and an accuracy guard, sizes,
 * latency before/after and a per-node SQNR table in report.json/md. The work is `quantizeModelFolder`
 * (src/quantize/); this file parses flags and prints.
 */
import type { Command } from 'commander';
import { ExitCode, UsageError } from '../errors.js';
import { autoQuantizeModelFolder } from '../quantize/auto.js';
import { quantizeModelFolder, type CalibrationMethod, type QuantFormat } from '../quantize/index.js';
import { DEFAULT_PERCENTILE } from '../quantize/calibrate.js';
import { quantizeSummary } from '../quantize/report.js';
import { createProgress } from '../report/progress.js';
import { action, intListOption, intOption, numberOption, type CliContext } from './context.js';
import {
  addModelOptions,
  addReportOptions,
  addThreadsOption,
  addWindowOptions,
  emitReport,
  type ModelFlags,
  type ReportFlags,
  type WindowFlags,
} from './options.js';

interface QuantizeFlags extends ModelFlags, ReportFlags, WindowFlags {
  out: string;
  calib?: string;
  calibSize?: number;
  method: string;
  percentile: number;
  format?: string;
  perChannel?: boolean;
  exclude?: string[];
  dynamic?: boolean;
  eval?: string;
  maxF1Drop?: number;
  maxTries: number;
  sqnrSize?: number;
  batch: number;
  seq: number[];
  benchBatch: number[];
  benchSeconds: number;
  /** false with --no-bench */
  bench: boolean;
  /** false with --no-profile */
  profile: boolean;
}

const METHODS: readonly CalibrationMethod[] = ['minmax', 'percentile', 'entropy'];
const FORMATS: readonly (QuantFormat | 'auto')[] = ['qdq', 'qoperator', 'auto'];

async function runQuantize(ctx: CliContext, flags: QuantizeFlags): Promise<number> {
  if (!(METHODS as readonly string[]).includes(flags.method)) {
    throw new UsageError(`--method must be one of ${METHODS.join(', ')}, got "${flags.method}"`, {
      hint: 'minmax (default) uses the observed range; percentile and entropy clip outliers',
    });
  }
  if (flags.format !== undefined && !(FORMATS as readonly string[]).includes(flags.format)) {
    throw new UsageError(`--format must be qdq, qoperator or auto, got "${flags.format}"`, {
      hint: 'qdq (default) keeps float ops between QuantizeLinear/DequantizeLinear pairs; qoperator writes QLinearMatMul/MatMulInteger; auto times QDQ, QOperator, dynamic and weights-only against the float model and keeps the fastest not slower than it',
    });
  }
  const exclude = (flags.exclude ?? []).flatMap((e) => e.split(',')).map((e) => e.trim()).filter((e) => e.length > 0);
  const settings: Record<string, unknown> = {
    model: flags.model,
    out: flags.out,
    calib: flags.calib ?? null,
    calibSize: flags.calibSize ?? null,
    method: flags.dynamic ? null : flags.method,
    percentile: flags.method === 'percentile' && !flags.dynamic ? flags.percentile : null,
    format: flags.dynamic ? 'qoperator' : (flags.format ?? 'qdq'),
    perChannel: Boolean(flags.perChannel),
    exclude,
    dynamic: Boolean(flags.dynamic),
    eval: flags.eval ?? null,
    maxF1Drop: flags.maxF1Drop ?? null,
    maxTries: flags.maxTries,
    batch: flags.batch,
    bench: flags.bench ? { seq: flags.seq, batch: flags.benchBatch, seconds: flags.benchSeconds } : false,
    threads: flags.threads ?? 'default',
  };
  const auto = flags.format === 'auto';
  const result = await (auto ? autoQuantizeModelFolder : quantizeModelFolder)({
    model: flags.model,
    labels: flags.labels,
    vocab: flags.vocab,
    out: flags.out,
    calib: flags.calib,
    calibSize: flags.calibSize,
    method: flags.method as CalibrationMethod,
    percentile: flags.percentile,
    format: auto ? undefined : (flags.format as QuantFormat | undefined),
    perChannel: flags.perChannel,
    exclude,
    dynamic: flags.dynamic,
    eval: flags.eval,
    maxF1Drop: flags.maxF1Drop,
    maxTries: flags.maxTries,
    sqnrSize: flags.sqnrSize,
    threads: flags.threads,
    bench: flags.bench,
    profile: flags.profile,
    seqLens: flags.seq,
    batchSizes: flags.benchBatch,
    benchSeconds: flags.benchSeconds,
    batchSize: flags.batch,
    maxLength: flags.maxLength,
    overlap: flags.overlap,
    progress: (title, total) => createProgress(title, total, { interactive: ctx.interactive, json: flags.json }),
    settings,
  });
  await emitReport(ctx, result.report, flags, `${quantizeSummary(result.report)}\nwrote ${result.outDir}\n`);
  return result.budgetMet === false ? ExitCode.GATE : ExitCode.OK;
}

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('quantize')
    .description('INT8-quantize a model (static QDQ by default): calibrate, rewrite the graph, check F1 and latency');
  addModelOptions(cmd);
  cmd
    .requiredOption('-o, --out <dir>', 'folder to write the quantized model folder to (config, vocab, crf.json carried over)')
    .option('-c, --calib <file>', 'calibration sentences: JSONL {"text": ...}, CoNLL, or .txt one per line (needed for static mode)')
    .option('--calib-size <n>', 'use the first N calibration sentences', intOption('--calib-size', 1))
    .option('--method <name>', 'activation range calibration: minmax, percentile or entropy', 'minmax')
    .option('--percentile <p>', 'percentile kept by --method percentile', numberOption('--percentile', 50, 100), DEFAULT_PERCENTILE)
    .option('--format <fmt>', 'qdq (QuantizeLinear/DequantizeLinear pairs, default), qoperator (QLinearMatMul/MatMulInteger), or auto (build QDQ, QOperator, dynamic and weights-only, time them against the float model at --seq × --bench-batch, keep the fastest that is not slower; else the float graph)')
    .option('--per-channel', 'one weight scale per output channel (opset >= 13)')
    .option('--exclude <names...>', 'node names or op types to keep in float (space- or comma-separated)')
    .option('--dynamic', 'dynamic quantization (DynamicQuantizeLinear + MatMulInteger), no calibration')
    .option('--eval <file>', 'labelled data: F1 of the float and the int8 model')
    .option('--max-f1-drop <points>', 'accuracy budget (needs --eval): return the worst nodes to float until F1 drops at most this many points', numberOption('--max-f1-drop', 0, 100))
    .option('--max-tries <n>', 'accuracy-guard retries at most', intOption('--max-tries', 1, 64), 5)
    .option('--sqnr-size <n>', 'calibration sentences the per-node SQNR table is measured on (default 16)', intOption('--sqnr-size', 0))
    .option('--batch <n>', 'windows per onnxruntime run (calibration and --eval)', intOption('--batch', 1, 4096), 32)
    .option('--seq <list>', 'latency: sequence lengths incl. [CLS]/[SEP]', intListOption('--seq', 3), [64])
    .option('--bench-batch <list>', 'latency: batch sizes', intListOption('--bench-batch', 1), [1])
    .option('--bench-seconds <s>', 'latency: timed seconds per model and point (alternating rounds)', numberOption('--bench-seconds', 0.1, 3600), 4)
    .option('--no-bench', 'skip the latency comparison')
    .option('--no-profile', "skip onnxruntime's per-node profile of both models (time by op type, GEMM share, speed-up bound) after the latency comparison");
  addWindowOptions(cmd);
  addThreadsOption(cmd);
  addReportOptions(cmd);
  cmd.action(action(ctx, 'quantize', (opts: QuantizeFlags) => runQuantize(ctx, opts)));
}
