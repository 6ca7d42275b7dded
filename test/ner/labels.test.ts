import { describe, expect, it } from 'vitest';
import { InputError, UsageError } from '../../src/errors.js';
import { detectScheme, extractChunks, LabelSet, parseTag, type LabelScheme } from '../../src/ner/labels.js';
import { scoreTagSequences } from '../../src/ner/metrics.js';

/** seqeval's inclusive (type, first, last) → our exclusive {start, end, type}. */
const ent = (type: string, start: number, endExclusive: number) => ({ start, end: endExclusive, type });
const strict = (tags: string[], scheme: LabelScheme) => extractChunks(tags, { mode: 'strict', scheme }).map((c) => [c.type, c.start, c.end]);

describe('parseTag / LabelSet', () => {
  it('parses B-X, B_X, multi-dash types, bare prefixes and O', () => {
    expect(parseTag('B-PER')).toEqual({ prefix: 'B', type: 'PER' });
    expect(parseTag('I_LOC')).toEqual({ prefix: 'I', type: 'LOC' });
    expect(parseTag('I-ORG-COMPANY')).toEqual({ prefix: 'I', type: 'ORG-COMPANY' });
    expect(parseTag('I-組織')).toEqual({ prefix: 'I', type: '組織' });
    expect(parseTag('I')).toEqual({ prefix: 'I', type: '_' });
    expect(parseTag('O')).toEqual({ prefix: 'O', type: '' });
    for (const bad of ['LABEL_0', 'PER-B', 'b-per', 'B-', 'X-PER', '', 'O-PER']) expect(parseTag(bad)).toBeUndefined();
  });

  it('detects schemes from names (the seqeval auto_detect cases, plus BMES and IO)', () => {
    const cases: Array<[string[], LabelScheme]> = [
      [['B', 'I', 'O'], 'BIO'], [['B', 'I'], 'BIO'], [['B', 'O'], 'BIO'], [['B'], 'BIO'],
      [['I', 'O', 'E'], 'IOE2'], [['I', 'E'], 'IOE2'], [['E', 'O'], 'IOE2'], [['E'], 'IOE2'],
      [['I', 'O', 'B', 'E', 'S'], 'BIOES'], [['I', 'B', 'E', 'S'], 'BIOES'], [['I', 'O', 'B', 'E'], 'BIOES'],
      [['O', 'B', 'E', 'S'], 'BIOES'], [['I', 'B', 'E'], 'BIOES'], [['B', 'E', 'S'], 'BIOES'], [['O', 'B', 'E'], 'BIOES'],
      [['B', 'E'], 'BIOES'], [['S'], 'BIOES'],
      [['I', 'O', 'B', 'L', 'U'], 'BILOU'], [['I', 'B', 'L', 'U'], 'BILOU'], [['I', 'O', 'B', 'L'], 'BILOU'],
      [['O', 'B', 'L', 'U'], 'BILOU'], [['I', 'B', 'L'], 'BILOU'], [['B', 'L', 'U'], 'BILOU'], [['O', 'B', 'L'], 'BILOU'],
      [['B', 'L'], 'BILOU'], [['U'], 'BILOU'],
      [['O', 'B-PER', 'M-PER', 'E-PER', 'S-PER'], 'BMES'],
      [['O', 'I-PER', 'I-LOC'], 'IO'],
    ];
    for (const [labels, scheme] of cases) expect(detectScheme(labels), labels.join(' ')).toBe(scheme);
  });

  it('LabelSet: scheme, types, outsideId, parse, tagId across separators', () => {
    const ls = new LabelSet(['B_PER', 'O', 'I_PER', 'B-LOC', 'I-LOC']);
    expect(ls.scheme).toBe('BIO');
    expect(ls.types).toEqual(['PER', 'LOC']);
    expect(ls.outsideId).toBe(1);
    expect(ls.parse(2)).toEqual({ prefix: 'I', type: 'PER' });
    expect(ls.tagId('B', 'PER')).toBe(0);
    expect(ls.tagId('I', 'LOC')).toBe(4);
    expect(ls.tagId('E', 'LOC')).toBeUndefined();
    expect(ls.tagId('O', '')).toBe(1);
    expect(new LabelSet(['O', 'B-X', 'I-X'], { scheme: 'IOB1' }).scheme).toBe('IOB1');
  });

  it('rejects unknown shapes, duplicates, a missing O and mixed schemes with an InputError naming the label', () => {
    const err = (labels: string[]) => {
      try {
        new LabelSet(labels);
      } catch (e) {
        expect(e).toBeInstanceOf(InputError);
        expect((e as InputError).hint).toBeTruthy();
        return (e as InputError).message;
      }
      throw new Error('no error');
    };
    expect(err(['O', 'LABEL_1'])).toMatch(/LABEL_1/);
    expect(err(['O', 'B-X', 'B-X'])).toMatch(/twice/);
    expect(err(['O', 'B-X', 'B_X'])).toMatch(/same tag/);
    expect(err(['B-X', 'I-X'])).toMatch(/no "O"/);
    expect(err(['O', 'B-X', 'M-X', 'I-X'])).toMatch(/I-X/);
    expect(() => new LabelSet([])).toThrow(InputError);
    expect(() => new LabelSet(['O', 'B-X', 'E-X'], { scheme: 'BIO' })).toThrow(UsageError);
  });
});

describe('extractChunks default mode = seqeval get_entities (conlleval)', () => {
  it('get_entities docstring and test examples', () => {
    expect(extractChunks(['B-PER', 'I-PER', 'O', 'B-LOC'])).toEqual([ent('PER', 0, 2), ent('LOC', 3, 4)]);
    expect(extractChunks(['O', 'O', 'O', 'B-MISC', 'I-MISC', 'I-MISC', 'O', 'B-PER', 'I-PER'])).toEqual([
      ent('MISC', 3, 6),
      ent('PER', 7, 9),
    ]);
  });

  it('lenient rules: I after O starts, type change ends, E/S close', () => {
    expect(extractChunks(['I-NP', 'I-NP', 'O'])).toEqual([ent('NP', 0, 2)]);
    expect(extractChunks(['B-PER', 'I-LOC', 'I-LOC'])).toEqual([ent('PER', 0, 1), ent('LOC', 1, 3)]);
    expect(extractChunks(['B-X', 'E-X', 'E-X', 'S-Y', 'I-Y'], { scheme: 'BIOES' })).toEqual([
      ent('X', 0, 2), ent('X', 2, 3), ent('Y', 3, 4), ent('Y', 4, 5),
    ]);
    // BMES reads M as I, BILOU reads L as E and U as S
    expect(extractChunks(['B-X', 'M-X', 'E-X', 'S-X'])).toEqual([ent('X', 0, 3), ent('X', 3, 4)]);
    expect(extractChunks(['B-X', 'I-X', 'L-X', 'U-X', 'O'])).toEqual([ent('X', 0, 3), ent('X', 3, 4)]);
  });

  it('rejects a tag it cannot parse', () => {
    expect(() => extractChunks(['O', 'LABEL_1'])).toThrow(InputError);
  });
});

/** seqeval tests/test_scheme.py: Tokens(tokens, Scheme).entities, as (type, start, end-exclusive). */
describe('extractChunks strict mode = seqeval Tokens(…, scheme).entities', () => {
  type Row = [string[], Array<[string, number, number]>];
  const table = (scheme: LabelScheme, rows: Row[]) => {
    for (const [tags, want] of rows) expect(strict(tags, scheme), `${scheme} ${tags.join(' ')}`).toEqual(want);
  };

  it('IOB1', () => {
    table('IOB1', [
      [[], []], [['B-PER'], []], [['I-PER'], [['PER', 0, 1]]], [['O'], []], [['O', 'I-PER'], [['PER', 1, 2]]],
      [['O', 'B-PER'], []], [['I-PER', 'O'], [['PER', 0, 1]]], [['I-PER', 'I-PER'], [['PER', 0, 2]]],
      [['I-PER', 'I-ORG'], [['PER', 0, 1], ['ORG', 1, 2]]], [['I-PER', 'B-PER'], [['PER', 0, 1], ['PER', 1, 2]]],
      [['I-PER', 'B-ORG'], [['PER', 0, 1]]], [['B-PER', 'O'], []], [['B-PER', 'I-PER'], [['PER', 1, 2]]],
      [['B-PER', 'I-ORG'], [['ORG', 1, 2]]], [['B-PER', 'B-PER'], [['PER', 1, 2]]], [['B-PER', 'B-ORG'], []],
      [['B'], []], [['I'], [['_', 0, 1]]], [['I', 'B'], [['_', 0, 1], ['_', 1, 2]]], [['B', 'I'], [['_', 1, 2]]],
    ]);
  });

  it('IOB2', () => {
    table('BIO', [
      [[], []], [['B-PER'], [['PER', 0, 1]]], [['I-PER'], []], [['O'], []], [['O', 'I-PER'], []],
      [['O', 'B-PER'], [['PER', 1, 2]]], [['I-PER', 'O'], []], [['I-PER', 'I-PER'], []], [['I-PER', 'I-ORG'], []],
      [['I-PER', 'B-PER'], [['PER', 1, 2]]], [['I-PER', 'B-ORG'], [['ORG', 1, 2]]], [['B-PER', 'O'], [['PER', 0, 1]]],
      [['B-PER', 'I-PER'], [['PER', 0, 2]]], [['B-PER', 'I-ORG'], [['PER', 0, 1]]],
      [['B-PER', 'B-PER'], [['PER', 0, 1], ['PER', 1, 2]]], [['B-PER', 'B-ORG'], [['PER', 0, 1], ['ORG', 1, 2]]],
      [['B'], [['_', 0, 1]]], [['B', 'I'], [['_', 0, 2]]], [['I', 'B'], [['_', 1, 2]]],
    ]);
  });

  it('IOE1', () => {
    table('IOE1', [
      [[], []], [['E-PER'], []], [['I-PER'], [['PER', 0, 1]]], [['O', 'I-PER'], [['PER', 1, 2]]], [['O', 'E-PER'], []],
      [['I-PER', 'O'], [['PER', 0, 1]]], [['I-PER', 'I-PER'], [['PER', 0, 2]]],
      [['I-PER', 'I-ORG'], [['PER', 0, 1], ['ORG', 1, 2]]], [['I-PER', 'E-ORG'], [['PER', 0, 1]]],
      [['E-PER', 'O'], []], [['E-PER', 'I-PER'], [['PER', 1, 2]]], [['E-PER', 'I-ORG'], [['ORG', 1, 2]]],
      [['E-PER', 'E-PER'], []], [['E-PER', 'E-ORG'], []],
    ]);
  });

  it('IOE2', () => {
    table('IOE2', [
      [[], []], [['E-PER'], [['PER', 0, 1]]], [['I-PER'], []], [['O', 'I-PER'], []], [['O', 'E-PER'], [['PER', 1, 2]]],
      [['I-PER', 'O'], []], [['I-PER', 'I-PER'], []], [['I-PER', 'I-ORG'], []], [['I-PER', 'E-PER'], [['PER', 0, 2]]],
      [['I-PER', 'E-ORG'], [['ORG', 1, 2]]], [['E-PER', 'O'], [['PER', 0, 1]]], [['E-PER', 'I-PER'], [['PER', 0, 1]]],
      [['E-PER', 'I-ORG'], [['PER', 0, 1]]], [['E-PER', 'E-PER'], [['PER', 0, 1], ['PER', 1, 2]]],
      [['E-PER', 'E-ORG'], [['PER', 0, 1], ['ORG', 1, 2]]],
    ]);
  });

  it('IOBES (and BMES, read with M as I)', () => {
    const rows: Row[] = [
      [['O'], []], [['I-PER'], []], [['B-PER'], []], [['E-PER'], []], [['S-PER'], [['PER', 0, 1]]],
      [['O', 'S-PER'], [['PER', 1, 2]]], [['I-PER', 'E-PER'], []], [['I-PER', 'S-PER'], [['PER', 1, 2]]],
      [['B-PER', 'I-PER'], []], [['B-PER', 'E-PER'], [['PER', 0, 2]]], [['B-PER', 'E-ORG'], []],
      [['B-PER', 'S-PER'], [['PER', 1, 2]]], [['E-PER', 'S-PER'], [['PER', 1, 2]]], [['S-PER', 'O'], [['PER', 0, 1]]],
      [['S-PER', 'I-PER'], [['PER', 0, 1]]], [['S-PER', 'B-PER'], [['PER', 0, 1]]], [['S-PER', 'E-PER'], [['PER', 0, 1]]],
      [['S-PER', 'S-PER'], [['PER', 0, 1], ['PER', 1, 2]]], [['B', 'E'], [['_', 0, 2]]], [['S', 'I'], [['_', 0, 1]]],
    ];
    table('BIOES', rows);
    table('BMES', rows.map(([tags, want]) => [tags.map((t) => t.replace(/^I/, 'M')), want]));
    table('BIOES', [[['B-PER', 'I-PER', 'I-PER', 'E-PER', 'O'], [['PER', 0, 4]]]]);
  });

  it('BILOU', () => {
    table('BILOU', [
      [['O'], []], [['I-PER'], []], [['B-PER'], []], [['L-PER'], []], [['U-PER'], [['PER', 0, 1]]],
      [['O', 'U-PER'], [['PER', 1, 2]]], [['I-PER', 'L-PER'], []], [['I-PER', 'U-PER'], [['PER', 1, 2]]],
      [['B-PER', 'L-PER'], [['PER', 0, 2]]], [['B-PER', 'L-ORG'], []], [['B-PER', 'U-PER'], [['PER', 1, 2]]],
      [['L-PER', 'U-PER'], [['PER', 1, 2]]], [['U-PER', 'L-PER'], [['PER', 0, 1]]],
      [['U-PER', 'U-PER'], [['PER', 0, 1], ['PER', 1, 2]]], [['B', 'L'], [['_', 0, 2]]],
    ]);
  });

  it('a prefix the scheme does not allow is an error (seqeval raises ValueError)', () => {
    expect(() => strict(['B-PER', 'E-PER', 'S-PER'], 'BIO')).toThrow(InputError);
    expect(() => strict(['S'], 'IOB1')).toThrow(InputError);
    expect(() => strict(['B'], 'IOE2')).toThrow(InputError);
  });
});

describe('seqeval published scores', () => {
  const yTrue = [['O', 'O', 'O', 'B-MISC', 'I-MISC', 'I-MISC', 'O'], ['B-PER', 'I-PER', 'O']];
  const yPred = [['O', 'O', 'B-MISC', 'I-MISC', 'I-MISC', 'I-MISC', 'O'], ['B-PER', 'I-PER', 'O']];

  it('README: f1 0.50; classification_report MISC 0/0/0 (1), PER 1/1/1 (1), micro 0.50', () => {
    for (const mode of ['default', 'strict'] as const) {
      const s = scoreTagSequences(yTrue, yPred, { mode, scheme: 'BIO' });
      expect(s.micro).toEqual({ precision: 0.5, recall: 0.5, f1: 0.5, tp: 1, gold: 2, pred: 2 });
      expect(s.perType.MISC).toEqual({ precision: 0, recall: 0, f1: 0, tp: 0, gold: 1, pred: 1 });
      expect(s.perType.PER).toEqual({ precision: 1, recall: 1, f1: 1, tp: 1, gold: 1, pred: 1 });
      expect(Object.keys(s.perType)).toEqual(['MISC', 'PER']);
    }
  });

  it('README: default vs strict on B-NP I-NP O against I-NP I-NP O (NP 1.00 vs 0.00)', () => {
    const t = [['B-NP', 'I-NP', 'O']];
    const p = [['I-NP', 'I-NP', 'O']];
    expect(scoreTagSequences(t, p).perType.NP.f1).toBe(1);
    const s = scoreTagSequences(t, p, { mode: 'strict', scheme: 'BIO' });
    expect(s.perType.NP).toEqual({ precision: 0, recall: 0, f1: 0, tp: 0, gold: 1, pred: 0 });
    expect(s.micro.f1).toBe(0);
  });

  it('unequal sequences are an InputError', () => {
    expect(() => scoreTagSequences([['O']], [['O', 'O']])).toThrow(InputError);
  });
});
