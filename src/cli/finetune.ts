/**
 * `ranerc finetune --model DIR --train F --dev F --out DIR [--epochs] [--lr] [--batch] [--max-minutes]
 * [--seed] [--backend] ...` — fine-tune every float initializer of the ONNX graph through the tfjs
 * executor (src/autodiff/train/). Parses flags, runs `finetuneModelFolder` with a progress bar (loss,
 * tokens/s, dev F1), prints the before/after table and writes the report folder (report.json,
 * report.md, training-curve.svg).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import type { BackendPreference } from '../autodiff/backend.js';
import { CURVE_FILE, finetuneModelFolder, type FinetuneProgress, type FinetuneResult } from '../autodiff/train/finetune.js';
import { renderMarkdown } from '../report/markdown.js';
import { createProgress, type Progress } from '../report/progress.js';
import { reportProblem } from '../report/schema.js';
import { fmt, renderTable } from '../report/table.js';
import { reportJson, resolveReportDir } from '../report/write.js';
import { atomicWriteDir } from '../util/fs.js';
import { action, intOption, numberOption, type CliContext } from './context.js';
import { addReportOptions, addThreadsOption, addWindowOptions, type ReportFlags, type WindowFlags } from './options.js';

interface FinetuneFlags extends ReportFlags, WindowFlags {
  model: string;
  labels?: string;
  vocab?: string;
  train: string;
  dev: string;
  out: string;
  epochs: number;
  lr: number;
  batch: number;
  maxBatchTokens?: number;
  warmupRatio: number;
  weightDecay: number;
  clipNorm: number;
  maxMinutes?: number;
  seed: number;
  backend: string;
  freeze?: string;
  evalEvery?: number;
  loss: string;
  skipUnknownTypes?: boolean;
  threads?: number;
}

const BACKENDS = ['auto', 'tensorflow', 'wasm', 'cpu'];
const LOSSES = ['auto', 'ce', 'crf'];

/** The table printed on the terminal. */
export function finetuneSummary(r: FinetuneResult): string {
  const { before, after } = r.f1;
  const d = r.details;
  const types = [...new Set([...Object.keys(before.perType), ...Object.keys(after.perType)])].sort();
  const row = (name: string, a: { f1: number } | undefined, b: { f1: number } | undefined) => [
    name,
    a ? fmt.pct(a.f1) : '',
    b ? fmt.pct(b.f1) : '',
    a && b ? `${b.f1 >= a.f1 ? '+' : ''}${((b.f1 - a.f1) * 100).toFixed(2)}` : '',
  ];
  const table = renderTable(
    ['dev F1 %', 'before', 'after', 'change'],
    [...types.map((t) => row(t, before.perType[t], after.perType[t])), row('micro', before.micro, after.micro)],
    { align: ['left', 'right', 'right', 'right'] },
  );
  const lines = [
    table,
    `${fmt.int(d.steps)} steps (${d.epochsRun.toFixed(2)} epochs) in ${d.trainSeconds.toFixed(1)} s on tfjs ${d.backend}: ` +
      `${fmt.rate(d.tokensPerSec)} tokens/s; best checkpoint step ${d.best.step}${d.best.step === 0 ? ' (the starting model)' : ''}`,
    `model: ${r.outDir}`,
    '',
  ];
  return lines.join('\n');
}

/** Progress bar text: step, loss, tokens/s, dev F1. */
function progressLabel(p: FinetuneProgress): string {
  const parts = [`epoch ${p.epoch}`, `loss ${p.loss.toFixed(4)}`, `${fmt.rate(p.tokensPerSec)} tok/s`];
  if (p.devF1 !== undefined) parts.push(`dev F1 ${fmt.pct(p.devF1)}`);
  parts.push(`best ${fmt.pct(p.bestF1)}`);
  if (p.phase === 'eval') parts.push('(evaluated)');
  return parts.join(' · ');
}

async function runFinetune(ctx: CliContext, flags: FinetuneFlags): Promise<number> {
  if (!BACKENDS.includes(flags.backend)) {
    throw new UsageError(`--backend must be one of ${BACKENDS.join(', ')}, got "${flags.backend}"`, {
      hint: 'auto uses @tensorflow/tfjs-node when installed, else wasm',
    });
  }
  if (!LOSSES.includes(flags.loss)) {
    throw new UsageError(`--loss must be one of ${LOSSES.join(', ')}, got "${flags.loss}"`, {
      hint: 'auto trains the CRF negative log-likelihood when the folder has crf.json, else token cross-entropy',
    });
  }
  const freeze = flags.freeze === undefined ? [] : flags.freeze.split(',').map((s) => s.trim()).filter((s) => s !== '');
  let bar: Progress | undefined;
  let result: FinetuneResult;
  try {
    result = await finetuneModelFolder({
      model: flags.model,
      labels: flags.labels,
      vocab: flags.vocab,
      train: flags.train,
      dev: flags.dev,
      out: flags.out,
      epochs: flags.epochs,
      lr: flags.lr,
      batch: flags.batch,
      maxBatchTokens: flags.maxBatchTokens,
      warmupRatio: flags.warmupRatio,
      weightDecay: flags.weightDecay,
      clipNorm: flags.clipNorm,
      maxMinutes: flags.maxMinutes,
      seed: flags.seed,
      backend: flags.backend as BackendPreference,
      freeze,
      evalEvery: flags.evalEvery,
      loss: flags.loss as 'auto' | 'ce' | 'crf',
      maxLength: flags.maxLength,
      overlap: flags.overlap,
      skipUnknownTypes: flags.skipUnknownTypes,
      threads: flags.threads,
      onProgress: (p) => {
        bar ??= createProgress('finetune', p.totalSteps, { interactive: ctx.interactive, json: flags.json });
        bar.update(p.step, progressLabel(p));
      },
      log: (line) => {
        if (flags.json) return;
        if (bar?.visible) return; // the bar carries the news while it is drawn
        ctx.err(`${line}\n`);
      },
    });
  } finally {
    (bar as Progress | undefined)?.stop();
  }
  const report = result.report;
  const problem = reportProblem(report);
  if (problem) throw new Error(`refusing to write an invalid report: ${problem}`);
  const dir = await resolveReportDir('finetune', flags.reportDir);
  await atomicWriteDir(dir, async (tmp) => {
    await writeFile(join(tmp, 'report.json'), reportJson(report));
    await writeFile(join(tmp, 'report.md'), renderMarkdown(report));
    await writeFile(join(tmp, CURVE_FILE), result.curveSvg);
  });
  if (flags.json) ctx.out(reportJson(report));
  else ctx.out(finetuneSummary(result));
  for (const w of report.warnings) ctx.err(`warning: ${w}\n`);
  ctx.err(`report: ${dir}\n`);
  return 0;
}

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('finetune')
    .description('fine-tune every weight of the ONNX model (tfjs autodiff: AdamW, token cross-entropy or CRF NLL), keep the best dev-F1 checkpoint');
  cmd
    .requiredOption('-m, --model <path>', 'model folder (model.onnx + config.json + vocab.txt), or a bare .onnx file')
    .option('--labels <file>', 'labels for a bare .onnx: one per line, or a JSON file with id2label')
    .option('--vocab <file>', 'vocab.txt for a bare .onnx')
    .requiredOption('--train <file>', 'labelled training data (JSONL {"text", "entities"} or CoNLL)')
    .requiredOption('--dev <file>', 'labelled dev data: F1 for picking the best checkpoint')
    .requiredOption('-o, --out <dir>', 'output model folder (same graph, new weights)')
    .option('--epochs <n>', 'passes over the training data', intOption('--epochs', 1, 1000), 3)
    .option('--lr <x>', 'peak learning rate (AdamW)', numberOption('--lr', 0, 1), 5e-5)
    .option('--batch <n>', 'sentence windows per optimizer step', intOption('--batch', 1, 65536), 32)
    .option('--max-batch-tokens <n>', 'padded tokens per micro-batch (gradient accumulation above it; default: what the tfjs heap holds)', intOption('--max-batch-tokens', 3))
    .option('--warmup-ratio <r>', 'fraction of the steps spent warming the learning rate up', numberOption('--warmup-ratio', 0, 0.999), 0.1)
    .option('--weight-decay <x>', 'decoupled weight decay on weight matrices', numberOption('--weight-decay', 0, 0.999), 0.01)
    .option('--clip-norm <x>', 'clip the global gradient norm to this (0: no clipping)', numberOption('--clip-norm', 0), 1)
    .option('--max-minutes <m>', 'stop after this many minutes of training steps (dev evaluations not counted); the learning rate decays to the deadline', numberOption('--max-minutes', 0))
    .option('--seed <n>', 'seed of the batch order', intOption('--seed', 0, 2 ** 31 - 1), 42)
    .option('--backend <name>', 'tfjs backend: auto, tensorflow, wasm or cpu', 'auto')
    .option('--freeze <names>', 'keep initializers whose name contains any of these comma-separated strings fixed (e.g. embeddings)')
    .option('--eval-every <n>', 'evaluate on --dev every n steps (default: after each epoch)', intOption('--eval-every', 1))
    .option('--loss <kind>', 'auto (CRF NLL when the folder has crf.json, else token cross-entropy), ce or crf', 'auto')
    .option('--skip-unknown-types', 'ignore gold entities whose type the model lacks (default: error)');
  addWindowOptions(cmd);
  addThreadsOption(cmd);
  addReportOptions(cmd);
  cmd.action(action(ctx, 'finetune', (opts: FinetuneFlags) => runFinetune(ctx, opts)));
}
