/**
 * The `tokenizer.json` writer: from a WordPiece vocabulary (vocab.txt lines in id order) and the folder's
 * `tokenizer_config.json`, the fast-tokenizer document that Hugging Face's `BertTokenizer` → fast converter
 * (transformers `convert_slow_tokenizer.py`, `BertConverter`) produces:
 *
 * - normalizer `BertNormalizer` {clean_text: true, handle_chinese_chars, strip_accents, lowercase} from
 *   `tokenize_chinese_chars`, `strip_accents` (null = follow lowercase, as the slow tokenizer), `do_lower_case`;
 * - pre-tokenizer `BertPreTokenizer`;
 * - model `WordPiece` {unk_token, continuing_subword_prefix "##", max_input_chars_per_word (default 100)};
 * - post-processor `TemplateProcessing` single "[CLS]:0 $A:0 [SEP]:0", pair "[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1";
 * - decoder `WordPiece` {prefix "##", cleanup true};
 * - `added_tokens`: the special tokens (unk, sep, pad, cls, mask) that the vocabulary has, special and not
 *   normalized, in id order (a special token missing from the vocabulary is left out; Hugging Face would
 *   append it past the vocabulary, an id the model's embedding table does not have).
 *
 * Duplicate vocabulary lines: the last one wins, as Hugging Face's `load_vocab` and ranerc's WordPieceTokenizer.
 */
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import type { TokenizerConfig } from '../onnx/types.js';
import { InputError } from '../errors.js';
import { atomicWriteFile } from '../util/fs.js';
import { parseVocab } from './tokenizer.js';

/** One entry of `added_tokens`. */
export interface TokenizerJsonAddedToken {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

type TemplatePiece = { SpecialToken: { id: string; type_id: number } } | { Sequence: { id: 'A' | 'B'; type_id: number } };

/** The document `bertTokenizerJson` returns (the Hugging Face `tokenizers` serialization, version 1.0). */
export interface BertTokenizerJson {
  version: '1.0';
  truncation: null;
  padding: null;
  added_tokens: TokenizerJsonAddedToken[];
  normalizer: { type: 'BertNormalizer'; clean_text: boolean; handle_chinese_chars: boolean; strip_accents: boolean | null; lowercase: boolean };
  pre_tokenizer: { type: 'BertPreTokenizer' };
  post_processor: {
    type: 'TemplateProcessing';
    single: TemplatePiece[];
    pair: TemplatePiece[];
    special_tokens: Record<string, { id: string; ids: number[]; tokens: string[] }>;
  };
  decoder: { type: 'WordPiece'; prefix: string; cleanup: boolean };
  model: {
    type: 'WordPiece';
    unk_token: string;
    continuing_subword_prefix: string;
    max_input_chars_per_word: number;
    vocab: Record<string, number>;
  };
}

function special(config: TokenizerConfig, key: string, fallback: string): string {
  const v: unknown = config[key];
  if (typeof v === 'string') return v;
  if (v !== null && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return fallback;
}

/**
 * The tokenizer.json object Hugging Face's BertConverter writes for this vocabulary and config. Pure.
 * Throws InputError when the vocabulary lacks the unk/cls/sep token (the converter would fail too).
 */
export function bertTokenizerJson(vocab: readonly string[], config: TokenizerConfig = {}, file?: string): BertTokenizerJson {
  const ids = new Map<string, number>();
  vocab.forEach((piece, i) => ids.set(piece, i));
  const lowercase = typeof config.do_lower_case === 'boolean' ? config.do_lower_case : true;
  const stripAccents = typeof config.strip_accents === 'boolean' ? config.strip_accents : null;
  const chinese = typeof config.tokenize_chinese_chars === 'boolean' ? config.tokenize_chinese_chars : true;
  const maxChars = config.max_input_chars_per_word;
  const maxInputChars = typeof maxChars === 'number' && Number.isInteger(maxChars) && maxChars > 0 ? maxChars : 100;
  const unk = special(config, 'unk_token', '[UNK]');
  const cls = special(config, 'cls_token', '[CLS]');
  const sep = special(config, 'sep_token', '[SEP]');
  const pad = special(config, 'pad_token', '[PAD]');
  const mask = special(config, 'mask_token', '[MASK]');
  const need = (name: string, key: string): number => {
    const id = ids.get(name);
    if (id === undefined) {
      throw new InputError(`cannot write tokenizer.json: the vocabulary has no ${key} "${name}"`, {
        file,
        hint: `add "${name}" to vocab.txt, or set "${key}" in tokenizer_config.json to the token the vocabulary uses`,
      });
    }
    return id;
  };
  const clsId = need(cls, 'cls_token');
  const sepId = need(sep, 'sep_token');
  need(unk, 'unk_token');
  // The slow tokenizer's special tokens in SPECIAL_TOKENS_ATTRIBUTES order; the fast one lists them by id.
  const added: TokenizerJsonAddedToken[] = [];
  const seen = new Set<string>();
  for (const name of [unk, sep, pad, cls, mask]) {
    const id = ids.get(name);
    if (id === undefined || seen.has(name)) continue;
    seen.add(name);
    added.push({ id, content: name, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  }
  added.sort((a, b) => a.id - b.id);
  const vocabObj: Record<string, number> = {};
  for (const [piece, id] of [...ids.entries()].sort((a, b) => a[1] - b[1])) vocabObj[piece] = id;
  const specialTokens: BertTokenizerJson['post_processor']['special_tokens'] = {};
  specialTokens[cls] = { id: cls, ids: [clsId], tokens: [cls] };
  specialTokens[sep] = { id: sep, ids: [sepId], tokens: [sep] };
  const sp = (id: string, typeId: number): TemplatePiece => ({ SpecialToken: { id, type_id: typeId } });
  const seq = (id: 'A' | 'B', typeId: number): TemplatePiece => ({ Sequence: { id, type_id: typeId } });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: chinese, strip_accents: stripAccents, lowercase },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [sp(cls, 0), seq('A', 0), sp(sep, 0)],
      pair: [sp(cls, 0), seq('A', 0), sp(sep, 0), seq('B', 1), sp(sep, 1)],
      special_tokens: specialTokens,
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: unk, continuing_subword_prefix: '##', max_input_chars_per_word: maxInputChars, vocab: vocabObj },
  };
}

/** tokenizer.json text for a vocab.txt file (read here) and config. */
export async function bertTokenizerJsonFromVocabFile(vocabPath: string, config: TokenizerConfig = {}): Promise<BertTokenizerJson> {
  let body: string;
  try {
    body = await readFile(vocabPath, 'utf8');
  } catch (e) {
    throw new InputError(`cannot read the vocabulary: ${(e as Error).message}`, { file: vocabPath, hint: 'pass the model\'s vocab.txt', cause: e });
  }
  return bertTokenizerJson(parseVocab(body), config, vocabPath);
}

/**
 * Write `DIR/tokenizer.json` built from `vocab` (vocab.txt lines in id order) + `config`, atomically. Returns
 * the path written. Used by the folder writers for every folder whose source has no tokenizer.json of its own.
 */
export async function writeBertTokenizerJson(dir: string, vocab: readonly string[], config: TokenizerConfig = {}, file?: string): Promise<string> {
  const doc = bertTokenizerJson(vocab, config, file);
  const path = join(dir, 'tokenizer.json');
  await atomicWriteFile(path, `${JSON.stringify(doc, null, 2)}\n`);
  return path;
}

/**
 * Whether a parsed tokenizer.json describes the same tokenizer as ranerc's WordPieceTokenizer over `vocab`
 * with `config`: BertNormalizer with the same effective lower-casing, accent stripping and Chinese-character
 * splitting, BertPreTokenizer, a WordPiece model with the same unknown token, `##` prefix, word-length limit
 * and exactly this vocabulary (token i has id i), and no added token outside it. Pure. `loadTokenizer` then
 * uses the hand-written WordPiece, which gives the library's ids on the shared corpora and is faster.
 */
export function isBertTokenizerOf(json: unknown, vocab: readonly string[], config: TokenizerConfig = {}): boolean {
  if (json === null || typeof json !== 'object') return false;
  const j = json as {
    normalizer?: { type?: unknown; clean_text?: unknown; handle_chinese_chars?: unknown; strip_accents?: unknown; lowercase?: unknown } | null;
    pre_tokenizer?: { type?: unknown } | null;
    model?: { type?: unknown; unk_token?: unknown; continuing_subword_prefix?: unknown; max_input_chars_per_word?: unknown; vocab?: unknown } | null;
    added_tokens?: unknown;
  };
  const want = bertTokenizerJson(vocab, config);
  const n = j.normalizer;
  if (!n || n.type !== 'BertNormalizer' || n.clean_text !== true) return false;
  const lower = n.lowercase === true;
  const strip = typeof n.strip_accents === 'boolean' ? n.strip_accents : lower;
  const wn = want.normalizer;
  if (lower !== wn.lowercase || strip !== (wn.strip_accents ?? wn.lowercase) || (n.handle_chinese_chars === true) !== wn.handle_chinese_chars) return false;
  if (j.pre_tokenizer?.type !== 'BertPreTokenizer') return false;
  const m = j.model;
  if (!m || m.type !== 'WordPiece' || m.unk_token !== want.model.unk_token || m.continuing_subword_prefix !== '##') return false;
  if (m.max_input_chars_per_word !== want.model.max_input_chars_per_word) return false;
  if (m.vocab === null || typeof m.vocab !== 'object') return false;
  const v = m.vocab as Record<string, unknown>;
  if (Object.keys(v).length !== vocab.length || vocab.some((piece, i) => v[piece] !== i)) return false;
  if (!Array.isArray(j.added_tokens)) return false;
  return (j.added_tokens as unknown[]).every((t) => {
    const a = t as { id?: unknown; content?: unknown };
    return typeof a.id === 'number' && vocab[a.id] === a.content;
  });
}
