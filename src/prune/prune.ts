/**
 * `pruneModelFolder`: gradient-based attention-head pruning (and optional FFN-neuron pruning) of a
 * model folder, with physical removal from the ONNX graph, an equivalence check against the gated
 * model, and the before → after measurements (parameters, size, F1, latency) for the report.
 *
 * Per round (`iterations`): score the current model (importance.ts, cached on disk), normalise per
 * layer and rank globally (scores.ts), pick this round's share of the removals under the
 * "never empty a layer" rule, cut them out (surgery.ts), find the attention blocks of the result
 * again. The CLI (src/cli/prune.ts) and the recipe runner call this; it prints nothing itself.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { GraphError, InputError, UsageError } from '../errors.js';
import type { BackendPreference } from '../autodiff/backend.js';
import { CURVE_FILE, finetuneModelFolder, type FinetuneOptions, type FinetuneResult } from '../autodiff/train/finetune.js';
import { readExamples } from '../ner/data.js';
import { LabelSet } from '../ner/labels.js';
import { loadTokenizer } from '../ner/tokenizers/index.js';
import type { Example, F1Scores } from '../ner/types.js';
import { defaultOverlap } from '../ner/windows.js';
import { refuseSharedWeights } from './shared.js';
import { findAttentionBlocks, requireAttentionBlocks, type AttentionBlock } from '../onnx/attention.js';
import { encodeModel, type onnx } from '../onnx/codec.js';
import { loadModel } from '../onnx/external.js';
import { loadModelFolder, writeModelFolder } from '../onnx/folder.js';
import { countParameters } from '../onnx/graph.js';
import type { ModelFolder } from '../onnx/types.js';
import { newReport, ranercVersion } from '../report/environment.js';
import { summarizeData, summarizeModel } from '../report/models.js';
import type { Progress } from '../report/progress.js';
import type { Report } from '../report/schema.js';
import { benchRow, makeBenchBatch, measureInterleaved, syntheticBenchInputs, type BenchInputs, type LatencyStats } from '../runtime/bench.js';
import { scoreFolder } from '../runtime/evaluate.js';
import { NerSession } from '../runtime/session.js';
import { sha256, sha256File } from '../util/fs.js';
import { cacheKey, defaultCacheDir, readCached, writeCached } from './cache.js';
import { batchRows, defaultBatchTokens, scoringRows, type ScoringBatch } from './data.js';
import { heatmapSvg } from './heatmap.js';
import { computeImportance, type ImportanceLoss, type ImportanceResult, type LossTarget } from './importance.js';
import type { PruneDetails, PruneLatency, PruneLayer, PruneRound } from './report.js';
import './report.js';
import { byLayer, maxRemovable, normalizeByLayer, removalCount, selectRemovals, splitRounds } from './scores.js';
import { blockParameters, gatedModel, pruneModel, type PrunePlan } from './surgery.js';

/** File name of the heat map written next to report.md. */
export const HEATMAP_FILE = 'head-importance.svg';

export interface PruneBenchOptions {
  /** Tokens per sequence incl. [CLS]/[SEP] (default 128). */
  seqLen?: number;
  /** Sequences per run (default 1). */
  batch?: number;
  /** Untimed runs per model first (default 5). */
  warmup?: number;
  /** Timed seconds of both models together (default 6 s), in `rounds` interleaved blocks each. */
  seconds?: number;
  /** And at least this many timed runs per model (default 20). */
  iterations?: number;
  /** Blocks per model (default 6; see `measureInterleaved`). */
  rounds?: number;
}

/** What `finetune` takes for recovery (model, out, backend, threads and windows come from the prune options). */
export type PruneFinetuneOptions = Pick<FinetuneOptions, 'train' | 'dev' | 'epochs' | 'lr' | 'batch' | 'maxBatchTokens' | 'maxMinutes' | 'seed' | 'freeze' | 'evalEvery'>;

export interface PruneOptions {
  /** Model folder, or a bare .onnx with `labels` and `vocab`. */
  model: string;
  labels?: string;
  vocab?: string;
  /** Data the importance is measured on (JSONL or CoNLL). */
  data: string;
  /** Output model folder (written atomically). */
  out: string;
  /** Fraction of all heads to remove: round(ratio × heads). */
  ratio: number;
  /** Fraction of all FFN intermediate neurons to remove (default 0). */
  ffnRatio?: number;
  /** Prune in this many rounds, rescoring between them (default 1). */
  iterations?: number;
  /** Allow removing every head of a layer (its attention output becomes the output bias). */
  allowEmptyLayers?: boolean;
  /** Loss to the gold labels (default) or to the model's own argmax predictions (`--no-labels`). */
  target?: LossTarget;
  /**
   * Importance loss: 'crf' (CRF NLL; default when the folder has crf.json), 'ce' (token cross-entropy;
   * default otherwise) or 'kl' (label-free KL to the original model's logits; round 1, where the
   * model is the original and the KL gradient is 0, uses cross-entropy to its own predictions).
   */
  importanceLoss?: ImportanceLoss;
  /** Skip gold entities of types the model lacks instead of failing. */
  skipUnknownTypes?: boolean;
  /** Score at most this many sentences of `data` (the first ones). */
  maxSentences?: number;
  /** Labelled test data: F1 before → after pruning. */
  eval?: string;
  /** Tokens per model input incl. [CLS]/[SEP] (default: the folder's maximum length). */
  maxLength?: number;
  /** Window overlap for long texts (default: as eval). */
  overlap?: number;
  /** Rows per importance batch (default 16) and padded tokens per batch (default: what the tfjs wasm heap allows, see defaultBatchTokens). */
  batchRows?: number;
  maxBatchTokens?: number;
  /** tfjs backend for the gradients (default 'auto'). */
  backend?: BackendPreference;
  /** onnxruntime intra-op threads for eval, the check and the latency comparison. */
  threads?: number;
  /** Latency before/after (default on: batch 1, sequence 128); false to skip. */
  bench?: PruneBenchOptions | false;
  /** Importance cache folder (default ~/.cache/ranerc/importance); false to disable. */
  cacheDir?: string | false;
  /** Compare pruned and gated logits in onnxruntime (default true). */
  verify?: boolean;
  /**
   * Recovery: fine-tune the pruned model (src/autodiff/train) on `train`, keeping the best dev-F1
   * checkpoint; `out` then holds the fine-tuned model (the pruned one is scored and dropped).
   */
  finetune?: PruneFinetuneOptions;
  /** Progress bars (the CLI's are on stderr). */
  progress?: (title: string, total: number) => Progress;
  /** One line of news. */
  log?: (line: string) => void;
}

export interface PruneResult {
  /** The written model folder and its ONNX file. */
  outDir: string;
  onnxPath: string;
  details: PruneDetails;
  /** The complete report (models before/after with F1 and latency, data, details). */
  report: Report<PruneDetails, 'prune'>;
  /** The heat map SVG (write it as {@link HEATMAP_FILE} next to report.md). */
  heatmapSvg: string;
  /** F1 on `eval` before, after pruning and (with `finetune`) after fine-tuning. */
  f1?: { before: F1Scores; pruned: F1Scores; finetuned?: F1Scores };
  /** The fine-tuning run (with `finetune`): its report and training curve (write it as {@link CURVE_FILE}). */
  finetune?: { result: FinetuneResult; curveSvg: string; curveFile: string };
}

const SILENT: Progress = { setTotal() {}, update() {}, stop() {}, visible: false };

function checkOptions(o: PruneOptions): void {
  const frac = (v: number | undefined, flag: string) => {
    if (v !== undefined && !(Number.isFinite(v) && v >= 0 && v <= 1)) {
      throw new UsageError(`${flag} must be a number in [0, 1], got ${v}`, { hint: `e.g. ${flag} 0.25 removes a quarter` });
    }
  };
  frac(o.ratio, '--ratio');
  frac(o.ffnRatio, '--ffn-ratio');
  const int = (v: number | undefined, flag: string, min: number) => {
    if (v !== undefined && !(Number.isInteger(v) && v >= min)) {
      throw new UsageError(`${flag} must be an integer >= ${min}, got ${v}`, { hint: `pass ${flag} ${min} or more` });
    }
  };
  int(o.iterations, '--iterations', 1);
  int(o.maxSentences, '--max-sentences', 1);
  int(o.maxLength, '--max-length', 3);
  int(o.batchRows, '--batch', 1);
  if (o.finetune && (!o.finetune.train || !o.finetune.dev)) {
    throw new UsageError('fine-tuning after pruning needs both training data and dev data', {
      hint: 'pass --finetune TRAIN.jsonl --dev DEV.jsonl (dev F1 picks the best checkpoint)',
    });
  }
  int(o.maxBatchTokens, '--max-batch-tokens', 1);
}

/** SHA-256 identifying a model's bytes (the ONNX file and its external data files). */
export async function modelHash(folder: ModelFolder): Promise<string> {
  const parts = [await sha256File(folder.onnxPath)];
  for (const f of folder.externalDataFiles ?? []) parts.push(await sha256File(f));
  return parts.length === 1 ? parts[0] : sha256(parts.join('\n'));
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Per original layer, the values of the current heads placed at their original indices. */
function onGrid(values: number[][], layerOf: number[], ids: number[][], sizes: number[]): Array<Array<number | null>> {
  const grid: Array<Array<number | null>> = sizes.map((n) => new Array<number | null>(n).fill(null));
  values.forEach((row, i) => row.forEach((v, j) => (grid[layerOf[i]][ids[layerOf[i]][j]] = v)));
  return grid;
}

/** Feeds for onnxruntime from a scoring batch (int64/int32 as the graph declares). */
function ortFeeds(session: ort.InferenceSession, b: ScoringBatch): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  const n = b.batch * b.seqLen;
  for (const meta of session.inputMetadata) {
    const name = meta.name;
    let src: ArrayLike<number>;
    if (name === 'input_ids') src = b.ids;
    else if (name === 'attention_mask') src = b.mask;
    else if (name === 'token_type_ids') src = new Int32Array(n);
    else if (name === 'position_ids') src = Int32Array.from({ length: n }, (_, i) => i % b.seqLen);
    else throw new GraphError(`graph input "${name}" is unknown to ranerc`, { node: name, hint: 'ranerc feeds input_ids, attention_mask, token_type_ids and position_ids' });
    const type = meta.isTensor ? meta.type : 'int64';
    feeds[name] =
      type === 'int32' ? new ort.Tensor('int32', Int32Array.from(src), [b.batch, b.seqLen]) : new ort.Tensor('int64', BigInt64Array.from(Array.from(src), (x) => BigInt(x)), [b.batch, b.seqLen]);
  }
  return feeds;
}

/** A batch cut to `rows` rows of at most `len` positions (a valid [CLS] … row prefix). */
function cropBatch(b: ScoringBatch, rows: number, len: number): ScoringBatch {
  const B = Math.min(rows, b.batch);
  const T = Math.min(len, b.seqLen);
  const pick = <A extends Int32Array | Float32Array>(src: A, make: (n: number) => A): A => {
    const out = make(B * T);
    for (let r = 0; r < B; r++) out.set(src.subarray(r * b.seqLen, r * b.seqLen + T), r * T);
    return out;
  };
  const lossMask = pick(b.lossMask, (n) => new Float32Array(n));
  return {
    batch: B,
    seqLen: T,
    ids: pick(b.ids, (n) => new Int32Array(n)),
    mask: pick(b.mask, (n) => new Int32Array(n)),
    labels: pick(b.labels, (n) => new Int32Array(n)),
    lossMask,
    tokens: lossMask.reduce((a, v) => a + v, 0),
  };
}

/** The input dims the graph fixes (static exports), per axis; undefined where dynamic. */
function fixedDims(model: onnx.IModelProto): [number | undefined, number | undefined] {
  const inp = (model.graph?.input ?? []).find((i) => i.name === 'input_ids');
  const dims = inp?.type?.tensorType?.shape?.dim ?? [];
  const at = (k: number): number | undefined => {
    const d = dims[k];
    return d && d.dimValue !== undefined && d.dimValue !== null && !d.dimParam ? Number(d.dimValue.toString()) : undefined;
  };
  return [at(0), at(1)];
}

/** Batches to compare pruned and gated logits on: two shapes from the data (or the graph's fixed shape). */
export function checkBatches(batches: readonly ScoringBatch[], model: onnx.IModelProto, padId: number): ScoringBatch[] {
  const [fb, ft] = fixedDims(model);
  if (fb !== undefined || ft !== undefined) {
    const src = batches[batches.length - 1];
    const B = fb ?? Math.min(2, src.batch);
    const T = ft ?? Math.min(16, src.seqLen);
    const ids = new Int32Array(B * T).fill(padId);
    const mask = new Int32Array(B * T);
    for (let r = 0; r < B; r++) {
      const s = r % src.batch;
      const len = Math.min(T, src.seqLen);
      ids.set(src.ids.subarray(s * src.seqLen, s * src.seqLen + len), r * T);
      mask.set(src.mask.subarray(s * src.seqLen, s * src.seqLen + len), r * T);
    }
    return [{ batch: B, seqLen: T, ids, mask, labels: new Int32Array(B * T), lossMask: new Float32Array(B * T), tokens: 0 }];
  }
  const first = cropBatch(batches[0], 1, batches[0].seqLen);
  const last = batches[batches.length - 1];
  const second = cropBatch(last, 3, Math.min(last.seqLen, 64));
  return first.seqLen === second.seqLen && first.batch === second.batch ? [first] : [first, second];
}

/** max |pruned − gated| logits in onnxruntime over `batches`. */
export async function equivalenceCheck(
  pruned: onnx.IModelProto,
  gated: onnx.IModelProto,
  batches: readonly ScoringBatch[],
  threads?: number,
): Promise<number> {
  const options: ort.InferenceSession.SessionOptions = { logSeverityLevel: 3 };
  if (threads !== undefined) options.intraOpNumThreads = threads;
  const a = await ort.InferenceSession.create(encodeModel(pruned), options);
  const g = await ort.InferenceSession.create(encodeModel(gated), options);
  try {
    let worst = 0;
    for (const b of batches) {
      // Copy each output before the next run: onnxruntime may reuse output buffers.
      const x = Float32Array.from((await a.run(ortFeeds(a, b)))[a.outputNames[0]].data as Float32Array);
      const y = Float32Array.from((await g.run(ortFeeds(g, b)))[g.outputNames[0]].data as Float32Array);
      if (x.length !== y.length) return Infinity;
      for (let i = 0; i < x.length; i++) {
        const d = Math.abs(x[i] - y[i]);
        if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : d;
      }
    }
    return worst;
  } finally {
    await a.release();
    await g.release();
  }
}

export interface LatencyComparison {
  before: LatencyStats;
  after: LatencyStats;
  loadAvgStart: number[];
  loadAvgEnd: number[];
}

/**
 * Time two models on the same input in one process, in interleaved blocks (`measureInterleaved`: both
 * see the same machine load, and neither is timed while the other's threads still spin).
 */
export async function compareLatency(
  beforePath: string,
  afterPath: string,
  inputs: BenchInputs,
  opts: PruneBenchOptions & { threads?: number; onProgress?: (roundsDone: number) => void } = {},
): Promise<LatencyComparison> {
  const seqLen = opts.seqLen ?? 128;
  const batch = opts.batch ?? 1;
  const a = await NerSession.open(beforePath, { threads: opts.threads });
  const b = await NerSession.open(afterPath, { threads: opts.threads });
  try {
    const feed = makeBenchBatch(inputs, seqLen, batch);
    const loadAvgStart = loadavg();
    const [before, after] = await measureInterleaved([() => a.runFlat(feed), () => b.runFlat(feed)], {
      rounds: opts.rounds ?? PRUNE_BENCH_ROUNDS,
      warmup: opts.warmup ?? 5,
      iterations: opts.iterations ?? 20,
      seconds: (opts.seconds ?? 6) / 2,
      onRound: opts.onProgress,
    });
    return { before, after, loadAvgStart, loadAvgEnd: loadavg() };
  } finally {
    await a.close();
    await b.close();
  }
}

/**
 * Largest |pruned − gated| logit difference accepted (the README's 1e-4). Measured on the fixtures
 * (test/prune/prune.test.ts): float32 reassociation leaves differences of about 1e-6.
 */
export const EQUIVALENCE_TOLERANCE = 1e-4;

/** Default blocks per model of the before/after latency comparison. */
export const PRUNE_BENCH_ROUNDS = 6;

/** Prune a model folder (see the module comment). */
export async function pruneModelFolder(opts: PruneOptions): Promise<PruneResult> {
  checkOptions(opts);
  const log = opts.log ?? (() => {});
  const progress = opts.progress ?? (() => SILENT);
  const target: LossTarget = opts.target ?? 'gold';
  const ffnRatio = opts.ffnRatio ?? 0;
  const iterations = opts.iterations ?? 1;
  const allowEmpty = opts.allowEmptyLayers ?? false;

  const folder = await loadModelFolder({ model: opts.model, labels: opts.labels, vocab: opts.vocab });
  // --no-labels (target 'predicted') has no gold path for the CRF: cross-entropy to the argmax
  const importanceLoss: ImportanceLoss = opts.importanceLoss ?? (folder.crf && target === 'gold' ? 'crf' : 'ce');
  if (importanceLoss === 'crf' && target === 'predicted') {
    throw new UsageError('--importance-loss crf needs gold labels; --no-labels scores without them', {
      hint: 'use --importance-loss kl (label-free) or ce with --no-labels',
    });
  }
  if (importanceLoss === 'crf' && !folder.crf) {
    throw new UsageError('--importance-loss crf needs a CRF, and the model folder has no crf.json', {
      file: folder.onnxPath,
      hint: 'use --importance-loss ce or kl, or add the CRF as crf.json',
    });
  }
  const loaded = await loadModel(folder.onnxPath);
  const original = loaded.model;
  const origBlocks = requireAttentionBlocks(findAttentionBlocks(original), { needFfn: ffnRatio > 0, file: folder.onnxPath });
  refuseSharedWeights(origBlocks, folder.onnxPath);
  const layers = origBlocks.length;
  const headsBefore = origBlocks.map((b) => b.numHeads);
  const ffnBefore = origBlocks.map((b) => b.ffn?.intermediate.outFeatures);
  log(`attention: ${layers} layers, heads per layer ${headsBefore.join(' ')} (head size ${origBlocks[0].headSize})`);

  // data
  const labelSet = new LabelSet(folder.labels);
  const tokenizer = await loadTokenizer(folder);
  const read = await readExamples(opts.data, {
    types: labelSet.types,
    unknownTypes: target === 'predicted' || opts.skipUnknownTypes ? 'skip' : 'error',
  });
  const examples = opts.maxSentences ? read.examples.slice(0, opts.maxSentences) : read.examples;
  const windowSize = (opts.maxLength ?? folder.maxLength) - 2;
  const overlap = opts.overlap ?? defaultOverlap(windowSize);
  const rows = scoringRows(examples, tokenizer, labelSet, { windowSize, overlap });
  const encoder = {
    layers: origBlocks.length,
    hidden: Math.max(...origBlocks.map((b) => b.hidden)),
    heads: Math.max(...origBlocks.map((b) => b.numHeads)),
    intermediate: Math.max(0, ...origBlocks.map((b) => b.ffn?.intermediate.outFeatures ?? 4 * b.hidden)),
  };
  const weightBytes = 4 * countParameters(original.graph ?? {});
  const longest = rows.reduce((m, r) => Math.max(m, r.ids.length), 0);
  const maxBatchTokens = opts.maxBatchTokens ?? defaultBatchTokens(encoder, Math.max(longest, 1), weightBytes);
  const batches = batchRows(rows, { maxRows: opts.batchRows ?? 16, maxTokens: maxBatchTokens, padId: tokenizer.padId });
  const lossTokens = batches.reduce((n, b) => n + b.tokens, 0);
  if (lossTokens === 0) {
    throw new InputError('the data has no tokens to score', {
      file: opts.data,
      hint: 'pass sentences the model can tokenize (JSONL {"text", "entities"} or CoNLL)',
    });
  }

  // how much to remove
  const totalHeads = headsBefore.reduce((a, b) => a + b, 0);
  const nHeads = removalCount(opts.ratio, totalHeads);
  const minKeep = allowEmpty ? 0 : 1;
  const canHeads = maxRemovable(headsBefore, minKeep);
  if (nHeads > canHeads) {
    throw new UsageError(`--ratio ${opts.ratio} asks to remove ${nHeads} of ${totalHeads} heads, but at most ${canHeads} can go while every layer keeps a head`, {
      hint: `use --ratio ${(canHeads / totalHeads).toFixed(3)} or less, or --allow-empty-layers`,
    });
  }
  const ffnSizes = ffnBefore.map((n) => n ?? 0);
  const totalNeurons = ffnSizes.reduce((a, b) => a + b, 0);
  const nNeurons = ffnRatio > 0 ? removalCount(ffnRatio, totalNeurons) : 0;
  if (nNeurons > maxRemovable(ffnSizes, 1)) {
    throw new UsageError(`--ffn-ratio ${ffnRatio} would empty an FFN`, { hint: 'use a --ffn-ratio below 1' });
  }
  const headRounds = splitRounds(nHeads, iterations);
  const neuronRounds = splitRounds(nNeurons, iterations);

  // state across rounds
  let model: onnx.IModelProto = original;
  let blocks: AttentionBlock[] = origBlocks;
  let layerOf = range(layers);
  const headIds = headsBefore.map(range);
  const neuronIds = ffnSizes.map(range);
  const removedIn = headsBefore.map((n) => new Array<number>(n).fill(0));
  const removedHeads: number[][] = headsBefore.map(() => []);
  const removedNeurons: number[][] = ffnSizes.map(() => []);
  const emptiedLayers: number[] = [];
  const rounds: PruneRound[] = [];
  const cacheDir = opts.cacheDir === false ? undefined : (opts.cacheDir ?? defaultCacheDir());
  const [modelSha, dataSha] = await Promise.all([modelHash(folder), sha256File(opts.data)]);

  for (let r = 0; r < iterations; r++) {
    if (r > 0 && headRounds[r] === 0 && neuronRounds[r] === 0) continue;
    const scoreFfn = ffnRatio > 0;
    const key = cacheKey(modelSha, dataSha, {
      target,
      importanceLoss,
      windowSize,
      overlap,
      maxSentences: opts.maxSentences ?? null,
      ffn: scoreFfn,
      skipUnknownTypes: Boolean(opts.skipUnknownTypes),
      removedHeads,
      removedNeurons: scoreFfn ? removedNeurons : null,
      emptiedLayers,
    });
    const shape = { heads: blocks.map((b) => b.numHeads), ...(scoreFfn ? { ffn: blocks.map((b) => b.ffn?.intermediate.outFeatures ?? 0) } : {}) };
    let imp: ImportanceResult | undefined = cacheDir ? await readCached(cacheDir, key, shape) : undefined;
    const cached = imp !== undefined;
    if (!imp) {
      const bar = progress(`importance ${r + 1}/${iterations}`, batches.length);
      try {
        const roundLoss: ImportanceLoss = importanceLoss === 'kl' && r === 0 ? 'ce' : importanceLoss;
        imp = await computeImportance(model, blocks, batches, {
          target: importanceLoss === 'kl' ? 'predicted' : target,
          loss: roundLoss,
          crf: folder.crf,
          reference: original,
          ffn: scoreFfn,
          backend: opts.backend,
          onBatch: (done) => bar.update(done, 'batches'),
        });
      } finally {
        bar.stop();
      }
      if (cacheDir) await writeCached(cacheDir, key, imp);
    }
    log(
      `round ${r + 1}: importance over ${imp.rows} rows / ${imp.tokens} tokens, mean loss ${imp.loss.toFixed(4)}` +
        (cached ? ' (cached)' : ` in ${(imp.ms / 1000).toFixed(1)} s on ${imp.backend}`),
    );
    const norm = normalizeByLayer(imp.heads);
    const headSel = selectRemovals(norm, headRounds[r], minKeep);
    const ffnSel = scoreFfn && imp.ffn ? selectRemovals(normalizeByLayer(imp.ffn), neuronRounds[r], 1) : [];
    if (headSel.length < headRounds[r] || ffnSel.length < neuronRounds[r]) {
      throw new UsageError(`round ${r + 1} cannot remove ${headRounds[r]} heads / ${neuronRounds[r]} neurons without emptying a layer`, {
        hint: 'use fewer --iterations, a lower ratio, or --allow-empty-layers',
      });
    }
    const plan: PrunePlan = { heads: byLayer(headSel, blocks.length), neurons: scoreFfn ? byLayer(ffnSel, blocks.length) : undefined };
    const round: PruneRound = {
      round: r + 1,
      heads: onGrid(imp.heads, layerOf, headIds, headsBefore),
      headsNormalized: onGrid(norm, layerOf, headIds, headsBefore),
      removedHeads: headSel.map((u) => [layerOf[u.layer], headIds[layerOf[u.layer]][u.index]] as [number, number]).sort((a, b) => a[0] - b[0] || a[1] - b[1]),
      ...(scoreFfn ? { removedNeurons: layerOf.reduce((acc, l, i) => ((acc[l] = plan.neurons![i].length), acc), new Array<number>(layers).fill(0)) } : {}),
      tokens: imp.tokens,
      rows: imp.rows,
      loss: imp.loss,
      backend: imp.backend,
      ms: imp.ms,
      cached,
    };
    rounds.push(round);
    if (headSel.length === 0 && ffnSel.length === 0) continue;

    const result = pruneModel(model, blocks, plan, { allowEmptyLayers: allowEmpty });
    blocks.forEach((_, i) => {
      const l = layerOf[i];
      for (const j of plan.heads[i]) {
        removedHeads[l].push(headIds[l][j]);
        removedIn[l][headIds[l][j]] = r + 1;
      }
      headIds[l] = headIds[l].filter((_, j) => !plan.heads[i].includes(j));
      const nr = plan.neurons?.[i] ?? [];
      for (const j of nr) removedNeurons[l].push(neuronIds[l][j]);
      neuronIds[l] = neuronIds[l].filter((_, j) => !nr.includes(j));
    });
    for (const i of result.emptiedLayers) emptiedLayers.push(layerOf[i]);
    layerOf = layerOf.filter((_, i) => !result.emptiedLayers.includes(i));
    model = result.model;
    blocks = requireAttentionBlocks(findAttentionBlocks(model), { needFfn: scoreFfn, file: `${folder.onnxPath} (pruned)` });
    if (blocks.length !== layerOf.length || blocks.some((b, i) => b.numHeads !== headIds[layerOf[i]].length)) {
      throw new GraphError('the pruned graph does not have the expected heads per layer', {
        hint: 'this is a ranerc bug; please report it with the model',
      });
    }
    log(`round ${r + 1}: removed heads ${round.removedHeads.map(([l, h]) => `${l}.${h}`).join(' ') || '(none)'}${ffnSel.length ? `, ${ffnSel.length} FFN neurons` : ''}`);
  }
  for (const list of [...removedHeads, ...removedNeurons]) list.sort((a, b) => a - b);

  // equivalence with the gated model
  const verify = opts.verify ?? true;
  let equivalence: PruneDetails['equivalence'];
  if (verify) {
    const gated = gatedModel(original, origBlocks, { heads: removedHeads, neurons: ffnRatio > 0 ? removedNeurons : undefined });
    const check = checkBatches(batches, original, tokenizer.padId);
    const maxAbsDiff = await equivalenceCheck(model, gated, check, opts.threads);
    equivalence = { maxAbsDiff, shapes: check.map((b) => [b.batch, b.seqLen] as [number, number]) };
    log(`check: max |pruned − gated| logits = ${maxAbsDiff.toExponential(2)}`);
    if (!(maxAbsDiff <= EQUIVALENCE_TOLERANCE)) {
      throw new GraphError(`the pruned model's logits differ from the gated model's by ${maxAbsDiff} (limit ${EQUIVALENCE_TOLERANCE})`, {
        hint: 'this is a ranerc bug; nothing was written. Please report it with the model (`ranerc inspect` output helps)',
      });
    }
  }

  // write
  const settings: Record<string, unknown> = {
    data: opts.data,
    ratio: opts.ratio,
    ffnRatio,
    iterations,
    allowEmptyLayers: allowEmpty,
    target,
    importanceLoss,
    maxSentences: opts.maxSentences ?? null,
    windowSize,
    overlap,
    batchRows: opts.batchRows ?? 16,
    maxBatchTokens,
    removedHeads: Object.fromEntries(removedHeads.map((h, l) => [String(l), h])),
    ...(ffnRatio > 0 ? { removedNeurons: Object.fromEntries(removedNeurons.map((n, l) => [String(l), n.length])) } : {}),
  };
  const prior = folder.config.pruned_heads;
  const hadPruned = typeof prior === 'object' && prior !== null && Object.keys(prior).length > 0;
  // Without fine-tuning the pruned model goes straight to `out`; with it, to a temporary folder that
  // finetune reads from (and that is removed at the end).
  const tmpRoot = opts.finetune ? await mkdtemp(join(tmpdir(), 'ranerc-prune-')) : undefined;
  try {
    const written = await writeModelFolder(tmpRoot ? join(tmpRoot, 'pruned') : opts.out, folder, model, {
      provenance: {
        ranerc: ranercVersion(),
        command: 'prune',
        createdAt: new Date().toISOString(),
        source: { path: folder.onnxPath, sha256: modelSha },
        settings,
      },
      config: hadPruned ? {} : { pruned_heads: Object.fromEntries(removedHeads.map((h, l) => [String(l), h]).filter(([, h]) => (h as number[]).length > 0)) },
    });
    if (!tmpRoot) log(`wrote ${written.dir}`);
    const prunedFolder = await loadModelFolder({ model: written.dir });

    // latency: timed here, before any fine-tuning — fine-tuning changes weights, not the graph or its cost,
    // and timing after tfjs training in this process read up to 1.5× high (fresh `bench` runs disagreed).
    let latency: PruneLatency | undefined;
    let cmp: LatencyComparison | undefined;
    const benchOpts = opts.bench === false ? undefined : (opts.bench ?? {});
    if (benchOpts) {
      const seqLen = Math.min(benchOpts.seqLen ?? 128, folder.maxLength);
      const inputs = syntheticBenchInputs(tokenizer);
      const [fb, ft] = fixedDims(original);
      const rounds = benchOpts.rounds ?? PRUNE_BENCH_ROUNDS;
      const bar = progress('latency', rounds);
      try {
        cmp = await compareLatency(folder.onnxPath, prunedFolder.onnxPath, inputs, {
          ...benchOpts,
          seqLen: ft ?? seqLen,
          batch: fb ?? benchOpts.batch ?? 1,
          threads: opts.threads,
          onProgress: (n) => bar.update(n, 'rounds'),
        });
      } finally {
        bar.stop();
      }
      latency = {
        seqLen: ft ?? seqLen,
        batch: fb ?? benchOpts.batch ?? 1,
        iterations: cmp.before.iterations,
        beforeP50Ms: cmp.before.p50,
        afterP50Ms: cmp.after.p50,
        reduction: 1 - cmp.after.p50 / cmp.before.p50,
        loadAvgStart: cmp.loadAvgStart,
        loadAvgEnd: cmp.loadAvgEnd,
      };
      log(`latency p50 ${cmp.before.p50.toFixed(2)} → ${cmp.after.p50.toFixed(2)} ms (batch ${latency.batch}, sequence ${latency.seqLen})`);
    }


    // recovery
    let ft: FinetuneResult | undefined;
    if (opts.finetune) {
      const f = opts.finetune;
      const bar = progress('fine-tune', 1);
      try {
        ft = await finetuneModelFolder({
          ...f,
          model: written.dir,
          out: opts.out,
          backend: opts.backend,
          threads: opts.threads,
          maxLength: opts.maxLength,
          overlap: opts.overlap,
          skipUnknownTypes: opts.skipUnknownTypes,
          log: (line) => log(`fine-tune: ${line}`),
          onProgress: (p) => {
            bar.setTotal(p.totalSteps);
            bar.update(p.step, `steps, loss ${p.loss.toFixed(3)}`);
          },
        });
      } finally {
        bar.stop();
      }
    }
    const finalFolder = ft ? await loadModelFolder({ model: ft.outDir }) : prunedFolder;

    // parameters
    const before = blockParameters(original, origBlocks);
    const after = blockParameters(model, blocks);
    for (const l of emptiedLayers) {
      // the layer's attention is one bias vector now; its FFN is no longer reachable from an attention block
      const b = origBlocks[l];
      after.attention += b.output.bias ? b.hidden : 0;
      if (b.ffn) {
        const kept = b.ffn.intermediate.outFeatures - removedNeurons[l].length;
        after.ffn += kept * b.ffn.intermediate.inFeatures + (b.ffn.intermediate.bias ? kept : 0) + kept * b.ffn.output.outFeatures + (b.ffn.output.bias ? b.ffn.output.outFeatures : 0);
      }
    }

    // F1
    let f1: PruneResult['f1'];
    let evalExamples: Example[] | undefined;
    let evalFormat = '';
    let evalSkipped = 0;
    if (opts.eval) {
      const ev = await readExamples(opts.eval, { types: labelSet.types, unknownTypes: opts.skipUnknownTypes ? 'skip' : 'error' });
      evalExamples = ev.examples;
      evalFormat = ev.format;
      evalSkipped = ev.skipped.length;
      const wopts = { threads: opts.threads, windowSize, overlap };
      const bar1 = progress('eval before', evalExamples.length);
      const fb = await scoreFolder(folder, evalExamples, { ...wopts, onProgress: (done) => bar1.update(done, 'sentences') }).finally(() => bar1.stop());
      const bar2 = progress('eval pruned', evalExamples.length);
      const fa = await scoreFolder(prunedFolder, evalExamples, { ...wopts, onProgress: (done) => bar2.update(done, 'sentences') }).finally(() => bar2.stop());
      f1 = { before: fb, pruned: fa };
      if (ft) {
        const bar3 = progress('eval fine-tuned', evalExamples.length);
        f1.finetuned = await scoreFolder(finalFolder, evalExamples, { ...wopts, onProgress: (done) => bar3.update(done, 'sentences') }).finally(() => bar3.stop());
      }
      log(
        `F1 ${(fb.micro.f1 * 100).toFixed(2)} → ${(fa.micro.f1 * 100).toFixed(2)}` +
          (f1.finetuned ? ` → ${(f1.finetuned.micro.f1 * 100).toFixed(2)} (fine-tuned)` : ''),
      );
    }

    const headsRemoved = removedHeads.reduce((n, h) => n + h.length, 0);
    const neuronsRemoved = removedNeurons.reduce((n, h) => n + h.length, 0);
    const layerRows: PruneLayer[] = origBlocks.map((b, l) => ({
      layer: l,
      headsBefore: b.numHeads,
      keptHeads: range(b.numHeads).filter((h) => !removedHeads[l].includes(h)),
      removedHeads: removedHeads[l],
      ...(b.ffn ? { ffnBefore: b.ffn.intermediate.outFeatures, ffnAfter: b.ffn.intermediate.outFeatures - removedNeurons[l].length } : {}),
    }));
    const details: PruneDetails = {
      ratio: opts.ratio,
      ffnRatio,
      iterations,
      target,
      importanceLoss,
      allowEmptyLayers: allowEmpty,
      heads: { before: totalHeads, removed: headsRemoved, after: totalHeads - headsRemoved },
      ...(ffnRatio > 0 ? { neurons: { before: totalNeurons, removed: neuronsRemoved, after: totalNeurons - neuronsRemoved } } : {}),
      layers: layerRows,
      emptiedLayers: emptiedLayers.sort((a, b) => a - b),
      rounds,
      parameters: {
        before: countParameters(original.graph ?? {}),
        after: countParameters(model.graph ?? {}),
        attentionBefore: before.attention,
        attentionAfter: after.attention,
        ffnBefore: before.ffn,
        ffnAfter: after.ffn,
      },
      ...(equivalence ? { equivalence } : {}),
      ...(latency ? { latency } : {}),
      heatmap: HEATMAP_FILE,
      ...(ft
        ? {
            finetune: {
              train: opts.finetune!.train,
              dev: opts.finetune!.dev,
              epochs: ft.details.epochs,
              epochsRun: ft.details.epochsRun,
              steps: ft.details.steps,
              loss: ft.details.loss,
              backend: ft.details.backend,
              trainSeconds: ft.details.trainSeconds,
              tokensPerSec: ft.details.tokensPerSec,
              devF1Before: ft.f1.before.micro.f1,
              devF1After: ft.f1.after.micro.f1,
              best: ft.details.best,
              curve: CURVE_FILE,
            },
          }
        : {}),
    };

    const svg = heatmapSvg({
      scores: rounds[0].headsNormalized,
      removedIn,
      title: `Head importance (${folder.config.model_type ?? 'model'}, ${layers} layers), ${headsRemoved} of ${totalHeads} heads removed`,
      caption: 'importance Σ|∂L/∂ξ| ÷ tokens, L2-normalised per layer (round 1)',
    });

    const report = newReport<PruneDetails, 'prune'>(
      'prune',
      {
        model: opts.model,
        out: opts.out,
        ...settings,
        eval: opts.eval ?? null,
        finetune: opts.finetune ? { ...opts.finetune } : null,
        backend: opts.backend ?? 'auto',
        bench: benchOpts ? { seqLen: latency?.seqLen, batch: latency?.batch } : false,
        threads: opts.threads ?? 'default',
      },
      details,
      { threads: opts.threads },
    );
    report.environment.tfjsBackend = rounds.map((r) => r.backend).find((b) => b !== undefined) ?? 'none';
    const mBefore = await summarizeModel(folder, 'before', opts.model);
    // with fine-tuning: the pruned model (temporary, not kept) and the fine-tuned one written to `out`
    const mPruned = ft ? await summarizeModel(prunedFolder, 'pruned', '(pruned, before fine-tuning; not kept)') : undefined;
    const mAfter = await summarizeModel(finalFolder, 'after', opts.out);
    if (f1) {
      mBefore.f1 = f1.before;
      if (mPruned) mPruned.f1 = f1.pruned;
      mAfter.f1 = f1.finetuned ?? f1.pruned;
    }
    if (cmp && latency) {
      mBefore.latency = [benchRow(latency.seqLen, latency.batch, cmp.before)];
      mAfter.latency = [benchRow(latency.seqLen, latency.batch, cmp.after)];
    }
    report.models.push(mBefore, ...(mPruned ? [mPruned] : []), mAfter);
    const files = [
      await summarizeData(opts.data, {
        format: read.format,
        sentences: examples.length,
        entities: examples.reduce((n, e) => n + e.entities.length, 0),
        skipped: read.skipped.length,
      }),
    ];
    if (opts.eval && evalExamples) {
      files.push(
        await summarizeData(opts.eval, {
          format: evalFormat,
          sentences: evalExamples.length,
          entities: evalExamples.reduce((n, e) => n + e.entities.length, 0),
          skipped: evalSkipped,
        }),
      );
    }
    report.data = { files };
    if (hadPruned) report.warnings.push('the source config.json already has pruned_heads; it was kept as it was (see ranerc.json for this run\'s heads)');
    if (read.skipped.length > 0) report.warnings.push(`${read.skipped.length} entities of types the model lacks were ignored in ${opts.data}`);
    if (latency && latency.reduction < 0) report.warnings.push('the pruned model was not faster in this run (see the load average)');

    if (ft) for (const w of ft.report.warnings) report.warnings.push(`fine-tune: ${w}`);
    return {
      outDir: finalFolder.dir,
      onnxPath: finalFolder.onnxPath,
      details,
      report,
      heatmapSvg: svg,
      ...(f1 ? { f1 } : {}),
      ...(ft ? { finetune: { result: ft, curveSvg: ft.curveSvg, curveFile: CURVE_FILE } } : {}),
    };
  } finally {
    if (tmpRoot) await rm(tmpRoot, { recursive: true, force: true });
  }
}
