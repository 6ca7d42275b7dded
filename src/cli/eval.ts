/**
 * `ranerc eval --model DIR --data FILE` — entity-level precision/recall/F1 (micro and per type) of a
 * model on labelled data, with the shared prediction pipeline; writes report.json/md.
 */
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import type { F1Scores } from '../ner/types.js';
import { newReport } from '../report/environment.js';
import { withProgress } from '../report/progress.js';
import type { EvalDetails, Report } from '../report/schema.js';
import { fmt, renderTable } from '../report/table.js';
import { evaluateFolder } from '../runtime/evaluate.js';
import { action, intOption, type CliContext } from './context.js';
import {
  addModelOptions,
  addReportOptions,
  addThreadsOption,
  addWindowOptions,
  windowOptions,
  type WindowFlags,
  emitReport,
  openModelFolder,
  type ModelFlags,
  type ReportFlags,
} from './options.js';

interface EvalFlags extends ModelFlags, ReportFlags, WindowFlags {
  data: string;
  mode: string;
  batch: number;
  skipUnknownTypes?: boolean;
  /** false with --no-crf */
  crf: boolean;
}

/** The per-type + micro table printed on the terminal. */
export function scoresTable(scores: F1Scores): string {
  const types = Object.keys(scores.perType).sort();
  const row = (name: string, p: F1Scores['micro']) => [
    name,
    fmt.pct(p.precision),
    fmt.pct(p.recall),
    fmt.pct(p.f1),
    String(p.gold),
    String(p.pred),
    String(p.tp),
  ];
  return renderTable(
    ['type', 'P %', 'R %', 'F1 %', 'gold', 'pred', 'tp'],
    [...types.map((t) => row(t, scores.perType[t])), row('micro', scores.micro)],
    { align: ['left', 'right', 'right', 'right', 'right', 'right', 'right'] },
  );
}

async function runEval(ctx: CliContext, flags: EvalFlags): Promise<number> {
  if (flags.mode !== 'default' && flags.mode !== 'strict') {
    throw new UsageError(`--mode must be "default" or "strict", got "${flags.mode}"`, {
      hint: 'default = seqeval/conlleval lenient chunks; strict = only well-formed chunks of the label scheme',
    });
  }
  const mode = flags.mode;
  const folder = await openModelFolder(flags);
  const evaluation = await withProgress('eval', 0, { interactive: ctx.interactive, json: flags.json }, (bar) =>
    evaluateFolder(folder, flags.model, flags.data, {
      ...windowOptions(flags),
      threads: flags.threads,
      batchSize: flags.batch,
      mode,
      noCrf: flags.crf === false,
      skipUnknownTypes: flags.skipUnknownTypes,
      onProgress: (done, total) => {
        bar.setTotal(total);
        bar.update(done, 'sentences');
      },
    }),
  );
  const { scores, details } = evaluation;
  const report: Report<EvalDetails, 'eval'> = newReport(
    'eval',
    {
      model: flags.model,
      data: flags.data,
      mode,
      batch: flags.batch,
      skipUnknownTypes: Boolean(flags.skipUnknownTypes),
      crf: details.decoder === 'crf',
      threads: flags.threads ?? 'default',
    },
    details,
    { threads: flags.threads },
  );
  report.models.push(evaluation.model);
  report.data = { files: [evaluation.data] };
  report.warnings.push(...evaluation.warnings);
  const head =
    `${flags.model} on ${flags.data}: ${fmt.int(evaluation.sentences)} sentences, ${fmt.int(scores.micro.gold)} gold entities, ` +
    `decoder ${details.decoder}, mode ${mode}\n\n`;
  await emitReport(ctx, report, flags, head + scoresTable(scores));
  return 0;
}

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('eval')
    .description('entity-level precision/recall/F1 (micro and per type) of a model on labelled data');
  addModelOptions(cmd);
  cmd
    .requiredOption('-d, --data <file>', 'labelled data: JSONL {"text", "entities":[{"start","end","type"}]} or CoNLL')
    .option('--mode <mode>', 'chunk decoding: default (seqeval/conlleval lenient) or strict', 'default')
    .option('--batch <n>', 'windows per onnxruntime run', intOption('--batch', 1, 4096), 32)
    .option('--skip-unknown-types', 'skip gold entities whose type the model lacks (default: error)')
    .option('--no-crf', 'decode with argmax even when the folder has crf.json');
  addWindowOptions(cmd);
  addThreadsOption(cmd);
  addReportOptions(cmd);
  cmd.action(action(ctx, 'eval', (opts: EvalFlags) => runEval(ctx, opts)));
}
