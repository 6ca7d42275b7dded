/**
 * Transfer-set augmentation: substituted and mixed sentences keep exact gold spans (every span's text
 * is a real mention of its type from the data), never break an entity, and are seeded.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { augmentExamples, mixSentences, substituteEntity } from '../../src/distill/augment.js';
import type { Example } from '../../src/ner/types.js';
import { mulberry32 } from '../../src/runtime/bench.js';

const a: Example = { text: '张三在北京工作', entities: [{ start: 0, end: 2, type: 'PER' }, { start: 3, end: 5, type: 'LOC' }] };
const b: Example = { text: '李四去了上海市', entities: [{ start: 0, end: 2, type: 'PER' }, { start: 4, end: 7, type: 'LOC' }] };

describe('augmentation', () => {
  it('substitution: the new mention has the type, later spans shift', () => {
    const s = substituteEntity(a, 0, '欧阳修文');
    expect(s.text).toBe('欧阳修文在北京工作');
    expect(s.entities.map((e) => [s.text.slice(e.start, e.end), e.type])).toEqual([['欧阳修文', 'PER'], ['北京', 'LOC']]);
  });

  it('mixing: prefix of one sentence + suffix of another, spans carried over', () => {
    const m = mixSentences(a, 3, b, 4);
    expect(m.text).toBe('张三在上海市');
    expect(m.entities.map((e) => [m.text.slice(e.start, e.end), e.type])).toEqual([['张三', 'PER'], ['上海市', 'LOC']]);
  });

  it('on the MSRA sample: exact spans of real mentions, counts of each kind, deterministic', () => {
    const exs = readFileSync(new URL('../../fixtures/data/msra_train_sample.jsonl', import.meta.url), 'utf8')
      .split('\n').filter((l) => l.trim()).slice(0, 300).map((l) => JSON.parse(l) as Example);
    const mentions = new Set(exs.flatMap((e) => e.entities.map((s) => `${s.type}:${e.text.slice(s.start, s.end)}`)));
    const { examples, counts } = augmentExamples(exs, 1, mulberry32(3));
    expect(examples.length).toBe(300);
    expect(counts.substitution + counts.mixing).toBe(300);
    expect(counts.substitution).toBeGreaterThan(100);
    expect(counts.mixing).toBeGreaterThan(100);
    for (const ex of examples) {
      let last = 0;
      for (const s of ex.entities) {
        expect(s.start).toBeGreaterThanOrEqual(last);
        expect(s.end).toBeLessThanOrEqual(ex.text.length);
        expect(mentions.has(`${s.type}:${ex.text.slice(s.start, s.end)}`)).toBe(true);
        last = s.end;
      }
    }
    expect(augmentExamples(exs, 1, mulberry32(3)).examples).toEqual(examples);
  });
});
