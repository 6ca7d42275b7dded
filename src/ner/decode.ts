/**
 * From per-token label ids to character-span entities.
 *
 * With `subword: 'first'` (the default, as `predict_spans` in fixtures/teacher/train_teacher.py) the first
 * WordPiece of each basic word carries the word's label, chunks are found over words, and an entity covers
 * whole words: from the first piece's start to the last piece's end. With `subword: 'all'` every piece is a
 * position of its own and an entity covers exactly its pieces.
 */
import { chunksOf, type ChunkMode, type LabelSet, type ParsedTag } from './labels.js';
import type { Entity, Token } from './types.js';

export type SubwordMode = 'first' | 'all';

export interface DecodeOptions {
  /** Chunk rules (see labels.ts): `default` = seqeval default / conlleval, `strict` = seqeval strict. */
  mode?: ChunkMode;
  /** Which pieces carry labels: the first piece of each word (default) or every piece. */
  subword?: SubwordMode;
}

/** Entities (character spans with their text) from the label ids of `tokens` of `text`. */
export function tagsToEntities(
  text: string,
  tokens: readonly Token[],
  tagIds: readonly number[],
  labels: LabelSet,
  opts: DecodeOptions = {},
): Entity[] {
  if (tokens.length !== tagIds.length) {
    throw new RangeError(`${tokens.length} tokens but ${tagIds.length} label ids`);
  }
  const subword = opts.subword ?? 'first';
  const units: Array<{ start: number; end: number; word: number }> = [];
  const tags: ParsedTag[] = [];
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k];
    const last = units[units.length - 1];
    if (subword === 'first' && last !== undefined && last.word === t.word) {
      last.end = t.end;
    } else {
      units.push({ start: t.start, end: t.end, word: t.word });
      tags.push(labels.parse(tagIds[k]));
    }
  }
  return chunksOf(tags, opts.mode ?? 'default', labels.scheme).map((c) => {
    const start = units[c.start].start;
    const end = units[c.end - 1].end;
    return { start, end, type: c.type, text: text.slice(start, end) };
  });
}
