/**
 * BPE (byte-level, RoBERTa) and Unigram (SentencePiece / XLM-R, Metaspace) tokenizer.json files read through
 * @huggingface/tokenizers: ranerc's ids, offsets and word indices equal what fixtures/intake/make_roberta_xlmr.py
 * says (its own Python BPE / Unigram implementation, written independently of ranerc and of the library), and
 * the ids equal the library's encode(). The word rule (docs/tokenizers.md) is checked on the cases it exists for.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HfTokenizer } from '../../src/ner/tokenizers/hf.js';
import type { TokenizerConfig } from '../../src/onnx/types.js';

const REPO = new URL('../../', import.meta.url).pathname;
const FAMILIES = ['roberta-bpe', 'xlmr-unigram'] as const;

interface Case {
  text: string;
  ids: number[];
  pieces: string[];
  offsets: Array<[number, number]>;
  words: number[];
}

async function load(name: string): Promise<{ tok: HfTokenizer; cases: Case[] }> {
  const dir = join(REPO, 'fixtures/intake', name);
  const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as TokenizerConfig;
  const tok = await HfTokenizer.fromFile(join(dir, 'tokenizer.json'), config);
  const ref = JSON.parse(readFileSync(join(REPO, 'fixtures/intake', `${name}.reference.json`), 'utf8')) as { tokenizer_cases: Case[] };
  return { tok, cases: ref.tokenizer_cases };
}

const texts = (file: string): string[] =>
  readFileSync(join(REPO, file), 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => (JSON.parse(l) as { text: string }).text);

describe.each(FAMILIES)('%s tokenizer.json', (name) => {
  it('specials: <s> 0, </s> 2, <pad> 1, kind from the model', async () => {
    const { tok } = await load(name);
    expect([tok.clsId, tok.sepId, tok.padId]).toEqual([0, 2, 1]);
    expect(tok.kind).toBe(name === 'roberta-bpe' ? 'bpe' : 'unigram');
  });

  it('ids, pieces, offsets and words equal the Python reference tokenizer', async () => {
    const { tok, cases } = await load(name);
    expect(cases.length).toBeGreaterThan(20);
    for (const c of cases) {
      const got = tok.tokenize(c.text);
      expect(got.map((t) => t.id), c.text).toEqual(c.ids);
      expect(got.map((t) => t.piece), c.text).toEqual(c.pieces);
      expect(got.map((t) => [t.start, t.end]), c.text).toEqual(c.offsets);
      expect(got.map((t) => t.word), c.text).toEqual(c.words);
    }
  });

  it('ids equal the library encode() on all of MSRA test + CLUENER dev samples; spans are ordered and inside the text', async () => {
    const { tok } = await load(name);
    let n = 0;
    for (const text of [...texts('fixtures/data/msra_test_sample.jsonl'), ...texts('fixtures/data/cluener_dev_sample.jsonl')]) {
      const got = tok.tokenize(text);
      expect(tok.encodeIds(text), text).toEqual([0, ...got.map((t) => t.id), 2]);
      let prev = 0;
      for (const t of got) {
        expect(t.start).toBeGreaterThanOrEqual(prev);
        expect(t.end).toBeGreaterThanOrEqual(t.start);
        expect(t.end).toBeLessThanOrEqual(text.length);
        prev = t.start;
      }
      n += got.length;
    }
    expect(n).toBeGreaterThan(50_000);
  });
});

describe('word rule for character-level Chinese', () => {
  it('XLM-R: a lone ▁ before a CJK character is that character\'s first sub-token (empty span at it)', async () => {
    const { tok } = await load('xlmr-unigram');
    const t = tok.tokenize('中国人民银行');
    expect(t[0].piece).toBe('▁');
    expect([t[0].start, t[0].end]).toEqual([0, 0]);
    expect(t[1].piece).toBe('中国');
    expect(t[1].word).toBe(t[0].word);
    expect(t[2].word).toBe(t[1].word + 1); // 人民: a new word (a piece holding two ideographs is one word)
  });

  it('every CJK ideograph starts a word; punctuation and digits after one start a new word', async () => {
    for (const name of FAMILIES) {
      const { tok } = await load(name);
      const text = '克林顿１９９７年访问，李鹏。';
      const t = tok.tokenize(text).filter((x) => x.end > x.start);
      const wordOf = (ch: string): number[] => t.filter((x) => text.slice(x.start, x.end).includes(ch)).map((x) => x.word);
      expect(new Set(t.map((x) => x.word)).size, name).toBeGreaterThanOrEqual(10);
      expect(wordOf('顿')[0], name).not.toBe(wordOf('１')[0]);
      expect(wordOf('问')[0], name).not.toBe(wordOf('，')[0]);
      expect(new Set(wordOf('１').concat(wordOf('９'), wordOf('７'))).size, name).toBe(1); // the number is one word
    }
  });

  it('RoBERTa: the byte pieces of a character outside the vocabulary share its span and word', async () => {
    const { tok } = await load('roberta-bpe');
    const t = tok.tokenize('魑');
    expect(t.length).toBeGreaterThan(1);
    expect(t.every((x) => x.start === 0 && x.end === 1 && x.word === 0)).toBe(true);
  });
});
