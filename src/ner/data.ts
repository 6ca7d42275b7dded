/**
 * Data readers and writers: labelled JSONL and CoNLL-style files, unlabelled text lines.
 *
 * JSONL (the format of the shared MSRA / CLUENER files): one object per line,
 * `{"text": "...", "entities": [{"start": 3, "end": 5, "type": "LOC"}, ...]}`; `entities` may be missing
 * for unlabelled text; blank lines are skipped; other keys are ignored. Offsets in the file count Unicode
 * code points by default (as Python writes them and as the shared data documents); they are converted to
 * the UTF-16 string indices ranerc uses internally (`offsets: 'utf16'` reads files whose offsets already
 * are UTF-16 indices). The two agree for text without characters outside the BMP. An entity that also carries
 * its surface `text` is checked against the offsets.
 *
 * CoNLL: one `token<space or tab>tag` per line (extra middle columns are ignored; the tag is the last column),
 * blank lines between sentences, `-DOCSTART-` lines ignored. Tags may be BIO / IOB1 / BIOES / BMES / BILOU / IO
 * (`B-X` or `B_X`); the scheme is detected per file from the prefixes used and the tags are turned into spans
 * with seqeval's default (lenient, conlleval) rules. Sentence text: when every token of the file is a single
 * character (the usual Chinese character-per-line files), tokens are joined without separators; otherwise they
 * are joined with single spaces (word-per-line files), and entity offsets point into that joined text. A line
 * that starts with a space or tab and has only a tag stands for a whitespace token (a space).
 *
 * Errors are InputErrors naming the file and 1-based line, with a hint. Files are read as a stream, line by
 * line, so large files are never loaded whole.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { createInterface } from 'node:readline';
import { InputError } from '../errors.js';
import { atomicWriteFile } from '../util/fs.js';
import { chunksOf, parseTag, SCHEME_PREFIXES, schemeOfPrefixes, type LabelScheme, type ParsedTag } from './labels.js';
import type { Example, Span } from './types.js';

export type DataFormat = 'jsonl' | 'conll';
export type OffsetUnit = 'codepoint' | 'utf16';

export interface ReadExamplesOptions {
  /** File format; `auto` (default) decides from the extension, then from the first non-empty line. */
  format?: 'auto' | DataFormat;
  /** The entity types the model knows; entities of other types are an error or skipped (`unknownTypes`). */
  types?: readonly string[];
  /** What to do with an entity whose type is not in `types`: `error` (default) or `skip` (counted). */
  unknownTypes?: 'error' | 'skip';
  /** What JSONL offsets count: code points (default, as Python) or UTF-16 units. */
  offsets?: OffsetUnit;
}

/** An entity left out (unknownTypes: 'skip'), with where it was. */
export interface SkippedEntity {
  file: string;
  line: number;
  reason: string;
}

export interface ReadExamplesResult {
  examples: Example[];
  skipped: SkippedEntity[];
  format: DataFormat;
  /** The tagging scheme of a CoNLL file. */
  scheme?: LabelScheme;
}

const JSONL_EXT = new Set(['.jsonl', '.ndjson', '.json']);
const CONLL_EXT = new Set(['.conll', '.conllu', '.bio', '.bioes', '.bmes', '.bilou', '.iob', '.iob1', '.iob2', '.io', '.char']);

/** The lines of a text file, streamed, with 1-based line numbers (\n, \r\n or \r; a leading BOM dropped). */
async function* readLines(path: string): AsyncGenerator<[string, number]> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw new InputError(`cannot read the file: ${(e as Error).message}`, {
      file: path,
      hint: 'check the path; data files are JSONL ({"text", "entities"} per line) or CoNLL (token and tag per line)',
      cause: e,
    });
  }
  if (!st.isFile()) {
    throw new InputError('not a regular file', { file: path, hint: 'pass the path of a data file, not a directory' });
  }
  const input = createReadStream(path, { encoding: 'utf8' });
  const rl = createInterface({ input, crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const raw of rl) {
      n++;
      yield [n === 1 && raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw, n];
    }
  } catch (e) {
    throw new InputError(`cannot read the file: ${(e as Error).message}`, { file: path, hint: 'check that the file is readable UTF-8 text', cause: e });
  } finally {
    rl.close();
    input.destroy();
  }
}

/** The first non-blank line of a file (undefined for an empty file). */
async function firstLine(path: string): Promise<string | undefined> {
  for await (const [line] of readLines(path)) if (line.trim() !== '') return line;
  return undefined;
}

/** The format of a data file: from its extension, else from its first non-empty line. */
export async function detectFormat(path: string): Promise<DataFormat> {
  const ext = extname(path).toLowerCase();
  const first = await firstLine(path);
  if (first !== undefined && first.trimStart().startsWith('[')) {
    throw new InputError('the file is a JSON array, not JSON Lines', {
      file: path,
      line: 1,
      hint: 'write one JSON object per line: {"text": "...", "entities": [{"start": 0, "end": 2, "type": "PER"}]}',
    });
  }
  if (JSONL_EXT.has(ext)) return 'jsonl';
  if (CONLL_EXT.has(ext)) return 'conll';
  if (first === undefined) return 'jsonl';
  return first.trimStart().startsWith('{') ? 'jsonl' : 'conll';
}

/** Read a labelled data file (JSONL or CoNLL) into examples with UTF-16 span offsets. */
export async function readExamples(path: string, opts: ReadExamplesOptions = {}): Promise<ReadExamplesResult> {
  const format = !opts.format || opts.format === 'auto' ? await detectFormat(path) : opts.format;
  return format === 'jsonl' ? readJsonl(path, opts) : readConll(path, opts);
}

/** Keeps or drops entities by type, as ReadExamplesOptions say. Returns whether to keep. */
function typeFilter(opts: ReadExamplesOptions, skipped: SkippedEntity[]): (type: string, file: string, line: number) => boolean {
  const types = opts.types ? new Set(opts.types) : undefined;
  return (type, file, line) => {
    if (!types || types.has(type)) return true;
    const reason = `entity type "${type}" is not one of the model's types (${[...types].join(', ')})`;
    if (opts.unknownTypes === 'skip') {
      skipped.push({ file, line, reason });
      return false;
    }
    throw new InputError(reason, {
      file,
      line,
      hint: 'evaluate with a model that has this type, or skip such entities (--unknown-types skip)',
    });
  };
}

/** UTF-16 index of each code-point index of `text` (length = code points + 1). */
function codePointToUtf16(text: string): number[] {
  const out = [0];
  let i = 0;
  while (i < text.length) {
    i += (text.codePointAt(i) as number) > 0xffff ? 2 : 1;
    out.push(i);
  }
  return out;
}

const HAS_SURROGATE = /[\uD800-\uDFFF]/;

async function readJsonl(path: string, opts: ReadExamplesOptions): Promise<ReadExamplesResult> {
  const examples: Example[] = [];
  const skipped: SkippedEntity[] = [];
  const keep = typeFilter(opts, skipped);
  const unit = opts.offsets ?? 'codepoint';
  for await (const [line, n] of readLines(path)) {
    if (line.trim() === '') continue;
    const fail = (message: string, hint: string): never => {
      throw new InputError(message, { file: path, line: n, hint });
    };
    const shapeHint = 'each line must be one JSON object: {"text": "...", "entities": [{"start": 0, "end": 2, "type": "PER"}]}';
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      fail(`not valid JSON (${(e as Error).message})`, shapeHint);
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) fail('the line is not a JSON object', shapeHint);
    const rec = obj as Record<string, unknown>;
    if (typeof rec.text !== 'string') fail(rec.text === undefined ? 'missing "text"' : '"text" is not a string', shapeHint);
    const text = rec.text as string;
    let rawEntities: unknown[] = [];
    if (rec.entities === undefined || rec.entities === null) {
      for (const k of ['label', 'labels', 'ner_tags', 'spans', 'tags']) {
        if (k in rec) {
          fail(`no "entities", but a "${k}" field: this is not ranerc's JSONL format`, `convert it to {"text", "entities": [{"start", "end", "type"}]} (end exclusive)`);
        }
      }
    } else if (!Array.isArray(rec.entities)) {
      fail('"entities" is not an array', shapeHint);
    } else {
      rawEntities = rec.entities;
    }
    const map = unit === 'codepoint' && HAS_SURROGATE.test(text) ? codePointToUtf16(text) : undefined;
    const length = map ? map.length - 1 : text.length;
    const unitName = unit === 'codepoint' ? 'characters' : 'UTF-16 units';
    const spans: Span[] = [];
    rawEntities.forEach((raw, k) => {
      const where = `entity ${k}`;
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(`${where} is not an object`, shapeHint);
      const e = raw as Record<string, unknown>;
      const { start, end, type } = e;
      if (!Number.isInteger(start) || !Number.isInteger(end)) {
        fail(`${where}: "start" and "end" must be integers, got ${JSON.stringify(start)} and ${JSON.stringify(end)}`, 'offsets are character indices into "text"; "end" is exclusive');
      }
      if (typeof type !== 'string' || type === '') fail(`${where}: "type" must be a non-empty string`, shapeHint);
      const s = start as number;
      const en = end as number;
      if (en <= s) fail(`${where}: end ${en} is not after start ${s}`, '"end" is exclusive, so an entity of one character has end = start + 1');
      if (s < 0 || en > length) {
        fail(`${where}: [${s}, ${en}) is outside the text (${length} ${unitName})`, unit === 'codepoint'
          ? 'offsets count Unicode code points of "text"; if the file counts UTF-16 units, read it with offsets "utf16"'
          : 'offsets count UTF-16 units of "text"');
      }
      const us = map ? map[s] : s;
      const ue = map ? map[en] : en;
      if (typeof e.text === 'string' && e.text !== text.slice(us, ue)) {
        fail(`${where}: its "text" ${JSON.stringify(e.text)} differs from the text at [${s}, ${en}): ${JSON.stringify(text.slice(us, ue))}`,
          'the offsets do not point at the mention; check that they are 0-based, end-exclusive and count the right units');
      }
      spans.push({ start: us, end: ue, type: type as string });
    });
    const sorted = spans.slice().sort((a, b) => a.start - b.start || a.end - b.end);
    for (let k = 1; k < sorted.length; k++) {
      const a = sorted[k - 1];
      const b = sorted[k];
      if (b.start < a.end) {
        fail(`entities overlap: ${a.type} [${a.start}, ${a.end}) and ${b.type} [${b.start}, ${b.end}) (UTF-16 offsets)`,
          'ranerc evaluates flat NER: keep one of the overlapping (nested) entities');
      }
    }
    const entities = sorted.filter((sp) => keep(sp.type, path, n));
    examples.push({ text, entities, source: { file: path, line: n } });
  }
  return { examples, skipped, format: 'jsonl' };
}

interface ConllSentence {
  tokens: string[];
  tags: ParsedTag[];
  lines: number[];
}

async function readConll(path: string, opts: ReadExamplesOptions): Promise<ReadExamplesResult> {
  const sentences: ConllSentence[] = [];
  let cur: ConllSentence = { tokens: [], tags: [], lines: [] };
  const firstLineOfPrefix = new Map<string, { tag: string; line: number }>();
  let allSingle = true;
  const flush = (): void => {
    if (cur.tokens.length > 0) sentences.push(cur);
    cur = { tokens: [], tags: [], lines: [] };
  };
  for await (const [line, n] of readLines(path)) {
    const body = line.replace(/[ \t]+$/, '');
    if (body === '' || body.startsWith('-DOCSTART-')) {
      flush();
      continue;
    }
    let token: string;
    let tag: string;
    if (/^[ \t]/.test(body) && /^[ \t]+\S+$/.test(body)) {
      token = ' ';
      tag = body.trim();
    } else {
      const fields = body.trim().split(/[ \t]+/);
      if (fields.length < 2) {
        throw new InputError(`expected "token tag", got ${JSON.stringify(body)}`, {
          file: path,
          line: n,
          hint: 'CoNLL files have one token and its tag per line (separated by a space or tab) and a blank line between sentences',
        });
      }
      token = fields[0];
      tag = fields[fields.length - 1];
    }
    const parsed = parseTag(tag);
    if (!parsed) {
      throw new InputError(`unknown tag "${tag}"`, {
        file: path,
        line: n,
        hint: 'tags must be O or <prefix>-<type> / <prefix>_<type> with prefix B, I, E, S, M, L or U (e.g. B-PER, M_LOC)',
      });
    }
    if (!firstLineOfPrefix.has(parsed.prefix)) firstLineOfPrefix.set(parsed.prefix, { tag, line: n });
    if ([...token].length !== 1) allSingle = false;
    cur.tokens.push(token);
    cur.tags.push(parsed);
    cur.lines.push(n);
  }
  flush();
  const scheme = schemeOfPrefixes(new Set(firstLineOfPrefix.keys()));
  for (const [prefix, { tag, line }] of firstLineOfPrefix) {
    if (!SCHEME_PREFIXES[scheme].includes(prefix)) {
      throw new InputError(`tag "${tag}" does not fit the ${scheme} scheme the rest of the file uses`, {
        file: path,
        line,
        hint: 'use one tagging scheme per file: BIO, BIOES (B I E S O), BMES (B M E S O), BILOU or IO',
      });
    }
  }
  const skipped: SkippedEntity[] = [];
  const keep = typeFilter(opts, skipped);
  const sep = allSingle ? '' : ' ';
  const examples: Example[] = sentences.map((s) => {
    const starts: number[] = [];
    const ends: number[] = [];
    let text = '';
    s.tokens.forEach((t, i) => {
      if (i > 0) text += sep;
      starts.push(text.length);
      text += t;
      ends.push(text.length);
    });
    const entities = chunksOf(s.tags, 'default', scheme)
      .filter((c) => keep(c.type, path, s.lines[c.start]))
      .map((c) => ({ start: starts[c.start], end: ends[c.end - 1], type: c.type }));
    return { text, entities, source: { file: path, line: s.lines[0] } };
  });
  return { examples, skipped, format: 'conll', scheme };
}

/** Unlabelled text: one example per non-blank line (entities empty), with its line number. */
export async function readTextLines(path: string): Promise<Example[]> {
  const out: Example[] = [];
  for await (const [line, n] of readLines(path)) {
    if (line.trim() === '') continue;
    out.push({ text: line, entities: [], source: { file: path, line: n } });
  }
  return out;
}

/** The JSONL record of an example, offsets counted as `offsets` says (code points by default). */
export function toJsonlRecord(example: Example, offsets: OffsetUnit = 'codepoint'): { text: string; entities: Span[] } {
  const text = example.text;
  if (offsets === 'utf16' || !HAS_SURROGATE.test(text)) {
    return { text, entities: example.entities.map(({ start, end, type }) => ({ start, end, type })) };
  }
  const toCp = new Map<number, number>();
  codePointToUtf16(text).forEach((u, cp) => toCp.set(u, cp));
  const conv = (u: number): number => {
    const cp = toCp.get(u);
    if (cp === undefined) throw new RangeError(`offset ${u} splits a surrogate pair in ${JSON.stringify(text)}`);
    return cp;
  };
  return { text, entities: example.entities.map(({ start, end, type }) => ({ start: conv(start), end: conv(end), type })) };
}

/** Write rows as JSON Lines, atomically (a temp file renamed over `path`). */
export async function writeJsonl(path: string, rows: Iterable<unknown>): Promise<void> {
  const parts: string[] = [];
  for (const r of rows) parts.push(JSON.stringify(r) + '\n');
  await atomicWriteFile(path, parts.join(''));
}
