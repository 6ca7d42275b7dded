/**
 * Gold labels for tokens, and gold entities tokens cannot express.
 *
 * `tokenTagIds` gives each token the tag of its first character, as `encode` in
 * fixtures/teacher/train_teacher.py does for BIO: a token whose first character is an entity's first
 * character begins the entity, a token whose first character lies later inside the entity continues it, and a
 * token starting outside every entity is O. A beginning token that is not the first piece of its word is
 * demoted to a continuation (B- → I-), since only first pieces are read back (see decode.ts).
 * For other schemes the same token-level roles are rendered in the label set's scheme:
 *
 * | role                        | BIO | IOB1 | IO | BIOES | BMES | BILOU | IOE2 | IOE1 |
 * |-----------------------------|-----|------|----|-------|------|-------|------|------|
 * | begin (first of several)    | B   | I/B* | I  | B     | B    | B     | I    | I    |
 * | inside                      | I   | I    | I  | I     | M    | I     | I    | I    |
 * | end (last of several)       | I   | I    | I  | E     | E    | L     | E    | I/E* |
 * | single (only token)         | B   | I/B* | I  | S     | S    | U     | E    | I/E* |
 *
 * `*` IOB1 uses B only when the previous token belongs to another entity of the same type; IOE1 uses E only
 * when the next token begins another entity of the same type. When an entity starts inside a token (that
 * token starts before the entity), its first member token does not begin it: it is "inside", or "end" when it
 * is the entity's only token. A demoted non-first piece turns begin → inside and single → end.
 */
import { InputError } from '../errors.js';
import type { LabelSet, TagPrefix } from './labels.js';
import type { Example, Span, Token } from './types.js';

type Role = 'begin' | 'inside' | 'end' | 'single';

/** For each token, the index (into `entities`) of the entity its first character lies in, or -1. */
function membership(entities: readonly Span[], tokens: readonly Token[]): number[] {
  const order = entities.map((_, i) => i).sort((a, b) => entities[a].start - entities[b].start || entities[a].end - entities[b].end);
  const member = new Array<number>(tokens.length).fill(-1);
  // token starts never decrease and entities do not overlap (data.ts checks), so one pass over both suffices
  let j = 0;
  for (let k = 0; k < tokens.length; k++) {
    const s = tokens[k].start;
    while (j < order.length && entities[order[j]].end <= s) j++;
    if (j < order.length && entities[order[j]].start <= s) member[k] = order[j];
  }
  return member;
}

function prefixFor(role: Role, scheme: LabelSet['scheme'], adjacentBefore: boolean, adjacentAfter: boolean): TagPrefix {
  switch (scheme) {
    case 'BIO':
      return role === 'begin' || role === 'single' ? 'B' : 'I';
    case 'IOB1':
      return (role === 'begin' || role === 'single') && adjacentBefore ? 'B' : 'I';
    case 'IO':
      return 'I';
    case 'BIOES':
      return role === 'begin' ? 'B' : role === 'inside' ? 'I' : role === 'end' ? 'E' : 'S';
    case 'BMES':
      return role === 'begin' ? 'B' : role === 'inside' ? 'M' : role === 'end' ? 'E' : 'S';
    case 'BILOU':
      return role === 'begin' ? 'B' : role === 'inside' ? 'I' : role === 'end' ? 'L' : 'U';
    case 'IOE2':
      return role === 'end' || role === 'single' ? 'E' : 'I';
    case 'IOE1':
      return (role === 'end' || role === 'single') && adjacentAfter ? 'E' : 'I';
  }
}

/** Gold label id per token of `example` (see the module comment for the rules). */
export function tokenTagIds(example: Example, tokens: readonly Token[], labels: LabelSet): number[] {
  const ents = example.entities;
  const member = membership(ents, tokens);
  const roles = new Array<Role | undefined>(tokens.length);
  for (let k = 0; k < tokens.length; k++) {
    const i = member[k];
    if (i < 0) continue;
    const firstOfEntity = k === 0 || member[k - 1] !== i;
    const lastOfEntity = k === tokens.length - 1 || member[k + 1] !== i;
    const begins = firstOfEntity && tokens[k].start === ents[i].start;
    let role: Role = begins ? (lastOfEntity ? 'single' : 'begin') : lastOfEntity ? 'end' : 'inside';
    const nonFirstPiece = k > 0 && tokens[k - 1].word === tokens[k].word;
    if (nonFirstPiece && role === 'begin') role = 'inside';
    if (nonFirstPiece && role === 'single') role = 'end';
    roles[k] = role;
  }
  return tokens.map((_, k) => {
    const i = member[k];
    const role = roles[k];
    if (i < 0 || role === undefined) return labels.outsideId;
    const type = ents[i].type;
    const before = k > 0 && member[k - 1] >= 0 && member[k - 1] !== i && ents[member[k - 1]].type === type;
    const after =
      k + 1 < tokens.length &&
      member[k + 1] >= 0 &&
      member[k + 1] !== i &&
      ents[member[k + 1]].type === type &&
      tokens[k + 1].start === ents[member[k + 1]].start;
    const prefix = prefixFor(role, labels.scheme, before, after);
    const id = labels.tagId(prefix, type);
    if (id === undefined) {
      throw new InputError(`entity type "${type}" needs the label ${prefix}-${type}, which the model does not have`, {
        file: example.source?.file,
        line: example.source?.line,
        hint: `the model's labels are ${labels.labels.join(', ')}; drop or rename entities of other types (e.g. readExamples with types and unknownTypes: 'skip')`,
      });
    }
    return id;
  });
}

/**
 * Gold entities whose boundaries fall inside a unit, so no prediction can reproduce them exactly: units are
 * basic words with `subword: 'first'` (the default, what decode.ts predicts) or WordPiece tokens with 'all'.
 * An entity is aligned when some unit starts at its start and some unit at or after that one ends at its end.
 */
export function unalignedEntities(example: Example, tokens: readonly Token[], opts: { subword?: 'first' | 'all' } = {}): Span[] {
  const units: Array<{ start: number; end: number }> = [];
  let lastWord = -1;
  for (const t of tokens) {
    if ((opts.subword ?? 'first') === 'first' && units.length > 0 && t.word === lastWord) {
      units[units.length - 1].end = t.end;
    } else {
      units.push({ start: t.start, end: t.end });
    }
    lastWord = t.word;
  }
  const firstStart = new Map<number, number>();
  const lastEnd = new Map<number, number>();
  units.forEach((u, i) => {
    if (!firstStart.has(u.start)) firstStart.set(u.start, i);
    lastEnd.set(u.end, i);
  });
  return example.entities.filter((e) => {
    const a = firstStart.get(e.start);
    const b = lastEnd.get(e.end);
    return a === undefined || b === undefined || b < a;
  });
}
