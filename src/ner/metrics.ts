/**
 * Entity-level precision / recall / F1 over exact (start, end, type) matches.
 *
 * Counts follow seqeval and fixtures/tools/bert_ner.py `f1`: within a sentence, identical spans count once
 * (sets); micro scores add up true positives, gold and predicted spans over all sentences and types;
 * P = tp / pred, R = tp / gold, F1 = 2PR / (P + R), each computed in that order and 0 when its denominator is
 * 0 (seqeval's default `zero_division='warn'` returns 0 there too, with a warning). Per-type rows cover every
 * type seen in gold or predictions, sorted by name.
 */
import { InputError } from '../errors.js';
import { detectScheme, extractChunks, type ChunkMode, type LabelScheme } from './labels.js';
import type { F1Scores, Prf, Span } from './types.js';

/** P/R/F1 from counts (0 for an undefined ratio). */
export function prf(tp: number, gold: number, pred: number): Prf {
  const precision = pred > 0 ? tp / pred : 0;
  const recall = gold > 0 ? tp / gold : 0;
  const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
  return { precision, recall, f1, tp, gold, pred };
}

function keyOf(s: Span): string {
  return `${s.start}\u0000${s.end}\u0000${s.type}`;
}

/** Micro and per-type scores of predicted spans against gold spans, sentence by sentence. */
export function scoreSpans(gold: readonly (readonly Span[])[], pred: readonly (readonly Span[])[]): F1Scores {
  if (gold.length !== pred.length) {
    throw new InputError(`gold has ${gold.length} sentences but predictions have ${pred.length}`, {
      hint: 'score the predictions of exactly the gold sentences, in the same order',
    });
  }
  const counts = new Map<string, { tp: number; gold: number; pred: number }>();
  const row = (type: string): { tp: number; gold: number; pred: number } => {
    let r = counts.get(type);
    if (!r) {
      r = { tp: 0, gold: 0, pred: 0 };
      counts.set(type, r);
    }
    return r;
  };
  for (let i = 0; i < gold.length; i++) {
    const g = new Map<string, Span>();
    for (const s of gold[i]) g.set(keyOf(s), s);
    const p = new Map<string, Span>();
    for (const s of pred[i]) p.set(keyOf(s), s);
    for (const s of g.values()) row(s.type).gold++;
    for (const [k, s] of p) {
      const r = row(s.type);
      r.pred++;
      if (g.has(k)) r.tp++;
    }
  }
  let tp = 0;
  let ng = 0;
  let np = 0;
  const perType: Record<string, Prf> = {};
  for (const type of [...counts.keys()].sort()) {
    const r = counts.get(type) as { tp: number; gold: number; pred: number };
    perType[type] = prf(r.tp, r.gold, r.pred);
    tp += r.tp;
    ng += r.gold;
    np += r.pred;
  }
  return { micro: prf(tp, ng, np), perType };
}

/**
 * seqeval-style scores of tag sequences: chunks of each sentence (extractChunks with `mode` and `scheme`;
 * the scheme is detected from all tags when absent), then scoreSpans.
 */
export function scoreTagSequences(
  goldTags: readonly (readonly string[])[],
  predTags: readonly (readonly string[])[],
  opts: { mode?: ChunkMode; scheme?: LabelScheme } = {},
): F1Scores {
  if (goldTags.length !== predTags.length || goldTags.some((g, i) => g.length !== predTags[i].length)) {
    throw new InputError('gold and predicted tag sequences differ in number or length', {
      hint: 'give one predicted tag per gold tag, sentence by sentence',
    });
  }
  let scheme = opts.scheme;
  if (!scheme) {
    const all = new Set<string>();
    for (const s of [...goldTags, ...predTags]) for (const t of s) all.add(t);
    scheme = detectScheme([...all]);
  }
  const chunk = (tags: readonly string[]): Span[] => extractChunks(tags, { mode: opts.mode ?? 'default', scheme });
  return scoreSpans(goldTags.map(chunk), predTags.map(chunk));
}

