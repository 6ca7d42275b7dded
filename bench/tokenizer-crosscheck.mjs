#!/usr/bin/env node
/**
 * Not a timing benchmark: a one-off cross-check over the FULL shared corpora (too large for a test).
 * For every fixture vocabulary, the tokenizer.json ranerc writes (src/ner/tokenizer-json.ts) is loaded with
 * @huggingface/tokenizers (independent of ranerc) and its ids ([CLS] … [SEP]) are compared with ranerc's
 * hand-written WordPieceTokenizer on every text of MSRA test and CLUENER dev. Prints one row per vocabulary.
 *
 *   npm run build && node bench/tokenizer-crosscheck.mjs [/work/shared/data]
 *
 * @huggingface/tokenizers 0.2.0 returns no offsets (Encoding = ids, tokens, attention_mask); the last column
 * compares ranerc's full tokens (id, piece, start, end, word) with HfTokenizer (src/ner/tokenizers/hf.ts), which
 * takes the pieces from the library's normalizer / pre-tokenizer / model and lays them over the source.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { bertTokenizerJson } from '../dist/ner/tokenizer-json.js';
import { parseVocab, WordPieceTokenizer } from '../dist/ner/tokenizer.js';
import { HfTokenizer } from '../dist/ner/tokenizers/hf.js';

const DATA = process.argv[2] ?? '/work/shared/data';
const REPO = new URL('../', import.meta.url).pathname;
const texts = (f) => readFileSync(f, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l).text);
const corpora = { 'msra/test': texts(join(DATA, 'msra/test.jsonl')), 'cluener/dev': texts(join(DATA, 'cluener/dev.jsonl')) };
const FOLDERS = ['fixtures/teacher/model', 'fixtures/tiny/bio-crf-op14', 'fixtures/tiny/bioes-op17', 'fixtures/tiny/bmes-op12-nobias', 'fixtures/tiny/optimum-layout', 'fixtures/tiny/wordpiece-en-op11', 'fixtures/tiny/bare'];
console.log('| vocabulary | corpus | texts | tokens | ids differ | tokens differ | HfTokenizer tokens+offsets differ |');
console.log('|---|---|---:|---:|---:|---:|---:|');
for (const folder of FOLDERS) {
  let config = {};
  try { config = JSON.parse(readFileSync(join(REPO, folder, 'tokenizer_config.json'), 'utf8')); } catch { /* bare: HF defaults */ }
  const vocab = parseVocab(readFileSync(join(REPO, folder, 'vocab.txt'), 'utf8'));
  const ours = WordPieceTokenizer.fromVocab(vocab, config);
  const lib = new Tokenizer(bertTokenizerJson(vocab, config), config);
  const hf = HfTokenizer.fromJson(bertTokenizerJson(vocab, config), config);
  for (const [name, list] of Object.entries(corpora)) {
    let tokens = 0, idDiff = 0, tokDiff = 0, offDiff = 0;
    for (const text of list) {
      const t = ours.tokenize(text);
      const ids = [ours.clsId, ...t.map((x) => x.id), ours.sepId];
      const pieces = [ours.clsToken, ...t.map((x) => x.piece), ours.sepToken];
      const e = lib.encode(text);
      tokens += ids.length;
      if (JSON.stringify(e.ids) !== JSON.stringify(ids)) { idDiff++; if (idDiff <= 3) console.error(`ids differ [${folder} ${name}]: ${text.slice(0, 80)}`); }
      if (JSON.stringify(e.tokens) !== JSON.stringify(pieces)) tokDiff++;
      if (JSON.stringify(hf.tokenize(text)) !== JSON.stringify(t)) offDiff++;
    }
    console.log(`| ${folder} | ${name} | ${list.length} | ${tokens} | ${idDiff} | ${tokDiff} | ${offDiff} |`);
  }
}
