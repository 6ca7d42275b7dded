/**
 * `ranerc distill --teacher DIR --train F --dev F --out DIR` — knowledge distillation into a small
 * student (BiLSTM-CRF by default) exported to ONNX; the work is `distillStudent` (src/distill/), this
 * file parses flags, draws progress and prints the report.
 */
import { Option, type Command } from 'commander';
import type { BackendPreference } from '../autodiff/backend.js';
import { UsageError } from '../errors.js';
import { DEFAULT_QUEUE_NAME } from '../queue/protocol.js';
import { distillStudent, distillTable, writeDistillReport, type DistillProgress } from '../distill/index.js';
import type { KdLossName, TemperatureScheduleName } from '../distill/loss.js';
import type { StudentKind } from '../distill/students.js';
import type { CacheDtype } from '../distill/teacher.js';
import { createProgress, type Progress } from '../report/progress.js';
import { fmt } from '../report/table.js';
import { reportJson, resolveReportDir } from '../report/write.js';
import { action, intOption, numberOption, type CliContext } from './context.js';
import { addReportOptions, addThreadsOption, type ReportFlags } from './options.js';

interface DistillFlags extends ReportFlags {
  teacher: string;
  teacherQueue?: string;
  queueName: string;
  train: string;
  dev: string;
  out: string;
  unlabeled?: string;
  test?: string;
  student: StudentKind;
  temperature: number;
  alpha: number;
  temperatureSchedule: TemperatureScheduleName;
  kdLoss: KdLossName | 'emission';
  epochs: number;
  maxMinutes: number;
  trainMinutes?: number;
  maxSteps?: number;
  transferLimit?: number;
  augment?: number;
  embeddingDim?: number;
  hidden?: number;
  layers?: number;
  heads?: number;
  ffn?: number;
  dropout?: number;
  lr?: number;
  weightDecay?: number;
  clipNorm?: number;
  batchTokens?: number;
  batchRows?: number;
  seed: number;
  compareHard?: boolean;
  threads?: number;
  backend: BackendPreference;
  cacheDir?: string;
  /** false with --no-cache */
  cache: boolean;
  cacheDtype: CacheDtype;
  skipUnknownTypes?: boolean;
  init: 'teacher' | 'random';
  benchSeconds: number;
  patience?: number;
}

/** One progress bar per phase, replaced when the phase changes. */
function progressDrawer(ctx: CliContext, json: boolean | undefined): { on: (e: DistillProgress) => void; stop: () => void } {
  let phase: string | undefined;
  let bar: Progress | undefined;
  const titles: Record<DistillProgress['phase'], string> = {
    teacher: 'teacher logits',
    train: 'distill',
    'train-hard': 'hard-only',
    evaluate: 'evaluate',
    bench: 'latency',
    export: 'export',
  };
  return {
    on(e) {
      const total = 'planned' in e ? e.planned : e.total;
      if (e.phase !== phase) {
        bar?.stop();
        phase = e.phase;
        bar = createProgress(titles[e.phase], total, { interactive: ctx.interactive, json });
      }
      bar?.setTotal(total);
      if ('step' in e) {
        const f1 = e.devF1 === undefined ? '' : ` | dev F1 ${fmt.pct(e.devF1)}`;
        bar?.update(e.step, `steps | loss ${e.loss.toFixed(4)} | ${fmt.rate(e.tokensPerSec)} tok/s${f1}`);
      } else {
        bar?.update(e.done, e.phase === 'teacher' ? 'texts' : '');
      }
    },
    stop() {
      bar?.stop();
    },
  };
}

async function runDistill(ctx: CliContext, flags: DistillFlags): Promise<number> {
  const drawer = progressDrawer(ctx, flags.json);
  let result;
  try {
    result = await distillStudent({
      teacher: flags.teacher,
      train: flags.train,
      dev: flags.dev,
      out: flags.out,
      unlabeled: flags.unlabeled,
      test: flags.test,
      student: flags.student,
      temperature: flags.temperature,
      alpha: flags.alpha,
      temperatureSchedule: flags.temperatureSchedule,
      kdLoss: flags.kdLoss === 'emission' ? 'kl' : flags.kdLoss,
      epochs: flags.epochs,
      maxMinutes: flags.maxMinutes,
      trainMinutes: flags.trainMinutes,
      maxSteps: flags.maxSteps,
      transferLimit: flags.transferLimit,
      augment: flags.augment,
      embeddingDim: flags.embeddingDim,
      hidden: flags.hidden,
      layers: flags.layers,
      heads: flags.heads,
      ffn: flags.ffn,
      dropout: flags.dropout,
      lr: flags.lr,
      weightDecay: flags.weightDecay,
      clipNorm: flags.clipNorm,
      batchTokens: flags.batchTokens,
      batchRows: flags.batchRows,
      seed: flags.seed,
      compareHard: flags.compareHard,
      threads: flags.threads,
      backend: flags.backend,
      cacheDir: flags.cache ? flags.cacheDir : null,
      cacheDtype: flags.cacheDtype,
      ...(flags.teacherQueue !== undefined ? { teacherQueue: { url: flags.teacherQueue, queueName: flags.queueName } } : {}),
      skipUnknownTypes: flags.skipUnknownTypes,
      init: flags.init,
      benchSeconds: flags.benchSeconds,
      patience: flags.patience,
      onProgress: (e) => drawer.on(e),
    });
  } finally {
    drawer.stop();
  }
  const dir = await resolveReportDir('distill', flags.reportDir);
  await writeDistillReport(dir, result);
  if (flags.json) ctx.out(reportJson(result.report));
  else {
    const d = result.report.details;
    ctx.out(
      `${flags.teacher} → ${result.outDir} (${d.student.kind}), evaluated on ${d.evaluation.data}\n\n` + distillTable(result.report),
    );
  }
  for (const w of result.report.warnings) ctx.err(`warning: ${w}\n`);
  ctx.err(`report: ${dir}\n`);
  return 0;
}

const choice = <T extends string>(name: string, values: readonly T[]) => (v: string): T => {
  if (!values.includes(v as T)) throw new UsageError(`${name} must be one of ${values.join(', ')}, got "${v}"`);
  return v as T;
};

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('distill')
    .description('distil an ONNX NER teacher into a small student (BiLSTM-CRF by default) exported to ONNX');
  cmd
    .requiredOption('--teacher <dir>', 'teacher model folder (model.onnx + config.json + vocab.txt [+ crf.json])')
    .requiredOption('--train <file>', 'labelled transfer data (JSONL or CoNLL); gold labels feed the hard loss')
    .requiredOption('--dev <file>', 'labelled dev data for early stopping (and the final comparison without --test)')
    .requiredOption('--out <dir>', 'student model folder to write')
    .option('--unlabeled <file>', "unlabelled text, one sentence a line (hard labels = the teacher's decoded path)")
    .option('--test <file>', 'labelled data for the final teacher-vs-student F1 (default: --dev)')
    .addOption(new Option('--student <kind>', 'student architecture').choices(['bilstm-crf', 'bilstm', 'transformer']).default('bilstm-crf'))
    .option('--temperature <T>', 'softmax temperature of the soft targets', numberOption('--temperature', 1e-6, 1000), 4)
    .option('--alpha <a>', 'weight of the soft (teacher) loss; 1 − α goes to the hard loss', numberOption('--alpha', 0, 1), 0.7)
    .option('--temperature-schedule <s>', 'constant, or linear (T → 1 over the last 40 % of the steps)', choice('--temperature-schedule', ['constant', 'linear'] as const), 'constant')
    .option(
      '--kd-loss <name>',
      "soft loss: kl (= emission: per-token KL of the emissions; default, it measured better so far), marginal (teacher posteriors vs the student's CRF marginals, through emissions and transitions), ce or mse",
      choice('--kd-loss', ['marginal', 'emission', 'kl', 'ce', 'mse'] as const),
      'kl',
    )
    .option('--epochs <n>', 'passes over the transfer set (the time budget may stop earlier)', numberOption('--epochs', 0.01, 1000), 3)
    .option('--max-minutes <m>', 'hard wall-clock budget for the whole command, teacher logits included', numberOption('--max-minutes', 0.05, 1e6), 14)
    .option('--train-minutes <m>', 'training time of each student (with --compare-hard both get exactly this: the same budget both sides)', numberOption('--train-minutes', 0.01, 1e6))
    .option('--max-steps <n>', 'stop after this many optimizer steps (reproduces a time-limited run)', intOption('--max-steps', 1))
    .option('--augment <k>', 'augmented transfer texts per labelled sentence: entity substitution within a type and span-preserving mixing (default 0)', numberOption('--augment', 0, 100))
    .option('--transfer-limit <n>', 'use at most this many transfer texts (a seeded sample)', intOption('--transfer-limit', 1))
    .option('--embedding-dim <n>', 'student embedding size (default 64)', intOption('--embedding-dim', 1, 4096))
    .option('--hidden <n>', 'LSTM units per direction (default 96), or transformer width (default 128)', intOption('--hidden', 1, 4096))
    .option('--layers <n>', 'BiLSTM / transformer layers (default 1 / 2)', intOption('--layers', 1, 64))
    .option('--heads <n>', 'transformer attention heads (default 4)', intOption('--heads', 1, 64))
    .option('--ffn <n>', 'transformer feed-forward width (default 256)', intOption('--ffn', 1, 65536))
    .option('--dropout <p>', 'dropout rate (default 0.1)', numberOption('--dropout', 0, 0.95))
    .option('--lr <x>', 'AdamW learning rate (default 5e-3)', numberOption('--lr', 1e-7, 10))
    .option('--weight-decay <x>', 'AdamW decoupled weight decay (default 0.01)', numberOption('--weight-decay', 0, 10))
    .option('--clip-norm <x>', 'clip gradients to this global L2 norm (default 5)', numberOption('--clip-norm', 1e-6, 1e6))
    .option('--batch-tokens <n>', 'padded tokens per batch (default 4096)', intOption('--batch-tokens', 16, 1 << 22))
    .option('--batch-rows <n>', 'sequences per batch (default 16)', intOption('--batch-rows', 1, 4096))
    .addOption(
      new Option('--init <from>', 'student start: teacher (token embeddings by PCA of the teacher\'s table, CRF transitions) or random')
        .choices(['teacher', 'random'])
        .default('teacher'),
    )
    .option('--patience <n>', 'early stopping: dev evaluations without improvement (default 6)', intOption('--patience', 1, 1000))
    .option('--bench-seconds <s>', 'latency measurement time per model', numberOption('--bench-seconds', 0.01, 600), 4)
    .option('--seed <n>', 'random seed (initialisation, batches, dropout)', intOption('--seed', 0, 2 ** 31 - 1), 13)
    .option('--compare-hard', 'also train the same student on hard labels only and compare in the report')
    .addOption(new Option('--backend <name>', 'tfjs backend for training').choices(['auto', 'tensorflow', 'wasm', 'cpu']).default('auto'))
    .option('--cache-dir <dir>', 'teacher-logit cache folder (default .ranerc-cache/teacher-logits)')
    .option('--no-cache', 'neither read nor write the teacher-logit cache')
    .option('--teacher-queue <url>', 'compute the teacher logits on `ranerc worker --model TEACHER` processes through this Redis job queue (they fill the cache)')
    .option('--queue-name <name>', 'BullMQ queue name of --teacher-queue', DEFAULT_QUEUE_NAME)
    .addOption(new Option('--cache-dtype <t>', 'teacher-logit cache storage').choices(['float16', 'float32']).default('float16'))
    .option('--skip-unknown-types', 'skip gold entities whose type the teacher lacks (default: error)');
  addThreadsOption(cmd);
  addReportOptions(cmd);
  cmd.action(action(ctx, 'distill', (opts: DistillFlags) => runDistill(ctx, opts)));
}
