/**
 * Stands in for `node:fs/promises` when ranerc's tokenizer module runs in a browser page (the served
 * copy of ner/tokenizer.js imports this file instead): the page builds its tokenizer from the vocab
 * it fetched (WordPieceTokenizer.fromVocab) and never reads files.
 */
export async function readFile(path: string): Promise<never> {
  throw new Error(`no file system in the browser (tried to read ${path})`);
}
