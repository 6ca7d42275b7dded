/**
 * A `tokenizer.json` read through `@huggingface/tokenizers` (the library transformers.js uses), giving ranerc
 * tokens (id, piece, source offsets, word index). WordPiece (BERT), BPE (byte-level, RoBERTa / GPT-2; or
 * character BPE with suffixes / byte fallback) and Unigram (SentencePiece, XLM-R) models.
 *
 * The library's `encode` returns ids and token strings only (no offsets, no word ids; version 0.2.0), so the
 * offsets are recovered here from the library's own components, in the order the library runs them:
 * 1. the library's normalizer, aligned to source characters (align.ts `alignNormalized`);
 * 2. the library's pre-tokenizer splits the normalized text into words; each word's symbols (byte-level
 *    characters grouped into UTF-8 characters; Metaspace ▁ as a space) are found in the normalized text;
 * 3. the library's model splits each word into pieces (the ids are the library's), and each piece is laid
 *    over its word's symbols (WordPiece `##` / BPE suffixes removed; `<0xNN>` byte-fallback pieces take one
 *    byte of a character; an unknown token covers the characters up to the next piece).
 * A token's span is the source of its symbols without the whitespace a Ġ / ▁ stands for (RoBERTa's
 * trim_offsets); a byte-level piece holding part of a character's bytes covers the whole character; a
 * whitespace-only token (a lone ▁ or Ġ) gets the empty span after the whitespace it covers (or, for the
 * prepended ▁, at the next character).
 *
 * Words: WordPiece keeps the pre-tokenizer's words (BERT's rules: CJK ideographs are words when
 * tokenize_chinese_chars, as WordPieceTokenizer). BPE / Unigram use align.ts `assignWords` (ideographs are
 * words of their own, a lone ▁ is the first sub-token of the word after it). docs/tokenizers.md explains it.
 *
 * Special-token strings inside the text ("[CLS]", "<s>") are tokenized like other text (as
 * WordPieceTokenizer does); the library's `encode` keeps them whole.
 */
import { readFile } from 'node:fs/promises';
import { Tokenizer } from '@huggingface/tokenizers';
import { InputError } from '../../errors.js';
import type { TokenizerConfig } from '../../onnx/types.js';
import type { Token } from '../types.js';
import { alignNormalized, assignWords, wordSymbols, type WordSymbol } from './align.js';

export type HfModelKind = 'wordpiece' | 'bpe' | 'unigram';

interface SpecialPair {
  0: string;
  1: number;
}
interface TemplatePiece {
  SpecialToken?: { id: string };
  Sequence?: { id: string };
}
interface PreTokenizerJson {
  type?: string;
  replacement?: string;
  add_prefix_space?: boolean;
  prepend_scheme?: string;
  pretokenizers?: PreTokenizerJson[];
}
interface TokenizerJsonShape {
  model?: {
    type?: string;
    unk_token?: string | null;
    unk_id?: number | null;
    vocab?: unknown;
    continuing_subword_prefix?: string | null;
    continuing_subword_suffix?: string | null;
    end_of_word_suffix?: string | null;
    byte_fallback?: boolean;
  };
  pre_tokenizer?: PreTokenizerJson | null;
  padding?: { pad_token?: string; pad_id?: number } | null;
  post_processor?: {
    type?: string;
    cls?: SpecialPair;
    sep?: SpecialPair;
    single?: TemplatePiece[];
    special_tokens?: Record<string, { ids?: number[] }>;
    processors?: Array<{ type?: string; cls?: SpecialPair; sep?: SpecialPair; single?: TemplatePiece[]; special_tokens?: Record<string, { ids?: number[] }> }>;
  } | null;
}

/** The library's model object, as far as this file uses it. */
interface LibModel {
  tokens_to_ids: Map<string, number>;
  _call(words: string[]): string[];
}

const KINDS: Record<string, HfModelKind> = { WordPiece: 'wordpiece', BPE: 'bpe', Unigram: 'unigram' };
const WS = /^\s$/u;
const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

function configName(config: TokenizerConfig, key: string): string | undefined {
  const v: unknown = config[key];
  if (typeof v === 'string') return v;
  if (v !== null && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

function findPre(p: PreTokenizerJson | null | undefined, type: string): PreTokenizerJson | undefined {
  if (!p) return undefined;
  if (p.type === type) return p;
  for (const q of p.pretokenizers ?? []) {
    const f = findPre(q, type);
    if (f) return f;
  }
  return undefined;
}

/** [CLS]-like and [SEP]-like names from the post-processor (what the fast tokenizer adds around a text). */
function postSpecials(pp: TokenizerJsonShape['post_processor']): { cls?: string; sep?: string } {
  if (!pp) return {};
  if (pp.type === 'Sequence') {
    for (const q of pp.processors ?? []) {
      const r = postSpecials(q);
      if (r.cls || r.sep) return r;
    }
    return {};
  }
  if (pp.cls || pp.sep) return { cls: pp.cls?.[0], sep: pp.sep?.[0] };
  if (Array.isArray(pp.single)) {
    const seq = pp.single.findIndex((p) => p.Sequence !== undefined);
    const before = pp.single.slice(0, seq < 0 ? 0 : seq).filter((p) => p.SpecialToken);
    const after = pp.single.slice(seq < 0 ? 0 : seq + 1).filter((p) => p.SpecialToken);
    return { cls: before[before.length - 1]?.SpecialToken?.id, sep: after[0]?.SpecialToken?.id };
  }
  return {};
}

function utf8Length(cp: number): number {
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/** A tokenizer.json tokenizer with ranerc's token shape. */
export class HfTokenizer {
  readonly clsId: number;
  readonly sepId: number;
  readonly padId: number;
  /** The unknown token's id (-1 when the tokenizer has none, as byte-level BPE needs none). */
  readonly unkId: number;
  readonly clsToken: string;
  readonly sepToken: string;
  readonly padToken: string;
  readonly unkToken: string;
  readonly kind: HfModelKind;
  /** One past the largest id (vocabulary and added tokens). */
  readonly vocabSize: number;
  private readonly tok: Tokenizer;
  private readonly prefix: string;
  private readonly suffix: string;
  private readonly endSuffix: string;
  private readonly byteLevel: boolean;
  private readonly metaspace: string | undefined;
  /** The pre-tokenizer puts a space marker before a text that does not start with a space. */
  private readonly prependsSpace: boolean;

  private constructor(json: TokenizerJsonShape, config: TokenizerConfig, file?: string) {
    const type = json.model?.type;
    const kind = type === undefined ? undefined : KINDS[type];
    if (!kind) {
      throw new InputError(`tokenizer.json model type ${JSON.stringify(type)} is not supported (ranerc reads WordPiece, BPE and Unigram tokenizer.json)`, {
        file,
        hint: 'export the tokenizer with a WordPiece, BPE or Unigram model (Hugging Face fast tokenizers), or put a WordPiece vocab.txt beside the model',
      });
    }
    this.kind = kind;
    try {
      this.tok = new Tokenizer(json, config);
    } catch (e) {
      throw new InputError(`@huggingface/tokenizers cannot read tokenizer.json: ${(e as Error).message}`, { file, hint: 'fix or re-export tokenizer.json', cause: e });
    }
    const m = json.model ?? {};
    this.prefix = kind === 'wordpiece' ? (m.continuing_subword_prefix ?? '##') : '';
    this.suffix = kind === 'bpe' ? (m.continuing_subword_suffix ?? '') : '';
    this.endSuffix = kind === 'bpe' ? (m.end_of_word_suffix ?? '') : '';
    this.byteLevel = findPre(json.pre_tokenizer, 'ByteLevel') !== undefined;
    const meta = findPre(json.pre_tokenizer, 'Metaspace');
    this.metaspace = meta ? (meta.replacement ?? '\u2581') : undefined;
    const byteLevel = findPre(json.pre_tokenizer, 'ByteLevel');
    this.prependsSpace = (byteLevel?.add_prefix_space === true) || (meta !== undefined && meta.prepend_scheme !== 'never');

    const has = (name: string | undefined): name is string => name !== undefined && this.tok.token_to_id(name) !== undefined;
    const pick = (key: string, candidates: Array<string | undefined>, required: boolean): string => {
      const name = candidates.find(has);
      if (name === undefined && required) {
        throw new InputError(`tokenizer.json has no ${key} (tried ${candidates.filter((c) => c !== undefined).map((c) => JSON.stringify(c)).join(', ')})`, {
          file,
          hint: `set "${key}" in tokenizer_config.json to a token the tokenizer has`,
        });
      }
      return name ?? '';
    };
    const post = postSpecials(json.post_processor);
    const bert = kind === 'wordpiece';
    // the post-processor says what the fast tokenizer adds; tokenizer_config.json (whose BERT defaults ranerc
    // fills in for folders without one) comes next, then the family's usual names
    this.clsToken = pick('cls_token', [post.cls, configName(config, 'cls_token'), configName(config, 'bos_token'), bert ? '[CLS]' : '<s>', bert ? '<s>' : '[CLS]'], true);
    this.sepToken = pick('sep_token', [post.sep, configName(config, 'sep_token'), configName(config, 'eos_token'), bert ? '[SEP]' : '</s>', bert ? '</s>' : '[SEP]'], true);
    this.padToken = pick('pad_token', [json.padding?.pad_token, configName(config, 'pad_token'), bert ? '[PAD]' : '<pad>', bert ? '<pad>' : '[PAD]'], true);
    const unkFromModel =
      kind === 'unigram'
        ? typeof m.unk_id === 'number' && Array.isArray(m.vocab)
          ? (m.vocab[m.unk_id] as [string, number] | undefined)?.[0]
          : undefined
        : (m.unk_token ?? undefined);
    this.unkToken = pick('unk_token', [unkFromModel, configName(config, 'unk_token'), bert ? '[UNK]' : '<unk>'], kind !== 'bpe');
    const id = (name: string): number => this.tok.token_to_id(name) as number;
    this.clsId = id(this.clsToken);
    this.sepId = id(this.sepToken);
    this.padId = id(this.padToken);
    this.unkId = this.unkToken === '' ? -1 : id(this.unkToken);
    let max = -1;
    for (const v of this.tok.get_vocab(true).values()) if (v > max) max = v;
    this.vocabSize = max + 1;
  }

  /** From a parsed tokenizer.json object and the folder's tokenizer_config.json. */
  static fromJson(json: object, config: TokenizerConfig = {}, file?: string): HfTokenizer {
    return new HfTokenizer(json as TokenizerJsonShape, config, file);
  }

  /** From a tokenizer.json file. */
  static async fromFile(path: string, config: TokenizerConfig = {}): Promise<HfTokenizer> {
    let json: unknown;
    try {
      json = JSON.parse(await readFile(path, 'utf8'));
    } catch (e) {
      throw new InputError(`cannot read tokenizer.json: ${(e as Error).message}`, { file: path, hint: 'fix or delete tokenizer.json', cause: e });
    }
    if (typeof json !== 'object' || json === null) throw new InputError('tokenizer.json must be a JSON object', { file: path, hint: 'fix or delete tokenizer.json' });
    return new HfTokenizer(json as TokenizerJsonShape, config, path);
  }

  /** The library's own ids for `text` with the post-processor's specials (for cross-checks). */
  encodeIds(text: string): number[] {
    return this.tok.encode(text).ids;
  }

  /** Tokens of `text` (no [CLS]/[SEP]) with source offsets and word indices. */
  tokenize(text: string): Token[] {
    const normalizer = this.tok.normalizer;
    const { norm, start: srcStart, end: srcEnd } = alignNormalized(text, normalizer ? (s) => normalizer.normalize(s) : null);
    if (norm.length === 0) return [];
    const words: string[] = this.tok.pre_tokenizer ? this.tok.pre_tokenizer.pre_tokenize(norm, { section_index: 0 }) : [norm];
    const model = this.tok.model as unknown as LibModel | null;
    if (!model) return [];
    const mode = { byteLevel: this.byteLevel, metaspace: this.metaspace };
    const out: Token[] = [];
    const rule: Array<{ start: number; end: number; firstOfWord: boolean; wsOnly: boolean }> = [];
    const preWord: number[] = [];
    let cursor = 0;
    words.forEach((word, wi) => {
      if (word.length === 0) return;
      const syms = wordSymbols(word, mode);
      // where the word's symbols lie in the normalized text (norm index per symbol; -1 = not in it)
      const decoded = syms.map((s) => s.text).join('');
      // the pre-tokenizer prepends a space marker to the first word of a text that does not start with one
      const virtual = out.length === 0 && cursor === 0 && this.prependsSpace && syms[0].marker && !norm.startsWith(' ');
      const at = norm.indexOf(virtual ? decoded.slice(syms[0].text.length) : decoded, cursor);
      const normPos = new Array<number>(syms.length).fill(-1);
      if (at >= 0) {
        let p = at;
        syms.forEach((s, k) => {
          if (k === 0 && virtual) return; // the prepended marker stands for no source character
          normPos[k] = p;
          p += s.text.length;
        });
        cursor = p;
      }
      const nextStart = (from: number): number => {
        for (let k = from; k < syms.length; k++) if (normPos[k] >= 0) return srcStart[normPos[k]];
        return cursor < norm.length ? srcStart[cursor] : text.length;
      };
      const span = (k0: number, k1: number): { start: number; end: number; wsOnly: boolean } => {
        let s = -1;
        let e = -1;
        let coveredEnd = -1;
        for (let k = k0; k < k1; k++) {
          const p = normPos[k];
          if (p < 0) continue;
          const last = p + syms[k].text.length - 1;
          coveredEnd = Math.max(coveredEnd, srcEnd[last]);
          if (syms[k].marker || WS.test(syms[k].text)) continue;
          if (s < 0 || srcStart[p] < s) s = srcStart[p];
          e = Math.max(e, srcEnd[last]);
        }
        if (s >= 0) return { start: s, end: e, wsOnly: false };
        const at0 = coveredEnd >= 0 ? coveredEnd : nextStart(k1);
        return { start: at0, end: at0, wsOnly: true };
      };
      // symbol index of each word UTF-16 unit
      const symAt = new Array<number>(word.length + 1);
      syms.forEach((s, k) => {
        for (let q = s.w0; q < s.w1; q++) symAt[q] = k;
      });
      symAt[word.length] = syms.length;
      const symOf = (q: number): number => (q >= word.length ? syms.length : symAt[q]);

      const pieces = model._call([word]);
      let pos = 0; // UTF-16 position in `word`
      let byteInChar = 0;
      pieces.forEach((piece, pi) => {
        const pid = model.tokens_to_ids.get(piece) ?? this.unkId;
        let body = piece;
        if (this.prefix && pi > 0 && body.startsWith(this.prefix)) body = body.slice(this.prefix.length);
        if (this.suffix && pi < pieces.length - 1 && body.endsWith(this.suffix)) body = body.slice(0, -this.suffix.length);
        if (this.endSuffix && pi === pieces.length - 1 && body.endsWith(this.endSuffix)) body = body.slice(0, -this.endSuffix.length);
        let from = pos;
        let to: number;
        const byte = BYTE_PIECE.exec(piece);
        if (byte && !word.startsWith(piece, pos)) {
          // one UTF-8 byte of the character at pos
          const cp = word.codePointAt(pos) ?? 0;
          to = Math.min(word.length, pos + (cp > 0xffff ? 2 : 1));
          byteInChar++;
          if (byteInChar >= utf8Length(cp)) {
            pos = to;
            byteInChar = 0;
          }
        } else if (word.startsWith(body, pos) && body.length > 0) {
          to = pos + body.length;
          pos = to;
          byteInChar = 0;
        } else if (piece === this.unkToken || pid === this.unkId) {
          // the unknown token covers the characters up to where the next known piece matches
          to = word.length;
          for (let q = pi + 1; q < pieces.length; q++) {
            if (pieces[q] === this.unkToken) continue;
            let nb = pieces[q];
            if (this.prefix && nb.startsWith(this.prefix)) nb = nb.slice(this.prefix.length);
            const idx = word.indexOf(nb, pos + 1);
            if (idx >= 0) to = idx;
            break;
          }
          if (pi === pieces.length - 1) to = word.length;
          pos = to;
          byteInChar = 0;
        } else {
          const idx = body.length > 0 ? word.indexOf(body, pos) : -1;
          from = idx >= 0 ? idx : pos;
          to = idx >= 0 ? idx + body.length : word.length;
          pos = to;
          byteInChar = 0;
        }
        const k0 = symOf(from);
        const k1 = Math.max(k0 + (to > from ? 1 : 0), symOf(to - 1) + 1);
        const sp = span(k0, Math.min(k1, syms.length));
        const firstOfWord = pi === 0 || (this.metaspace !== undefined && syms[k0]?.marker === true);
        // an unknown piece is reported as the unknown token (the library's Unigram keeps the raw text)
        const shown = pid === this.unkId && !model.tokens_to_ids.has(piece) ? this.unkToken : piece;
        out.push({ id: pid, piece: shown, start: sp.start, end: sp.end, word: wi });
        rule.push({ start: sp.start, end: sp.end, firstOfWord, wsOnly: sp.wsOnly });
        preWord.push(wi);
      });
    });
    if (this.kind === 'wordpiece') {
      // BERT's words (the pre-tokenizer's), numbered in order
      let w = -1;
      out.forEach((t, k) => (t.word = k === 0 || preWord[k] !== preWord[k - 1] ? ++w : w));
      return out;
    }
    const ws = assignWords(text, rule);
    out.forEach((t, k) => (t.word = ws[k]));
    return out;
  }
}

export type { WordSymbol };
