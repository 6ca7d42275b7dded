/**
 * Training data for the student: token chunks with their teacher logits and hard labels, and
 * length-bucketed, seeded batches of them.
 */
import { tokenTagIds } from '../ner/align.js';
import type { LabelSet } from '../ner/labels.js';
import type { CrfParams, Example } from '../ner/types.js';
import { argmaxDecode, viterbiDecode } from '../ner/viterbi.js';
import type { TextEmissions } from '../runtime/predict.js';
import type { LossBatch } from './loss.js';
import type { StudentInput } from './students.js';

/** One training sequence: a text's tokens (or a window of a long text's tokens). */
export interface TransferItem {
  /** Token ids without [CLS]/[SEP]. */
  ids: Int32Array;
  /** Teacher logits [n, L] of these tokens. */
  teacher?: Float32Array;
  /** Hard label ids [n] in the teacher's scheme (gold, or the teacher's decoded path). */
  tags?: Int32Array;
  /** Index of the text it came from. */
  text: number;
}

/** Fisher–Yates shuffle in place with `rand`. */
export function shuffle<T>(a: T[], rand: () => number): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/**
 * Make a label sequence cut out of a longer one well-formed at the cut: a piece that starts inside
 * an entity starts it afresh (BIO I → B, as train_teacher.py does; BIOES-like I/M → B and E/L → S), and
 * one that ends inside an entity ends it there (BIOES-like B → S, I/M → E). Other schemes are unchanged.
 */
export function repairCut(tags: Int32Array, labels: LabelSet, cutStart: boolean, cutEnd: boolean): void {
  const n = tags.length;
  if (n === 0) return;
  const re = (id: number, map: Record<string, string>): number => {
    const p = labels.parse(id);
    const to = map[p.prefix];
    if (!to) return id;
    return labels.tagId(to as Parameters<LabelSet['tagId']>[0], p.type) ?? id;
  };
  const s = labels.scheme;
  const START: Partial<Record<LabelSet['scheme'], Record<string, string>>> = {
    BIO: { I: 'B' },
    BIOES: { I: 'B', E: 'S' },
    BMES: { M: 'B', E: 'S' },
    BILOU: { I: 'B', L: 'U' },
  };
  const END: Partial<Record<LabelSet['scheme'], Record<string, string>>> = {
    BIOES: { B: 'S', I: 'E' },
    BMES: { B: 'S', M: 'E' },
    BILOU: { B: 'U', I: 'L' },
  };
  // the end repair runs after the start repair, so a one-token piece of a longer entity becomes S/U
  if (cutStart && START[s]) tags[0] = re(tags[0], START[s]);
  if (cutEnd && END[s]) tags[n - 1] = re(tags[n - 1], END[s]);
}

/**
 * Cut a text's tokens into consecutive pieces of at most `size` tokens (the student sees the same
 * window size at inference); teacher rows and hard labels are cut alongside.
 */
export function chunkText(
  text: number,
  ids: ArrayLike<number>,
  size: number,
  L: number,
  labels: LabelSet,
  teacher?: Float32Array,
  tags?: ArrayLike<number>,
): TransferItem[] {
  const n = ids.length;
  const out: TransferItem[] = [];
  for (let a = 0; a < n; a += size) {
    const b = Math.min(n, a + size);
    const item: TransferItem = { ids: Int32Array.from(Array.prototype.slice.call(ids, a, b) as number[]), text };
    if (teacher) item.teacher = teacher.slice(a * L, b * L);
    if (tags) {
      item.tags = Int32Array.from(Array.prototype.slice.call(tags, a, b) as number[]);
      repairCut(item.tags, labels, a > 0, b < n);
    }
    out.push(item);
  }
  return out;
}

export interface BatchPlanOptions {
  /** Upper bound on padded positions (rows × (longest + 2)) per batch. */
  maxTokens: number;
  /** Upper bound on rows per batch. */
  maxRows: number;
}

/**
 * Length-bucketed batches: items sorted by length (random tie-break), cut greedily so padded size
 * stays under `maxTokens`, then the batch order shuffled. Deterministic for a given `rand`.
 */
export function planBatches(lengths: readonly number[], opts: BatchPlanOptions, rand: () => number): number[][] {
  const keys = lengths.map((n, i) => ({ i, n, r: rand() }));
  keys.sort((x, y) => x.n - y.n || x.r - y.r);
  const batches: number[][] = [];
  let cur: number[] = [];
  let longest = 0;
  for (const { i, n } of keys) {
    const need = Math.max(longest, n) + 2;
    if (cur.length > 0 && (need * (cur.length + 1) > opts.maxTokens || cur.length >= opts.maxRows)) {
      batches.push(cur);
      cur = [];
      longest = 0;
    }
    cur.push(i);
    longest = Math.max(longest, n);
  }
  if (cur.length > 0) batches.push(cur);
  return shuffle(batches, rand);
}

export interface SpecialIds {
  cls: number;
  sep: number;
  pad: number;
}

/** Assemble a padded batch ([CLS] ids [SEP] pad…) with its loss targets. */
export function makeBatch(items: readonly TransferItem[], special: SpecialIds, L: number): { input: StudentInput; targets: LossBatch } {
  const B = items.length;
  let longest = 0;
  for (const it of items) longest = Math.max(longest, it.ids.length);
  const S = longest + 2;
  const ids = new Int32Array(B * S).fill(special.pad);
  const mask = new Int32Array(B * S);
  const lens = new Int32Array(B);
  const hasTeacher = items.every((it) => it.teacher !== undefined);
  const hasTags = items.every((it) => it.tags !== undefined);
  const teacher = hasTeacher ? new Float32Array(B * S * L) : undefined;
  const tags = hasTags ? new Int32Array(B * S) : undefined;
  items.forEach((it, r) => {
    const n = it.ids.length;
    const o = r * S;
    ids[o] = special.cls;
    ids.set(it.ids, o + 1);
    ids[o + n + 1] = special.sep;
    mask.fill(1, o, o + n + 2);
    lens[r] = n;
    if (teacher) teacher.set(it.teacher!, (o + 1) * L);
    if (tags) tags.set(it.tags!, o + 1);
  });
  return { input: { rows: B, seq: S, ids, mask }, targets: { rows: B, seq: S, lens, teacher, tags } };
}

/**
 * Training items of the transfer texts: each text's tokens with the teacher's logits, hard labels =
 * gold tags in the teacher's scheme (labelled texts, `tokenTagIds`) or the teacher's decoded path
 * (unlabelled text: CRF Viterbi when the teacher has a CRF, else argmax), cut into windows of `windowSize`.
 * `goldItems` are the items of labelled texts only (the hard-label-only baseline trains on them).
 */
export function transferItems(
  texts: ReadonlyArray<{ example: Example; gold: boolean; /** Not in `goldItems` (augmented text): default false. */ extra?: boolean }>,
  emissions: readonly TextEmissions[],
  labels: LabelSet,
  teacherCrf: CrfParams | undefined,
  windowSize: number,
): { items: TransferItem[]; goldItems: TransferItem[]; tokens: number } {
  const L = labels.size;
  const items: TransferItem[] = [];
  const goldItems: TransferItem[] = [];
  let tokens = 0;
  texts.forEach(({ example, gold, extra }, i) => {
    const em = emissions[i];
    const n = em.tokens.length;
    if (n === 0) return;
    let tags: number[];
    if (gold) tags = tokenTagIds(example, em.tokens, labels);
    else {
      const rows = Array.from({ length: n }, (_, t) => em.logits.subarray(t * L, (t + 1) * L));
      tags = teacherCrf ? viterbiDecode(rows, teacherCrf) : argmaxDecode(rows);
    }
    const chunks = chunkText(i, em.tokens.map((t) => t.id), windowSize, L, labels, em.logits, tags);
    items.push(...chunks);
    if (gold && !extra) goldItems.push(...chunks);
    tokens += n;
  });
  return { items, goldItems, tokens };
}
