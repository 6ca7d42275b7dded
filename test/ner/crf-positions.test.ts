/** A CRF over words (`"positions": "words"`, ModelScope TransformerCRF) vs a CRF over every sub-token. */
import { describe, expect, it } from 'vitest';
import { crfToJson, parseCrf } from '../../src/onnx/folder.js';
import type { CrfParams } from '../../src/ner/types.js';
import { crfTagIds, pathScore, viterbiDecode } from '../../src/ner/viterbi.js';

const labels = ['O', 'B-PER', 'I-PER'];
// O -> I-PER is forbidden, B-PER -> B-PER is costly
const crf: CrfParams = {
  labels,
  transitions: [
    [0, 0, -100],
    [0, -5, 2],
    [0, 0, 1],
  ],
  start: [0, 0, -100],
  end: [0, 0, 0],
};

describe('crfTagIds', () => {
  // tokens 0,1 are word 0 (two pieces), token 2 is word 1, tokens 3,4 are word 2
  const tokens = [{ word: 0 }, { word: 0 }, { word: 1 }, { word: 2 }, { word: 2 }];
  const rows = [
    [0, 3, 0],
    [10, 0, 0], // a continuation piece that looks like O: a CRF over pieces then cannot reach I-PER at word 1
    [0, 0, 3],
    [2, 0, 0],
    [0, 0, 0],
  ];

  it('positions "words": Viterbi over the first piece of each word; later pieces take their word\'s label', () => {
    const words = viterbiDecode([rows[0], rows[2], rows[3]], crf);
    expect(words).toEqual([1, 2, 0]); // B-PER I-PER O: score 3 + 2 + 3 + 0 + 2 = 10
    expect(pathScore([rows[0], rows[2], rows[3]], crf, words)).toBe(10);
    expect(crfTagIds(rows, { ...crf, positions: 'words' }, tokens)).toEqual([1, 1, 2, 0, 0]);
  });

  it('default (tokens): the same as viterbiDecode over every piece, which differs here', () => {
    const all = viterbiDecode(rows, crf);
    expect(crfTagIds(rows, crf, tokens)).toEqual(all);
    expect([all[0], all[2], all[3]]).not.toEqual([1, 2, 0]);
  });
});

describe('crf.json "positions"', () => {
  it('round-trips "words", omits the default and rejects other values', () => {
    const json = crfToJson({ ...crf, positions: 'words' });
    expect(json.positions).toBe('words');
    expect(parseCrf(json, labels, 'crf.json').positions).toBe('words');
    expect('positions' in crfToJson(crf)).toBe(false);
    expect(parseCrf(crfToJson(crf), labels, 'crf.json').positions).toBeUndefined();
    expect(() => parseCrf({ ...json, positions: 'chars' }, labels, 'crf.json')).toThrow(/"positions" must be "tokens" or "words"/);
  });
});
