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

// BPE (byte-level, RoBERTa) and Unigram (XLM-R) tokenizer.json fixtures (fixtures/intake/make_roberta_xlmr.py):
// the library's ids vs HfTokenizer's ids; offsets checked for order and bounds, and for each token whose span is
// not empty, that the span's text is what the piece spells (byte-level pieces decoded, ▁ / Ġ / <unk> aside; a piece
// holding part of a character's bytes, or part of one character's NFKC expansion such as … → ..., spans that character)
console.log('');
console.log('| tokenizer.json | corpus | texts | tokens | ids differ from library | spans out of order / bounds | non-empty spans whose text is not the piece |');
console.log('|---|---|---:|---:|---:|---:|---:|');
const B2C = (() => { const bs = []; for (let b = 33; b <= 126; b++) bs.push(b); for (let b = 161; b <= 172; b++) bs.push(b); for (let b = 174; b <= 255; b++) bs.push(b); const cs = bs.slice(); let n = 0; for (let b = 0; b < 256; b++) if (!bs.includes(b)) { bs.push(b); cs.push(256 + n++); } return new Map(bs.map((b, i) => [String.fromCharCode(cs[i]), b])); })();
for (const name of ['roberta-bpe', 'xlmr-unigram']) {
  const dir = join(REPO, 'fixtures/intake', name);
  const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
  const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
  const lib = new Tokenizer(json, config);
  const hf = HfTokenizer.fromJson(json, config);
  for (const [cname, list] of Object.entries(corpora)) {
    let tokens = 0, idDiff = 0, order = 0, spell = 0;
    for (const text of list) {
      const t = hf.tokenize(text);
      tokens += t.length + 2;
      if (JSON.stringify(lib.encode(text).ids) !== JSON.stringify([hf.clsId, ...t.map((x) => x.id), hf.sepId])) idDiff++;
      let prev = 0;
      for (const x of t) {
        if (x.start < prev || x.end < x.start || x.end > text.length) order++;
        prev = x.start;
        if (x.end === x.start || x.id === hf.unkId) continue;
        const body = name === 'roberta-bpe' ? new TextDecoder().decode(new Uint8Array([...x.piece].map((c) => B2C.get(c)))).replace(/^ /, '') : x.piece.replace(/^▁/, '');
        const src = text.slice(x.start, x.end);
        if (process.env.SHOW && spell < 3 && !((name === 'roberta-bpe' ? src : src.normalize('NFKC')) === body || (name === 'roberta-bpe' && body.includes('\ufffd') && src.length <= 2) || (name !== 'roberta-bpe' && [...src].length === 1 && src.normalize('NFKC').includes(body)))) console.error(name, JSON.stringify(src), JSON.stringify(body), JSON.stringify(x.piece));
        if (!((name === 'roberta-bpe' ? src : src.normalize('NFKC')) === body || (name === 'roberta-bpe' && body.includes('\ufffd') && src.length <= 2) || (name !== 'roberta-bpe' && [...src].length === 1 && src.normalize('NFKC').includes(body)))) spell++;
      }
    }
    console.log(`| ${name} | ${cname} | ${list.length} | ${tokens} | ${idDiff} | ${order} | ${spell} |`);
  }
}
