/**
 * HfTokenizer (tokenizer.json through @huggingface/tokenizers) against ranerc's hand-written WordPieceTokenizer:
 * identical ids, pieces, offsets and word indices on the committed MSRA test / CLUENER dev samples for every fixture
 * vocabulary, and its ids equal the library's own encode(). The tokenizer.json files are the ones ranerc writes
 * (the writer is checked against the library and the HF-derived golden file in tokenizer-json.test.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bertTokenizerJson, isBertTokenizerOf } from '../../src/ner/tokenizer-json.js';
import { parseVocab, WordPieceTokenizer } from '../../src/ner/tokenizer.js';
import { HfTokenizer } from '../../src/ner/tokenizers/hf.js';
import type { TokenizerConfig } from '../../src/onnx/types.js';

const REPO = new URL('../../', import.meta.url).pathname;
const texts = (file: string): string[] =>
  readFileSync(join(REPO, file), 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => (JSON.parse(l) as { text: string }).text);
const SAMPLES = [...texts('fixtures/data/msra_test_sample.jsonl'), ...texts('fixtures/data/cluener_dev_sample.jsonl')];
const EXTRA = ['Señor Łukasz Müller visited São Paulo and the ÉCOLE Normale.', 'unwanted running, UNwantéd!', '  \tHeLLo!how  \n Are yoU?  '];
const FOLDERS = ['fixtures/teacher/model', 'fixtures/tiny/bio-crf-op14', 'fixtures/tiny/bioes-op17', 'fixtures/tiny/bmes-op12-nobias', 'fixtures/tiny/wordpiece-en-op11'];

describe('HfTokenizer (WordPiece tokenizer.json)', () => {
  it.each(FOLDERS)('%s: tokens (id, piece, offsets, word) = WordPieceTokenizer; ids = library encode', (folder) => {
    const config = JSON.parse(readFileSync(join(REPO, folder, 'tokenizer_config.json'), 'utf8')) as TokenizerConfig;
    const vocab = parseVocab(readFileSync(join(REPO, folder, 'vocab.txt'), 'utf8'));
    const ours = WordPieceTokenizer.fromVocab(vocab, config);
    const hf = HfTokenizer.fromJson(bertTokenizerJson(vocab, config), config);
    expect([hf.clsId, hf.sepId, hf.padId, hf.unkId]).toEqual([ours.clsId, ours.sepId, ours.padId, ours.unkId]);
    let n = 0;
    for (const text of [...SAMPLES, ...EXTRA]) {
      const got = hf.tokenize(text);
      expect(got, text).toEqual(ours.tokenize(text));
      expect(hf.encodeIds(text), text).toEqual([hf.clsId, ...got.map((t) => t.id), hf.sepId]);
      n += got.length;
    }
    expect(n).toBeGreaterThan(60_000);
  });

  it('refuses a WordLevel tokenizer.json with an InputError naming the model type', () => {
    expect(() => HfTokenizer.fromJson({ model: { type: 'WordLevel', vocab: {} } }, {}, 'x/tokenizer.json')).toThrow(/"WordLevel" is not supported/);
  });
});

describe('isBertTokenizerOf', () => {
  const vocab = parseVocab(readFileSync(join(REPO, 'fixtures/tiny/wordpiece-en-op11/vocab.txt'), 'utf8'));
  const config: TokenizerConfig = { do_lower_case: true };
  it('is true for the BertConverter document of the same vocabulary and config, false when anything differs', () => {
    expect(isBertTokenizerOf(bertTokenizerJson(vocab, config), vocab, config)).toBe(true);
    // strip_accents null follows lowercase, as in the library: the same tokenizer
    const cased = { do_lower_case: false };
    const j = bertTokenizerJson(vocab, cased);
    j.normalizer.strip_accents = false;
    expect(isBertTokenizerOf(j, vocab, cased)).toBe(true);
    expect(isBertTokenizerOf(bertTokenizerJson(vocab, cased), vocab, config)).toBe(false);
    const swapped = [...vocab];
    [swapped[200], swapped[201]] = [swapped[201], swapped[200]];
    expect(isBertTokenizerOf(bertTokenizerJson(swapped, config), vocab, config)).toBe(false);
    const extra = bertTokenizerJson(vocab, config);
    extra.added_tokens.push({ id: vocab.length, content: '<new>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
    expect(isBertTokenizerOf(extra, vocab, config)).toBe(false);
    expect(isBertTokenizerOf({ ...bertTokenizerJson(vocab, config), pre_tokenizer: { type: 'Whitespace' } }, vocab, config)).toBe(false);
  });
});

describe('loadTokenizer', () => {
  it('reads a written folder through tokenizer.json or vocab.txt with equal tokens', async () => {
    const { mkdtemp, readFile, rm, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { loadModelFolder, writeModelFolder } = await import('../../src/onnx/folder.js');
    const { decodeModel } = await import('../../src/onnx/codec.js');
    const { loadTokenizer } = await import('../../src/ner/tokenizers/index.js');
    const tmp = await mkdtemp(join(tmpdir(), 'ranerc-loadtok-'));
    try {
      const src = await loadModelFolder({ model: join(REPO, 'fixtures/tiny/wordpiece-en-op11') });
      expect(src.tokenizerPath).toBeUndefined();
      await writeModelFolder(join(tmp, 'out'), src, decodeModel(await readFile(src.onnxPath)), { provenance: { ranerc: 'test', command: 'test', createdAt: new Date(0).toISOString() } });
      const out = await loadModelFolder({ model: join(tmp, 'out') });
      expect(out.tokenizerPath).toBe(join(tmp, 'out', 'tokenizer.json'));
      const viaJson = await loadTokenizer(out, 'tokenizer.json');
      const viaVocab = await loadTokenizer(out, 'vocab.txt');
      // auto: the written tokenizer.json is the BERT tokenizer of the same vocab.txt → the WordPiece path
      expect(await loadTokenizer(out)).toBeInstanceOf(WordPieceTokenizer);
      expect(viaJson).toBeInstanceOf(HfTokenizer);
      expect(viaVocab).toBeInstanceOf(WordPieceTokenizer);
      expect(viaJson.vocabSize).toBe(viaVocab.vocabSize);
      for (const text of EXTRA) expect(viaJson.tokenize(text)).toEqual(viaVocab.tokenize(text));
      // a tokenizer.json that differs (no lower-casing) is what auto reads, and it tokenizes differently
      const jsonPath = join(tmp, 'out', 'tokenizer.json');
      const doc = JSON.parse(await readFile(jsonPath, 'utf8')) as { normalizer: { lowercase: boolean; strip_accents: boolean | null } };
      doc.normalizer.lowercase = false;
      doc.normalizer.strip_accents = false;
      await writeFile(jsonPath, JSON.stringify(doc));
      const auto = await loadTokenizer(out);
      expect(auto).toBeInstanceOf(HfTokenizer);
      expect(auto.tokenize(EXTRA[0]).map((t) => t.id)).not.toEqual(viaVocab.tokenize(EXTRA[0]).map((t) => t.id));
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});
