/**
 * Label sets, tagging schemes and chunk extraction.
 *
 * Label names: `O`, or `<prefix>-<type>` / `<prefix>_<type>` with prefix one of B I E S M L U (`B-PER`,
 * `B_PER`, `I-ORG-COMPANY` → type `ORG-COMPANY`). A bare prefix (`B`, `I`) has type `_`, as in seqeval.
 * Anything else (`LABEL_0`, `PER-B`, `b-per`) is rejected with an InputError naming the label.
 *
 * Schemes, detected from the prefixes a label set uses (`detectScheme`):
 * - `BILOU` when any label is L- or U-;  `BMES` when any is M-;
 * - `BIOES` when any is E- or S- and the set has B- or S-;  `IOE2` when it has E- but neither B- nor S-;
 * - `BIO` (IOB2) when it has B-;  `IO` when it has only I- and O.
 * IOB1 (B- only between two adjacent chunks of one type) and IOE1 use the same names as BIO and IOE2, so
 * they cannot be told apart from names: BIO / IOE2 are the defaults, IOB1 / IOE1 only when asked for.
 *
 * Chunk extraction (`extractChunks`) follows seqeval:
 * - `default` mode is seqeval's default (conlleval-compatible, lenient) `get_entities`: an I- after O or after
 *   another type starts a chunk, a type change ends one, E-/S- close one, B-/S- start one. BMES tags are read
 *   with M as I; BILOU tags with L as E and U as S (seqeval's default mode knows only B I E S O).
 * - `strict` mode is seqeval's `mode='strict'` with the scheme's token class (IOB1, IOB2, IOE1, IOE2, IOBES,
 *   BILOU): only well-formed chunks count (IOB2: must start with B-; IOBES: must end with E- or be S-; ...).
 *   BMES uses IOBES with M as I; IO uses IOB1 (where every chunk starts with I- after O or another type).
 *   A prefix the scheme does not allow (E- in BIO) is an InputError, as seqeval raises ValueError.
 */
import { InputError, UsageError } from '../errors.js';
import type { Span } from './types.js';

export type LabelScheme = 'BIO' | 'IOB1' | 'BIOES' | 'BMES' | 'BILOU' | 'IO' | 'IOE1' | 'IOE2';
export type TagPrefix = 'B' | 'I' | 'E' | 'S' | 'M' | 'L' | 'U' | 'O';
export type ChunkMode = 'default' | 'strict';

export const LABEL_SCHEMES: readonly LabelScheme[] = ['BIO', 'IOB1', 'BIOES', 'BMES', 'BILOU', 'IO', 'IOE1', 'IOE2'];

/** A parsed tag: prefix and entity type (`''` for O). */
export interface ParsedTag {
  prefix: TagPrefix;
  type: string;
}

/** A chunk over positions [start, end) of a tag sequence. */
export type Chunk = Span;

/** Prefixes each scheme allows (O always). */
export const SCHEME_PREFIXES: Readonly<Record<LabelScheme, string>> = {
  BIO: 'BIO',
  IOB1: 'BIO',
  IO: 'IO',
  BIOES: 'BIESO',
  BMES: 'BMESO',
  BILOU: 'BILUO',
  IOE1: 'IEO',
  IOE2: 'IEO',
};

const TAG_RE = /^([BIESMLU])[-_](.+)$/;
const BARE_RE = /^[BIESMLU]$/;

/** Parse one tag name; undefined when it has none of the supported shapes. */
export function parseTag(tag: string): ParsedTag | undefined {
  if (tag === 'O') return { prefix: 'O', type: '' };
  const m = TAG_RE.exec(tag);
  if (m) return { prefix: m[1] as TagPrefix, type: m[2] };
  if (BARE_RE.test(tag)) return { prefix: tag as TagPrefix, type: '_' };
  return undefined;
}

/** Parse a tag or throw an InputError naming it. */
function mustParse(tag: string, where: string): ParsedTag {
  const p = parseTag(tag);
  if (!p) {
    throw new InputError(`${where}: "${tag}" is not a tag ranerc understands`, {
      hint: 'tags must be "O" or <prefix>-<type> / <prefix>_<type> with prefix one of B I E S M L U (e.g. B-PER, I_LOC)',
    });
  }
  return p;
}

/** Detect the scheme of a set of tag names (see the module comment). Throws InputError on a mixed set. */
export function detectScheme(labels: readonly string[]): LabelScheme {
  const prefixes = new Set<string>();
  labels.forEach((l, i) => prefixes.add(mustParse(l, `label ${i}`).prefix));
  const scheme = schemeOfPrefixes(prefixes);
  const allowed = SCHEME_PREFIXES[scheme];
  for (const l of labels) {
    const p = parseTag(l) as ParsedTag;
    if (!allowed.includes(p.prefix)) {
      throw new InputError(`label "${l}" does not fit the ${scheme} scheme the other labels use (prefixes ${allowed.split('').join(' ')})`, {
        hint: 'use one tagging scheme for all labels: BIO (B I O), BIOES (B I E S O), BMES (B M E S O), BILOU (B I L U O) or IO',
      });
    }
  }
  return scheme;
}

/**
 * The scheme a set of prefixes points to (the detection rule of `detectScheme`, without checking that every
 * prefix fits it; `SCHEME_PREFIXES[scheme]` says which do).
 */
export function schemeOfPrefixes(prefixes: ReadonlySet<string>): LabelScheme {
  if (prefixes.has('L') || prefixes.has('U')) return 'BILOU';
  if (prefixes.has('M')) return 'BMES';
  if (prefixes.has('E') || prefixes.has('S')) return prefixes.has('B') || prefixes.has('S') ? 'BIOES' : 'IOE2';
  if (prefixes.has('B')) return 'BIO';
  if (prefixes.has('I')) return 'IO';
  return 'BIO';
}

/** Whether `scheme` can read label names whose prefixes are `prefixes`. */
function schemeFits(scheme: LabelScheme, prefixes: Iterable<string>): boolean {
  const allowed = SCHEME_PREFIXES[scheme];
  for (const p of prefixes) if (!allowed.includes(p)) return false;
  return true;
}

/** A model's labels (id2label in id order) with their scheme and entity types. */
export class LabelSet {
  readonly labels: string[];
  readonly scheme: LabelScheme;
  /** Entity types in order of first appearance. */
  readonly types: string[];
  /** Id of the `O` label. */
  readonly outsideId: number;
  private readonly parsed: ParsedTag[];
  private readonly byName: Map<string, number>;
  private readonly byTag: Map<string, number>;

  /**
   * @param labels label names by id
   * @param opts.scheme force a scheme (IOB1 / IOE1 cannot be detected from names); it must allow every prefix used
   */
  constructor(labels: string[], opts: { scheme?: LabelScheme } = {}) {
    if (labels.length === 0) {
      throw new InputError('the model has no labels', { hint: 'config.json needs an id2label map like {"0": "O", "1": "B-PER", ...}' });
    }
    this.labels = labels.slice();
    this.byName = new Map();
    this.byTag = new Map();
    this.parsed = labels.map((l, i) => {
      const p = parseTag(l);
      if (!p) {
        throw new InputError(`label ${i} "${l}" is not "O" or <prefix>-<type>`, {
          hint: 'set id2label in config.json to tag names such as O, B-PER, I-PER (prefixes B I E S M L U; "-" or "_" before the type)',
        });
      }
      if (this.byName.has(l)) {
        throw new InputError(`label "${l}" appears twice (ids ${this.byName.get(l)} and ${i})`, {
          hint: 'every id in id2label must have its own label name',
        });
      }
      this.byName.set(l, i);
      const key = `${p.prefix}\u0000${p.type}`;
      if (this.byTag.has(key)) {
        throw new InputError(`labels "${labels[this.byTag.get(key) as number]}" and "${l}" are the same tag`, {
          hint: 'use one spelling ("B-X" or "B_X") per tag',
        });
      }
      this.byTag.set(key, i);
      return p;
    });
    const o = this.byName.get('O');
    if (o === undefined) {
      throw new InputError(`the labels have no "O" (outside) label: ${labels.join(', ')}`, {
        hint: 'a token-classification NER model needs an "O" label for tokens outside entities',
      });
    }
    this.outsideId = o;
    const detected = detectScheme(labels);
    if (opts.scheme && opts.scheme !== detected) {
      if (!LABEL_SCHEMES.includes(opts.scheme)) {
        throw new UsageError(`unknown tagging scheme "${opts.scheme}"`, { hint: `use one of ${LABEL_SCHEMES.join(', ')}` });
      }
      if (!schemeFits(opts.scheme, this.parsed.map((p) => p.prefix))) {
        throw new UsageError(`the labels (${detected}) cannot be read as ${opts.scheme}`, {
          hint: `the labels use prefixes ${[...new Set(this.parsed.map((p) => p.prefix))].join(' ')}; pick a scheme that has them, or leave the scheme to detection`,
        });
      }
    }
    this.scheme = opts.scheme ?? detected;
    const types: string[] = [];
    for (const p of this.parsed) if (p.prefix !== 'O' && !types.includes(p.type)) types.push(p.type);
    this.types = types;
  }

  get size(): number {
    return this.labels.length;
  }

  /** Prefix and type of label `id`. */
  parse(id: number): ParsedTag {
    const p = this.parsed[id];
    if (!p) throw new RangeError(`label id ${id} is outside [0, ${this.labels.length})`);
    return p;
  }

  /** Id of a label name. */
  idOf(label: string): number | undefined {
    return this.byName.get(label);
  }

  /** Id of the label with this prefix and type (whatever its separator), if the set has it. */
  tagId(prefix: TagPrefix, type: string): number | undefined {
    if (prefix === 'O') return this.outsideId;
    return this.byTag.get(`${prefix}\u0000${type}`);
  }

  /** Label names of ids. */
  names(ids: readonly number[]): string[] {
    return ids.map((id) => {
      const l = this.labels[id];
      if (l === undefined) throw new RangeError(`label id ${id} is outside [0, ${this.labels.length})`);
      return l;
    });
  }

  /** Chunks of a label-id sequence in this set's scheme. */
  chunks(ids: readonly number[], mode: ChunkMode = 'default'): Chunk[] {
    return chunksOfParsed(ids.map((id) => this.parse(id)), mode, this.scheme);
  }
}

// ------------------------------------------------------------------------------------------- default mode

function endOfChunk(prevTag: string, tag: string, prevType: string, type: string): boolean {
  if (prevTag === 'E' || prevTag === 'S') return true;
  if ((prevTag === 'B' || prevTag === 'I') && (tag === 'B' || tag === 'S' || tag === 'O')) return true;
  return prevTag !== 'O' && prevType !== type;
}

function startOfChunk(prevTag: string, tag: string, prevType: string, type: string): boolean {
  if (tag === 'B' || tag === 'S') return true;
  if ((prevTag === 'E' || prevTag === 'S' || prevTag === 'O') && (tag === 'E' || tag === 'I')) return true;
  return tag !== 'O' && prevType !== type;
}

/** seqeval default-mode prefix of a tag: M → I, L → E, U → S. */
function defaultPrefix(p: TagPrefix): string {
  return p === 'M' ? 'I' : p === 'L' ? 'E' : p === 'U' ? 'S' : p;
}

function defaultChunks(tags: readonly ParsedTag[]): Chunk[] {
  const chunks: Chunk[] = [];
  let prevTag = 'O';
  let prevType = '';
  let begin = 0;
  for (let i = 0; i <= tags.length; i++) {
    const tag = i < tags.length ? defaultPrefix(tags[i].prefix) : 'O';
    const type = i < tags.length ? tags[i].type : '';
    if (endOfChunk(prevTag, tag, prevType, type)) chunks.push({ start: begin, end: i, type: prevType });
    if (startOfChunk(prevTag, tag, prevType, type)) begin = i;
    prevTag = tag;
    prevType = type;
  }
  return chunks;
}

// -------------------------------------------------------------------------------------------- strict mode

type Cond = 'ANY' | 'SAME' | 'DIFF';
/** [previous prefixes, current prefixes, type condition] */
type Pattern = readonly [string, string, Cond];
interface StrictScheme {
  allowed: string;
  start: readonly Pattern[];
  inside: readonly Pattern[];
  end: readonly Pattern[];
}

const ANY = 'IOBESLU';
// The token classes of seqeval.scheme (IOB1, IOE1, IOB2, IOE2, IOBES, BILOU), as prefix patterns.
const STRICT: Record<'IOB1' | 'IOE1' | 'IOB2' | 'IOE2' | 'IOBES' | 'BILOU', StrictScheme> = {
  IOB1: {
    allowed: 'IOB',
    start: [['O', 'I', 'ANY'], ['I', 'I', 'DIFF'], ['B', 'I', 'ANY'], ['I', 'B', 'SAME'], ['B', 'B', 'SAME']],
    inside: [['B', 'I', 'SAME'], ['I', 'I', 'SAME']],
    end: [['I', 'I', 'DIFF'], ['I', 'O', 'ANY'], ['I', 'B', 'ANY'], ['B', 'O', 'ANY'], ['B', 'I', 'DIFF'], ['B', 'B', 'SAME']],
  },
  IOE1: {
    allowed: 'IOE',
    start: [['O', 'I', 'ANY'], ['I', 'I', 'DIFF'], ['E', 'I', 'ANY'], ['E', 'E', 'SAME']],
    inside: [['I', 'I', 'SAME'], ['I', 'E', 'SAME']],
    end: [['I', 'I', 'DIFF'], ['I', 'O', 'ANY'], ['I', 'E', 'DIFF'], ['E', 'I', 'SAME'], ['E', 'E', 'SAME']],
  },
  IOB2: {
    allowed: 'IOB',
    start: [[ANY, 'B', 'ANY']],
    inside: [['B', 'I', 'SAME'], ['I', 'I', 'SAME']],
    end: [['I', 'O', 'ANY'], ['I', 'I', 'DIFF'], ['I', 'B', 'ANY'], ['B', 'O', 'ANY'], ['B', 'I', 'DIFF'], ['B', 'B', 'ANY']],
  },
  IOE2: {
    allowed: 'IOE',
    start: [['O', 'I', 'ANY'], ['O', 'E', 'ANY'], ['E', 'I', 'ANY'], ['E', 'E', 'ANY'], ['I', 'I', 'DIFF'], ['I', 'E', 'DIFF']],
    inside: [['I', 'E', 'SAME'], ['I', 'I', 'SAME']],
    end: [['E', ANY, 'ANY']],
  },
  IOBES: {
    allowed: 'IOBES',
    start: [[ANY, 'B', 'ANY'], [ANY, 'S', 'ANY']],
    inside: [['B', 'I', 'SAME'], ['B', 'E', 'SAME'], ['I', 'I', 'SAME'], ['I', 'E', 'SAME']],
    end: [['S', ANY, 'ANY'], ['E', ANY, 'ANY']],
  },
  BILOU: {
    allowed: 'BILOU',
    start: [[ANY, 'B', 'ANY'], [ANY, 'U', 'ANY']],
    inside: [['B', 'I', 'SAME'], ['B', 'L', 'SAME'], ['I', 'I', 'SAME'], ['I', 'L', 'SAME']],
    end: [['U', ANY, 'ANY'], ['L', ANY, 'ANY']],
  },
};

/** Which seqeval token class reads a ranerc scheme in strict mode (BMES reads M as I). */
function strictClass(scheme: LabelScheme): StrictScheme {
  switch (scheme) {
    case 'BIO':
      return STRICT.IOB2;
    case 'IOB1':
    case 'IO':
      return STRICT.IOB1;
    case 'BIOES':
    case 'BMES':
      return STRICT.IOBES;
    case 'BILOU':
      return STRICT.BILOU;
    case 'IOE1':
      return STRICT.IOE1;
    case 'IOE2':
      return STRICT.IOE2;
  }
}

function matches(prev: ParsedTag, cur: ParsedTag, patterns: readonly Pattern[]): boolean {
  for (const [pp, cp, cond] of patterns) {
    if (!pp.includes(prev.prefix) || !cp.includes(cur.prefix)) continue;
    if (cond === 'ANY' || (cond === 'SAME') === (prev.type === cur.type)) return true;
  }
  return false;
}

const OUTSIDE: ParsedTag = { prefix: 'O', type: '' };

function strictChunks(tags: readonly ParsedTag[], scheme: LabelScheme): Chunk[] {
  const cls = strictClass(scheme);
  const ext: ParsedTag[] = tags.map((t) => (scheme === 'BMES' && t.prefix === 'M' ? { prefix: 'I', type: t.type } : t));
  ext.forEach((t, i) => {
    if (!cls.allowed.includes(t.prefix)) {
      throw new InputError(`tag ${i} has prefix ${t.prefix}-, which the ${scheme} scheme does not allow`, {
        hint: `strict mode reads tags with the scheme's own prefixes (${SCHEME_PREFIXES[scheme].split('').join(' ')}); use default mode or the right scheme`,
      });
    }
  });
  ext.push(OUTSIDE);
  const chunks: Chunk[] = [];
  let i = 0;
  let prev = OUTSIDE;
  while (i < ext.length) {
    const tok = ext[i];
    if (matches(prev, tok, cls.start)) {
      // forward over inside tokens; the sentinel O is never inside, so this stops by ext.length - 1
      let end = i + 1;
      let p = tok;
      while (end < ext.length && matches(p, ext[end], cls.inside)) {
        p = ext[end];
        end++;
      }
      if (matches(ext[end - 1], ext[end], cls.end)) chunks.push({ start: i, end, type: tok.type });
      i = end;
    } else {
      i++;
    }
    prev = ext[i - 1];
  }
  return chunks;
}

function chunksOfParsed(tags: readonly ParsedTag[], mode: ChunkMode, scheme: LabelScheme): Chunk[] {
  return mode === 'strict' ? strictChunks(tags, scheme) : defaultChunks(tags);
}

/**
 * Chunks of a tag sequence, [start, end) over positions, in order.
 * @param opts.mode `default` (seqeval default / conlleval) or `strict` (seqeval strict with the scheme)
 * @param opts.scheme the tagging scheme (only strict mode and M/L/U tags depend on it); detected from the tags when absent
 */
export function extractChunks(tags: readonly string[], opts: { mode?: ChunkMode; scheme?: LabelScheme } = {}): Chunk[] {
  const parsed = tags.map((t, i) => mustParse(t, `tag ${i}`));
  const scheme = opts.scheme ?? detectScheme([...new Set(tags)]);
  return chunksOfParsed(parsed, opts.mode ?? 'default', scheme);
}

/** Chunks of already-parsed tags (for callers that parse once). */
export function chunksOf(tags: readonly ParsedTag[], mode: ChunkMode, scheme: LabelScheme): Chunk[] {
  return chunksOfParsed(tags, mode, scheme);
}
