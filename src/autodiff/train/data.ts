/**
 * Fine-tuning data: sentences → WordPiece tokens → windows of the model's length (exactly the windows
 * `eval` cuts: planWindows with its size and overlap) → `[CLS] window [SEP]` rows with gold tags;
 * seeded, length-bucketed optimizer batches of `batchRows` rows, each split into micro-batches of at
 * most `maxTokens` padded positions (gradient accumulation keeps the step equal to the whole batch's).
 *
 * Loss targets per row:
 * - `tags`: the gold label of every window token (`tokenTagIds`, the labels eval's gold alignment
 *   gives), repaired where a window cuts an entity (src/distill/batches.ts `repairCut`: a window
 *   starting inside an entity starts it afresh, B-; one ending inside it ends it there, for schemes
 *   with end tags) — the CRF sees every token of the window, as Viterbi decodes it.
 * - `ceMask`: token cross-entropy counts a token when it is the first piece of its word (the piece
 *   eval reads a word's label from) and this window owns it (ownerWindow: a token inside two
 *   overlapping windows counts once, in the window eval takes its prediction from).
 */
import * as tf from '@tensorflow/tfjs';
import { GraphError } from '../../errors.js';
import { tokenTagIds } from '../../ner/align.js';
import { repairCut, shuffle } from '../../distill/batches.js';
import type { LabelSet } from '../../ner/labels.js';
import type { NerTokenizer } from '../../ner/tokenizers/index.js';
import type { Example } from '../../ner/types.js';
import { ownerWindow, planWindows } from '../../ner/windows.js';
import type { GraphIO } from '../executor.js';

/** One model input row: a window of one sentence. */
export interface TrainRow {
  /** [CLS] window tokens [SEP]. */
  ids: Int32Array;
  /** Gold label id of each window token (ids.length − 2 of them), repaired at window cuts. */
  tags: Int32Array;
  /** 1 where token cross-entropy counts (per window token). */
  ceMask: Uint8Array;
  /** Index of the example the row comes from. */
  example: number;
}

export interface RowOptions {
  /** Tokens per window without [CLS]/[SEP] (the model's maximum length − 2). */
  windowSize: number;
  /** Tokens shared by consecutive windows of a long sentence. */
  overlap: number;
}

/** Training rows of every example, in example order (sentences without tokens give none). */
export function trainingRows(
  examples: readonly Example[],
  tokenizer: NerTokenizer,
  labels: LabelSet,
  opts: RowOptions,
): TrainRow[] {
  const rows: TrainRow[] = [];
  examples.forEach((ex, e) => {
    const tokens = tokenizer.tokenize(ex.text);
    const n = tokens.length;
    if (n === 0) return;
    const gold = tokenTagIds(ex, tokens, labels);
    const windows = planWindows(n, opts.windowSize, opts.overlap);
    windows.forEach(([a, b], w) => {
      const ids = new Int32Array(b - a + 2);
      const tags = new Int32Array(b - a);
      const ceMask = new Uint8Array(b - a);
      ids[0] = tokenizer.clsId;
      for (let t = a; t < b; t++) {
        ids[t - a + 1] = tokens[t].id;
        tags[t - a] = gold[t];
        const firstPiece = t === 0 || tokens[t - 1].word !== tokens[t].word;
        ceMask[t - a] = firstPiece && (windows.length === 1 || ownerWindow(windows, t) === w) ? 1 : 0;
      }
      ids[b - a + 1] = tokenizer.sepId;
      repairCut(tags, labels, a > 0, b < n);
      rows.push({ ids, tags, ceMask, example: e });
    });
  });
  return rows;
}

export interface EpochPlanOptions {
  /** Rows per optimizer step. */
  batchRows: number;
  /** Upper bound on padded positions (rows × longest row) per micro-batch; a longer row runs alone. */
  maxTokens: number;
  /** Batches whose rows are sorted by length together (default 50): less padding, still random. */
  poolBatches?: number;
}

/**
 * One epoch's optimizer batches (row indices), each split into micro-batches: rows shuffled; pools of
 * `poolBatches` batches sorted by length and cut into batches; batch order shuffled; inside a batch,
 * micro-batches of ascending length taken greedily under `maxTokens`. Deterministic for a given `rand`.
 * `lengths[i]` is row i's length including [CLS]/[SEP].
 */
export function planEpoch(lengths: readonly number[], opts: EpochPlanOptions, rand: () => number): number[][][] {
  const { batchRows, maxTokens } = opts;
  if (!(Number.isInteger(batchRows) && batchRows >= 1)) throw new RangeError(`batchRows must be an integer >= 1, got ${batchRows}`);
  if (!(Number.isInteger(maxTokens) && maxTokens >= 1)) throw new RangeError(`maxTokens must be an integer >= 1, got ${maxTokens}`);
  const pool = batchRows * (opts.poolBatches ?? 50);
  const order = shuffle(
    lengths.map((_, i) => i),
    rand,
  );
  const batches: number[][] = [];
  for (let p = 0; p < order.length; p += pool) {
    // stable sort: equal lengths keep their shuffled order
    const part = order.slice(p, p + pool).sort((x, y) => lengths[x] - lengths[y]);
    for (let q = 0; q < part.length; q += batchRows) batches.push(part.slice(q, q + batchRows));
  }
  shuffle(batches, rand);
  return batches.map((b) => microBatches(b, lengths, maxTokens));
}

/** Split one batch into micro-batches of ascending length with rows × longest ≤ maxTokens. */
export function microBatches(batch: readonly number[], lengths: readonly number[], maxTokens: number): number[][] {
  const rows = [...batch].sort((x, y) => lengths[x] - lengths[y] || x - y);
  const out: number[][] = [];
  let cur: number[] = [];
  for (const r of rows) {
    if (cur.length > 0 && (cur.length + 1) * lengths[r] > maxTokens) {
      out.push(cur);
      cur = [];
    }
    cur.push(r);
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/** A padded micro-batch, row-major [rows, seq]. */
export interface MicroBatch {
  rows: number;
  seq: number;
  ids: Int32Array;
  /** Attention mask: 1 on [CLS], tokens and [SEP]. */
  mask: Int32Array;
  /** Window tokens per row (without [CLS]/[SEP]); they sit at positions 1 … lens[r]. */
  lens: Int32Array;
  /** Gold label per position (0 where none). */
  tags: Int32Array;
  /** 1 where token cross-entropy counts. */
  ceMask: Uint8Array;
  /** Positions with attention mask 1 (real tokens including [CLS]/[SEP]). */
  tokens: number;
  /** Window tokens (Σ lens). */
  windowTokens: number;
  /** Positions token cross-entropy counts. */
  ceTokens: number;
}

/** Assemble the padded micro-batch of `rows[idx]`. */
export function makeMicroBatch(rows: readonly TrainRow[], idx: readonly number[], padId: number): MicroBatch {
  const B = idx.length;
  let S = 0;
  for (const i of idx) S = Math.max(S, rows[i].ids.length);
  const ids = new Int32Array(B * S).fill(padId);
  const mask = new Int32Array(B * S);
  const lens = new Int32Array(B);
  const tags = new Int32Array(B * S);
  const ceMask = new Uint8Array(B * S);
  let tokens = 0;
  let windowTokens = 0;
  let ceTokens = 0;
  idx.forEach((i, r) => {
    const row = rows[i];
    const o = r * S;
    ids.set(row.ids, o);
    mask.fill(1, o, o + row.ids.length);
    tags.set(row.tags, o + 1);
    ceMask.set(row.ceMask, o + 1);
    lens[r] = row.tags.length;
    tokens += row.ids.length;
    windowTokens += row.tags.length;
    for (const m of row.ceMask) ceTokens += m;
  });
  return { rows: B, seq: S, ids, mask, lens, tags, ceMask, tokens, windowTokens, ceTokens };
}

const ROLES = new Set(['input_ids', 'attention_mask', 'token_type_ids', 'position_ids']);

/**
 * The executor feeds of a micro-batch, by graph input name: input_ids, attention_mask,
 * token_type_ids (zeros), position_ids (0 … seq − 1). Inputs that are initializers with defaults
 * (`defaults`) are not fed. GraphError for any other input.
 */
export function batchFeeds(
  inputs: readonly GraphIO[],
  b: MicroBatch,
  defaults: ReadonlySet<string> = new Set(),
): Record<string, tf.Tensor> {
  const feeds: Record<string, tf.Tensor> = {};
  const shape = [b.rows, b.seq];
  for (const io of inputs) {
    if (defaults.has(io.name)) continue;
    if (!ROLES.has(io.name)) {
      for (const t of Object.values(feeds)) t.dispose();
      throw new GraphError(`graph input "${io.name}" is unknown to ranerc`, {
        node: io.name,
        hint: 'ranerc feeds input_ids, attention_mask, token_type_ids and position_ids; re-export the model with those input names',
      });
    }
    let data: Int32Array;
    if (io.name === 'input_ids') data = b.ids;
    else if (io.name === 'attention_mask') data = b.mask;
    else if (io.name === 'token_type_ids') data = new Int32Array(b.rows * b.seq);
    else data = Int32Array.from({ length: b.rows * b.seq }, (_, i) => i % b.seq);
    feeds[io.name] = tf.tensor(data, shape, 'int32');
  }
  return feeds;
}
