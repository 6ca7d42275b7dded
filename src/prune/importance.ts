/**
 * Head (and FFN neuron) importance by gradients of gates (Michel et al. 2019; Hugging Face
 * `run_bertology.py`'s `compute_heads_importance`), through ranerc's ONNX → tfjs executor.
 *
 * Every head's context (the output of the attention-probabilities × V MatMul, [B, heads, T, d]) is
 * multiplied by a gate ξ[b, h] = 1, one gate per example and head, so one backward pass gives every
 * example's own gradient. With L_b the summed token cross-entropy of example b (to the gold labels, or
 * to the model's own argmax predictions), the importance of head h is
 *
 *     I_h = Σ_b |∂L_b / ∂ξ[b, h]|  ÷  (number of tokens in the loss)
 *
 * FFN neurons the same way, with a gate per example and neuron on the activation output
 * ([B, T, intermediate]). Normalisation and ranking are in scores.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { GraphError, UsageError } from '../errors.js';
import { OnnxExecutor } from '../autodiff/executor.js';
import type { BackendPreference } from '../autodiff/backend.js';
import { findNode, type AttentionBlock } from '../onnx/attention.js';
import type { onnx } from '../onnx/codec.js';
import type { ScoringBatch } from './data.js';
import { hostLossOp, tokenLossValue } from '../autodiff/train/loss.js';
import type { CrfArrays } from '../distill/crf.js';
import type { CrfParams } from '../ner/types.js';

export type LossTarget = 'gold' | 'predicted';

/**
 * The loss whose gate gradients are the importance:
 * - `ce`: token cross-entropy (to gold labels or to the model's argmax, see `target`);
 * - `crf`: the linear-chain CRF negative log-likelihood of each row's window (needs `crf`), the
 *   objective the folder is decoded and fine-tuned with;
 * - `kl`: label-free KL(p_reference ‖ p_model) per counted token, p_reference = softmax of the
 *   `reference` model's logits (the original model). At the reference itself this gradient is exactly
 *   0, so it only tells heads apart once the model has drifted (later rounds); see prune.ts.
 */
export type ImportanceLoss = 'ce' | 'crf' | 'kl';

/** Row lengths of a batch's windows (positions 1 … lens[r], between [CLS] and [SEP]). */
export function windowLengths(b: ScoringBatch): Int32Array {
  const lens = new Int32Array(b.batch);
  for (let r = 0; r < b.batch; r++) {
    let n = 0;
    for (let t = 0; t < b.seqLen; t++) n += b.mask[r * b.seqLen + t];
    lens[r] = Math.max(0, n - 2);
  }
  return lens;
}

/** Σ_t mask_t · KL(softmax(ref_t) ‖ softmax(z_t)) with ∂/∂z added to `grad` (pure; logits [N, L] flat). */
export function klLossValue(
  logits: ArrayLike<number>,
  reference: ArrayLike<number>,
  L: number,
  mask: ArrayLike<number>,
  grad?: Float32Array,
): number {
  if (logits.length !== reference.length) throw new RangeError(`logits have ${logits.length} values, the reference ${reference.length}`);
  const N = logits.length / L;
  const p = new Float64Array(L);
  const q = new Float64Array(L);
  let sum = 0;
  for (let i = 0; i < N; i++) {
    const w = mask[i];
    if (w === 0) continue;
    const o = i * L;
    let mp = -Infinity;
    let mq = -Infinity;
    for (let j = 0; j < L; j++) {
      if (reference[o + j] > mp) mp = reference[o + j];
      if (logits[o + j] > mq) mq = logits[o + j];
    }
    let zp = 0;
    let zq = 0;
    for (let j = 0; j < L; j++) {
      p[j] = Math.exp(reference[o + j] - mp);
      q[j] = Math.exp(logits[o + j] - mq);
      zp += p[j];
      zq += q[j];
    }
    const lzp = Math.log(zp);
    const lzq = Math.log(zq);
    for (let j = 0; j < L; j++) {
      const pj = p[j] / zp;
      if (pj > 0) sum += w * pj * (reference[o + j] - mp - lzp - (logits[o + j] - mq - lzq));
      if (grad) grad[o + j] += w * (q[j] / zq - pj);
    }
  }
  return sum;
}

function crfArrays(c: CrfParams): CrfArrays {
  return { L: c.labels.length, trans: c.transitions.flat(), start: c.start, end: c.end };
}

export interface ImportanceOptions {
  /** Cross-entropy to the gold labels (default) or to the model's own argmax predictions. */
  target?: LossTarget;
  /** Also score FFN intermediate neurons. */
  ffn?: boolean;
  /** tfjs backend (default 'auto': tfjs-node when installed, else wasm). */
  backend?: BackendPreference;
  /** Which loss (default 'ce'). */
  loss?: ImportanceLoss;
  /** CRF parameters (needed by loss 'crf'). */
  crf?: CrfParams;
  /** The model whose output distribution loss 'kl' compares to (needed by 'kl'). */
  reference?: onnx.IModelProto;
  /** Called after each batch with the number of batches done. */
  onBatch?: (done: number, total: number) => void;
}

export interface ImportanceResult {
  /** Raw head importance I_h per layer (Σ|∂L/∂ξ| ÷ tokens). */
  heads: number[][];
  /** Raw neuron importance per layer (only with `ffn`). */
  ffn?: number[][];
  /** Tokens counted in the loss. */
  tokens: number;
  /** Model input rows scored. */
  rows: number;
  /** Mean loss per counted token over the data (with every gate at 1). */
  loss: number;
  /** The tfjs backend that ran. */
  backend: string;
  /** Wall time, ms. */
  ms: number;
}

interface Gate {
  tensor: string;
  units: number;
  /** Axes of the gated tensor that hold the batch and the units. */
  batchAxis: number;
  unitAxis: number;
  rank: number;
  layer: number;
  kind: 'head' | 'neuron';
}

/** The context tensor of each block and where its batch and head axes are. */
export function headGates(model: onnx.IModelProto, blocks: readonly AttentionBlock[]): Gate[] {
  const graph = model.graph ?? {};
  return blocks.map((b, layer) => {
    const node = findNode(graph, b.context.matmul);
    const tensor = node?.output?.[0];
    if (!tensor) {
      throw new GraphError(`the context MatMul ${b.context.matmul} of layer ${layer} has no output`, {
        node: b.context.matmul,
        hint: 'this is a ranerc bug or a malformed graph; run `ranerc inspect`',
      });
    }
    const rank = b.v.perm.length;
    const unitAxis = b.v.perm.indexOf(rank - 2);
    const batchAxis = b.v.perm.indexOf(0);
    if (unitAxis < 0 || batchAxis < 0 || unitAxis === batchAxis) {
      throw new GraphError(`cannot tell the head axis of the context in layer ${layer} (V permutation [${b.v.perm.join(', ')}])`, {
        node: b.context.matmul,
        hint: 'ranerc expects the V heads split as [batch, seq, heads, head size] and permuted like HF BERT',
      });
    }
    return { tensor, units: b.numHeads, batchAxis, unitAxis, rank, layer, kind: 'head' as const };
  });
}

/** The activation output of each block's FFN, [B, T, intermediate]. */
export function neuronGates(blocks: readonly AttentionBlock[]): Gate[] {
  return blocks.map((b, layer) => {
    if (!b.ffn) {
      throw new GraphError(`layer ${layer} has no matched FFN`, {
        node: b.output.node,
        hint: 'FFN neuron pruning needs every layer\'s intermediate dense → activation → output dense; run `ranerc inspect`',
      });
    }
    return { tensor: b.ffn.activation.output, units: b.ffn.intermediate.outFeatures, batchAxis: 0, unitAxis: 2, rank: 3, layer, kind: 'neuron' as const };
  });
}

/** A RanercError explaining a tfjs out-of-memory failure, or undefined when `e` is something else. */
function outOfMemory(e: unknown, b: ScoringBatch, backend: string): UsageError | undefined {
  const msg = e instanceof Error ? e.message : String(e);
  if (!/out of memory|memory access out of bounds|Aborted\(|allocat/i.test(msg)) return undefined;
  return new UsageError(`the tfjs ${backend} backend ran out of memory on a gradient batch of ${b.batch} × ${b.seqLen} tokens (${msg.split('\n')[0]})`, {
    hint: 'pass a smaller --max-batch-tokens (and --max-length for long texts), or install @tensorflow/tfjs-node for a native backend',
    cause: e,
  });
}

function gateShape(g: Gate, batch: number): number[] {
  const s = new Array<number>(g.rank).fill(1);
  s[g.batchAxis] = batch;
  s[g.unitAxis] = g.units;
  return s;
}

type Role = 'input_ids' | 'attention_mask' | 'token_type_ids' | 'position_ids';
const ROLES = new Set<string>(['input_ids', 'attention_mask', 'token_type_ids', 'position_ids']);

function feedsFor(ex: OnnxExecutor, b: ScoringBatch): Record<string, tf.Tensor> {
  const feeds: Record<string, tf.Tensor> = {};
  const shape = [b.batch, b.seqLen];
  for (const io of ex.inputs) {
    if (ex.variables.has(io.name)) continue; // an initializer also listed as an input
    if (!ROLES.has(io.name)) {
      throw new GraphError(`graph input "${io.name}" is unknown to ranerc`, {
        node: io.name,
        hint: 'ranerc feeds input_ids, attention_mask, token_type_ids and position_ids; re-export the model with those names',
      });
    }
    const role = io.name as Role;
    let data: Int32Array;
    if (role === 'input_ids') data = b.ids;
    else if (role === 'attention_mask') data = b.mask;
    else if (role === 'token_type_ids') data = new Int32Array(b.batch * b.seqLen);
    else data = Int32Array.from({ length: b.batch * b.seqLen }, (_, i) => i % b.seqLen);
    feeds[io.name] = tf.tensor(data, shape, 'int32');
  }
  return feeds;
}

/**
 * Importance of every head (and, with `ffn`, every FFN neuron) of `model` over `batches`.
 * `blocks` = `findAttentionBlocks(model).blocks`.
 */
export async function computeImportance(
  model: onnx.IModelProto,
  blocks: readonly AttentionBlock[],
  batches: readonly ScoringBatch[],
  opts: ImportanceOptions = {},
): Promise<ImportanceResult> {
  const t0 = performance.now();
  const target = opts.target ?? 'gold';
  const lossKind: ImportanceLoss = opts.loss ?? 'ce';
  if (lossKind === 'crf' && !opts.crf) throw new UsageError('the CRF importance loss needs CRF parameters', { hint: 'add crf.json to the folder or use --importance-loss ce' });
  if (lossKind === 'kl' && !opts.reference) throw new UsageError('the KL importance loss needs the reference model', { hint: 'this is a ranerc bug; please report it' });
  const crf = opts.crf ? crfArrays(opts.crf) : undefined;
  const gates = [...headGates(model, blocks), ...(opts.ffn ? neuronGates(blocks) : [])];
  const ex = await OnnxExecutor.create(model, { trainable: 'none', backend: opts.backend });
  const refEx = lossKind === 'kl' && opts.reference ? await OnnxExecutor.create(opts.reference, { trainable: 'none', backend: opts.backend }) : undefined;
  const sums = gates.map((g) => new Float64Array(g.units));
  let tokens = 0;
  let rows = 0;
  let lossSum = 0;
  try {
    const logitsName = ex.outputs[0]?.name;
    if (!logitsName) throw new GraphError('the model has no output', { hint: 'export the token classifier with a logits output' });
    for (let i = 0; i < batches.length; i++) {
      const b = batches[i];
      const feeds = feedsFor(ex, b);
      const lossMask = tf.tensor(b.lossMask, [b.batch, b.seqLen], 'float32');
      const gold = tf.tensor(b.labels, [b.batch, b.seqLen], 'int32');
      const xs = gates.map((g) => tf.ones([b.batch, g.units]));
      let refLogits: Float32Array | undefined;
      if (refEx) {
        const refName = refEx.outputs[0].name;
        const refFeeds = feedsFor(refEx, b);
        const out = refEx.run(refFeeds, { outputs: [refName] })[refName];
        refLogits = (await out.data()) as Float32Array;
        tf.dispose([out, ...Object.values(refFeeds)]);
      }
      const lens = lossKind === 'crf' ? windowLengths(b) : undefined;
      const byTensor = new Map<string, number>(gates.map((g, k) => [g.tensor, k]));
      const f = (...gs: tf.Tensor[]): tf.Scalar => {
        const tensors: Record<string, (v: tf.Tensor) => tf.Tensor> = {};
        for (const [name, k] of byTensor) {
          const g = gates[k];
          tensors[name] = (v) => {
            if (v.rank !== g.rank || v.shape[g.batchAxis] !== b.batch || v.shape[g.unitAxis] !== g.units) {
              throw new GraphError(
                `layer ${g.layer}: "${name}" has shape [${v.shape.join(', ')}]; expected ${g.units} ${g.kind}s on axis ${g.unitAxis} and batch ${b.batch} on axis ${g.batchAxis}`,
                { node: name, hint: 'this graph does not lay out attention like HF BERT; run `ranerc inspect`' },
              );
            }
            return tf.mul(v, tf.reshape(gs[k], gateShape(g, b.batch)));
          };
        }
        const logits = ex.run(feeds, { outputs: [logitsName], hooks: { tensors } })[logitsName];
        if (lossKind === 'crf' && lens) {
          const t = { rows: b.batch, seq: b.seqLen, lens, tags: b.labels, ceMask: new Uint8Array(0) };
          return hostLossOp(logits, undefined, (lg, L, _c, grad) => tokenLossValue(lg, L, t, 'crf', 1, crf, { logits: grad.logits }));
        }
        if (lossKind === 'kl' && refLogits) {
          const ref = refLogits;
          return hostLossOp(logits, undefined, (lg, L, _c, grad) => klLossValue(lg, ref, L, b.lossMask, grad.logits));
        }
        const logp = tf.logSoftmax(logits);
        const labels = target === 'gold' ? gold : tf.argMax(logits, -1);
        const nll = tf.neg(tf.sum(tf.mul(logp, tf.oneHot(tf.cast(labels, 'int32'), logits.shape[logits.rank - 1])), -1));
        return tf.sum(tf.mul(nll, lossMask)) as tf.Scalar;
      };
      let value: tf.Scalar;
      let grads: tf.Tensor[];
      try {
        ({ value, grads } = tf.valueAndGrads(f)(xs));
      } catch (e) {
        throw outOfMemory(e, b, ex.backend.name) ?? e;
      }
      const per = grads.map((g) => tf.tidy(() => tf.sum(tf.abs(g), 0)));
      const values = await Promise.all(per.map((t) => t.data()));
      values.forEach((v, k) => {
        const s = sums[k];
        for (let j = 0; j < s.length; j++) s[j] += v[j];
      });
      lossSum += (await value.data())[0];
      tf.dispose([value, ...grads, ...per, ...xs, lossMask, gold, ...Object.values(feeds)]);
      tokens += lens ? lens.reduce((a, n) => a + n, 0) : b.tokens;
      rows += b.batch;
      opts.onBatch?.(i + 1, batches.length);
    }
  } finally {
    try {
      ex.dispose();
      refEx?.dispose();
    } catch {
      // after a wasm abort the heap is gone; the error that caused it is what matters
    }
  }
  const denom = Math.max(tokens, 1);
  const heads: number[][] = [];
  const ffn: number[][] = [];
  gates.forEach((g, k) => (g.kind === 'head' ? heads : ffn).push(Array.from(sums[k], (v) => v / denom)));
  return {
    heads,
    ...(opts.ffn ? { ffn } : {}),
    tokens,
    rows,
    loss: lossSum / denom,
    backend: ex.backend.name,
    ms: performance.now() - t0,
  };
}
