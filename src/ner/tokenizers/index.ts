/**
 * The tokenizer a model folder uses, behind one small interface: ranerc's hand-written WordPiece
 * (`vocab.txt`, src/ner/tokenizer.ts) or a Hugging Face `tokenizer.json` read through @huggingface/tokenizers
 * (src/ner/tokenizers/hf.ts). Both give ranerc tokens with source offsets and word indices, so windows,
 * alignment and first-sub-token labelling work the same.
 */
import type { ModelFolder } from '../../onnx/types.js';
import type { Token } from '../types.js';
import { WordPieceTokenizer } from '../tokenizer.js';
import { HfTokenizer } from './hf.js';

export { HfTokenizer } from './hf.js';
export { WordPieceTokenizer } from '../tokenizer.js';

/** What ranerc's pipeline needs from a tokenizer. */
export interface NerTokenizer {
  readonly clsId: number;
  readonly sepId: number;
  readonly padId: number;
  readonly unkId: number;
  /** One past the largest id. */
  readonly vocabSize: number;
  /** Tokens of `text` without [CLS]/[SEP], with [start, end) UTF-16 source offsets and word indices. */
  tokenize(text: string): Token[];
}

/**
 * The folder's tokenizer: `vocab.txt` through WordPieceTokenizer (the path every existing command uses; its
 * ids and offsets equal the library's on the shared corpora), or, with `prefer: 'tokenizer.json'` and a
 * `tokenizer.json` in the folder, HfTokenizer.
 */
export async function loadTokenizer(folder: ModelFolder, prefer: 'vocab.txt' | 'tokenizer.json' = 'vocab.txt'): Promise<NerTokenizer> {
  if (prefer === 'tokenizer.json' && folder.tokenizerPath) return HfTokenizer.fromFile(folder.tokenizerPath, folder.tokenizerConfig);
  return WordPieceTokenizer.fromFiles(folder.vocabPath, folder.tokenizerConfig);
}
