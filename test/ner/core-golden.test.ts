import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { tokenTagIds } from '../../src/ner/align.js';
import { tagsToEntities } from '../../src/ner/decode.js';
import { extractChunks, LabelSet } from '../../src/ner/labels.js';
import { parseVocab, WordPieceTokenizer } from '../../src/ner/tokenizer.js';
import type { CrfParams, Token } from '../../src/ner/types.js';
import { argmaxDecode, pathScore, viterbiDecode } from '../../src/ner/viterbi.js';
import { defaultOverlap, mergeWindows, ownerWindow, planWindows } from '../../src/ner/windows.js';

/** Reference outputs of fixtures/tools/bert_ner.py, written by test/ner/fixtures/make_core_golden.py. */
interface Golden {
  windows: Array<{ n: number; size: number; overlap: number; windows: Array<[number, number]>; owners: number[] }>;
  viterbi: Array<{ emissions: number[][]; transitions: number[][]; start: number[]; end: number[]; path: number[] }>;
  bio_spans: Array<{ tags: string[]; chunks: Array<[number, number, string]> }>;
  word_spans: Array<{ tokens: Array<[number, number, number]>; tags: string[]; spans: Array<[number, number, string]> }>;
  encode: Array<{ text: string; entities: Array<{ start: number; end: number; type: string }>; tags: string[] }>;
}
const golden = JSON.parse(readFileSync(new URL('fixtures/core_golden.json', import.meta.url), 'utf8')) as Golden;

describe('windows vs bert_ner.py windows / owner_window', () => {
  it(`plans the same windows and owners (${golden.windows.length} cases)`, () => {
    for (const c of golden.windows) {
      const ws = planWindows(c.n, c.size, c.overlap);
      expect(ws, `n=${c.n} size=${c.size} overlap=${c.overlap}`).toEqual(c.windows);
      const owners = Array.from({ length: c.n }, (_, t) => ownerWindow(ws, t));
      expect(owners).toEqual(c.owners);
    }
  });

  it('the fixture teacher setting: max length 256 → size 254, overlap 64', () => {
    expect(defaultOverlap(254)).toBe(64);
    expect(defaultOverlap(256)).toBe(64);
    expect(defaultOverlap(510)).toBe(128);
    expect(defaultOverlap(100)).toBe(50);
    expect(defaultOverlap(1)).toBe(0);
    // the longest MSRA test line (2,427 characters)
    expect(planWindows(2427, 254, 64).slice(0, 3)).toEqual([[0, 254], [190, 444], [380, 634]]);
  });

  it('validates its arguments with a UsageError', () => {
    expect(() => planWindows(10, 5, 5)).toThrow(UsageError);
    expect(() => planWindows(10, 0, 0)).toThrow(UsageError);
    expect(() => planWindows(-1, 5, 1)).toThrow(UsageError);
    expect(() => planWindows(10, 5, -1)).toThrow(UsageError);
    expect(() => ownerWindow([[0, 3]], 3)).toThrow(RangeError);
  });

  it('mergeWindows takes each row from its owner window', () => {
    const ws = planWindows(10, 4, 2); // [0,4) [2,6) [4,8) [6,10)
    const rows = ws.map(([a, b], i) => Array.from({ length: b - a }, (_, k) => `${i}:${a + k}`));
    expect(mergeWindows(10, ws, rows)).toEqual(['0:0', '0:1', '0:2', '1:3', '1:4', '2:5', '2:6', '3:7', '3:8', '3:9']);
    expect(() => mergeWindows(10, ws, rows.slice(1))).toThrow(RangeError);
  });
});

describe('viterbiDecode vs bert_ner.py viterbi and brute force', () => {
  const crfOf = (c: Golden['viterbi'][number]): CrfParams => ({ labels: [], transitions: c.transitions, start: c.start, end: c.end });

  it(`same path as the Python reference, ties included (${golden.viterbi.length} cases)`, () => {
    for (const c of golden.viterbi) expect(viterbiDecode(c.emissions, crfOf(c))).toEqual(c.path);
  });

  it('finds a maximum-score path (brute force over all paths)', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 6 - 3;
    for (let trial = 0; trial < 200; trial++) {
      const T = 1 + (trial % 5);
      const L = 1 + (trial % 4);
      const em = Array.from({ length: T }, () => Array.from({ length: L }, rnd));
      const crf: CrfParams = {
        labels: [],
        transitions: Array.from({ length: L }, () => Array.from({ length: L }, rnd)),
        start: Array.from({ length: L }, rnd),
        end: Array.from({ length: L }, rnd),
      };
      let best = -Infinity;
      let bestPath: number[] = [];
      for (let code = 0; code < L ** T; code++) {
        const path = Array.from({ length: T }, (_, t) => Math.floor(code / L ** (T - 1 - t)) % L);
        const s = pathScore(em, crf, path);
        if (s > best) {
          best = s;
          bestPath = path;
        }
      }
      const got = viterbiDecode(em, crf);
      expect(pathScore(em, crf, got)).toBeCloseTo(best, 9);
      expect(got).toEqual(bestPath); // continuous random scores: the maximum is unique
    }
  });

  it('handles empty input, validates shapes, and argmax takes the lowest index on ties', () => {
    const crf: CrfParams = { labels: ['O', 'B-X'], transitions: [[0, 0], [0, 0]], start: [0, 0], end: [0, 0] };
    expect(viterbiDecode([], crf)).toEqual([]);
    expect(viterbiDecode([[1, 1], [0, 0]], crf)).toEqual([0, 0]);
    expect(() => viterbiDecode([[1, 2, 3]], crf)).toThrow(/CRF has 2 labels/);
    expect(() => viterbiDecode([[1, 2]], { ...crf, end: [0] })).toThrow(/do not fit/);
    expect(argmaxDecode([[1, 3, 3], [Float32Array.from([2, 1, 0])[0], 5, 1], [-1, -1, -1]])).toEqual([1, 1, 0]);
    expect(argmaxDecode([Float32Array.from([0.5, 0.25])])).toEqual([0]);
  });
});

describe('chunks and spans vs bert_ner.py bio_spans and train_teacher.py predict_spans', () => {
  it(`default-mode chunks equal bio_spans (${golden.bio_spans.length} cases)`, () => {
    for (const c of golden.bio_spans) {
      const got = extractChunks(c.tags, { mode: 'default', scheme: 'BIO' }).map((x) => [x.start, x.end, x.type]);
      expect(got, c.tags.join(' ')).toEqual(c.chunks);
    }
  });

  it(`first-sub-token word spans equal predict_spans (${golden.word_spans.length} cases)`, () => {
    const labels = new LabelSet(['O', 'B-PER', 'I-PER', 'B-LOC', 'I-LOC']);
    for (const c of golden.word_spans) {
      const tokens: Token[] = c.tokens.map(([start, end, word]) => ({ id: 0, piece: '', start, end, word }));
      const text = 'x'.repeat(tokens.length ? tokens[tokens.length - 1].end : 0);
      const ids = c.tags.map((t) => labels.idOf(t) as number);
      const got = tagsToEntities(text, tokens, ids, labels)
        .map((e) => [e.start, e.end, e.type] as [number, number, string])
        .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      expect(got).toEqual(c.spans);
    }
  });
});

describe('tokenTagIds vs train_teacher.py encode', () => {
  it(`same gold BIO label per token (${golden.encode.length} sentences, some entities starting mid-word)`, () => {
    const vocab = parseVocab(readFileSync(new URL('../../fixtures/tokenizer/vocab.txt', import.meta.url), 'utf8'));
    const tok = WordPieceTokenizer.fromVocab(vocab, { do_lower_case: true });
    const labels = new LabelSet(['O', 'B-PER', 'I-PER', 'B-LOC', 'I-LOC', 'B-ORG', 'I-ORG']);
    let midWord = 0;
    for (const c of golden.encode) {
      const tokens = tok.tokenize(c.text);
      const got = labels.names(tokenTagIds({ text: c.text, entities: c.entities }, tokens, labels));
      expect(got, c.text).toEqual(c.tags);
      midWord += tokens.filter((t, k) => k > 0 && tokens[k - 1].word === t.word && c.entities.some((e) => e.start === t.start)).length;
    }
    expect(midWord).toBeGreaterThan(10); // the B- → I- demotion is exercised
  });
});
