import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import type { TokenizerConfig } from '../../src/onnx/types.js';
import {
  basicTokenize,
  isBertControl,
  isBertPunctuation,
  isBertWhitespace,
  parseVocab,
  WordPieceTokenizer,
} from '../../src/ner/tokenizer.js';

const FIX = new URL('../../fixtures/tokenizer/', import.meta.url);

interface GoldenCase {
  config: TokenizerConfig;
  source: string;
  text: string;
  tokens: Array<[string, number, number, number, number]>;
}

describe('WordPieceTokenizer vs fixtures/tools/bert_tokenizer.py (golden)', () => {
  const vocab = parseVocab(readFileSync(new URL('vocab.txt', FIX), 'utf8'));
  const cases: GoldenCase[] = readFileSync(new URL('golden.jsonl', FIX), 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as GoldenCase);

  it('has the golden file the generator writes', () => {
    expect(cases.length).toBeGreaterThan(1500);
    expect(new Set(cases.filter((c) => c.source === 'tricky').map((c) => c.text)).size).toBeGreaterThanOrEqual(150);
    expect(new Set(cases.map((c) => c.text)).size).toBeGreaterThanOrEqual(300);
  });

  it('equals the Python tokenizer token for token (piece, id, start, end, word)', () => {
    const cache = new Map<string, WordPieceTokenizer>();
    const mismatches: string[] = [];
    for (const c of cases) {
      const key = JSON.stringify(c.config);
      let tok = cache.get(key);
      if (!tok) {
        tok = WordPieceTokenizer.fromVocab(vocab, c.config);
        cache.set(key, tok);
      }
      const got = tok.tokenize(c.text).map((t) => [t.piece, t.id, t.start, t.end, t.word]);
      if (JSON.stringify(got) !== JSON.stringify(c.tokens)) {
        mismatches.push(`${key} ${JSON.stringify(c.text)}\n  want ${JSON.stringify(c.tokens)}\n  got  ${JSON.stringify(got)}`);
      }
    }
    expect(mismatches.slice(0, 5).join('\n')).toBe('');
    expect(mismatches.length).toBe(0);
  });
});

/** Hugging Face's published BERT tokenizer tests (tests/models/bert/test_tokenization_bert.py). */
describe('Hugging Face BertTokenizer published examples', () => {
  const words = (text: string, config: TokenizerConfig = {}): string[] => basicTokenize(text, config).map((w) => w.text);

  it('BasicTokenizer: Chinese characters are split', () => {
    expect(words('ah\u535A\u63A8zz')).toEqual(['ah', '\u535A', '\u63A8', 'zz']);
  });

  it('BasicTokenizer: lower-casing, accents, punctuation', () => {
    const t = ' \tHeLLo!how  \n Are yoU?  ';
    const ta = ' \tHäLLo!how  \n Are yoU?  ';
    expect(words(t, { do_lower_case: true })).toEqual(['hello', '!', 'how', 'are', 'you', '?']);
    expect(words('H\u00E9llo', { do_lower_case: true })).toEqual(['hello']);
    expect(words(ta, { do_lower_case: true, strip_accents: false })).toEqual(['hällo', '!', 'how', 'are', 'you', '?']);
    expect(words('H\u00E9llo', { do_lower_case: true, strip_accents: false })).toEqual(['h\u00E9llo']);
    expect(words(ta, { do_lower_case: true, strip_accents: true })).toEqual(['hallo', '!', 'how', 'are', 'you', '?']);
    expect(words(ta, { do_lower_case: true })).toEqual(['hallo', '!', 'how', 'are', 'you', '?']);
    expect(words(t, { do_lower_case: false })).toEqual(['HeLLo', '!', 'how', 'Are', 'yoU', '?']);
    expect(words(ta, { do_lower_case: false, strip_accents: false })).toEqual(['HäLLo', '!', 'how', 'Are', 'yoU', '?']);
    expect(words(ta, { do_lower_case: false, strip_accents: true })).toEqual(['HaLLo', '!', 'how', 'Are', 'yoU', '?']);
  });

  it('BasicTokenizer: splits on punctuation', () => {
    expect(words("a\n'll !!to?'d of, can't.")).toEqual(
      ['a', "'", 'll', '!', '!', 'to', '?', "'", 'd', 'of', ',', 'can', "'", 't', '.'],
    );
  });

  it('WordpieceTokenizer: greedy longest match, [UNK] for a word with no match', () => {
    const tok = WordPieceTokenizer.fromVocab(['[UNK]', '[CLS]', '[SEP]', 'want', '##want', '##ed', 'wa', 'un', 'runn', '##ing'], {
      pad_token: '[UNK]',
      do_lower_case: false,
    });
    const pieces = (s: string): string[] => tok.tokenize(s).map((t) => t.piece);
    expect(pieces('')).toEqual([]);
    expect(pieces('unwanted running')).toEqual(['un', '##want', '##ed', 'runn', '##ing']);
    expect(pieces('unwantedX running')).toEqual(['[UNK]', 'runn', '##ing']);
  });

  const fullVocab = ['[UNK]', '[CLS]', '[SEP]', '[PAD]', '[MASK]', 'want', '##want', '##ed', 'wa', 'un', 'runn', '##ing', ',', 'low', 'lowest'];

  it('full tokenizer: "UNwant\\u00E9d,running" → pieces and ids', () => {
    const tok = WordPieceTokenizer.fromVocab(fullVocab);
    const toks = tok.tokenize('UNwant\u00E9d,running');
    expect(toks.map((t) => t.piece)).toEqual(['un', '##want', '##ed', ',', 'runn', '##ing']);
    expect(toks.map((t) => t.id)).toEqual([9, 6, 7, 12, 10, 11]);
    // offsets point into the original text: "UN" "want" "éd" "," "runn" "ing"
    expect(toks.map((t) => [t.start, t.end])).toEqual([[0, 2], [2, 6], [6, 8], [8, 9], [9, 13], [13, 16]]);
  });

  it('clean text: soft hyphen is dropped; unknown words are [UNK]', () => {
    const tok = WordPieceTokenizer.fromVocab(fullVocab);
    expect(['Test', '\xad', 'test'].map((t) => tok.tokenize(t).map((x) => x.piece))).toEqual([['[UNK]'], [], ['[UNK]']]);
  });

  it('character classes (_is_whitespace, _is_control, _is_punctuation)', () => {
    for (const c of [' ', '\t', '\r', '\n', '\u00A0']) expect(isBertWhitespace(c.codePointAt(0)!)).toBe(true);
    for (const c of ['A', '-']) expect(isBertWhitespace(c.codePointAt(0)!)).toBe(false);
    expect(isBertControl(0x05)).toBe(true);
    for (const c of ['A', ' ', '\t', '\r']) expect(isBertControl(c.codePointAt(0)!)).toBe(false);
    for (const c of ['-', '$', '`', '.']) expect(isBertPunctuation(c.codePointAt(0)!)).toBe(true);
    for (const c of ['A', ' ']) expect(isBertPunctuation(c.codePointAt(0)!)).toBe(false);
  });

  it('offsets of "A, naïve AllenNLP sentence." (the fast-tokenizer offsets test, without its [MASK])', () => {
    const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', 'A', 'a', ',', 'na', '##ï', '##ve', 'naive', 'Allen', '##NL', '##P', 'allen', '##nl', '##p', 'sentence', '.'];
    const cased = WordPieceTokenizer.fromVocab(vocab, { do_lower_case: false });
    expect(cased.tokenize('A, naïve AllenNLP sentence.').map((t) => [t.piece, t.start, t.end])).toEqual([
      ['A', 0, 1], [',', 1, 2], ['na', 3, 5], ['##ï', 5, 6], ['##ve', 6, 8], ['Allen', 9, 14], ['##NL', 14, 16], ['##P', 16, 17], ['sentence', 18, 26], ['.', 26, 27],
    ]);
    const uncased = WordPieceTokenizer.fromVocab(vocab, { do_lower_case: true });
    expect(uncased.tokenize('A, naïve AllenNLP sentence.').map((t) => [t.piece, t.start, t.end])).toEqual([
      ['a', 0, 1], [',', 1, 2], ['naive', 3, 8], ['allen', 9, 14], ['##nl', 14, 16], ['##p', 16, 17], ['sentence', 18, 26], ['.', 26, 27],
    ]);
  });
});

describe('WordPieceTokenizer details', () => {
  const base = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];

  it('exposes special ids and looks pieces up', () => {
    const tok = WordPieceTokenizer.fromVocab([...base, 'a', '##b']);
    expect([tok.padId, tok.unkId, tok.clsId, tok.sepId, tok.vocabSize]).toEqual([0, 1, 2, 3, 7]);
    expect(tok.idOf('##b')).toBe(6);
    expect(tok.idOf('zz')).toBeUndefined();
  });

  it('a duplicated vocabulary line: the later id wins (Hugging Face load_vocab fills a dict in line order)', () => {
    const tok = WordPieceTokenizer.fromVocab([...base, 'a', 'b', 'a']);
    expect(tok.idOf('a')).toBe(7);
    expect(tok.tokenize('a').map((t) => t.id)).toEqual([7]);
    expect(tok.vocabSize).toBe(8);
  });

  it('special-token names come from the config (plain strings or AddedToken objects)', () => {
    const tok = WordPieceTokenizer.fromVocab(['<pad>', '<unk>', '<s>', '</s>', 'x'], {
      pad_token: '<pad>',
      unk_token: { content: '<unk>', lstrip: false } as unknown as string,
      cls_token: '<s>',
      sep_token: '</s>',
    });
    expect([tok.padId, tok.unkId, tok.clsId, tok.sepId]).toEqual([0, 1, 2, 3]);
    expect(tok.tokenize('x y').map((t) => t.piece)).toEqual(['x', '<unk>']);
  });

  it('a missing special token is an InputError with a hint', () => {
    expect(() => WordPieceTokenizer.fromVocab(['[PAD]', '[UNK]', '[SEP]'])).toThrow(InputError);
    try {
      WordPieceTokenizer.fromVocab(['[PAD]', '[UNK]', '[SEP]']);
    } catch (e) {
      expect((e as InputError).hint).toMatch(/cls_token/);
    }
    expect(() => WordPieceTokenizer.fromVocab([])).toThrow(InputError);
  });

  it('astral characters: one character each, UTF-16 offsets', () => {
    const tok = WordPieceTokenizer.fromVocab([...base, 'x', '##\u{1F600}', '\u{1F600}', '\u{20000}']);
    const toks = tok.tokenize('x\u{1F600} \u{1F600}\u{20000}x');
    expect(toks.map((t) => [t.piece, t.start, t.end, t.word])).toEqual([
      ['x', 0, 1, 0],
      ['##\u{1F600}', 1, 3, 0],
      ['\u{1F600}', 4, 6, 1],
      ['\u{20000}', 6, 8, 2],
      ['x', 8, 9, 3],
    ]);
  });

  it('a word longer than max_input_chars_per_word code points is one [UNK] covering the word', () => {
    const tok = WordPieceTokenizer.fromVocab([...base, 'a', '##a', '\u{1F600}', '##\u{1F600}']);
    expect(tok.tokenize('a'.repeat(100)).length).toBe(100);
    expect(tok.tokenize('a'.repeat(101)).map((t) => [t.piece, t.start, t.end])).toEqual([['[UNK]', 0, 101]]);
    // 100 emoji are 200 UTF-16 units but 100 characters: still tokenized
    expect(tok.tokenize('\u{1F600}'.repeat(100)).length).toBe(100);
    expect(tok.tokenize('\u{1F600}'.repeat(101)).map((t) => [t.piece, t.start, t.end])).toEqual([['[UNK]', 0, 202]]);
  });

  it('Turkish İ lower-cases to two characters that both map back to the İ', () => {
    const tok = WordPieceTokenizer.fromVocab([...base, 'i', '##\u0307', '##s'], { do_lower_case: true, strip_accents: false });
    expect(tok.tokenize('\u0130s').map((t) => [t.piece, t.start, t.end])).toEqual([
      ['i', 0, 1],
      ['##\u0307', 0, 1],
      ['##s', 1, 2],
    ]);
  });

  it('parseVocab reads LF, CRLF and CR lines, drops a BOM and keeps empty lines as pieces', () => {
    expect(parseVocab('\ufeffa\r\nb\rc\n\nd\n')).toEqual(['a', 'b', 'c', '', 'd']);
    expect(parseVocab('a\nb')).toEqual(['a', 'b']);
    expect(parseVocab('')).toEqual([]);
  });

  it('fromFiles reads vocab.txt and names the file when it cannot', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ranerc-tok-'));
    try {
      const p = join(dir, 'vocab.txt');
      await writeFile(p, [...base, 'hello'].join('\n') + '\n');
      const tok = await WordPieceTokenizer.fromFiles(p);
      expect(tok.tokenize('Hello!').map((t) => t.piece)).toEqual(['hello', '[UNK]']);
      const missing = join(dir, 'nope.txt');
      await expect(WordPieceTokenizer.fromFiles(missing)).rejects.toMatchObject({ where: { file: missing } });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
