import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { tokenTagIds, unalignedEntities } from '../../src/ner/align.js';
import { tagsToEntities } from '../../src/ner/decode.js';
import { LabelSet } from '../../src/ner/labels.js';
import { scoreSpans } from '../../src/ner/metrics.js';
import { WordPieceTokenizer } from '../../src/ner/tokenizer.js';
import type { Example } from '../../src/ner/types.js';

const VOCAB = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '张', '三', '在', '北', '京', 'go', '##og', '##le', '工', '作', 'new', 'york', '##er', 'i', '##phone', '##12', '##pe', '##r'];
const tok = WordPieceTokenizer.fromVocab(VOCAB);
const names = (ls: LabelSet, ids: number[]) => ls.names(ids);

describe('tokenTagIds (gold labels per token)', () => {
  const text = '张三在Googler工作'; // "googler" → go ##og ##le ##r
  const tokens = tok.tokenize(text);

  it('tokenizes as expected for these tests', () => {
    expect(tokens.map((t) => t.piece)).toEqual(['张', '三', '在', 'go', '##og', '##le', '##r', '工', '作']);
  });

  it('BIO: tag of each token’s first character; B- of an entity starting mid-word becomes I-', () => {
    const ls = new LabelSet(['O', 'B-PER', 'I-PER', 'B-ORG', 'I-ORG']);
    const ex: Example = { text, entities: [{ start: 0, end: 2, type: 'PER' }, { start: 3, end: 9, type: 'ORG' }] };
    expect(names(ls, tokenTagIds(ex, tokens, ls))).toEqual(['B-PER', 'I-PER', 'O', 'B-ORG', 'I-ORG', 'I-ORG', 'O', 'O', 'O']);
    // an entity starting inside the word (at "og") gets I- on its first token (train_teacher.py encode)
    const mid: Example = { text, entities: [{ start: 5, end: 10, type: 'ORG' }] };
    expect(names(ls, tokenTagIds(mid, tokens, ls))).toEqual(['O', 'O', 'O', 'O', 'I-ORG', 'I-ORG', 'I-ORG', 'O', 'O']);
  });

  it('renders the same roles in BIOES, BMES, BILOU, IO, IOE2', () => {
    const ex: Example = { text, entities: [{ start: 0, end: 1, type: 'PER' }, { start: 1, end: 2, type: 'PER' }, { start: 3, end: 10, type: 'ORG' }] };
    const want: Record<string, string[]> = {
      BIOES: ['S-PER', 'S-PER', 'O', 'B-ORG', 'I-ORG', 'I-ORG', 'E-ORG', 'O', 'O'],
      BMES: ['S-PER', 'S-PER', 'O', 'B-ORG', 'M-ORG', 'M-ORG', 'E-ORG', 'O', 'O'],
      BILOU: ['U-PER', 'U-PER', 'O', 'B-ORG', 'I-ORG', 'I-ORG', 'L-ORG', 'O', 'O'],
      IO: ['I-PER', 'I-PER', 'O', 'I-ORG', 'I-ORG', 'I-ORG', 'I-ORG', 'O', 'O'],
      IOE2: ['E-PER', 'E-PER', 'O', 'I-ORG', 'I-ORG', 'I-ORG', 'E-ORG', 'O', 'O'],
    };
    const sets: Record<string, string[]> = {
      BIOES: ['O', 'B-PER', 'I-PER', 'E-PER', 'S-PER', 'B-ORG', 'I-ORG', 'E-ORG', 'S-ORG'],
      BMES: ['O', 'B-PER', 'M-PER', 'E-PER', 'S-PER', 'B-ORG', 'M-ORG', 'E-ORG', 'S-ORG'],
      BILOU: ['O', 'B-PER', 'I-PER', 'L-PER', 'U-PER', 'B-ORG', 'I-ORG', 'L-ORG', 'U-ORG'],
      IO: ['O', 'I-PER', 'I-ORG'],
      IOE2: ['O', 'I-PER', 'E-PER', 'I-ORG', 'E-ORG'],
    };
    for (const scheme of Object.keys(want)) {
      const ls = new LabelSet(sets[scheme]);
      expect(ls.scheme).toBe(scheme);
      const tags = names(ls, tokenTagIds(ex, tokens, ls));
      expect(tags, scheme).toEqual(want[scheme]);
      // and decoding every piece gives the gold entities back (strict mode: the tags are well formed)
      if (scheme !== 'IO') {
        const back = tagsToEntities(text, tokens, tokenTagIds(ex, tokens, ls), ls, { subword: 'all', mode: 'strict' });
        expect(back.map((e) => [e.start, e.end, e.type]), scheme).toEqual([[0, 1, 'PER'], [1, 2, 'PER'], [3, 10, 'ORG']]);
      }
    }
  });

  it('IOB1 uses B- only between adjacent entities of one type', () => {
    const ls = new LabelSet(['O', 'B-PER', 'I-PER'], { scheme: 'IOB1' });
    const ex: Example = { text, entities: [{ start: 0, end: 1, type: 'PER' }, { start: 1, end: 2, type: 'PER' }] };
    expect(names(ls, tokenTagIds(ex, tokens, ls))).toEqual(['I-PER', 'B-PER', 'O', 'O', 'O', 'O', 'O', 'O', 'O']);
  });

  it('an entity type the model lacks is an InputError naming the example’s file and line', () => {
    const ls = new LabelSet(['O', 'B-PER', 'I-PER']);
    const ex: Example = { text, entities: [{ start: 3, end: 10, type: 'ORG' }], source: { file: 'dev.jsonl', line: 7 } };
    expect(() => tokenTagIds(ex, tokens, ls)).toThrow(InputError);
    try {
      tokenTagIds(ex, tokens, ls);
    } catch (e) {
      expect((e as InputError).where).toMatchObject({ file: 'dev.jsonl', line: 7 });
    }
  });
});

describe('unalignedEntities', () => {
  const text = 'Googler在北京 newyork';
  const tokens = tok.tokenize(text);
  it('lists gold entities whose boundaries fall inside a word (or a piece)', () => {
    const ex: Example = {
      text,
      entities: [
        { start: 0, end: 7, type: 'ORG' }, // whole word: aligned
        { start: 0, end: 6, type: 'ORG' }, // ends between pieces: unaligned for words, aligned for pieces
        { start: 1, end: 7, type: 'ORG' }, // starts inside the first piece: never aligned
        { start: 8, end: 10, type: 'LOC' }, // two CJK words
        { start: 11, end: 14, type: 'LOC' }, // "new" inside the word "newyork"
      ],
    };
    expect(tokens.map((t) => t.piece)).toEqual(['go', '##og', '##le', '##r', '在', '北', '京', '[UNK]']);
    const first = unalignedEntities(ex, tokens);
    expect(first.map((e) => [e.start, e.end])).toEqual([[0, 6], [1, 7], [11, 14]]);
    const tok2 = WordPieceTokenizer.fromVocab([...VOCAB, '##y', '##o', '##k']);
    const t2 = tok2.tokenize(text);
    expect(t2.map((t) => t.piece)).toEqual(['go', '##og', '##le', '##r', '在', '北', '京', 'new', '##y', '##o', '##r', '##k']);
    expect(unalignedEntities(ex, t2, { subword: 'all' }).map((e) => [e.start, e.end])).toEqual([[1, 7]]);
  });
});

describe('tagsToEntities', () => {
  const ls = new LabelSet(['O', 'B-PER', 'I-PER', 'B-LOC', 'I-LOC']);
  const text = '张三在北京 iPhone12';
  const tokens = tok.tokenize(text);

  it('first sub-token carries the word label; spans cover whole words; text is the source slice', () => {
    expect(tokens.map((t) => t.piece)).toEqual(['张', '三', '在', '北', '京', 'i', '##phone', '##12']);
    const ids = [1, 2, 0, 3, 4, 3, 0, 2].map((i) => i);
    const ents = tagsToEntities(text, tokens, ids, ls);
    expect(ents).toEqual([
      { start: 0, end: 2, type: 'PER', text: '张三' },
      { start: 3, end: 5, type: 'LOC', text: '北京' },
      { start: 6, end: 14, type: 'LOC', text: 'iPhone12' },
    ]);
    // every piece on its own: "##12" labelled I-PER after O starts a PER chunk in default mode
    const all = tagsToEntities(text, tokens, ids, ls, { subword: 'all' });
    expect(all.map((e) => e.text)).toEqual(['张三', '北京', 'i', '12']);
    expect(tagsToEntities(text, tokens, ids, ls, { subword: 'all', mode: 'strict' }).map((e) => e.text)).toEqual(['张三', '北京', 'i']);
    expect(() => tagsToEntities(text, tokens, ids.slice(1), ls)).toThrow(RangeError);
  });
});

describe('scoreSpans', () => {
  it('micro and per-type P/R/F1 over exact (start, end, type), duplicates counted once', () => {
    const gold = [[{ start: 0, end: 2, type: 'PER' }, { start: 3, end: 5, type: 'LOC' }], [{ start: 1, end: 4, type: 'ORG' }]];
    const pred = [
      [{ start: 0, end: 2, type: 'PER' }, { start: 0, end: 2, type: 'PER' }, { start: 3, end: 5, type: 'ORG' }],
      [{ start: 1, end: 4, type: 'ORG' }, { start: 5, end: 6, type: 'LOC' }],
    ];
    const s = scoreSpans(gold, pred);
    expect(s.micro).toMatchObject({ tp: 2, gold: 3, pred: 4 });
    expect(s.micro.precision).toBe(0.5);
    expect(s.micro.recall).toBe(2 / 3);
    expect(s.micro.f1).toBe((2 * 0.5 * (2 / 3)) / (0.5 + 2 / 3));
    expect(Object.keys(s.perType)).toEqual(['LOC', 'ORG', 'PER']);
    expect(s.perType.LOC).toEqual({ precision: 0, recall: 0, f1: 0, tp: 0, gold: 1, pred: 1 });
    expect(s.perType.ORG).toEqual({ precision: 0.5, recall: 1, f1: 2 / 3, tp: 1, gold: 1, pred: 2 });
    expect(s.perType.PER).toEqual({ precision: 1, recall: 1, f1: 1, tp: 1, gold: 1, pred: 1 });
  });

  it('undefined ratios are 0 (no predictions, no gold)', () => {
    expect(scoreSpans([[]], [[]]).micro).toEqual({ precision: 0, recall: 0, f1: 0, tp: 0, gold: 0, pred: 0 });
    expect(scoreSpans([[{ start: 0, end: 1, type: 'X' }]], [[]]).micro).toMatchObject({ precision: 0, recall: 0, f1: 0 });
    expect(() => scoreSpans([[]], [])).toThrow(InputError);
  });
});
