import { readFileSync } from 'node:fs';
// WordPieceTokenizer vs HfTokenizer on the same WordPiece vocabulary (bio-crf-op14), one process, interleaved.
//   npm run build && node bench/tokenizer-speed.mjs
const R = new URL('../', import.meta.url).pathname;
const { HfTokenizer } = await import(R + 'dist/ner/tokenizers/hf.js');
const { WordPieceTokenizer, parseVocab } = await import(R + 'dist/ner/tokenizer.js');
const { bertTokenizerJson } = await import(R + 'dist/ner/tokenizer-json.js');
const texts = readFileSync(R + 'fixtures/data/msra_test_sample.jsonl', 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).text);
const cfg = JSON.parse(readFileSync(R + 'fixtures/tiny/bio-crf-op14/tokenizer_config.json', 'utf8'));
const vocab = parseVocab(readFileSync(R + 'fixtures/tiny/bio-crf-op14/vocab.txt', 'utf8'));
const wp = WordPieceTokenizer.fromVocab(vocab, cfg);
const hf = HfTokenizer.fromJson(bertTokenizerJson(vocab, cfg), cfg);
const t = { wp: [], hf: [] };
for (let r = 0; r < 5; r++) for (const [k, tok] of [['wp', wp], ['hf', hf]]) { const s = performance.now(); for (const x of texts) tok.tokenize(x); t[k].push(performance.now() - s); }
const med = (a) => a.slice().sort((x, y) => x - y)[2];
console.log(`texts ${texts.length}; median of 5 interleaved rounds: WordPieceTokenizer ${med(t.wp).toFixed(0)} ms, HfTokenizer ${med(t.hf).toFixed(0)} ms, ratio ${(med(t.hf) / med(t.wp)).toFixed(2)}x`);
