/**
 * A `tokenizer.json` read through `@huggingface/tokenizers` (the library transformers.js uses), giving ranerc
 * tokens (id, piece, source offsets, word index) like WordPieceTokenizer.
 *
 * The library's `encode` returns ids and token strings only (no offsets, no word ids; version 0.2.0), so the
 * offsets are recovered here from the library's own components: each source code point is run through the
 * library's normalizer on its own (BertNormalizer is per character, except the library's whole-string
 * lower-casing of a word-final Σ), the library's pre-tokenizer splits the normalized text into words (word
 * index = position in that list), the library's model splits each word into pieces, and each piece is laid
 * over its word's characters (a continuation's `##` prefix removed; the unknown token covers the whole word).
 *
 * Supported models: WordPiece. BPE (byte-level) and Unigram (SentencePiece) tokenizer.json files are refused
 * with an InputError naming the file until their piece-to-character alignment exists.
 *
 * Special-token strings inside the text ("[CLS]") are tokenized like other text (as WordPieceTokenizer does);
 * the library's `encode` keeps them whole.
 */
import { readFile } from 'node:fs/promises';
import { Tokenizer } from '@huggingface/tokenizers';
import { InputError } from '../../errors.js';
import type { TokenizerConfig } from '../../onnx/types.js';
import type { Token } from '../types.js';

interface TokenizerJsonShape {
  model?: { type?: string; unk_token?: string; continuing_subword_prefix?: string };
  post_processor?: { type?: string; special_tokens?: Record<string, { ids?: number[] }>; cls?: [string, number]; sep?: [string, number] } | null;
}

function specialName(config: TokenizerConfig, key: string, fallback: string): string {
  const v: unknown = config[key];
  if (typeof v === 'string') return v;
  if (v !== null && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return fallback;
}

/** A tokenizer.json tokenizer (WordPiece model) with ranerc's token shape. */
export class HfTokenizer {
  readonly clsId: number;
  readonly sepId: number;
  readonly padId: number;
  readonly unkId: number;
  readonly clsToken: string;
  readonly sepToken: string;
  readonly padToken: string;
  readonly unkToken: string;
  readonly kind: 'wordpiece';
  /** One past the largest id (vocabulary and added tokens). */
  readonly vocabSize: number;
  private readonly tok: Tokenizer;
  private readonly prefix: string;

  private constructor(json: TokenizerJsonShape, config: TokenizerConfig, file?: string) {
    const type = json.model?.type;
    if (type !== 'WordPiece') {
      throw new InputError(`tokenizer.json model type ${JSON.stringify(type)} is not supported yet (ranerc reads WordPiece tokenizer.json)`, {
        file,
        hint: 'for a BERT-style model put its vocab.txt beside the model; BPE and Unigram tokenizers are not supported yet',
      });
    }
    this.kind = 'wordpiece';
    this.tok = new Tokenizer(json, config);
    this.prefix = json.model?.continuing_subword_prefix ?? '##';
    const id = (name: string, key: string): number => {
      const v = this.tok.token_to_id(name);
      if (v === undefined) {
        throw new InputError(`tokenizer.json has no ${key} "${name}"`, { file, hint: `set "${key}" in tokenizer_config.json to a token the tokenizer has` });
      }
      return v;
    };
    this.unkToken = json.model?.unk_token ?? specialName(config, 'unk_token', '[UNK]');
    this.clsToken = specialName(config, 'cls_token', '[CLS]');
    this.sepToken = specialName(config, 'sep_token', '[SEP]');
    this.padToken = specialName(config, 'pad_token', '[PAD]');
    this.unkId = id(this.unkToken, 'unk_token');
    this.clsId = id(this.clsToken, 'cls_token');
    this.sepId = id(this.sepToken, 'sep_token');
    this.padId = id(this.padToken, 'pad_token');
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
    // per source code point: its normalized text, and for each UTF-16 unit of the normalized string its source span
    let norm = '';
    const srcStart: number[] = [];
    const srcEnd: number[] = [];
    const normalizer = this.tok.normalizer;
    for (let i = 0; i < text.length; ) {
      const cp = text.codePointAt(i) as number;
      const len = cp > 0xffff ? 2 : 1;
      const ch = text.slice(i, i + len);
      const n = normalizer ? normalizer.normalize(ch) : ch;
      norm += n;
      for (let k = 0; k < n.length; k++) {
        srcStart.push(i);
        srcEnd.push(i + len);
      }
      i += len;
    }
    const words: string[] = this.tok.pre_tokenizer ? this.tok.pre_tokenizer.pre_tokenize(norm) : [norm];
    const model = this.tok.model;
    if (!model) return [];
    const out: Token[] = [];
    let cursor = 0;
    words.forEach((word: string, wi: number) => {
      const at = norm.indexOf(word, cursor);
      if (at < 0 || word.length === 0) return;
      cursor = at + word.length;
      const wStart = srcStart[at];
      const wEnd = srcEnd[at + word.length - 1];
      let pos = at;
      const pieces: string[] = model._call([word]);
      pieces.forEach((piece: string, pi: number) => {
        const id = model.tokens_to_ids.get(piece) ?? this.unkId;
        if (piece === this.unkToken && (pieces.length === 1 || !word.includes(piece))) {
          out.push({ id, piece, start: wStart, end: wEnd, word: wi });
          pos = at + word.length;
          return;
        }
        const body = pi > 0 && piece.startsWith(this.prefix) ? piece.slice(this.prefix.length) : piece;
        const end = Math.min(pos + body.length, at + word.length);
        out.push({ id, piece, start: srcStart[pos], end: srcEnd[end - 1], word: wi });
        pos = end;
      });
    });
    return out;
  }
}
