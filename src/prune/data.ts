/**
 * Model inputs for importance scoring: sentences → WordPiece tokens → windows of the model's length
 * (as eval/predict cut them) → `[CLS] window [SEP]` rows with per-token loss targets, batched by
 * length.
 *
 * The loss counts a token when it is the first piece of its word (the piece eval reads a label
 * from) and its window owns it (a token inside two overlapping windows counts once, in the window
 * eval takes its prediction from); [CLS], [SEP], padding and later pieces of a word are masked.
 * Gold targets are `tokenTagIds` (the labels eval's gold alignment gives each token).
 */
import type { LabelSet } from '../ner/labels.js';
import { tokenTagIds } from '../ner/align.js';
import type { NerTokenizer } from '../ner/tokenizers/index.js';
import type { Example } from '../ner/types.js';
import { ownerWindow, planWindows } from '../ner/windows.js';

/** One model input row ([CLS] … [SEP], unpadded). */
export interface ScoringRow {
  ids: number[];
  /** Gold label id per position (−1 where none: [CLS]/[SEP]). */
  labels: number[];
  /** 1 where the position counts in the loss. */
  lossMask: number[];
}

/** A padded batch, row-major [batch, seqLen]. */
export interface ScoringBatch {
  batch: number;
  seqLen: number;
  ids: Int32Array;
  /** Attention mask: 1 for real positions. */
  mask: Int32Array;
  /** Gold label ids (0 where not counted). */
  labels: Int32Array;
  lossMask: Float32Array;
  /** Positions counted in the loss. */
  tokens: number;
}

export interface RowOptions {
  /** Tokens per window without [CLS]/[SEP]. */
  windowSize: number;
  overlap: number;
}

/** Rows of every example (gold labels from `labels`), in example order. */
export function scoringRows(
  examples: readonly Example[],
  tokenizer: NerTokenizer,
  labels: LabelSet,
  opts: RowOptions,
): ScoringRow[] {
  const rows: ScoringRow[] = [];
  for (const ex of examples) {
    const tokens = tokenizer.tokenize(ex.text);
    const n = tokens.length;
    if (n === 0) continue;
    const gold = tokenTagIds(ex, tokens, labels);
    const windows = planWindows(n, opts.windowSize, opts.overlap);
    windows.forEach(([a, b], w) => {
      const ids = [tokenizer.clsId];
      const lab = [-1];
      const loss = [0];
      for (let t = a; t < b; t++) {
        ids.push(tokens[t].id);
        lab.push(gold[t]);
        const firstPiece = t === 0 || tokens[t - 1].word !== tokens[t].word;
        loss.push(firstPiece && ownerWindow(windows, t) === w ? 1 : 0);
      }
      ids.push(tokenizer.sepId);
      lab.push(-1);
      loss.push(0);
      rows.push({ ids, labels: lab, lossMask: loss });
    });
  }
  return rows;
}

/**
 * Batches of rows sorted by length (stable), at most `maxRows` rows and `maxTokens` padded
 * positions each (a single longer row still gets its own batch).
 */
export function batchRows(rows: readonly ScoringRow[], opts: { maxRows: number; maxTokens: number; padId: number }): ScoringBatch[] {
  if (!Number.isInteger(opts.maxRows) || opts.maxRows < 1) throw new RangeError(`maxRows must be >= 1, got ${opts.maxRows}`);
  const order = rows.map((_, i) => i).sort((x, y) => rows[x].ids.length - rows[y].ids.length || x - y);
  const out: ScoringBatch[] = [];
  for (let j = 0; j < order.length; ) {
    let k = j + 1;
    while (k < order.length && k - j < opts.maxRows && (k - j + 1) * rows[order[k]].ids.length <= opts.maxTokens) k++;
    const part = order.slice(j, k).map((i) => rows[i]);
    j = k;
    const T = part[part.length - 1].ids.length;
    const B = part.length;
    const ids = new Int32Array(B * T).fill(opts.padId);
    const mask = new Int32Array(B * T);
    const labels = new Int32Array(B * T);
    const lossMask = new Float32Array(B * T);
    let tokens = 0;
    part.forEach((r, b) => {
      const o = b * T;
      for (let t = 0; t < r.ids.length; t++) {
        ids[o + t] = r.ids[t];
        mask[o + t] = 1;
        labels[o + t] = Math.max(0, r.labels[t]);
        lossMask[o + t] = r.lossMask[t];
        tokens += r.lossMask[t];
      }
    });
    out.push({ batch: B, seqLen: T, ids, mask, labels, lossMask, tokens });
  }
  return out;
}

/** What {@link defaultBatchTokens} needs to know about the encoder. */
export interface EncoderShape {
  layers: number;
  hidden: number;
  heads: number;
  intermediate: number;
}

/**
 * Padded tokens per gradient batch for an encoder of this shape whose float weights take
 * `weightBytes`, sized for the tfjs wasm heap (at most 4 GiB, which must also hold the weights and
 * what the backward pass derives from them — transposed copies, packed matrices: about 2.5 × the
 * weights). Per token and layer a backward pass keeps about 20·hidden (projections, head
 * split/merge, residuals, LayerNorm) + 4·heads·T (scores, scaling, mask, softmax) + 6·intermediate
 * (FFN and GELU pieces) float32 values, T being the row length; the heap's peak is about six times
 * that (their gradients, allocator slack and growth steps). Calibrated on a BERT-base export, where
 * batches of ~240 tokens (T ≈ 30-60) brought the heap to 3.8 GiB: this gives ~180 tokens there.
 * `rowLength` is the longest row; at least one such row, at most 4096.
 */
export function defaultBatchTokens(shape: EncoderShape, rowLength: number, weightBytes: number): number {
  const perToken = 6 * shape.layers * (20 * shape.hidden + 4 * shape.heads * rowLength + 6 * shape.intermediate) * 4;
  const budget = Math.max(2 ** 28, 3 * 2 ** 30 - 2.5 * weightBytes);
  const tokens = Math.floor(budget / Math.max(perToken, 1));
  return Math.max(rowLength, Math.min(4096, tokens));
}
