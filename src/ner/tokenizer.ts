/**
 * BERT WordPiece tokenization with character offsets (Hugging Face `BertTokenizer` semantics).
 *
 * The rules, in order (each one is the slow Hugging Face `BasicTokenizer` + `WordpieceTokenizer` rule, and
 * the same as `fixtures/tools/bert_tokenizer.py`, which the golden file `fixtures/tokenizer/golden.jsonl`
 * pins this file to):
 *
 * 1. cleanup: U+0000, U+FFFD and control characters (Unicode category C*, except \t \n \r) are dropped;
 *    whitespace (\t \n \r, space, category Zs) separates words; U+2028 / U+2029 also separate words (they
 *    survive BERT's cleanup, but Python's `str.split()` in `whitespace_tokenize` splits on them);
 * 2. CJK ideographs (the exact BERT code-point ranges) become words of their own when
 *    `tokenize_chinese_chars` (default true);
 * 3. per word: lower-casing when `do_lower_case` (default true), then accent stripping (NFD, drop category Mn)
 *    when `strip_accents` is true, or when it is null/absent and lower-casing is on;
 * 4. punctuation (ASCII 33–47, 58–64, 91–96, 123–126, or category P*) splits words and is a word of its own;
 * 5. WordPiece: greedy longest-match-first with `##` continuations; a word longer than
 *    `max_input_chars_per_word` (default 100) code points, or one with no match, becomes one unknown token.
 *
 * Every token keeps the [start, end) offsets of the ORIGINAL text it covers, as JavaScript (UTF-16) string
 * indices, and the index of its basic word. Text is walked by code point, so characters outside the BMP are
 * one character, as in Python. Lower-casing and accent stripping work per source character, so a character
 * whose lower case is longer (Turkish İ → i + U+0307) keeps mapping to its own source span.
 *
 * Known differences from Hugging Face (the fixture script has them too):
 * - lower-casing is per character, so a word-final capital sigma lowers to σ, not ς (Python's `str.lower`
 *   on a whole word applies the Final_Sigma rule; the Rust "fast" tokenizer lowers per character like us);
 * - special-token strings inside the text ("[CLS]", "[MASK]") are tokenized like any other text; Hugging Face
 *   keeps them whole (`never_split` / added-token splitting).
 *
 * Vocabulary: one piece per line (`\n`, `\r\n` or `\r`); a piece's id is its 0-based line number. When a
 * piece occurs on several lines, the LAST line wins, as Hugging Face's `load_vocab` (it fills a dict in line
 * order, so a later duplicate overwrites the index). `fixtures/tools/bert_tokenizer.py` keeps the first one
 * instead; its vocabularies have no duplicates, so the two agree on every fixture.
 */
import { readFile } from 'node:fs/promises';
import { InputError } from '../errors.js';
import type { TokenizerConfig } from '../onnx/types.js';
import type { Token } from './types.js';

/** A normalized character of a basic word and the [start, end) UTF-16 span of the source character it came from. */
interface NormChar {
  ch: string;
  start: number;
  end: number;
}

/** A basic-tokenizer word. */
export interface BasicWord {
  /** Normalized text (lower-cased / accent-stripped as configured). */
  text: string;
  /** UTF-16 offset of the first source character. */
  start: number;
  /** UTF-16 offset just past the last source character. */
  end: number;
}

const CONTROL_RE = /^\p{C}$/u;
const ZS_RE = /^\p{Zs}$/u;
const PUNCT_RE = /^\p{P}$/u;
const MN_RE = /\p{Mn}/gu;

/** BERT's `_is_whitespace`: \t \n \r, space, or category Zs. */
export function isBertWhitespace(cp: number): boolean {
  if (cp === 0x20 || cp === 0x09 || cp === 0x0a || cp === 0x0d) return true;
  if (cp < 0x80) return false;
  return ZS_RE.test(String.fromCodePoint(cp));
}

/** BERT's `_is_control`: category C* except \t \n \r. */
export function isBertControl(cp: number): boolean {
  if (cp === 0x09 || cp === 0x0a || cp === 0x0d) return false;
  if (cp < 0x20 || cp === 0x7f) return true;
  if (cp < 0x80) return false;
  return CONTROL_RE.test(String.fromCodePoint(cp));
}

/** BERT's `_is_punctuation`: ASCII 33–47, 58–64, 91–96, 123–126, or category P*. */
export function isBertPunctuation(cp: number): boolean {
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)) {
    return true;
  }
  if (cp < 0x80) return false;
  return PUNCT_RE.test(String.fromCodePoint(cp));
}

/** BERT's `_is_chinese_char`: the CJK Unified Ideographs blocks (not Hangul, kana or CJK punctuation). */
export function isCjkIdeograph(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

/** Resolved basic-tokenizer options. */
export interface BasicOptions {
  lowerCase: boolean;
  stripAccents: boolean;
  tokenizeChineseChars: boolean;
}

/** Normalize one source character (lower-case, then strip accents) into zero or more characters. */
function normalizeChar(ch: string, opts: BasicOptions): string {
  let s = ch;
  // ASCII fast path: lower-casing is a table lookup and there is nothing to strip.
  if (s.length === 1 && s.charCodeAt(0) < 0x80) {
    return opts.lowerCase ? s.toLowerCase() : s;
  }
  if (opts.lowerCase) s = s.toLowerCase();
  if (opts.stripAccents) s = s.normalize('NFD').replace(MN_RE, '');
  return s;
}

/** Basic tokenization into words of normalized characters with source spans. */
function basicWords(text: string, opts: BasicOptions): NormChar[][] {
  const words: NormChar[][] = [];
  let raw: NormChar[] = [];
  const flushRaw = (): void => {
    if (raw.length === 0) return;
    splitNormalized(raw, opts, words);
    raw = [];
  };
  let i = 0;
  const n = text.length;
  while (i < n) {
    const cp = text.codePointAt(i) as number;
    const len = cp > 0xffff ? 2 : 1;
    const start = i;
    i += len;
    if (cp === 0 || cp === 0xfffd || isBertControl(cp)) continue;
    if (isBertWhitespace(cp) || cp === 0x2028 || cp === 0x2029) {
      flushRaw();
    } else if (opts.tokenizeChineseChars && isCjkIdeograph(cp)) {
      flushRaw();
      raw.push({ ch: text.slice(start, i), start, end: i });
      flushRaw();
    } else {
      raw.push({ ch: text.slice(start, i), start, end: i });
    }
  }
  flushRaw();
  return words;
}

/** Lower-case / strip one whitespace-delimited word, then split it on punctuation (and, defensively, whitespace). */
function splitNormalized(raw: NormChar[], opts: BasicOptions, out: NormChar[][]): void {
  let piece: NormChar[] = [];
  const normalize = opts.lowerCase || opts.stripAccents;
  for (const rc of raw) {
    const s = normalize ? normalizeChar(rc.ch, opts) : rc.ch;
    for (const c of s) {
      const cp = c.codePointAt(0) as number;
      if (isBertPunctuation(cp)) {
        if (piece.length > 0) out.push(piece);
        piece = [];
        out.push([{ ch: c, start: rc.start, end: rc.end }]);
      } else if (isBertWhitespace(cp)) {
        if (piece.length > 0) out.push(piece);
        piece = [];
      } else {
        piece.push({ ch: c, start: rc.start, end: rc.end });
      }
    }
  }
  if (piece.length > 0) out.push(piece);
}

/** Resolve a tokenizer config into basic-tokenizer options (Hugging Face defaults). */
export function basicOptions(config: TokenizerConfig = {}): BasicOptions {
  const lowerCase = typeof config.do_lower_case === 'boolean' ? config.do_lower_case : true;
  const strip = typeof config.strip_accents === 'boolean' ? config.strip_accents : lowerCase;
  const tokenizeChineseChars =
    typeof config.tokenize_chinese_chars === 'boolean' ? config.tokenize_chinese_chars : true;
  return { lowerCase, stripAccents: strip, tokenizeChineseChars };
}

/** The basic-tokenizer words of `text` (normalized text plus source span), for inspection and tests. */
export function basicTokenize(text: string, config: TokenizerConfig = {}): BasicWord[] {
  return basicWords(text, basicOptions(config)).map((w) => ({
    text: w.map((c) => c.ch).join(''),
    start: w[0].start,
    end: w[w.length - 1].end,
  }));
}

/** A special-token setting: a string, or a Hugging Face AddedToken object `{content: "..."}`. */
function specialName(config: TokenizerConfig, key: string, fallback: string): string {
  const v: unknown = config[key];
  if (typeof v === 'string') return v;
  if (v !== null && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') {
    return (v as { content: string }).content;
  }
  return fallback;
}

/** Split a vocab.txt body into pieces the way Python's text-mode `readlines()` + `rstrip("\n")` does. */
export function parseVocab(body: string): string[] {
  const text = body.charCodeAt(0) === 0xfeff ? body.slice(1) : body;
  if (text.length === 0) return [];
  const lines = text.split(/\r\n|\r|\n/);
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** WordPiece tokenizer with Hugging Face `BertTokenizer` semantics and source offsets. */
export class WordPieceTokenizer {
  readonly clsId: number;
  readonly sepId: number;
  readonly padId: number;
  readonly unkId: number;
  /** Number of vocabulary lines, so every id is below it (duplicates included). */
  readonly vocabSize: number;
  readonly unkToken: string;
  readonly clsToken: string;
  readonly sepToken: string;
  readonly padToken: string;
  readonly maxInputCharsPerWord: number;
  readonly options: Readonly<BasicOptions>;
  private readonly vocab: Map<string, number>;
  private readonly pieces: string[];

  private constructor(vocab: string[], config: TokenizerConfig, file?: string) {
    if (vocab.length === 0) {
      throw new InputError('the vocabulary is empty', {
        file,
        hint: 'vocab.txt must list one WordPiece token per line, as a Hugging Face BERT vocabulary does',
      });
    }
    this.pieces = vocab.slice();
    this.vocab = new Map();
    // Later duplicates overwrite earlier ones, as Hugging Face's load_vocab.
    vocab.forEach((piece, i) => this.vocab.set(piece, i));
    this.vocabSize = vocab.length;
    this.options = Object.freeze(basicOptions(config));
    const maxChars = config.max_input_chars_per_word;
    this.maxInputCharsPerWord = typeof maxChars === 'number' && Number.isInteger(maxChars) && maxChars > 0 ? maxChars : 100;
    this.unkToken = specialName(config, 'unk_token', '[UNK]');
    this.clsToken = specialName(config, 'cls_token', '[CLS]');
    this.sepToken = specialName(config, 'sep_token', '[SEP]');
    this.padToken = specialName(config, 'pad_token', '[PAD]');
    const need = (name: string, key: string): number => {
      const id = this.vocab.get(name);
      if (id === undefined) {
        throw new InputError(`the vocabulary has no ${key} "${name}"`, {
          file,
          hint: `add "${name}" to vocab.txt, or set "${key}" in tokenizer_config.json to the token the vocabulary uses`,
        });
      }
      return id;
    };
    this.unkId = need(this.unkToken, 'unk_token');
    this.clsId = need(this.clsToken, 'cls_token');
    this.sepId = need(this.sepToken, 'sep_token');
    this.padId = need(this.padToken, 'pad_token');
  }

  /** A tokenizer over an in-memory vocabulary (index = id). */
  static fromVocab(vocab: string[], config: TokenizerConfig = {}): WordPieceTokenizer {
    return new WordPieceTokenizer(vocab, config);
  }

  /** A tokenizer over a `vocab.txt` file (UTF-8, one piece per line). */
  static async fromFiles(vocabPath: string, config: TokenizerConfig = {}): Promise<WordPieceTokenizer> {
    let body: string;
    try {
      body = await readFile(vocabPath, 'utf8');
    } catch (e) {
      throw new InputError(`cannot read the vocabulary: ${(e as Error).message}`, {
        file: vocabPath,
        hint: 'pass the vocab.txt of the model (a Hugging Face BERT model folder has one)',
        cause: e,
      });
    }
    return new WordPieceTokenizer(parseVocab(body), config, vocabPath);
  }

  /** The id of a vocabulary piece, if present. */
  idOf(piece: string): number | undefined {
    return this.vocab.get(piece);
  }

  /** The piece on vocabulary line `id`. */
  pieceOf(id: number): string | undefined {
    return this.pieces[id];
  }

  /** Tokenize `text` into WordPiece tokens with source offsets (no [CLS]/[SEP]). */
  tokenize(text: string): Token[] {
    const out: Token[] = [];
    const words = basicWords(text, this.options);
    for (let wi = 0; wi < words.length; wi++) {
      const w = words[wi];
      const wStart = w[0].start;
      const wEnd = w[w.length - 1].end;
      if (w.length > this.maxInputCharsPerWord) {
        out.push({ id: this.unkId, piece: this.unkToken, start: wStart, end: wEnd, word: wi });
        continue;
      }
      const first = out.length;
      let start = 0;
      let bad = false;
      while (start < w.length) {
        let end = w.length;
        let cur: string | undefined;
        let curId = -1;
        while (start < end) {
          let sub = '';
          for (let k = start; k < end; k++) sub += w[k].ch;
          if (start > 0) sub = '##' + sub;
          const id = this.vocab.get(sub);
          if (id !== undefined) {
            cur = sub;
            curId = id;
            break;
          }
          end -= 1;
        }
        if (cur === undefined) {
          bad = true;
          break;
        }
        out.push({ id: curId, piece: cur, start: w[start].start, end: w[end - 1].end, word: wi });
        start = end;
      }
      if (bad) {
        out.length = first;
        out.push({ id: this.unkId, piece: this.unkToken, start: wStart, end: wEnd, word: wi });
      }
    }
    return out;
  }
}
