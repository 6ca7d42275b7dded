/**
 * `finetuneModelFolder`: fine-tune every float initializer of a model folder's ONNX graph through the
 * ONNX → tfjs executor, and write the same graph with the best weights.
 *
 * - Data: eval's windows of the model's length (data.ts); seeded, length-bucketed batches of `batch`
 *   rows, split into micro-batches under `maxBatchTokens` padded positions (gradient accumulation).
 * - Objective: token cross-entropy on first pieces, or the CRF negative log-likelihood when the
 *   folder has crf.json (then the CRF scores are trained too and written back to crf.json).
 * - AdamW (decay on matrices), global-norm clipping, linear warm-up and decay (schedule.ts).
 * - Dev F1 is measured by onnxruntime on the current weights through the very pipeline `ranerc eval`
 *   runs (runtime/predict.ts, same windows and batches), so the F1 of the best checkpoint is the F1
 *   `ranerc eval` gives the written folder (checked again on the written folder: `after`).
 * - The best dev-F1 checkpoint is kept (the starting weights count as step 0); the folder is written
 *   atomically with withInitializers + writeModelFolder (re-opened in onnxruntime).
 *
 * The CLI (src/cli/finetune.ts), `ranerc prune --finetune` and the recipe runner call this; it prints
 * nothing itself (progress and news go to `onProgress` / `log`).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError, UsageError } from '../../errors.js';
import { readExamples, type ReadExamplesResult } from '../../ner/data.js';
import { LabelSet } from '../../ner/labels.js';
import { loadTokenizer } from '../../ner/tokenizers/index.js';
import type { Example, F1Scores } from '../../ner/types.js';
import { defaultOverlap } from '../../ner/windows.js';
import type { onnx } from '../../onnx/codec.js';
import { loadModel, saveModel } from '../../onnx/external.js';
import { loadModelFolder, writeModelFolder } from '../../onnx/folder.js';
import type { ModelConfig, ModelFolder } from '../../onnx/types.js';
import { newReport, ranercVersion } from '../../report/environment.js';
import { summarizeData, summarizeModel } from '../../report/models.js';
import type { Report } from '../../report/schema.js';
import { mulberry32 } from '../../runtime/bench.js';
import { scoreFolder } from '../../runtime/evaluate.js';
import { sha256File } from '../../util/fs.js';
import type { BackendPreference } from '../backend.js';
import { OnnxExecutor } from '../executor.js';
import { isFloatType } from '../tensordata.js';
import { withInitializers } from '../weights.js';
import { makeMicroBatch, planEpoch, trainingRows, type MicroBatch, type TrainRow } from './data.js';
import type { LossKind } from './loss.js';
import { curveSvg, type FinetuneDetails, type FinetuneEval, type FinetunePoint } from './report.js';
import { learningRate, warmupStepsFor, type LinearSchedule } from './schedule.js';
import { Trainer, type Checkpoint } from './trainer.js';

/** File name of the training-curve picture written next to report.md. */
export const CURVE_FILE = 'training-curve.svg';

export interface FinetuneOptions {
  /** Model folder, or a bare .onnx with `labels` and `vocab`. */
  model: string;
  labels?: string;
  vocab?: string;
  /** Labelled training data (JSONL or CoNLL). */
  train: string;
  /** Labelled dev data: F1 for checkpoint selection. */
  dev: string;
  /** Output model folder (written atomically). */
  out: string;
  /** Passes over the training data (default 3). */
  epochs?: number;
  /** Peak learning rate (default 5e-5). */
  lr?: number;
  /** Rows (sentence windows) per optimizer step (default 32). */
  batch?: number;
  /** Padded tokens per micro-batch (default: what the tfjs heap holds for this model, ≤ 4096). */
  maxBatchTokens?: number;
  /** Fraction of the planned steps spent warming up (default 0.1). */
  warmupRatio?: number;
  /** Decoupled weight decay on matrices (default 0.01). */
  weightDecay?: number;
  /** Global gradient-norm clip (default 1; 0 disables). */
  clipNorm?: number;
  /** Stop after this many minutes of training (an evaluation and the write follow). */
  maxMinutes?: number;
  /** Seed of the batch order (default 42). */
  seed?: number;
  /** tfjs backend (default 'auto': tfjs-node when installed, else wasm). */
  backend?: BackendPreference;
  /**
   * Initializers to keep fixed: a name containing any of these strings is frozen (e.g. "embeddings"
   * freezes bert.embeddings.*). Scalar (rank-0) float initializers are constants and always fixed.
   */
  freeze?: string[];
  /** Evaluate on dev every this many steps (default: at the end of each epoch only). */
  evalEvery?: number;
  /** Objective: 'auto' (default: CRF NLL when the folder has crf.json, else token cross-entropy). */
  loss?: 'auto' | LossKind;
  /** Tokens per model input incl. [CLS]/[SEP] (default: the folder's maximum length), as eval. */
  maxLength?: number;
  /** Window overlap for long texts (default: as eval). */
  overlap?: number;
  /** Skip gold entities of types the model lacks instead of failing. */
  skipUnknownTypes?: boolean;
  /** onnxruntime intra-op threads for the dev evaluations. */
  threads?: number;
  /** Called after every step and every evaluation. */
  onProgress?: (p: FinetuneProgress) => void;
  /** One line of news. */
  log?: (line: string) => void;
}

export interface FinetuneProgress {
  phase: 'train' | 'eval';
  epoch: number;
  /** Optimizer steps done. */
  step: number;
  /** Steps planned (epochs × batches per epoch). */
  totalSteps: number;
  /** Mean loss of the last (up to 20) steps. */
  loss: number;
  lr: number;
  /** Real tokens per second of training so far (evaluation time excluded). */
  tokensPerSec: number;
  /** Dev micro F1 of the latest evaluation (undefined before the first one after step 0). */
  devF1?: number;
  /** Best dev micro F1 so far (step 0 = the starting model). */
  bestF1: number;
}

export interface FinetuneResult {
  /** The written model folder and its ONNX file. */
  outDir: string;
  onnxPath: string;
  details: FinetuneDetails;
  /** The complete report (models before/after with dev F1, data, details). */
  report: Report<FinetuneDetails, 'finetune'>;
  /** The training curve (write it as {@link CURVE_FILE} next to report.md). */
  curveSvg: string;
  /** Dev F1 of the starting folder and of the written one (both by onnxruntime, as `ranerc eval`). */
  f1: { before: F1Scores; after: F1Scores };
  /** The weights (every float initializer) and CRF written; undefined when the starting model stayed best. */
  checkpoint?: Checkpoint;
}

interface Resolved {
  epochs: number;
  lr: number;
  batch: number;
  warmupRatio: number;
  weightDecay: number;
  clipNorm: number;
  seed: number;
}

function checkOptions(o: FinetuneOptions): Resolved {
  const num = (v: number | undefined, flag: string, ok: (x: number) => boolean, range: string, dflt: number): number => {
    if (v === undefined) return dflt;
    if (!(typeof v === 'number' && Number.isFinite(v) && ok(v))) {
      throw new UsageError(`${flag} must be ${range}, got ${v}`, { hint: `e.g. ${flag} ${dflt}` });
    }
    return v;
  };
  const int = (x: number) => Number.isInteger(x);
  const r: Resolved = {
    epochs: num(o.epochs, '--epochs', (x) => int(x) && x >= 1, 'an integer >= 1', 3),
    lr: num(o.lr, '--lr', (x) => x > 0 && x < 1, 'a number in (0, 1)', 5e-5),
    batch: num(o.batch, '--batch', (x) => int(x) && x >= 1, 'an integer >= 1', 32),
    warmupRatio: num(o.warmupRatio, '--warmup-ratio', (x) => x >= 0 && x < 1, 'a number in [0, 1)', 0.1),
    weightDecay: num(o.weightDecay, '--weight-decay', (x) => x >= 0 && x < 1, 'a number in [0, 1)', 0.01),
    clipNorm: num(o.clipNorm, '--clip-norm', (x) => x >= 0, 'a number >= 0 (0: no clipping)', 1),
    seed: num(o.seed, '--seed', (x) => int(x) && x >= 0, 'an integer >= 0', 42),
  };
  num(o.maxBatchTokens, '--max-batch-tokens', (x) => int(x) && x >= 3, 'an integer >= 3', 4096);
  num(o.maxMinutes, '--max-minutes', (x) => x > 0, 'a number > 0', 60);
  num(o.evalEvery, '--eval-every', (x) => int(x) && x >= 1, 'an integer >= 1', 100);
  num(o.maxLength, '--max-length', (x) => int(x) && x >= 3, 'an integer >= 3', 128);
  num(o.threads, '--threads', (x) => int(x) && x >= 1, 'an integer >= 1', 1);
  if (o.loss !== undefined && !['auto', 'ce', 'crf'].includes(o.loss)) {
    throw new UsageError(`--loss must be auto, ce or crf, got "${String(o.loss)}"`, {
      hint: 'auto trains the CRF negative log-likelihood when the folder has crf.json, else token cross-entropy',
    });
  }
  return r;
}

/** Encoder sizes from config.json, when it has them. */
function encoderShape(config: ModelConfig): { layers: number; hidden: number; heads: number; intermediate: number } | undefined {
  const { num_hidden_layers: layers, hidden_size: hidden, num_attention_heads: heads, intermediate_size: intermediate } = config;
  const ok = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;
  return ok(layers) && ok(hidden) && ok(heads) && ok(intermediate) ? { layers, hidden, heads, intermediate } : undefined;
}

/**
 * Padded tokens per micro-batch that fit the tfjs wasm heap (4 GiB; 3.7 GiB planned): the heap holds
 * the weights, the packed copies XNNPACK keeps of them and one set of gradients (12 bytes per
 * parameter; AdamW's moments and the gradient sums live on the host), and the activations a backward
 * pass keeps with their gradients: measured on a BERT-base export (bench notes in the report) at
 * about 4 × layers · (20·hidden + 4·heads·T + 6·intermediate) float32 values per token at row length
 * T (the longest row). At most 4096 (at least 1); 2048 when config.json lacks the encoder sizes.
 * BERT-base (101.7 M parameters) gets 358 for 130-token rows — micro-batches of two 128-token
 * windows — and 245 for 512-token rows: a row longer than the budget runs alone and may not fit
 * (train with --max-length 130 there).
 */
export function defaultMaxBatchTokens(config: ModelConfig, parameters: number, rowLength: number): number {
  const shape = encoderShape(config);
  if (!shape) return 2048;
  const free = 3.7 * 2 ** 30 - 12 * parameters;
  const perToken = 4 * shape.layers * (20 * shape.hidden + 4 * shape.heads * rowLength + 6 * shape.intermediate) * 4;
  const tokens = Math.floor(Math.max(0, free) / Math.max(perToken, 1));
  return Math.max(1, Math.min(4096, tokens));
}

/** Names of the initializers that stay fixed: rank-0 ones, and those matching `freeze`. */
export function frozenInitializers(model: onnx.IModelProto, variables: Iterable<string>, freeze: readonly string[]): Set<string> {
  const rank = new Map<string, number>();
  for (const t of model.graph?.initializer ?? []) rank.set(t.name ?? '', (t.dims ?? []).length);
  const out = new Set<string>();
  for (const name of variables) {
    if ((rank.get(name) ?? 1) === 0 || freeze.some((f) => f !== '' && name.includes(f))) out.add(name);
  }
  return out;
}

async function readData(path: string, labels: LabelSet, skip: boolean, what: string): Promise<ReadExamplesResult> {
  const data = await readExamples(path, { types: labels.types, unknownTypes: skip ? 'skip' : 'error' });
  if (data.examples.length === 0) {
    throw new InputError(`the ${what} file has no sentences`, {
      file: path,
      hint: 'pass a labelled JSONL ({"text", "entities"} per line) or CoNLL file',
    });
  }
  return data;
}

function sameCounts(a: F1Scores, b: F1Scores): boolean {
  const types = new Set([...Object.keys(a.perType), ...Object.keys(b.perType)]);
  const eq = (x: F1Scores['micro'] | undefined, y: F1Scores['micro'] | undefined) =>
    x !== undefined && y !== undefined && x.tp === y.tp && x.gold === y.gold && x.pred === y.pred;
  return eq(a.micro, b.micro) && [...types].every((t) => eq(a.perType[t], b.perType[t]));
}

/** Fine-tune a model folder (see the module comment). */
export async function finetuneModelFolder(opts: FinetuneOptions): Promise<FinetuneResult> {
  const o = checkOptions(opts);
  const log = opts.log ?? (() => {});
  const loadAvgStart = loadavg();

  const folder = await loadModelFolder({ model: opts.model, labels: opts.labels, vocab: opts.vocab });
  const loaded = await loadModel(folder.onnxPath);
  const model = loaded.model;
  const labelSet = new LabelSet(folder.labels);
  const tokenizer = await loadTokenizer(folder);
  const lossKind: LossKind = opts.loss === undefined || opts.loss === 'auto' ? (folder.crf ? 'crf' : 'ce') : opts.loss;
  if (lossKind === 'crf' && !folder.crf) {
    throw new UsageError('--loss crf needs a CRF, and the model folder has no crf.json', {
      file: folder.dir,
      hint: 'use --loss ce (token cross-entropy), or add the CRF transitions as crf.json',
    });
  }

  // what stays fixed (checked before reading any data)
  const freeze = opts.freeze ?? [];
  const allFloat = new Set(
    (model.graph?.initializer ?? [])
      .filter((t) => isFloatType(t.dataType ?? 0))
      .map((t) => t.name ?? ''),
  );
  const frozen = frozenInitializers(model, allFloat, freeze);
  for (const f of freeze) {
    if (f !== '' && ![...allFloat].some((n) => n.includes(f))) {
      throw new UsageError(`--freeze "${f}" matches no float initializer of the model`, {
        hint: `initializer names look like ${[...allFloat].slice(0, 3).join(', ')}; run \`ranerc inspect\` to list them`,
      });
    }
  }

  const windowSize = (opts.maxLength ?? folder.maxLength) - 2;
  const overlap = opts.overlap ?? defaultOverlap(windowSize);
  const skip = opts.skipUnknownTypes ?? false;
  const train = await readData(opts.train, labelSet, skip, 'training');
  const dev = await readData(opts.dev, labelSet, skip, 'dev');
  const rows: TrainRow[] = trainingRows(train.examples, tokenizer, labelSet, { windowSize, overlap });
  if (rows.length === 0) {
    throw new InputError('no training sentence has a token', {
      file: opts.train,
      hint: "check that the texts are in the model's language and vocabulary",
    });
  }
  const lengths = rows.map((r) => r.ids.length);
  const windowed = new Set<number>();
  rows.forEach((r, i) => i > 0 && rows[i - 1].example === r.example && windowed.add(r.example));

  const executor = await OnnxExecutor.create(model, { backend: opts.backend ?? 'auto', trainable: (n) => !frozen.has(n) });
  let trainer: Trainer | undefined;
  let tmpDir: string | undefined;
  try {
    const tmp = await mkdtemp(join(tmpdir(), 'ranerc-finetune-'));
    tmpDir = tmp;
    trainer = new Trainer(executor, {
      loss: lossKind,
      crf: lossKind === 'crf' ? folder.crf : undefined,
      weightDecay: o.weightDecay,
      clipNorm: o.clipNorm,
    });
    const sizeOf = (name: string) => executor.variables.get(name)?.size ?? 0;
    const trainableParams = trainer.params.reduce((n, p) => n + p.variable.size, 0);
    const frozenParams = [...frozen].reduce((n, name) => n + sizeOf(name), 0);
    const totalParams = [...executor.variables.keys()].reduce((n, name) => n + sizeOf(name), 0);
    const maxBatchTokens = opts.maxBatchTokens ?? defaultMaxBatchTokens(folder.config, totalParams, windowSize + 2);
    const tooLong = rows.filter((r) => r.ids.length > maxBatchTokens).length;
    const batchesPerEpoch = Math.ceil(rows.length / o.batch);
    const schedule: LinearSchedule = { lr: o.lr, totalSteps: o.epochs * batchesPerEpoch, warmupSteps: 0 };
    schedule.warmupSteps = warmupStepsFor(schedule.totalSteps, o.warmupRatio);
    log(
      `fine-tuning ${trainableParams.toLocaleString('en-US')} parameters (${trainer.params.length} tensors${frozen.size ? `, ${frozen.size} frozen` : ''}) ` +
        `with ${lossKind === 'crf' ? 'the CRF negative log-likelihood' : 'token cross-entropy'} on tfjs ${executor.backend.name}` +
        `${executor.backend.reason ? ` (${executor.backend.reason})` : ''}: ${rows.length} rows, ${batchesPerEpoch} steps per epoch, ` +
        `micro-batches of at most ${maxBatchTokens} padded tokens`,
    );

    // step 0: the starting model, exactly as `ranerc eval` scores it
    const windowOpts = { windowSize, overlap, threads: opts.threads };
    let evalMs = 0;
    let t = performance.now();
    const before = await scoreFolder(folder, dev.examples, windowOpts);
    evalMs += performance.now() - t;
    const evals: FinetuneEval[] = [{ step: 0, epoch: 0, f1: before.micro.f1, precision: before.micro.precision, recall: before.micro.recall, seconds: 0 }];
    let best: { step: number; epoch: number; f1: number; scores: F1Scores; checkpoint?: Checkpoint } = {
      step: 0,
      epoch: 0,
      f1: before.micro.f1,
      scores: before,
    };
    log(`dev F1 before: ${(before.micro.f1 * 100).toFixed(2)}`);

    const curve: FinetunePoint[] = [];
    const recent: number[] = [];
    let step = 0;
    let tokens = 0;
    let padded = 0;
    let trainMs = 0;
    let stoppedBy: FinetuneDetails['stoppedBy'] = 'epochs';
    const deadline = opts.maxMinutes !== undefined ? opts.maxMinutes * 60_000 : undefined;
    const rand = mulberry32(o.seed);
    let lastEvalStep = 0;
    let lastF1: number | undefined;
    let epoch = 0;
    const tr = trainer;

    const evaluate = async (): Promise<void> => {
      const t0 = performance.now();
      const ck = tr.checkpoint();
      const path = join(tmp, `step-${step}.onnx`);
      await saveModel(withInitializers(model, ck.weights), path);
      let scores: F1Scores;
      try {
        const current: ModelFolder = { ...folder, onnxPath: path, externalDataFiles: undefined };
        if (ck.crf) current.crf = ck.crf;
        scores = await scoreFolder(current, dev.examples, windowOpts);
      } finally {
        await rm(path, { force: true });
        await rm(`${path}.data`, { force: true });
      }
      const seconds = (performance.now() - t0) / 1000;
      evalMs += performance.now() - t0;
      lastEvalStep = step;
      lastF1 = scores.micro.f1;
      evals.push({ step, epoch, f1: scores.micro.f1, precision: scores.micro.precision, recall: scores.micro.recall, seconds });
      const better = scores.micro.f1 > best.f1;
      if (better) best = { step, epoch, f1: scores.micro.f1, scores, checkpoint: ck };
      log(`epoch ${epoch} step ${step}: dev F1 ${(scores.micro.f1 * 100).toFixed(2)}${better ? ' (best so far)' : ''}`);
      opts.onProgress?.({
        phase: 'eval',
        epoch,
        step,
        totalSteps: schedule.totalSteps,
        loss: mean(recent),
        lr: curve.at(-1)?.lr ?? 0,
        tokensPerSec: trainMs > 0 ? tokens / (trainMs / 1000) : 0,
        devF1: lastF1,
        bestF1: best.f1,
      });
    };

    outer: for (epoch = 1; epoch <= o.epochs; epoch++) {
      const plan = planEpoch(lengths, { batchRows: o.batch, maxTokens: maxBatchTokens }, rand);
      for (const batch of plan) {
        const micro: MicroBatch[] = batch.map((idx) => makeMicroBatch(rows, idx, tokenizer.padId));
        const timeFraction = deadline !== undefined ? trainMs / deadline : undefined;
        const lr = learningRate(schedule, step, timeFraction);
        const t0 = performance.now();
        const r = tr.step(micro, lr);
        trainMs += performance.now() - t0;
        step++;
        tokens += r.tokens;
        padded += r.paddedTokens;
        recent.push(r.loss);
        if (recent.length > 20) recent.shift();
        curve.push({ step, epoch, loss: r.loss, lr, gradNorm: r.gradNorm, tokens: r.tokens, ms: performance.now() - t0 });
        opts.onProgress?.({
          phase: 'train',
          epoch,
          step,
          totalSteps: schedule.totalSteps,
          loss: mean(recent),
          lr,
          tokensPerSec: tokens / (trainMs / 1000),
          devF1: lastF1,
          bestF1: best.f1,
        });
        if (!Number.isFinite(r.loss)) {
          throw new InputError(`the training loss became ${r.loss} at step ${step}`, {
            file: opts.train,
            hint: 'lower --lr (and keep --clip-norm > 0)',
          });
        }
        if (deadline !== undefined && trainMs >= deadline) {
          stoppedBy = 'max-minutes';
          break outer;
        }
        if (opts.evalEvery !== undefined && step % opts.evalEvery === 0) await evaluate();
      }
      if (lastEvalStep !== step) await evaluate();
    }
    if (epoch > o.epochs) epoch = o.epochs;
    if (lastEvalStep !== step) await evaluate();

    // write the best checkpoint
    const bestWeights = best.checkpoint;
    const bestCrf = bestWeights?.crf ?? folder.crf;
    const outModel = bestWeights ? withInitializers(model, bestWeights.weights) : model;
    const sourceSha = await sha256File(folder.onnxPath);
    const settings = {
      epochs: o.epochs,
      lr: o.lr,
      batch: o.batch,
      maxBatchTokens,
      warmupRatio: o.warmupRatio,
      weightDecay: o.weightDecay,
      clipNorm: o.clipNorm,
      seed: o.seed,
      loss: lossKind,
      freeze,
      windowSize,
      overlap,
      evalEvery: opts.evalEvery ?? null,
      maxMinutes: opts.maxMinutes ?? null,
    };
    const written = await writeModelFolder(opts.out, folder, outModel, {
      provenance: {
        ranerc: ranercVersion(),
        command: 'finetune',
        createdAt: new Date().toISOString(),
        source: { path: folder.onnxPath, sha256: sourceSha },
        settings: { ...settings, bestStep: best.step, devF1: best.f1 },
      },
      crf: bestCrf ?? null,
    });
    log(`wrote ${written.dir}`);

    // the written folder, scored as `ranerc eval` scores it
    const outFolder = await loadModelFolder({ model: written.dir });
    t = performance.now();
    const after = await scoreFolder(outFolder, dev.examples, windowOpts);
    const afterMs = performance.now() - t;
    const warnings: string[] = [];
    if (!sameCounts(after, best.scores)) {
      warnings.push(
        `the written folder scores dev F1 ${(after.micro.f1 * 100).toFixed(2)} but its checkpoint scored ${(best.f1 * 100).toFixed(2)} during training`,
      );
    }
    if (!bestWeights) warnings.push('no evaluation beat the starting model: the output folder holds the starting weights');
    if (tooLong > 0) {
      warnings.push(
        `${tooLong} training row${tooLong === 1 ? ' is' : 's are'} longer than the micro-batch budget of ${maxBatchTokens} tokens and ran alone (lower --max-length if the backend runs out of memory)`,
      );
    }
    if (stoppedBy === 'max-minutes') warnings.push(`training stopped after ${opts.maxMinutes} minutes (--max-minutes), at step ${step} of ${schedule.totalSteps}`);

    const details: FinetuneDetails = {
      backend: executor.backend.name,
      ...(executor.backend.reason ? { backendReason: executor.backend.reason } : {}),
      loss: lossKind,
      crfTrained: lossKind === 'crf',
      epochs: o.epochs,
      epochsRun: Math.min(o.epochs, step / batchesPerEpoch),
      steps: step,
      plannedSteps: schedule.totalSteps,
      warmupSteps: schedule.warmupSteps,
      stoppedBy,
      trainRows: rows.length,
      trainSentences: train.examples.length,
      windowedSentences: windowed.size,
      maxBatchTokens,
      trainSeconds: trainMs / 1000,
      evalSeconds: (evalMs + afterMs) / 1000,
      tokens,
      paddedTokens: padded,
      tokensPerSec: trainMs > 0 ? tokens / (trainMs / 1000) : 0,
      paddedTokensPerSec: trainMs > 0 ? padded / (trainMs / 1000) : 0,
      parameters: { trainable: trainableParams, frozen: frozenParams, tensors: trainer.params.length },
      frozen: [...frozen].sort(),
      best: { step: best.step, epoch: best.epoch, f1: best.f1 },
      evals,
      curve,
      loadAverage: { start: loadAvgStart, end: loadavg() },
      curveFile: CURVE_FILE,
    };
    const report = newReport<FinetuneDetails, 'finetune'>(
      'finetune',
      {
        model: opts.model,
        train: opts.train,
        dev: opts.dev,
        out: opts.out,
        ...settings,
        backend: opts.backend ?? 'auto',
        threads: opts.threads ?? 'default',
      },
      details,
      { threads: opts.threads },
    );
    report.environment.tfjsBackend = executor.backend.name;
    report.warnings.push(...warnings);
    const mBefore = await summarizeModel(folder, 'before', opts.model);
    mBefore.f1 = before;
    const mAfter = await summarizeModel(outFolder, 'after', opts.out);
    mAfter.f1 = after;
    report.models.push(mBefore, mAfter);
    const ents = (ex: readonly Example[]) => ex.reduce((n, e) => n + e.entities.length, 0);
    report.data = {
      files: [
        await summarizeData(opts.train, { format: train.format, sentences: train.examples.length, entities: ents(train.examples), skipped: train.skipped.length }),
        await summarizeData(opts.dev, { format: dev.format, sentences: dev.examples.length, entities: ents(dev.examples), skipped: dev.skipped.length }),
      ],
    };
    return {
      outDir: written.dir,
      onnxPath: written.onnxPath,
      details,
      report,
      curveSvg: curveSvg(details, `${folder.config.model_type ?? 'model'} fine-tuning on ${executor.backend.name}`),
      f1: { before, after },
      ...(bestWeights ? { checkpoint: bestWeights } : {}),
    };
  } finally {
    trainer?.dispose();
    executor.dispose();
    if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
  }
}

function mean(xs: readonly number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length;
}
