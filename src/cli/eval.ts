/**
 * `ranerc eval --model DIR --data FILE` — entity-level precision/recall/F1 (micro and per type) of a
 * model on labelled data, with the shared prediction pipeline; writes report.json/md.
 */
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { unalignedEntities } from '../ner/align.js';
import { readExamples } from '../ner/data.js';
import { scoreSpans } from '../ner/metrics.js';
import type { F1Scores } from '../ner/types.js';
import { newReport } from '../report/environment.js';
import { summarizeData, summarizeModel } from '../report/models.js';
import { withProgress } from '../report/progress.js';
import type { EvalDetails, Report } from '../report/schema.js';
import { fmt, renderTable } from '../report/table.js';
import { Predictor } from '../runtime/predict.js';
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
  const predictor = await Predictor.open(folder, {
    ...windowOptions(flags),
    threads: flags.threads,
    batchSize: flags.batch,
    mode,
    noCrf: flags.crf === false,
  });
  try {
    const data = await readExamples(flags.data, {
      types: predictor.labels.types,
      unknownTypes: flags.skipUnknownTypes ? 'skip' : 'error',
    });
    const texts = data.examples.map((e) => e.text);
    const t0 = performance.now();
    const results = await withProgress('eval', texts.length, { interactive: ctx.interactive, json: flags.json }, (bar) => {
      predictor.onProgress = (done) => bar.update(done, 'sentences');
      return predictor.predictWithTokens(texts);
    });
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
      {
        model: flags.model,
        data: flags.data,
        mode,
        batch: flags.batch,
        skipUnknownTypes: Boolean(flags.skipUnknownTypes),
        crf: predictor.decoder === 'crf',
        threads: flags.threads ?? 'default',
      },
      details,
      { threads: flags.threads },
    );
    const model = await summarizeModel(folder, 'model', flags.model);
    model.f1 = scores;
    model.loadMs = predictor.session.loadMs;
    report.models.push(model);
    report.data = {
      files: [
        await summarizeData(flags.data, {
          format: data.format,
          sentences: data.examples.length,
          entities: gold.reduce((n, g) => n + g.length, 0),
          skipped: data.skipped.length,
          unalignedGold: unaligned,
        }),
      ],
    };
    if (data.skipped.length > 0) {
      const first = data.skipped[0];
      report.warnings.push(
        `${data.skipped.length} gold entit${data.skipped.length === 1 ? 'y was' : 'ies were'} skipped ` +
          `(first: ${first.file}:${first.line}: ${first.reason})`,
      );
    }
    if (unaligned > 0) {
      report.warnings.push(
        `${unaligned} gold entit${unaligned === 1 ? 'y has' : 'ies have'} a boundary inside a token and cannot be predicted exactly`,
      );
    }
    const head =
      `${flags.model} on ${flags.data}: ${fmt.int(texts.length)} sentences, ${fmt.int(scores.micro.gold)} gold entities, ` +
      `decoder ${predictor.decoder}, mode ${mode}\n\n`;
    await emitReport(ctx, report, flags, head + scoresTable(scores));
    return 0;
  } finally {
    await predictor.close();
  }
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
