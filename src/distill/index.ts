/**
 * `distillStudent`: knowledge distillation from an ONNX NER teacher into a small student, exported to
 * ONNX in the model-folder layout, with a report comparing teacher and student.
 *
 * Steps: teacher logits over the transfer set (labelled JSONL and/or unlabelled text, cached on disk)
 * → student training (loss.ts, train.ts) with dev-F1 early stopping → export (students.ts) through
 * `writeModelFolder` (atomic, re-opened in onnxruntime) → teacher and student F1 on the evaluation
 * data with the shared `eval` pipeline, latency at batch 1 / sequence 64 in one run, sizes, parameters
 * → optionally the same student trained on hard labels only (`compareHard`).
 *
 * Time budget (`maxMinutes`): the teacher-logit pass may use up to `teacherShare` of it (the transfer
 * set is cut to the texts done by then — a seeded prefix, reported); the final evaluation and benchmark
 * get a reserve estimated from the evaluation data; training gets the rest (halved between the two
 * students with `compareHard`).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { initBackend, type BackendInfo, type BackendPreference } from '../autodiff/backend.js';
import { InputError, UsageError } from '../errors.js';
import { readExamples, readTextLines } from '../ner/data.js';
import { LabelSet } from '../ner/labels.js';
import { loadTokenizer } from '../ner/tokenizers/index.js';
import { defaultOverlap } from '../ner/windows.js';
import type { Example, F1Scores } from '../ner/types.js';
import { encodeModel } from '../onnx/codec.js';
import { loadModel } from '../onnx/external.js';
import { loadModelFolder, writeModelFolder } from '../onnx/folder.js';
import type { ModelFolder, Provenance } from '../onnx/types.js';
import { emissionsViaQueue } from '../queue/client.js';
import { newReport, ranercVersion } from '../report/environment.js';
import { summarizeData, summarizeModel } from '../report/models.js';
import type { ModelSummary, Report } from '../report/schema.js';
import { benchRow, makeBenchBatch, measureInterleaved, mulberry32, textBenchInputs, type BenchRow } from '../runtime/bench.js';
import { scoreFolder } from '../runtime/evaluate.js';
import { NerSession } from '../runtime/session.js';
import { sha256File } from '../util/fs.js';
import { shuffle, transferItems, type TransferItem } from './batches.js';
import { lineChartSvg, type Panel } from './chart.js';
import type { KdLossName, TemperatureScheduleName } from './loss.js';
import { augmentExamples } from './augment.js';
import { crfArrays } from './crf.js';
import { findTokenEmbeddings, pcaProject } from './init.js';
import { createStudent, STUDENT_DEFAULTS, type Student, type StudentInit, type StudentKind, type StudentSpec } from './students.js';
import { teacherLogits, type CacheDtype } from './teacher.js';
import { trainStudent, type TrainResult } from './train.js';

export { KD_LOSSES, TEMPERATURE_SCHEDULES, distillLoss, distillLossValues } from './loss.js';
export { STUDENTS, STUDENT_DEFAULTS, createStudent } from './students.js';
export type { Student, StudentKind, StudentSpec } from './students.js';
export { trainStudent } from './train.js';
export type { TrainResult } from './train.js';

export interface DistillOptions {
  /** Teacher model folder (or a loaded one). */
  teacher: string | ModelFolder;
  /** Labelled transfer/training data (JSONL or CoNLL). */
  train: string;
  /** Labelled dev data for early stopping (and the final comparison when `test` is absent). */
  dev: string;
  /** Output folder of the student. */
  out: string;
  /** Unlabelled text, one sentence per line (added to the transfer set; hard labels = the teacher's path). */
  unlabeled?: string;
  /** Labelled data for the final teacher-vs-student comparison (default: dev). */
  test?: string;
  student?: StudentKind;
  temperature?: number;
  alpha?: number;
  temperatureSchedule?: TemperatureScheduleName;
  kdLoss?: KdLossName;
  epochs?: number;
  maxMinutes?: number;
  /**
   * Wall-clock training time of each student in minutes (the distilled one and, with `compareHard`, the
   * hard-label one each get exactly this window: the same budget both sides). Without it the students
   * share what `maxMinutes` leaves after the teacher pass and the final reserve.
   */
  trainMinutes?: number;
  maxSteps?: number;
  /**
   * Augmented transfer texts per labelled sentence (augment.ts: entity substitution within a type and
   * span-preserving mixing, half each, seeded by `seed`); they get teacher logits and exact gold spans,
   * and are not part of the hard-label-only baseline's data. Default 0.
   */
  augment?: number;
  /** Use at most this many transfer texts (a seeded sample). */
  transferLimit?: number;
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
  /** Dev evaluations per epoch (default 4) and early-stopping patience in evaluations (default 6). */
  evalsPerEpoch?: number;
  patience?: number;
  seed?: number;
  /**
   * Initialise the student from the teacher (default): token embeddings = the teacher's embedding table
   * projected on its top principal directions, CRF transitions = the teacher's. 'random' starts from
   * scratch. Both the distilled and the hard-only student use the same initialisation.
   */
  init?: 'teacher' | 'random';
  /** Also train the same student on hard labels only and compare. */
  compareHard?: boolean;
  /** onnxruntime intra-op threads (teacher logits, evaluation, latency). */
  threads?: number;
  backend?: BackendPreference;
  /** Teacher-logit cache folder (null: no cache). */
  cacheDir?: string | null;
  cacheDtype?: CacheDtype;
  /** Compute the teacher logits on `ranerc worker` processes through this Redis job queue (src/queue/). */
  teacherQueue?: { url: string; queueName: string };
  /** Share of `maxMinutes` the teacher-logit pass may use (default 0.4). */
  teacherShare?: number;
  skipUnknownTypes?: boolean;
  /** Latency measurement: seconds per model (default 4, split over interleaved rounds). */
  benchSeconds?: number;
  onProgress?: (e: DistillProgress) => void;
}

/** Progress events for a CLI progress bar. */
export type DistillProgress =
  | { phase: 'teacher'; done: number; total: number }
  | { phase: 'train' | 'train-hard'; step: number; planned: number; loss: number; tokensPerSec: number; devF1?: number }
  | { phase: 'evaluate' | 'bench' | 'export'; done: number; total: number };

/** What training produced for one student (curves, where it stopped, its F1). */
export interface StudentRun {
  alpha: number;
  training: TrainResult;
  f1: F1Scores;
}

export interface DistillDetails {
  student: StudentSpec & { parameters: number; modelType: string };
  loss: { alpha: number; temperature: number; temperatureSchedule: TemperatureScheduleName; kd: KdLossName; hard: 'crf' | 'ce' };
  /** Where the student's starting weights came from (the same for the hard-only student). */
  init: { mode: 'teacher' | 'random'; embeddings: string; crf: 'teacher' | 'random' | 'none' };
  backend: BackendInfo;
  transfer: {
    labelledTexts: number;
    unlabelledTexts: number;
    /** Augmented texts made (before any time-budget cut), by kind. */
    augmented: { substitution: number; mixing: number };
    /** Of the texts used for training: how many of each kind. */
    usedByKind: { labelled: number; unlabelled: number; augmented: number };
    /** Texts with teacher logits used for training (a seeded prefix of the shuffled transfer texts). */
    usedTexts: number;
    availableTexts: number;
    subsampled: boolean;
    /** Training sequences after cutting long texts into windows, and their real tokens. */
    sequences: number;
    tokens: number;
    windowSize: number;
    teacherMs: number;
    teacherTokensPerSec?: number;
    fromCache: number;
    cachePath?: string;
    cacheBytes?: number;
    cacheDtype: CacheDtype;
  };
  training: TrainResult;
  /** The hard-label-only student (compareHard). */
  hardOnly?: StudentRun;
  /**
   * `set`: 'test' when the F1 comes from `--test`; 'dev' when it is the early-stopping set (the
   * students were selected on it, so their F1 there is optimistic).
   */
  evaluation: { data: string; set: 'test' | 'dev'; teacherF1: number; studentF1: number; hardOnlyF1?: number };
  comparison: {
    /** student F1 / teacher F1. */
    f1Ratio: number;
    /** teacher p50 / student p50 (batch 1, sequence 64). */
    speedup: number;
    /** student folder bytes / teacher folder bytes. */
    sizeRatio: number;
    parameterRatio: number;
    /** compareHard: distilled F1 − hard-only F1 (points of F1 × 100). */
    distillMinusHard?: number;
    goals: Array<{ goal: string; met: boolean; value: string }>;
  };
  timing: { totalMs: number; budgetMs?: number; teacherMs: number; trainMs: number; hardTrainMs?: number; evaluateMs: number; benchMs: number };
  /** Flags that reproduce these weights (same data and seed). */
  reproduce: string;
  /** The curves picture (written as curves.svg beside the report). */
  curvesFile: string;
}

export interface DistillResult {
  report: Report<DistillDetails, 'distill'>;
  /** SVG of the loss and dev-F1 curves. */
  curvesSvg: string;
  outDir: string;
}

const TOKENIZER_FILES = new Set(['tokenizer_config.json', 'special_tokens_map.json', 'tokenizer.json', 'added_tokens.json']);

/** A ModelFolder view of an in-memory student model (for the shared Predictor). */
async function studentFolder(teacher: ModelFolder, student: Student, dir: string): Promise<ModelFolder> {
  const onnxPath = join(dir, 'model.onnx');
  await writeFile(onnxPath, encodeModel(student.toOnnx()));
  const crf = student.crfParams(teacher.labels);
  const folder: ModelFolder = { ...teacher, dir, onnxPath, bare: false, extraFiles: [], externalDataFiles: [], provenance: undefined };
  if (crf) folder.crf = crf;
  else delete folder.crf;
  return folder;
}

/** F1 of an in-memory student (exported to a temporary folder and run in onnxruntime). */
async function scoreStudent(teacher: ModelFolder, student: Student, examples: Example[], opts: { threads?: number; windowSize: number; overlap: number }): Promise<F1Scores> {
  const dir = await mkdtemp(join(tmpdir(), 'ranerc-distill-'));
  try {
    return await scoreFolder(await studentFolder(teacher, student, dir), examples, opts);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Latency of two models at batch 1 (same threads, same inputs), interleaved in blocks (`measureInterleaved`). */
async function benchPair(
  paths: [string, string],
  inputs: Parameters<typeof makeBenchBatch>[0],
  opts: { threads?: number; seconds: number; seqLen: number },
): Promise<[BenchRow, BenchRow]> {
  const sessions = await Promise.all(paths.map((p) => NerSession.open(p, { threads: opts.threads })));
  try {
    const feed = makeBenchBatch(inputs, opts.seqLen, 1);
    const [a, b] = await measureInterleaved(
      sessions.map((s) => () => s.runFlat(feed)),
      { rounds: 4, warmup: 10, iterations: 20, seconds: opts.seconds },
    );
    return [benchRow(opts.seqLen, 1, a), benchRow(opts.seqLen, 1, b)];
  } finally {
    await Promise.all(sessions.map((s) => s.close()));
  }
}

function check(cond: boolean, message: string, hint: string): void {
  if (!cond) throw new UsageError(message, { hint });
}

/** Distil `teacher` into a student (see the module comment). */
export async function distillStudent(opts: DistillOptions): Promise<DistillResult> {
  const tStart = performance.now();
  const budgetMs = opts.maxMinutes === undefined ? undefined : opts.maxMinutes * 60_000;
  const deadline = budgetMs === undefined ? undefined : tStart + budgetMs;
  const kind: StudentKind = opts.student ?? 'bilstm-crf';
  if (!(kind in STUDENT_DEFAULTS)) {
    throw new UsageError(`unknown student "${kind}"`, { hint: `choose one of ${Object.keys(STUDENT_DEFAULTS).join(', ')}` });
  }
  const alpha = opts.alpha ?? 0.7;
  const T = opts.temperature ?? 4;
  const schedule = opts.temperatureSchedule ?? 'constant';
  // Default: the emission KL, which measured better than `marginal` in the runs so far (bench/distill.mjs).
  const kd: KdLossName = opts.kdLoss ?? 'kl';
  const seed = opts.seed ?? 13;
  check(alpha >= 0 && alpha <= 1, `alpha must be in [0, 1], got ${alpha}`, 'α weights the soft (teacher) term: 0.7 is the usual choice');
  check(T > 0, `temperature must be > 0, got ${T}`, 'T = 4 softens the teacher distribution; T = 1 leaves it as it is');
  check(opts.maxMinutes === undefined || opts.maxMinutes > 0, '--max-minutes must be > 0', 'give the wall-clock budget in minutes');
  check(opts.trainMinutes === undefined || opts.trainMinutes > 0, '--train-minutes must be > 0', 'give the training time of each student in minutes');

  const backend = await initBackend(opts.backend ?? 'auto');
  const teacher = typeof opts.teacher === 'string' ? await loadModelFolder({ model: opts.teacher }) : opts.teacher;
  const teacherPath = typeof opts.teacher === 'string' ? opts.teacher : opts.teacher.dir;
  const labels = new LabelSet(teacher.labels);
  const L = labels.size;
  const unknownTypes = opts.skipUnknownTypes ? 'skip' : 'error';
  const train = await readExamples(opts.train, { types: labels.types, unknownTypes });
  const devData = await readExamples(opts.dev, { types: labels.types, unknownTypes });
  const evalPath = opts.test ?? opts.dev;
  const evalData = opts.test ? await readExamples(opts.test, { types: labels.types, unknownTypes }) : devData;
  const unlabeled = opts.unlabeled ? await readTextLines(opts.unlabeled) : [];
  if (train.examples.length + unlabeled.length === 0) {
    throw new InputError('the transfer set is empty', { file: opts.train, hint: 'pass labelled sentences with --train (and/or text lines with --unlabeled)' });
  }
  if (devData.examples.length === 0) throw new InputError('the dev set is empty', { file: opts.dev, hint: 'pass labelled dev sentences for early stopping' });

  // Transfer order: a fixed shuffle (independent of --seed, so the teacher-logit cache is shared).
  const aug = augmentExamples(train.examples, opts.augment ?? 0, mulberry32(seed + 3));
  const transfer: Array<{ ex: Example; gold: boolean; extra?: boolean }> = shuffle(
    [
      ...train.examples.map((ex) => ({ ex, gold: true })),
      ...unlabeled.map((ex) => ({ ex, gold: false })),
      ...aug.examples.map((ex) => ({ ex, gold: true, extra: true })),
    ],
    mulberry32(0x5eed),
  );
  const wanted = Math.min(transfer.length, opts.transferLimit ?? Infinity);
  const windowSize = teacher.maxLength - 2;

  // Reserve for the end: evaluation of both models + latency + export, from the evaluation data size.
  const evalChars = evalData.examples.reduce((n, e) => n + e.text.length, 0) + devData.examples.reduce((n, e) => n + e.text.length, 0);
  const benchSeconds = opts.benchSeconds ?? 4;
  const reserveFor = (teacherTps: number) => (evalChars / teacherTps) * 1000 * 1.5 + 2 * benchSeconds * 1000 + 15_000;

  // 1. teacher logits
  const teacherShare = opts.teacherShare ?? 0.4;
  const tl = await teacherLogits(
    teacher,
    transfer.map((t) => t.ex.text),
    {
      cacheDir: opts.cacheDir,
      cacheDtype: opts.cacheDtype,
      threads: opts.threads,
      limit: wanted,
      deadline: budgetMs === undefined ? undefined : tStart + budgetMs * teacherShare,
      onProgress: (done, total) => opts.onProgress?.({ phase: 'teacher', done, total }),
      ...(opts.teacherQueue ? { compute: await queueCompute(teacher, opts.teacherQueue) } : {}),
    },
  );
  if (tl.count === 0) {
    throw new UsageError('no teacher logits could be computed within the time budget', { hint: 'raise --max-minutes (or run once to fill the cache)' });
  }
  const teacherTps = tl.computeMs > 0 ? tl.computedTokens / (tl.computeMs / 1000) : undefined;
  const teacherMs = performance.now() - tStart;

  // 2. training items
  const { items, goldItems, tokens } = transferItems(
    transfer.slice(0, tl.count).map((t) => ({ example: t.ex, gold: t.gold, extra: t.extra })),
    tl.emissions,
    labels,
    teacher.crf,
    windowSize,
  );

  // 3. student(s)
  const tok = await loadTokenizer(teacher);
  const defaults = STUDENT_DEFAULTS[kind];
  const spec: StudentSpec = {
    kind,
    vocabSize: tok.vocabSize,
    numLabels: L,
    embeddingDim: opts.embeddingDim ?? defaults.embeddingDim,
    hidden: opts.hidden ?? defaults.hidden,
    layers: opts.layers ?? defaults.layers,
    heads: opts.heads ?? defaults.heads,
    ffn: opts.ffn ?? defaults.ffn,
    maxPositions: teacher.maxLength,
    dropout: opts.dropout ?? defaults.dropout,
    crf: defaults.crf,
  };
  check(spec.hidden >= 1 && spec.layers >= 1 && spec.embeddingDim >= 1, 'student sizes must be positive', 'check --hidden, --layers and --embedding-dim');
  const special = { cls: tok.clsId, sep: tok.sepId, pad: tok.padId };
  const scoreOpts = { threads: opts.threads, windowSize, overlap: defaultOverlap(windowSize) };

  const trainCommon = {
    temperatureSchedule: schedule,
    epochs: opts.epochs ?? 3,
    maxSteps: opts.maxSteps,
    lr: opts.lr ?? 5e-3,
    weightDecay: opts.weightDecay ?? 0.01,
    clipNorm: opts.clipNorm ?? 5,
    batchTokens: opts.batchTokens ?? 4096,
    batchRows: opts.batchRows ?? 16,
    evalsPerEpoch: opts.evalsPerEpoch,
    patience: opts.patience,
    seed,
  };
  const reserveMs = reserveFor(teacherTps ?? 3000);
  const trainWindow = deadline === undefined ? undefined : Math.max(0, deadline - performance.now() - reserveMs);
  const hardShare = opts.compareHard ? 0.5 : 0;

  const initMode = opts.init ?? 'teacher';
  let embInit: Float32Array | undefined;
  let embSource: string | undefined;
  if (initMode === 'teacher') {
    const width = kind === 'transformer' ? spec.hidden : spec.embeddingDim;
    const found = findTokenEmbeddings((await loadModel(teacher.onnxPath)).model, spec.vocabSize);
    if (found) {
      embInit = pcaProject(found.data, spec.vocabSize, found.dim, width, mulberry32(seed + 2));
      embSource = `${found.name} [${found.rows}×${found.dim}] → top ${Math.min(width, found.dim)} principal directions`;
    }
  }
  const studentInit: StudentInit = { embeddings: embInit, crf: initMode === 'teacher' ? teacher.crf : undefined };

  const runOne = async (a: number, trainItems: TransferItem[], until: number | undefined, phase: 'train' | 'train-hard') => {
    const student = createStudent(spec, mulberry32(seed), studentInit);
    const training = await trainStudent(student, trainItems, special, {
      ...trainCommon,
      loss: { alpha: a, temperature: T, kd, hard: spec.crf ? 'crf' : 'ce', teacherCrf: teacher.crf ? crfArrays(teacher.crf) : undefined },
      deadline: until,
      evaluate: async (s) => (await scoreStudent(teacher, s, devData.examples, scoreOpts)).micro.f1,
      onStep: (s) => opts.onProgress?.({ phase, step: s.step, planned: s.plannedSteps, loss: s.loss, tokensPerSec: s.tokensPerSec, devF1: s.devF1 }),
    });
    return { student, training };
  };

  const tTrain = performance.now();
  const perStudentMs = opts.trainMinutes !== undefined ? opts.trainMinutes * 60_000 : undefined;
  const distilled = await runOne(
    alpha,
    items,
    perStudentMs !== undefined ? performance.now() + perStudentMs : trainWindow === undefined ? undefined : performance.now() + trainWindow * (1 - hardShare),
    'train',
  );
  const trainMs = performance.now() - tTrain;
  let hardRun: { student: Student; training: TrainResult } | undefined;
  let hardTrainMs: number | undefined;
  if (opts.compareHard) {
    if (goldItems.length === 0) {
      throw new UsageError('--compare-hard needs labelled transfer texts', { hint: 'the hard-label student trains on --train gold labels' });
    }
    const t0 = performance.now();
    const hardUntil = perStudentMs !== undefined ? performance.now() + perStudentMs : deadline === undefined ? undefined : deadline - reserveMs;
    hardRun = await runOne(0, goldItems.map((it) => ({ ...it, teacher: undefined })), hardUntil, 'train-hard');
    hardTrainMs = performance.now() - t0;
  }

  // 4. export
  opts.onProgress?.({ phase: 'export', done: 0, total: 1 });
  const student = distilled.student;
  const modelType = `ranerc-${kind}`;
  const crf = student.crfParams(teacher.labels);
  const label2id = Object.fromEntries(teacher.labels.map((l, i) => [l, i]));
  const srcFolder: ModelFolder = {
    ...teacher,
    config: {
      id2label: Object.fromEntries(teacher.labels.map((l, i) => [String(i), l])),
      label2id,
      model_type: modelType,
      architectures: [kind === 'transformer' ? 'RanercTransformerStudent' : 'RanercBiLstmStudent'],
      vocab_size: spec.vocabSize,
      max_position_embeddings: teacher.maxLength,
      hidden_size: spec.hidden,
      embedding_size: spec.embeddingDim,
      num_hidden_layers: spec.layers,
      ...(kind === 'transformer' ? { num_attention_heads: spec.heads, intermediate_size: spec.ffn } : {}),
    },
    extraFiles: teacher.extraFiles.filter((f) => TOKENIZER_FILES.has(f)),
  };
  const provenance: Provenance = {
    ranerc: ranercVersion(),
    command: 'distill',
    createdAt: new Date().toISOString(),
    source: { path: resolve(teacher.onnxPath), sha256: await sha256File(teacher.onnxPath) },
    settings: { student: kind, alpha, temperature: T, temperatureSchedule: schedule, kd, seed, steps: distilled.training.steps, transferTexts: tl.count },
    history: [],
  };
  const written = await writeModelFolder(opts.out, srcFolder, student.toOnnx(), { provenance, crf: crf ?? null });
  const studentDisk = await loadModelFolder({ model: written.dir });

  // 5. evaluation
  const tEval = performance.now();
  opts.onProgress?.({ phase: 'evaluate', done: 0, total: opts.compareHard ? 3 : 2 });
  const teacherF1 = await scoreFolder(teacher, evalData.examples, scoreOpts);
  opts.onProgress?.({ phase: 'evaluate', done: 1, total: opts.compareHard ? 3 : 2 });
  const studentF1 = await scoreFolder(studentDisk, evalData.examples, scoreOpts);
  let hardOnly: StudentRun | undefined;
  if (hardRun) {
    opts.onProgress?.({ phase: 'evaluate', done: 2, total: 3 });
    hardOnly = { alpha: 0, training: hardRun.training, f1: await scoreStudent(teacher, hardRun.student, evalData.examples, scoreOpts) };
  }
  const evaluateMs = performance.now() - tEval;

  // 6. latency (batch 1, sequence 64, real token ids, same threads, interleaved rounds)
  const tBench = performance.now();
  opts.onProgress?.({ phase: 'bench', done: 0, total: 1 });
  const [tLat, sLat] = await benchPair(
    [teacher.onnxPath, studentDisk.onnxPath],
    textBenchInputs(
      tok,
      evalData.examples.slice(0, 200).map((e) => e.text),
    ),
    { threads: opts.threads, seconds: benchSeconds, seqLen: 64 },
  );
  const benchMs = performance.now() - tBench;

  // 7. report
  const tSum = await summarizeModel(teacher, 'teacher', teacherPath);
  tSum.f1 = teacherF1;
  tSum.latency = [tLat];
  const sSum: ModelSummary = await summarizeModel(studentDisk, 'student', opts.out);
  sSum.f1 = studentF1;
  sSum.latency = [sLat];
  const f1Ratio = teacherF1.micro.f1 > 0 ? studentF1.micro.f1 / teacherF1.micro.f1 : 0;
  const speedup = tLat.p50Ms / sLat.p50Ms;
  const sizeRatio = (sSum.folderBytes ?? sSum.bytes) / (tSum.folderBytes ?? tSum.bytes);
  const parameterRatio = (sSum.parameters ?? 0) / Math.max(1, tSum.parameters ?? 0);
  const distillMinusHard = hardOnly ? (studentF1.micro.f1 - hardOnly.f1.micro.f1) * 100 : undefined;
  const goals: DistillDetails['comparison']['goals'] = [
    { goal: 'student F1 ≥ 95 % of the teacher’s', met: f1Ratio >= 0.95, value: `${(f1Ratio * 100).toFixed(1)} %` },
    { goal: 'student p50 ≥ 5× faster (batch 1, sequence 64)', met: speedup >= 5, value: `${speedup.toFixed(2)}×` },
    { goal: 'student folder ≤ 15 % of the teacher’s', met: sizeRatio <= 0.15, value: `${(sizeRatio * 100).toFixed(1)} %` },
  ];
  if (distillMinusHard !== undefined) {
    goals.push({ goal: `distillation (α = ${alpha}, T = ${T}) beats hard labels only`, met: distillMinusHard > 0, value: `${distillMinusHard >= 0 ? '+' : ''}${distillMinusHard.toFixed(2)} F1 points` });
  }
  const warnings: string[] = [];
  const subsampled = tl.count < transfer.length;
  if (tl.count < wanted) {
    warnings.push(
      `the teacher-logit pass stopped at the time budget: the student trained on ${tl.count} of ${transfer.length} transfer texts ` +
        `(a seeded sample; a second run continues from the cache)`,
    );
  }
  if (distilled.training.stoppedBy === 'time') warnings.push(`training stopped at the time budget after ${distilled.training.steps} steps (${distilled.training.epochs.toFixed(2)} epochs)`);
  if (train.skipped.length + devData.skipped.length > 0) warnings.push(`${train.skipped.length + devData.skipped.length} gold entities of types the teacher lacks were skipped`);
  if (!opts.test) {
    warnings.push(`the F1 figures are on ${opts.dev}, the early-stopping set the students were selected on (optimistic); pass --test for held-out F1`);
  }
  for (const g of goals) if (!g.met) warnings.push(`goal not met: ${g.goal} (${g.value})`);

  const curvesSvg = curvesPicture(distilled.training, hardOnly?.training, alpha, T);
  const reproduce =
    `--student ${kind} --alpha ${alpha} --temperature ${T} --temperature-schedule ${schedule} --kd-loss ${kd} --seed ${seed} ` +
    `--init ${initMode} --embedding-dim ${spec.embeddingDim} --hidden ${spec.hidden} --layers ${spec.layers}` +
    (kind === 'transformer' ? ` --heads ${spec.heads} --ffn ${spec.ffn}` : '') +
    ` --dropout ${spec.dropout} --lr ${trainCommon.lr} --weight-decay ${trainCommon.weightDecay} --clip-norm ${trainCommon.clipNorm} ` +
    `--batch-tokens ${trainCommon.batchTokens} --batch-rows ${trainCommon.batchRows} --epochs ${trainCommon.epochs} ` +
    `--max-steps ${distilled.training.plannedSteps} --transfer-limit ${tl.count}${opts.augment ? ` --augment ${opts.augment}` : ''} (teacher logits from the cache)`;
  const details: DistillDetails = {
    student: { ...spec, parameters: student.parameterCount(), modelType },
    loss: { alpha, temperature: T, temperatureSchedule: schedule, kd, hard: spec.crf ? 'crf' : 'ce' },
    init: {
      mode: initMode,
      embeddings: embSource ?? (initMode === 'teacher' ? 'random (no token-embedding table found in the teacher)' : 'random'),
      crf: spec.crf ? (studentInit.crf ? 'teacher' : 'random') : 'none',
    },
    backend,
    transfer: {
      labelledTexts: train.examples.length,
      unlabelledTexts: unlabeled.length,
      augmented: aug.counts,
      usedByKind: {
        labelled: transfer.slice(0, tl.count).filter((t) => t.gold && !t.extra).length,
        unlabelled: transfer.slice(0, tl.count).filter((t) => !t.gold).length,
        augmented: transfer.slice(0, tl.count).filter((t) => t.extra).length,
      },
      usedTexts: tl.count,
      availableTexts: transfer.length,
      subsampled,
      sequences: items.length,
      tokens,
      windowSize,
      teacherMs: tl.computeMs,
      teacherTokensPerSec: teacherTps,
      fromCache: tl.fromCache,
      cachePath: tl.cachePath,
      cacheBytes: tl.cacheBytes,
      cacheDtype: opts.cacheDtype ?? 'float16',
    },
    training: distilled.training,
    hardOnly,
    evaluation: { data: evalPath, set: opts.test ? 'test' : 'dev', teacherF1: teacherF1.micro.f1, studentF1: studentF1.micro.f1, hardOnlyF1: hardOnly?.f1.micro.f1 },
    comparison: { f1Ratio, speedup, sizeRatio, parameterRatio, distillMinusHard, goals },
    timing: { totalMs: performance.now() - tStart, budgetMs, teacherMs, trainMs, hardTrainMs, evaluateMs, benchMs },
    reproduce,
    curvesFile: 'curves.svg',
  };
  const report = newReport<DistillDetails, 'distill'>(
    'distill',
    {
      teacher: teacherPath,
      train: opts.train,
      dev: opts.dev,
      test: opts.test,
      unlabeled: opts.unlabeled,
      out: opts.out,
      student: kind,
      alpha,
      temperature: T,
      temperatureSchedule: schedule,
      kdLoss: kd,
      epochs: trainCommon.epochs,
      maxMinutes: opts.maxMinutes,
      trainMinutes: opts.trainMinutes,
      maxSteps: opts.maxSteps,
      transferLimit: opts.transferLimit,
      augment: opts.augment ?? 0,
      embeddingDim: spec.embeddingDim,
      hidden: spec.hidden,
      layers: spec.layers,
      lr: trainCommon.lr,
      weightDecay: trainCommon.weightDecay,
      clipNorm: trainCommon.clipNorm,
      batchTokens: trainCommon.batchTokens,
      batchRows: trainCommon.batchRows,
      dropout: spec.dropout,
      seed,
      init: initMode,
      compareHard: Boolean(opts.compareHard),
      threads: opts.threads ?? 'default',
    },
    details,
    { threads: opts.threads },
  );
  report.environment.tfjsBackend = backend.name;
  report.models.push(tSum, sSum);
  report.data = {
    files: [
      await summarizeData(opts.train, { format: train.format, sentences: train.examples.length, entities: train.examples.reduce((n, e) => n + e.entities.length, 0), skipped: train.skipped.length }),
      await summarizeData(opts.dev, { format: devData.format, sentences: devData.examples.length, entities: devData.examples.reduce((n, e) => n + e.entities.length, 0), skipped: devData.skipped.length }),
      ...(opts.test ? [await summarizeData(opts.test, { format: evalData.format, sentences: evalData.examples.length, entities: evalData.examples.reduce((n, e) => n + e.entities.length, 0), skipped: evalData.skipped.length })] : []),
    ],
  };
  report.warnings.push(...warnings);
  student.dispose();
  hardRun?.student.dispose();
  return { report, curvesSvg, outDir: written.dir };
}

/** The loss and dev-F1 curves of the distilled (and hard-only) student as one SVG. */
export function curvesPicture(distilled: TrainResult, hard: TrainResult | undefined, alpha: number, T: number): string {
  const panels: Panel[] = [
    {
      title: 'training loss (per real token, log scale)',
      xLabel: 'optimizer step',
      yLabel: 'loss',
      yLog: true,
      series: [
        { name: `distilled (α=${alpha}, T=${T})`, points: distilled.curve.map((p) => [p.step, p.loss]) },
        ...(hard ? [{ name: 'hard labels only', points: hard.curve.map((p) => [p.step, p.loss] as [number, number]) }] : []),
      ],
    },
    {
      title: 'dev entity F1 (%)',
      xLabel: 'optimizer step',
      yLabel: 'F1 %',
      series: [
        { name: 'distilled', points: distilled.dev.map((p) => [p.step, p.f1 * 100]), markers: true },
        ...(hard ? [{ name: 'hard labels only', points: hard.dev.map((p) => [p.step, p.f1 * 100] as [number, number]), markers: true }] : []),
      ],
    },
  ];
  return lineChartSvg(panels);
}

export { distillTable, writeDistillReport } from './report.js';

/** Teacher logits from `ranerc worker` processes (same teacher folder, checked by its SHA-256). */
async function queueCompute(
  teacher: ModelFolder,
  q: { url: string; queueName: string },
): Promise<(texts: string[]) => Promise<Array<{ tokens: number; logits: Float32Array }>>> {
  const modelSha = await sha256File(teacher.onnxPath);
  return (texts) => emissionsViaQueue({ url: q.url, queueName: q.queueName, texts, modelSha, batch: 32 });
}
