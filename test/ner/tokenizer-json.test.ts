/**
 * The tokenizer.json ranerc writes, read by an independent implementation (@huggingface/tokenizers, the
 * library transformers.js uses): its ids equal the golden ids of fixtures/tokenizer/golden.jsonl and ranerc's
 * WordPieceTokenizer on the committed MSRA/CLUENER samples for every fixture vocabulary.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { describe, expect, it } from 'vitest';
import { loadModelFolder, writeModelFolder } from '../../src/onnx/folder.js';
import { decodeModel } from '../../src/onnx/codec.js';
import { bertTokenizerJson } from '../../src/ner/tokenizer-json.js';
import { parseVocab, WordPieceTokenizer } from '../../src/ner/tokenizer.js';
import type { TokenizerConfig } from '../../src/onnx/types.js';

const REPO = new URL('../../', import.meta.url).pathname;
const texts = (file: string): string[] =>
  readFileSync(join(REPO, file), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => (JSON.parse(l) as { text: string }).text);

function library(vocab: string[], config: TokenizerConfig): Tokenizer {
  return new Tokenizer(bertTokenizerJson(vocab, config), config);
}

interface Golden {
  config: TokenizerConfig;
  source: string;
  text: string;
  tokens: Array<[string, number, number, number, number]>;
}

describe('bertTokenizerJson', () => {
  it('has the BertConverter structure', () => {
    const j = bertTokenizerJson(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'a', '##b', 'a'], { do_lower_case: false });
    expect(j.normalizer).toEqual({ type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: false });
    expect(j.pre_tokenizer.type).toBe('BertPreTokenizer');
    expect(j.model.vocab).toEqual({ '[PAD]': 0, '[UNK]': 1, '[CLS]': 2, '[SEP]': 3, '[MASK]': 4, '##b': 6, a: 7 }); // last duplicate wins
    expect(j.added_tokens.map((t) => [t.id, t.content, t.special, t.normalized])).toEqual([
      [0, '[PAD]', true, false],
      [1, '[UNK]', true, false],
      [2, '[CLS]', true, false],
      [3, '[SEP]', true, false],
      [4, '[MASK]', true, false],
    ]);
    expect(j.post_processor.special_tokens['[CLS]'].ids).toEqual([2]);
    expect(() => bertTokenizerJson(['a', 'b'])).toThrow(/no cls_token "\[CLS\]"/);
  });

  it('the library reproduces the golden ids; the only differences are three known library/Hugging Face gaps', () => {
    const vocab = parseVocab(readFileSync(join(REPO, 'fixtures/tokenizer/vocab.txt'), 'utf8'));
    const lines = readFileSync(join(REPO, 'fixtures/tokenizer/golden.jsonl'), 'utf8').split('\n').filter((l) => l !== '');
    const cache = new Map<string, { tok: Tokenizer; cls: number; sep: number }>();
    const differ: Record<string, number> = {};
    let same = 0;
    for (const line of lines) {
      const g = JSON.parse(line) as Golden;
      const key = JSON.stringify(g.config);
      let entry = cache.get(key);
      if (!entry) {
        const wp = WordPieceTokenizer.fromVocab(vocab, g.config);
        entry = { tok: library(vocab, g.config), cls: wp.clsId, sep: wp.sepId };
        cache.set(key, entry);
      }
      const want = [entry.cls, ...g.tokens.map((t) => t[1]), entry.sep];
      if (JSON.stringify(entry.tok.encode(g.text).ids) === JSON.stringify(want)) {
        same++;
        continue;
      }
      // Hugging Face keeps special-token strings in the text whole (ranerc and the golden script split them);
      // the JS library lower-cases whole strings (final sigma ς) where Hugging Face lowers per character, and
      // does not split CJK ideographs outside the BMP (U+20000...) into words of their own.
      const why = /\[(CLS|SEP|UNK|PAD|MASK)\]/.test(g.text) ? 'special-token text' : /Σ/.test(g.text) ? 'final sigma' : /[\u{20000}-\u{2FA1F}]/u.test(g.text) ? 'astral CJK' : g.text;
      differ[why] = (differ[why] ?? 0) + 1;
    }
    expect(lines.length).toBe(1614);
    expect(differ).toEqual({ 'special-token text': 14, 'final sigma': 6, 'astral CJK': 14 });
    expect(same).toBe(1614 - 34);
    // every MSRA/CLUENER line is among the equal ones
    expect(lines.filter((l) => (JSON.parse(l) as Golden).source !== 'tricky').length).toBe(302);
  });

  const FOLDERS = ['fixtures/teacher/model', 'fixtures/tiny/bio-crf-op14', 'fixtures/tiny/bioes-op17', 'fixtures/tiny/bmes-op12-nobias', 'fixtures/tiny/wordpiece-en-op11'];
  const SAMPLES = [...texts('fixtures/data/msra_test_sample.jsonl'), ...texts('fixtures/data/cluener_dev_sample.jsonl')];

  it.each(FOLDERS)('%s: library ids = ranerc ids on the MSRA test and CLUENER dev samples', async (folder) => {
    const config = JSON.parse(await readFile(join(REPO, folder, 'tokenizer_config.json'), 'utf8')) as TokenizerConfig;
    const vocab = parseVocab(await readFile(join(REPO, folder, 'vocab.txt'), 'utf8'));
    const ours = WordPieceTokenizer.fromVocab(vocab, config);
    const lib = library(vocab, config);
    let tokens = 0;
    for (const text of SAMPLES) {
      const ids = [ours.clsId, ...ours.tokenize(text).map((t) => t.id), ours.sepId];
      tokens += ids.length;
      expect(lib.encode(text).ids, text).toEqual(ids);
    }
    expect(tokens).toBeGreaterThan(60_000);
  });

  it('writeModelFolder writes tokenizer.json that loads in the library', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'ranerc-tokjson-'));
    try {
      const src = await loadModelFolder({ model: join(REPO, 'fixtures/tiny/wordpiece-en-op11') });
      const model = decodeModel(await readFile(src.onnxPath));
      await writeModelFolder(join(tmp, 'out'), src, model, { provenance: { ranerc: 'test', command: 'test', createdAt: new Date(0).toISOString() } });
      const json = JSON.parse(await readFile(join(tmp, 'out', 'tokenizer.json'), 'utf8')) as object;
      const lib = new Tokenizer(json, src.tokenizerConfig);
      const ours = await WordPieceTokenizer.fromFiles(join(tmp, 'out', 'vocab.txt'), src.tokenizerConfig);
      const text = 'Señor Łukasz Müller visited São Paulo and the ÉCOLE Normale.';
      expect(lib.encode(text).ids).toEqual([ours.clsId, ...ours.tokenize(text).map((t) => t.id), ours.sepId]);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});
