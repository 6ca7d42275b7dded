/**
 * The tokenizer a model folder uses, behind one small interface: a Hugging Face `tokenizer.json` read through
 * @huggingface/tokenizers (src/ner/tokenizers/hf.ts: WordPiece, BPE, Unigram), or ranerc's hand-written
 * WordPiece over `vocab.txt` (src/ner/tokenizer.ts) for folders that have only a vocab.txt. Both give ranerc
 * tokens with source offsets and word indices, so windows, alignment and first-sub-token labelling work the
 * same. Every command opens its tokenizer through `loadTokenizer`.
 */
import { readFile } from 'node:fs/promises';
import { InputError } from '../../errors.js';
import type { ModelFolder } from '../../onnx/types.js';
import type { Token } from '../types.js';
import { parseVocab, WordPieceTokenizer } from '../tokenizer.js';
import { isBertTokenizerOf } from '../tokenizer-json.js';
import { HfTokenizer } from './hf.js';

export { HfTokenizer } from './hf.js';
export { WordPieceTokenizer } from '../tokenizer.js';

/** What ranerc's pipeline needs from a tokenizer. */
export interface NerTokenizer {
  /** The id put before a text ([CLS] for BERT, <s> for RoBERTa / XLM-R). */
  readonly clsId: number;
  /** The id put after a text ([SEP], </s>). */
  readonly sepId: number;
  /** The padding id ([PAD], <pad>; RoBERTa's position ids are computed from it inside the graph). */
  readonly padId: number;
  /** The unknown token's id (-1 when the tokenizer has none: byte-level BPE). */
  readonly unkId: number;
  /** One past the largest id. */
  readonly vocabSize: number;
  /** Tokens of `text` without the specials, with [start, end) UTF-16 source offsets and word indices. */
  tokenize(text: string): Token[];
}

/** Which file a folder's tokenizer is read from. */
export type TokenizerSource = 'auto' | 'vocab.txt' | 'tokenizer.json';

/**
 * The folder's tokenizer. `auto` (the default): its `tokenizer.json` when it has one (what Hugging Face fast
 * tokenizers, transformers.js and ranerc's own output folders carry), else its `vocab.txt` through
 * WordPieceTokenizer (equal to the library on the shared corpora: bench/tokenizer-crosscheck.mjs). When the
 * folder has both and the tokenizer.json is exactly the BERT WordPiece tokenizer of that vocab.txt (as every
 * folder ranerc writes from a vocab.txt), `auto` takes the WordPieceTokenizer: the same ids, and faster
 * (bench/tokenizer-speed.mjs).
 */
export async function loadTokenizer(folder: ModelFolder, prefer: TokenizerSource = 'auto'): Promise<NerTokenizer> {
  const json = folder.tokenizerPath;
  const vocab = folder.vocabPath;
  if (prefer === 'auto' && json && vocab && (await sameBertTokenizer(json, vocab, folder))) {
    return WordPieceTokenizer.fromFiles(vocab, folder.tokenizerConfig);
  }
  if (prefer !== 'vocab.txt' && json) return HfTokenizer.fromFile(json, folder.tokenizerConfig);
  if (prefer !== 'tokenizer.json' && vocab) return WordPieceTokenizer.fromFiles(vocab, folder.tokenizerConfig);
  throw new InputError(`the model folder has no ${prefer === 'auto' ? 'tokenizer.json or vocab.txt' : prefer}`, {
    file: folder.dir,
    hint: 'put the tokenizer the model was trained with beside it: tokenizer.json (Hugging Face fast tokenizer) or a WordPiece vocab.txt',
  });
}

async function sameBertTokenizer(jsonPath: string, vocabPath: string, folder: ModelFolder): Promise<boolean> {
  try {
    const [json, body] = await Promise.all([readFile(jsonPath, 'utf8'), readFile(vocabPath, 'utf8')]);
    return isBertTokenizerOf(JSON.parse(json) as unknown, parseVocab(body), folder.tokenizerConfig);
  } catch {
    return false; // unreadable or not JSON: HfTokenizer.fromFile reports it
  }
}

/** The file `loadTokenizer(folder)` reads (for provenance hashes and messages). */
export function tokenizerFile(folder: ModelFolder): string {
  return folder.tokenizerPath ?? folder.vocabPath ?? folder.dir;
}
