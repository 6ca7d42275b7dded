/**
 * Calibration: run the float model in onnxruntime-node over calibration texts (tokenized and windowed
 * as `eval` does) and gather statistics of the tensors to quantize, batch by batch, so memory stays
 * bounded whatever the calibration size.
 *
 * - min/max: the graph is augmented with a ReduceMin and a ReduceMax per tensor (keepdims 0), so each run
 *   returns two scalars per tensor and no activation leaves onnxruntime;
 * - percentile / entropy: the tensors are extra graph outputs, folded into one histogram per tensor
 *   ({@link updateHistogram}) and released after each batch.
 *
 * Windows are sorted by length before batching (like the prediction pipeline) so little padding is run.
 * The SQNR pass ({@link measureSqnr}) runs the float and the quantized model on the same batches and
 * compares each quantized tensor with its float value and each quantized node's output across models.
 */
import * as ort from 'onnxruntime-node';
import { GraphError } from '../errors.js';
import { encodeModel, onnx } from '../onnx/codec.js';
import { GraphIndex } from '../onnx/graph.js';
import type { NerTokenizer } from '../ner/tokenizers/index.js';
import { planWindows } from '../ner/windows.js';
import {
  accumulateSqnr,
  dequantizeLinear,
  dynamicQuantizeLinear,
  entropyRange,
  fakeQuantize,
  mergeMinMax,
  minMaxRange,
  newHistogram,
  newMinMax,
  newSqnr,
  percentileRange,
  updateHistogram,
  type Histogram,
  type MinMax,
  type QParams,
  type SqnrAccumulator,
} from './qparams.js';
import type { CalibrationMethod, TensorRange } from './types.js';

/** One padded batch of [CLS] window [SEP] rows. */
export interface TokenBatch {
  ids: Int32Array;
  mask: Int32Array;
  batch: number;
  seqLen: number;
  /** Real (unpadded) tokens in the batch. */
  tokens: number;
}

export interface BatchPlanOptions {
  /** Tokens per window without [CLS]/[SEP]. */
  windowSize: number;
  overlap: number;
  /** Windows per batch at most. */
  batchSize: number;
  /** Padded tokens per batch at most. */
  maxBatchTokens: number;
}

/** Token windows of the texts, sorted by length and cut into padded batches (`planWindows` as eval). */
export function planBatches(
  tokenizer: NerTokenizer,
  texts: readonly string[],
  opts: BatchPlanOptions,
): { batches: TokenBatch[]; windows: number; tokens: number } {
  const rows: number[][] = [];
  for (const text of texts) {
    const ids = tokenizer.tokenize(text).map((t) => t.id);
    if (ids.length === 0) continue;
    for (const [a, b] of planWindows(ids.length, opts.windowSize, opts.overlap)) {
      rows.push([tokenizer.clsId, ...ids.slice(a, b), tokenizer.sepId]);
    }
  }
  rows.sort((x, y) => x.length - y.length);
  const batches: TokenBatch[] = [];
  let tokens = 0;
  for (let j = 0; j < rows.length; ) {
    let k = j + 1;
    while (k < rows.length && k - j < opts.batchSize && (k - j + 1) * rows[k].length <= opts.maxBatchTokens) k++;
    const part = rows.slice(j, k);
    j = k;
    const seqLen = part[part.length - 1].length;
    const ids = new Int32Array(part.length * seqLen).fill(tokenizer.padId);
    const mask = new Int32Array(part.length * seqLen);
    let real = 0;
    part.forEach((r, i) => {
      ids.set(r, i * seqLen);
      mask.fill(1, i * seqLen, i * seqLen + r.length);
      real += r.length;
    });
    tokens += real;
    batches.push({ ids, mask, batch: part.length, seqLen, tokens: real });
  }
  return { batches, windows: rows.length, tokens };
}

/** A batch given as ready onnxruntime feeds (any model, e.g. one-op test graphs). */
export interface FeedBatch {
  feeds: Record<string, ort.Tensor>;
}

/** What the calibration and SQNR passes run: token batches, or ready feeds. */
export type CalibBatch = TokenBatch | FeedBatch;

const ROLES = ['input_ids', 'attention_mask', 'token_type_ids', 'position_ids'] as const;

/** onnxruntime feeds for a batch, for the inputs `session` declares (int64 or int32). */
export function makeFeeds(session: ort.InferenceSession, b: CalibBatch): Record<string, ort.Tensor> {
  if ('feeds' in b) return b.feeds;
  const feeds: Record<string, ort.Tensor> = {};
  const n = b.batch * b.seqLen;
  for (const meta of session.inputMetadata) {
    const role = (ROLES as readonly string[]).includes(meta.name) ? meta.name : undefined;
    if (!role) {
      throw new GraphError(`graph input "${meta.name}" is unknown to ranerc`, {
        node: meta.name,
        hint: 'ranerc feeds input_ids, attention_mask, token_type_ids and position_ids only; re-export the model with those input names',
      });
    }
    const value = (i: number): number =>
      role === 'input_ids' ? b.ids[i] : role === 'attention_mask' ? b.mask[i] : role === 'position_ids' ? i % b.seqLen : 0;
    const type = meta.isTensor ? meta.type : 'unknown';
    if (type === 'int64') {
      const data = new BigInt64Array(n);
      for (let i = 0; i < n; i++) data[i] = BigInt(value(i));
      feeds[meta.name] = new ort.Tensor('int64', data, [b.batch, b.seqLen]);
    } else if (type === 'int32') {
      const data = new Int32Array(n);
      for (let i = 0; i < n; i++) data[i] = value(i);
      feeds[meta.name] = new ort.Tensor('int32', data, [b.batch, b.seqLen]);
    } else {
      throw new GraphError(`input "${meta.name}" has element type ${type}; ranerc feeds int64 or int32 token inputs`, {
        node: meta.name,
        hint: 're-export the model with integer (int64 or int32) token inputs',
      });
    }
  }
  return feeds;
}

/** Options for the sessions the quantizer opens. */
export interface RunOptions {
  threads?: number;
}

/**
 * Padded tokens per run when whole tensors leave onnxruntime (histograms, SQNR): a BERT-base layer stack
 * returns ~100k floats per token, so 256 tokens keep each run's outputs near 100 MB.
 */
export const FULL_OUTPUT_BATCH_TOKENS = 256;

/**
 * An onnxruntime session over an in-memory model (warnings silenced; all graph optimizations: the tensors asked for stay graph outputs, so fusions keep them). With
 * `arena: false` the CPU memory arena is off, so memory for large extra outputs is returned after each run.
 */
export async function openSession(model: onnx.IModelProto | Uint8Array, opts: RunOptions & { arena?: boolean } = {}): Promise<ort.InferenceSession> {
  const bytes = model instanceof Uint8Array ? model : encodeModel(model);
  const options: ort.InferenceSession.SessionOptions = { logSeverityLevel: 3, graphOptimizationLevel: 'all' };
  if (opts.arena === false) options.enableCpuMemArena = false;
  if (opts.threads !== undefined) options.intraOpNumThreads = opts.threads;
  try {
    return await ort.InferenceSession.create(bytes, options);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new GraphError(`onnxruntime cannot load the calibration model: ${msg.split('\n')[0]}`, {
      hint: 'the float model must run in onnxruntime-node; check it with `ranerc eval` first',
      cause: e,
    });
  }
}

/** A copy of `model` whose graph also outputs `tensors` (no type: onnxruntime infers it). */
export function withOutputs(model: onnx.IModelProto, tensors: readonly string[]): onnx.IModelProto {
  const graph = model.graph ?? {};
  const have = new Set((graph.output ?? []).map((o) => o.name));
  const extra = tensors.filter((t) => !have.has(t)).map((name) => onnx.ValueInfoProto.create({ name }));
  return { ...model, graph: { ...graph, output: [...(graph.output ?? []), ...extra] } };
}

/**
 * A copy of `model` with a ReduceMin and a ReduceMax (keepdims 0) of every tensor as graph outputs;
 * returns the output names per tensor.
 */
export function withMinMaxOutputs(model: onnx.IModelProto, tensors: readonly string[]): { model: onnx.IModelProto; outputs: Map<string, [string, string]> } {
  const graph = model.graph ?? {};
  const index = new GraphIndex(graph);
  const nodes = [...(graph.node ?? [])];
  const outputs = new Map<string, [string, string]>();
  const vis: onnx.IValueInfoProto[] = [];
  const AT = onnx.AttributeProto.AttributeType;
  for (const t of tensors) {
    const names: [string, string] = [index.uniqueName(`${t}_ReduceMin`), index.uniqueName(`${t}_ReduceMax`)];
    nodes.push(
      { opType: 'ReduceMin', name: names[0], input: [t], output: [names[0]], attribute: [{ name: 'keepdims', type: AT.INT, i: 0 }] },
      { opType: 'ReduceMax', name: names[1], input: [t], output: [names[1]], attribute: [{ name: 'keepdims', type: AT.INT, i: 0 }] },
    );
    vis.push(onnx.ValueInfoProto.create({ name: names[0] }), onnx.ValueInfoProto.create({ name: names[1] }));
    outputs.set(t, names);
  }
  return { model: { ...model, graph: { ...graph, node: nodes, output: [...(graph.output ?? []), ...vis] } }, outputs };
}

export interface CollectOptions extends RunOptions {
  method: CalibrationMethod;
  percentile?: number;
  numBins?: number;
  numQuantizedBins?: number;
  /** Called after each batch with the number of batches done. */
  onBatch?: (done: number, total: number) => void;
}

export interface CollectResult {
  ranges: Map<string, TensorRange>;
  /** Tensors onnxruntime reports as not float32 (cannot be quantized). */
  notFloat: Map<string, string>;
}

/** Default percentile kept by `method: percentile` (onnxruntime's quantization tools default to 99.999 too). */
export const DEFAULT_PERCENTILE = 99.999;

/** Default histogram sizes: 2048 bins (percentile and entropy), 128 quantized levels (entropy). */
export const DEFAULT_BINS = 2048;
export const DEFAULT_QUANTIZED_BINS = 128;

function outputTypeOf(session: ort.InferenceSession, name: string): string {
  const m = session.outputMetadata.find((o) => o.name === name);
  if (!m) return 'missing';
  return m.isTensor ? m.type : 'non-tensor';
}

/**
 * Calibrate `tensors` of the float `model` over `batches`: min/max in-graph, or histograms of the full
 * tensors for percentile/entropy. Tensors onnxruntime types as other than float32 are returned in
 * `notFloat` and get no range.
 */
export async function collectRanges(
  model: onnx.IModelProto,
  tensors: readonly string[],
  batches: readonly CalibBatch[],
  opts: CollectOptions,
): Promise<CollectResult> {
  const ranges = new Map<string, TensorRange>();
  const notFloat = new Map<string, string>();
  if (tensors.length === 0 || batches.length === 0) return { ranges, notFloat };
  if (opts.method === 'minmax') {
    const aug = withMinMaxOutputs(model, tensors);
    const session = await openSession(aug.model, { ...opts, arena: false });
    try {
      const live: string[] = [];
      for (const t of tensors) {
        const type = outputTypeOf(session, aug.outputs.get(t)![0]);
        if (type !== 'float32') notFloat.set(t, type);
        else live.push(t);
      }
      const acc = new Map<string, MinMax>(live.map((t) => [t, newMinMax()]));
      const fetch = live.flatMap((t) => aug.outputs.get(t)!);
      for (let i = 0; i < batches.length; i++) {
        const r = await session.run(makeFeeds(session, batches[i]), fetch);
        for (const t of live) {
          const [mn, mx] = aug.outputs.get(t)!;
          mergeMinMax(acc.get(t)!, (r[mn].data as Float32Array)[0], (r[mx].data as Float32Array)[0]);
        }
        opts.onBatch?.(i + 1, batches.length);
      }
      for (const t of live) {
        const a = acc.get(t)!;
        const range = minMaxRange(a);
        ranges.set(t, { tensor: t, min: range.min, max: range.max, observedMin: range.min, observedMax: range.max, nonFinite: a.nonFinite });
      }
    } finally {
      await session.release();
    }
    return { ranges, notFloat };
  }
  const session = await openSession(withOutputs(model, tensors), { ...opts, arena: false });
  try {
    const live: string[] = [];
    for (const t of tensors) {
      const type = outputTypeOf(session, t);
      if (type !== 'float32') notFloat.set(t, type);
      else live.push(t);
    }
    const numBins = opts.numBins ?? DEFAULT_BINS;
    const hists = new Map<string, Histogram>();
    for (let i = 0; i < batches.length; i++) {
      const r = await session.run(makeFeeds(session, batches[i]), live);
      for (const t of live) {
        const data = r[t].data as Float32Array;
        const h = hists.get(t);
        hists.set(t, h ? updateHistogram(h, data) : newHistogram(data, numBins));
      }
      opts.onBatch?.(i + 1, batches.length);
    }
    for (const t of live) {
      const h = hists.get(t)!;
      const range = opts.method === 'percentile' ? percentileRange(h, opts.percentile ?? DEFAULT_PERCENTILE) : entropyRange(h, opts.numQuantizedBins ?? DEFAULT_QUANTIZED_BINS);
      ranges.set(t, { tensor: t, min: range.min, max: range.max, observedMin: h.min, observedMax: h.max, nonFinite: h.nonFinite });
    }
  } finally {
    await session.release();
  }
  return { ranges, notFloat };
}

export interface SqnrOptions extends RunOptions {
  /** Activation tensors of quantized nodes with the static parameters they were quantized with; `'dynamic'` for per-batch DynamicQuantizeLinear. */
  activations: Map<string, QParams | 'dynamic'>;
  /** Outputs of quantized nodes (present in both models under the same name). */
  outputs: readonly string[];
  onBatch?: (done: number, total: number) => void;
}

export interface SqnrResult {
  /** Each activation vs its quantize-dequantize. */
  activations: Map<string, SqnrAccumulator>;
  /** Each quantized node's output in the quantized model vs the float model. */
  outputs: Map<string, SqnrAccumulator>;
}

/**
 * Run the float and the quantized model on the same batches and accumulate SQNRs: every quantized
 * activation against its fake-quantized value (the node's own input error), and every quantized node's
 * output across the two models (the error accumulated up to it).
 */
export async function measureSqnr(
  floatModel: onnx.IModelProto,
  quantModel: onnx.IModelProto,
  batches: readonly CalibBatch[],
  opts: SqnrOptions,
): Promise<SqnrResult> {
  const acts = [...opts.activations.keys()];
  const floatFetch = [...new Set([...acts, ...opts.outputs])];
  const activations = new Map(acts.map((t) => [t, newSqnr()]));
  const outputs = new Map(opts.outputs.map((t) => [t, newSqnr()]));
  if (batches.length === 0) return { activations, outputs };
  const fs = await openSession(withOutputs(floatModel, floatFetch), { ...opts, arena: false });
  let qs: ort.InferenceSession | undefined;
  try {
    qs = await openSession(withOutputs(quantModel, opts.outputs), { ...opts, arena: false });
    for (let i = 0; i < batches.length; i++) {
      const fr = await fs.run(makeFeeds(fs, batches[i]), floatFetch);
      for (const t of acts) {
        const x = fr[t]?.data as Float32Array | undefined;
        if (!x || !(x instanceof Float32Array)) continue;
        const p = opts.activations.get(t)!;
        let approx: Float32Array;
        if (p === 'dynamic') {
          const d = dynamicQuantizeLinear(x);
          approx = d.scale === 0 ? new Float32Array(x.length) : dequantizeLinear(d.y, { type: 'uint8', scale: Float32Array.of(d.scale), zeroPoint: Int32Array.of(d.zeroPoint) });
        } else approx = fakeQuantize(x, p);
        accumulateSqnr(activations.get(t)!, x, approx);
      }
      if (opts.outputs.length > 0) {
        const qr = await qs.run(makeFeeds(qs, batches[i]), [...opts.outputs]);
        for (const t of opts.outputs) {
          const a = fr[t]?.data;
          const b = qr[t]?.data;
          if (a instanceof Float32Array && b instanceof Float32Array && a.length === b.length) accumulateSqnr(outputs.get(t)!, a, b);
        }
      }
      opts.onBatch?.(i + 1, batches.length);
    }
  } finally {
    await fs.release();
    if (qs) await qs.release();
  }
  return { activations, outputs };
}
