/**
 * `ranerc prune --model DIR --data F --ratio R --out DIR [--iterations K] [--no-labels]
 * [--finetune TRAIN --dev DEV --epochs E] [--ffn-ratio R2] [--eval TEST] ...` — gradient-based
 * attention-head pruning with physical head removal (src/prune/), optionally followed by recovery
 * fine-tuning (src/autodiff/train/). Parses flags, runs `pruneModelFolder`, prints the key table and
 * writes the report folder (report.json, report.md, head-importance.svg, training-curve.svg).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import type { BackendPreference } from '../autodiff/backend.js';
import { renderMarkdown } from '../report/markdown.js';
import { createProgress } from '../report/progress.js';
import { reportProblem, type Report } from '../report/schema.js';
import { fmt, renderTable } from '../report/table.js';
import { reportJson, resolveReportDir } from '../report/write.js';
import { HEATMAP_FILE, pruneModelFolder, type PruneResult } from '../prune/prune.js';
import type { ImportanceLoss } from '../prune/importance.js';
import { pruneToTarget } from '../prune/target-run.js';
import { TARGET_CHART_FILE, targetSummary, verdictText } from '../prune/target-report.js';
import { atomicWriteDir } from '../util/fs.js';
import { action, intOption, numberOption, type CliContext } from './context.js';
import { addReportOptions, addThreadsOption, addWindowOptions, type ReportFlags, type WindowFlags } from './options.js';

interface PruneFlags extends ReportFlags, WindowFlags {
  model: string;
  /** A labels file for a bare .onnx, or false with --no-labels. */
  labels?: string | false;
  vocab?: string;
  data: string;
  importanceLoss?: string;
  ratio?: number;
  out: string;
  iterations?: number;
  targetSpeedup?: number;
  targetLatencyMs?: number;
  minF1?: number;
  maxRounds?: number;
  neuronBlock?: number;
  latencyCache: boolean;
  ffnRatio?: number;
  eval?: string;
  allowEmptyLayers?: boolean;
  skipUnknownTypes?: boolean;
  maxSentences?: number;
  batch: number;
  maxBatchTokens?: number;
  backend: string;
  threads?: number;
  bench: boolean;
  benchSeq: number;
  benchBatch: number;
  benchSeconds: number;
  cacheDir?: string;
  cache: boolean;
  verify: boolean;
  finetune?: string;
  dev?: string;
  epochs?: number;
  lr?: number;
  maxMinutes?: number;
}

const BACKENDS = ['auto', 'tensorflow', 'wasm', 'cpu'];

/** The table printed on the terminal. */
export function pruneSummary(r: PruneResult): string {
  const d = r.details;
  const out: string[] = [];
  out.push(
    renderTable(
      ['layer', 'heads', 'kept', 'removed', ...(d.neurons ? ['FFN'] : [])],
      d.layers.map((l) => [
        String(l.layer),
        `${l.keptHeads.length}/${l.headsBefore}`,
        l.keptHeads.join(' '),
        l.removedHeads.join(' '),
        ...(d.neurons ? [l.ffnBefore === undefined ? '' : `${l.ffnAfter}/${l.ffnBefore}`] : []),
      ]),
      { align: ['right', 'right', 'left', 'left', 'right'] },
    ),
  );
  const p = d.parameters;
  const change = (a: number, b: number) => (a > 0 ? `${(((b - a) / a) * 100).toFixed(1)}%` : '');
  const rows: string[][] = [
    ['heads', String(d.heads.before), String(d.heads.after), change(d.heads.before, d.heads.after)],
    ['attention parameters', fmt.int(p.attentionBefore), fmt.int(p.attentionAfter), change(p.attentionBefore, p.attentionAfter)],
    ['FFN parameters', fmt.int(p.ffnBefore), fmt.int(p.ffnAfter), change(p.ffnBefore, p.ffnAfter)],
    ['all parameters', fmt.int(p.before), fmt.int(p.after), change(p.before, p.after)],
  ];
  const mb = r.report.models[0];
  const ma = r.report.models[r.report.models.length - 1];
  rows.push(['size', fmt.bytes(mb.bytes), fmt.bytes(ma.bytes), change(mb.bytes, ma.bytes)]);
  if (r.f1) {
    rows.push(['F1 % (pruned)', fmt.pct(r.f1.before.micro.f1), fmt.pct(r.f1.pruned.micro.f1), `${((r.f1.pruned.micro.f1 - r.f1.before.micro.f1) * 100).toFixed(2)} pt`]);
    if (r.f1.finetuned) {
      rows.push(['F1 % (fine-tuned)', fmt.pct(r.f1.before.micro.f1), fmt.pct(r.f1.finetuned.micro.f1), `${((r.f1.finetuned.micro.f1 - r.f1.before.micro.f1) * 100).toFixed(2)} pt`]);
    }
  }
  if (d.latency) {
    rows.push([`p50 ms (batch ${d.latency.batch}, seq ${d.latency.seqLen})`, fmt.ms(d.latency.beforeP50Ms), fmt.ms(d.latency.afterP50Ms), change(d.latency.beforeP50Ms, d.latency.afterP50Ms)]);
  }
  out.push(renderTable(['', 'before', 'after', 'change'], rows, { align: ['left', 'right', 'right', 'right'] }));
  if (d.equivalence) out.push(`max |pruned − gated| logits: ${d.equivalence.maxAbsDiff.toExponential(2)}\n`);
  out.push(`model: ${r.outDir}\n`);
  return out.join('\n');
}

const IMPORTANCE_LOSSES = ['ce', 'crf', 'kl'] as const;

/** --importance-loss as the library's kind (undefined: the folder decides). */
export function importanceLossFlag(v: string | undefined): ImportanceLoss | undefined {
  if (v === undefined) return undefined;
  const k = IMPORTANCE_LOSSES.find((x) => x === v);
  if (!k) {
    throw new UsageError(`--importance-loss must be ce, crf or kl, got "${v}"`, {
      hint: 'crf needs crf.json in the folder; kl needs no labels (it compares to the original model)',
    });
  }
  return k;
}

async function runPrune(ctx: CliContext, flags: PruneFlags): Promise<number> {
  if (!BACKENDS.includes(flags.backend)) {
    throw new UsageError(`--backend must be one of ${BACKENDS.join(', ')}, got "${flags.backend}"`, {
      hint: 'auto uses @tensorflow/tfjs-node when installed, else wasm',
    });
  }
  if (flags.targetSpeedup !== undefined || flags.targetLatencyMs !== undefined) return runPruneTarget(ctx, flags);
  if (flags.ratio === undefined) {
    throw new UsageError('prune needs --ratio, --target-speedup or --target-latency-ms', {
      hint: 'e.g. --ratio 0.25 (a quarter of the heads) or --target-speedup 1.33 (heads, FFN neurons and layers chosen by importance per millisecond)',
    });
  }
  for (const [v, f] of [[flags.minF1, '--min-f1'], [flags.maxRounds, '--max-rounds'], [flags.neuronBlock, '--neuron-block']] as const) {
    if (v !== undefined) throw new UsageError(`${f} goes with --target-speedup or --target-latency-ms`, { hint: 'add --target-speedup X' });
  }
  if ((flags.finetune === undefined) !== (flags.dev === undefined)) {
    throw new UsageError('--finetune and --dev go together', {
      hint: 'pass --finetune TRAIN.jsonl --dev DEV.jsonl to fine-tune the pruned model (dev F1 picks the best checkpoint)',
    });
  }
  if (flags.finetune === undefined && (flags.epochs !== undefined || flags.lr !== undefined || flags.maxMinutes !== undefined)) {
    throw new UsageError('--epochs, --lr and --max-minutes need --finetune', { hint: 'add --finetune TRAIN.jsonl --dev DEV.jsonl' });
  }
  const progress = (title: string, total: number) => createProgress(title, total, { interactive: ctx.interactive, json: flags.json });
  const result = await pruneModelFolder({
    model: flags.model,
    labels: typeof flags.labels === 'string' ? flags.labels : undefined,
    vocab: flags.vocab,
    data: flags.data,
    out: flags.out,
    ratio: flags.ratio,
    ffnRatio: flags.ffnRatio,
    iterations: flags.iterations ?? 1,
    allowEmptyLayers: flags.allowEmptyLayers,
    target: flags.labels === false ? 'predicted' : 'gold',
    importanceLoss: importanceLossFlag(flags.importanceLoss),
    skipUnknownTypes: flags.skipUnknownTypes,
    maxSentences: flags.maxSentences,
    eval: flags.eval,
    maxLength: flags.maxLength,
    overlap: flags.overlap,
    batchRows: flags.batch,
    maxBatchTokens: flags.maxBatchTokens,
    backend: flags.backend as BackendPreference,
    threads: flags.threads,
    bench: flags.bench ? { seqLen: flags.benchSeq, batch: flags.benchBatch, seconds: flags.benchSeconds } : false,
    cacheDir: flags.cache ? flags.cacheDir : false,
    verify: flags.verify,
    finetune:
      flags.finetune !== undefined && flags.dev !== undefined
        ? { train: flags.finetune, dev: flags.dev, epochs: flags.epochs, lr: flags.lr, maxMinutes: flags.maxMinutes }
        : undefined,
    progress,
    log: (line) => {
      if (!flags.json) ctx.err(`${line}\n`);
    },
  });
  const report = result.report;
  const pictures: Record<string, string> = { [HEATMAP_FILE]: result.heatmapSvg };
  if (result.finetune) pictures[result.finetune.curveFile] = result.finetune.curveSvg;
  const dir = await writePruneReport(report, flags.reportDir, pictures);
  if (flags.json) ctx.out(reportJson(report));
  else ctx.out(pruneSummary(result));
  for (const w of report.warnings) ctx.err(`warning: ${w}\n`);
  ctx.err(`report: ${dir}\n`);
  return 0;
}

/** The report folder (report.json, report.md and the pictures), checked against the schema and written atomically. */
async function writePruneReport(report: Report, reportDir: string | undefined, pictures: Record<string, string>): Promise<string> {
  const problem = reportProblem(report);
  if (problem) throw new Error(`refusing to write an invalid report: ${problem}`);
  const dir = await resolveReportDir('prune', reportDir);
  await atomicWriteDir(dir, async (tmp) => {
    await writeFile(join(tmp, 'report.json'), reportJson(report));
    await writeFile(join(tmp, 'report.md'), renderMarkdown(report));
    for (const [file, svg] of Object.entries(pictures)) await writeFile(join(tmp, file), svg);
  });
  return dir;
}

/** `--target-speedup` / `--target-latency-ms`: src/prune/target-run.ts. */
async function runPruneTarget(ctx: CliContext, flags: PruneFlags): Promise<number> {
  if (flags.ratio !== undefined || flags.ffnRatio !== undefined) {
    throw new UsageError('--ratio and --ffn-ratio do not go with a latency target', { hint: 'the target chooses how many heads, neurons and layers go; drop --ratio/--ffn-ratio' });
  }
  if (flags.finetune !== undefined && flags.dev === undefined) {
    throw new UsageError('--finetune needs --dev', { hint: 'pass --finetune TRAIN.jsonl --dev DEV.jsonl' });
  }
  if (flags.finetune === undefined && (flags.epochs !== undefined || flags.lr !== undefined || flags.maxMinutes !== undefined)) {
    throw new UsageError('--epochs, --lr and --max-minutes need --finetune', { hint: 'add --finetune TRAIN.jsonl --dev DEV.jsonl' });
  }
  const progress = (title: string, total: number) => createProgress(title, total, { interactive: ctx.interactive, json: flags.json });
  const result = await pruneToTarget({
    model: flags.model,
    labels: typeof flags.labels === 'string' ? flags.labels : undefined,
    vocab: flags.vocab,
    data: flags.data,
    out: flags.out,
    targetSpeedup: flags.targetSpeedup,
    targetLatencyMs: flags.targetLatencyMs,
    seqLen: flags.benchSeq,
    batch: flags.benchBatch,
    rounds: flags.iterations,
    maxRounds: flags.maxRounds,
    minF1: flags.minF1 === undefined ? undefined : flags.minF1 / 100,
    dev: flags.dev,
    recovery: flags.finetune !== undefined ? { train: flags.finetune, epochs: flags.epochs ?? 1, lr: flags.lr, maxMinutes: flags.maxMinutes } : undefined,
    eval: flags.eval,
    neuronBlock: flags.neuronBlock,
    target: flags.labels === false ? 'predicted' : 'gold',
    importanceLoss: importanceLossFlag(flags.importanceLoss),
    skipUnknownTypes: flags.skipUnknownTypes,
    maxSentences: flags.maxSentences,
    maxLength: flags.maxLength,
    overlap: flags.overlap,
    batchRows: flags.batch,
    maxBatchTokens: flags.maxBatchTokens,
    backend: flags.backend as BackendPreference,
    threads: flags.threads,
    benchSeconds: flags.benchSeconds,
    costSeconds: Math.min(3, flags.benchSeconds / 2),
    latencyCacheDir: flags.latencyCache ? undefined : false,
    progress,
    log: (line) => {
      if (!flags.json) ctx.err(`${line}\n`);
    },
  });
  const report = result.report;
  const dir = await writePruneReport(report, flags.reportDir, { [TARGET_CHART_FILE]: result.chartSvg });
  if (flags.json) ctx.out(reportJson(report));
  else {
    const d = result.details;
    const lines = [targetSummary(d), `${verdictText(d.verdict)}; round ${d.chosenRound} written`];
    if (result.f1) lines.push(`test F1 ${fmt.pct(result.f1.before.micro.f1)} → ${fmt.pct(result.f1.after.micro.f1)} (${((result.f1.after.micro.f1 - result.f1.before.micro.f1) * 100).toFixed(2)} pt)`);
    lines.push(`model: ${result.outDir}`, '');
    ctx.out(lines.join('\n'));
  }
  for (const w of report.warnings) ctx.err(`warning: ${w}\n`);
  ctx.err(`report: ${dir}\n`);
  return result.details.verdict === 'target-met' ? 0 : 1;
}

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('prune')
    .description('remove the least important attention heads (gradient importance, Michel et al. 2019) from the ONNX graph');
  cmd
    .requiredOption('-m, --model <path>', 'model folder (model.onnx + config.json + vocab.txt), or a bare .onnx file')
    .option('--labels <file>', 'labels for a bare .onnx: one per line, or a JSON file with id2label')
    .option('--vocab <file>', 'vocab.txt for a bare .onnx')
    .requiredOption('-d, --data <file>', 'sentences to measure head importance on (JSONL or CoNLL; gold entities unless --no-labels)')
    .option('--ratio <r>', 'fraction of all heads to remove: round(r × heads)', numberOption('--ratio', 0, 1))
    .requiredOption('-o, --out <dir>', 'output model folder')
    .option('--target-speedup <x>', 'instead of --ratio: remove heads, FFN neuron blocks and whole layers (least importance per millisecond saved) until original p50 ÷ pruned p50 ≥ x at --bench-seq × --bench-batch', numberOption('--target-speedup', 1, 1000))
    .option('--target-latency-ms <t>', 'instead of --ratio: prune until the p50 at --bench-seq × --bench-batch is at most t ms', numberOption('--target-latency-ms', 0, 1e7))
    .option('--min-f1 <pct>', 'with a target: stop when dev F1 (--dev) falls below this many percent; the round before is written', numberOption('--min-f1', 0, 100))
    .option('--max-rounds <k>', 'with a target: most rounds in all (default --iterations + 3)', intOption('--max-rounds', 1, 1000))
    .option('--neuron-block <n>', 'with a target: FFN neurons removed together (default intermediate size ÷ 32)', intOption('--neuron-block', 1))
    .option('--no-latency-cache', 'with a target: measure the cost model again instead of reading ~/.cache/ranerc/latency')
    .option('--iterations <k>', 'prune in k rounds, rescoring between them (default 1; with a target 3, each followed by recovery with --finetune)', intOption('--iterations', 1, 1000))
    .option('--importance-loss <kind>', 'crf (CRF NLL; default with crf.json), ce (token cross-entropy; default otherwise) or kl (label-free, KL to the original logits; best for later --iterations rounds)')
    .option('--no-labels', "score with the loss to the model's own argmax predictions instead of gold labels")
    .option('--ffn-ratio <r>', 'also remove this fraction of all FFN intermediate neurons', numberOption('--ffn-ratio', 0, 0.99))
    .option('--eval <file>', 'labelled test data: F1 before → pruned (→ fine-tuned)')
    .option('--finetune <train>', 'recover accuracy: fine-tune the pruned model on this labelled data (needs --dev)')
    .option('--dev <file>', 'labelled dev data for --finetune (the best dev-F1 checkpoint is written)')
    .option('--epochs <n>', 'fine-tuning epochs (default: as ranerc finetune)', intOption('--epochs', 1, 1000))
    .option('--lr <x>', 'fine-tuning peak learning rate (default: as ranerc finetune)', numberOption('--lr', 0, 1))
    .option('--max-minutes <m>', 'stop fine-tuning after this many minutes', numberOption('--max-minutes', 0, 100000))
    .option('--allow-empty-layers', 'allow removing every head of a layer (its attention output becomes the output bias)')
    .option('--skip-unknown-types', 'ignore gold entities whose type the model lacks (default: error)')
    .option('--max-sentences <n>', 'score at most the first n sentences of --data', intOption('--max-sentences', 1))
    .option('--batch <n>', 'rows per gradient batch', intOption('--batch', 1, 4096), 16)
    .option('--max-batch-tokens <n>', 'padded tokens per gradient batch (default: sized for the tfjs wasm heap from the model shape, at most 4096)', intOption('--max-batch-tokens', 1))
    .option('--backend <name>', 'tfjs backend for the gradients: auto, tensorflow, wasm or cpu', 'auto')
    .option('--no-bench', 'skip the before/after latency comparison')
    .option('--bench-seq <n>', 'latency comparison: tokens per sequence', intOption('--bench-seq', 2), 128)
    .option('--bench-batch <n>', 'latency comparison: sequences per run', intOption('--bench-batch', 1), 1)
    .option('--bench-seconds <s>', 'latency comparison: time both models for at least this long', numberOption('--bench-seconds', 0, 86400), 6)
    .option('--cache-dir <dir>', 'importance cache (default ~/.cache/ranerc/importance)')
    .option('--no-cache', 'do not read or write the importance cache')
    .option('--no-verify', 'skip the pruned-vs-gated logits check');
  addWindowOptions(cmd);
  addThreadsOption(cmd);
  addReportOptions(cmd);
  cmd.action(action(ctx, 'prune', (opts: PruneFlags) => runPrune(ctx, opts)));
}
