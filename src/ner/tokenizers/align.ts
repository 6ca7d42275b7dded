/**
 * Pure helpers that lay a Hugging Face tokenizer's output back over the source text (the library gives no
 * offsets): the normalized text aligned to source characters, byte-level (GPT-2) symbol decoding, and
 * ranerc's word rule for BPE / Unigram tokens. See docs/tokenizers.md for the rules and why.
 */
import { isCjkIdeograph } from '../tokenizer.js';

/** A normalized string and, per UTF-16 unit of it, the [start, end) UTF-16 span of the source it came from. */
export interface AlignedText {
  norm: string;
  start: number[];
  end: number[];
}

/**
 * Normalize `text` with `normalize` (applied to the whole string, as the library does) and align each unit of
 * the result to source characters. Each source code point is normalized on its own; when the pieces joined
 * equal the whole-string result (BERT, NFKC and lower-casing normalizers on ordinary text), that is the
 * alignment. Otherwise (whole-string rules such as Replace(" {2,}", " ") or Unicode composition across
 * characters) the two strings are re-synchronised after each difference: the smallest skip on either side
 * after which 3 units (or both ends) agree; inserted units take the span of the skipped source units (or the
 * empty span where the source skipped nothing). Past 64 units without agreement the rest maps to the rest
 * of the source.
 */
export function alignNormalized(text: string, normalize: ((s: string) => string) | null): AlignedText {
  if (!normalize) {
    const start: number[] = [];
    const end: number[] = [];
    for (let i = 0; i < text.length; ) {
      const len = (text.codePointAt(i) as number) > 0xffff ? 2 : 1;
      for (let k = 0; k < len; k++) {
        start.push(i);
        end.push(i + len);
      }
      i += len;
    }
    return { norm: text, start, end };
  }
  const full = normalize(text);
  let per = '';
  const pS: number[] = [];
  const pE: number[] = [];
  for (let i = 0; i < text.length; ) {
    const len = (text.codePointAt(i) as number) > 0xffff ? 2 : 1;
    const n = normalize(text.slice(i, i + len));
    per += n;
    for (let k = 0; k < n.length; k++) {
      pS.push(i);
      pE.push(i + len);
    }
    i += len;
  }
  if (per === full) return { norm: full, start: pS, end: pE };
  const start = new Array<number>(full.length);
  const end = new Array<number>(full.length);
  let i = 0;
  let j = 0;
  while (j < full.length) {
    if (i < per.length && per[i] === full[j]) {
      start[j] = pS[i];
      end[j] = pE[i];
      i++;
      j++;
      continue;
    }
    let synced = false;
    for (let d = 1; d <= 64 && !synced; d++) {
      for (let a = 0; a <= d; a++) {
        const b = d - a;
        if (i + a > per.length || j + b > full.length) continue;
        const k = Math.min(3, per.length - (i + a), full.length - (j + b));
        const bothEnd = i + a === per.length && j + b === full.length;
        if (k === 0 && !bothEnd) continue;
        if (per.substr(i + a, k) !== full.substr(j + b, k)) continue;
        const s = a > 0 ? pS[i] : i < per.length ? pS[i] : text.length;
        const e = a > 0 ? pE[i + a - 1] : s;
        for (let q = j; q < j + b; q++) {
          start[q] = s;
          end[q] = e;
        }
        i += a;
        j += b;
        synced = true;
        break;
      }
    }
    if (!synced) {
      const s = i < per.length ? pS[i] : text.length;
      for (let q = j; q < full.length; q++) {
        start[q] = s;
        end[q] = text.length;
      }
      break;
    }
  }
  return { norm: full, start, end };
}

/** GPT-2's byte → printable character table (bytes_to_unicode), and its inverse. */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  const out = new Array<string>(256);
  bs.forEach((b, i) => (out[b] = String.fromCharCode(cs[i])));
  return out;
})();
const CHAR_TO_BYTE = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

/** A symbol of a pre-tokenized word: the word's UTF-16 range [w0, w1) and the normalized text it stands for. */
export interface WordSymbol {
  w0: number;
  w1: number;
  /** The normalized text (one code point, or " " for a Ġ / ▁ space marker). */
  text: string;
  /** True when the symbol is a space marker (Ġ for byte 0x20, or the Metaspace replacement). */
  marker: boolean;
}

/**
 * The symbols of a pre-tokenized word: byte-level words (ByteLevel pre-tokenizer) group their byte characters
 * into UTF-8 characters; Metaspace words map the replacement character to a space; other words are their own
 * UTF-16 units. Undecodable bytes become U+FFFD (their word is then not found, and gets empty spans).
 */
export function wordSymbols(word: string, mode: { byteLevel: boolean; metaspace?: string }): WordSymbol[] {
  const out: WordSymbol[] = [];
  if (mode.byteLevel) {
    const decoder = new TextDecoder('utf-8', { fatal: false });
    let k = 0;
    while (k < word.length) {
      const b0 = CHAR_TO_BYTE.get(word[k]) ?? 0x3f;
      const n = b0 < 0x80 ? 1 : b0 >= 0xf0 ? 4 : b0 >= 0xe0 ? 3 : b0 >= 0xc0 ? 2 : 1;
      const bytes: number[] = [];
      for (let q = 0; q < n && k + q < word.length; q++) bytes.push(CHAR_TO_BYTE.get(word[k + q]) ?? 0x3f);
      const text = decoder.decode(new Uint8Array(bytes));
      out.push({ w0: k, w1: k + bytes.length, text, marker: b0 === 0x20 });
      k += bytes.length;
    }
    return out;
  }
  for (let k = 0; k < word.length; k++) {
    const marker = mode.metaspace !== undefined && word[k] === mode.metaspace;
    out.push({ w0: k, w1: k + 1, text: marker ? ' ' : word[k], marker });
  }
  return out;
}

/** BERT's `_is_chinese_char` ranges (CJK Unified Ideographs blocks): the WordPiece path's own test. */
export const isCjkCodePoint = isCjkIdeograph;

/** What the word rule needs of a token. */
export interface WordRuleToken {
  start: number;
  end: number;
  /** The token is the first piece of a pre-tokenizer word (or starts with a Metaspace ▁). */
  firstOfWord: boolean;
  /** The token covers only whitespace (or only the prepended ▁): its span is empty. */
  wsOnly: boolean;
}

/**
 * Word indices for BPE / Unigram tokens of `text` (ranerc's rule, docs/tokenizers.md):
 * a new word starts at the first piece of each pre-tokenizer word (and at each Metaspace ▁), and at a token
 * that starts at a new position on a CJK ideograph or right after one (so each ideograph is a word, as BERT's
 * tokenize_chinese_chars; a piece holding several ideographs is one word); a whitespace-only token belongs
 * to the word of the token after it, whose first sub-token it then is.
 */
export function assignWords(text: string, toks: readonly WordRuleToken[]): number[] {
  const starts = toks.map((t, k) => {
    if (k === 0 || t.firstOfWord) return true;
    const prev = toks[k - 1];
    if (t.wsOnly || t.start === prev.start) return false;
    const here = t.end > t.start && isCjkCodePoint(text.codePointAt(t.start) as number);
    const before = prev.end > prev.start && isCjkCodePoint(codePointBefore(text, prev.end));
    return here || before;
  });
  for (let k = 0; k + 1 < toks.length; k++) {
    if (toks[k].wsOnly) {
      starts[k] = starts[k] || starts[k + 1];
      starts[k + 1] = false;
    }
  }
  let w = -1;
  return starts.map((s) => (s ? ++w : w));
}

function codePointBefore(text: string, end: number): number {
  const lo = text.charCodeAt(end - 1);
  if (lo >= 0xdc00 && lo <= 0xdfff && end >= 2) {
    const hi = text.charCodeAt(end - 2);
    if (hi >= 0xd800 && hi <= 0xdbff) return text.codePointAt(end - 2) as number;
  }
  return lo;
}
