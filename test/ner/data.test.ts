import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { detectFormat, readExamples, readTextLines, toJsonlRecord, writeJsonl } from '../../src/ner/data.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ranerc-data-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
const file = async (name: string, body: string): Promise<string> => {
  const p = join(dir, name);
  await writeFile(p, body);
  return p;
};
/** The InputError a promise rejects with. */
const inputError = async (p: Promise<unknown>): Promise<InputError> => {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    expect((e as InputError).hint).toBeTruthy();
    return e as InputError;
  }
  throw new Error('expected an InputError');
};

describe('readExamples: JSONL', () => {
  it('reads the committed MSRA sample: offsets match the README example, every span inside its text', async () => {
    const p = fileURLToPath(new URL('../../fixtures/data/msra_test_sample.jsonl', import.meta.url));
    const { examples, format, skipped } = await readExamples(p);
    expect(format).toBe('jsonl');
    expect(skipped).toEqual([]);
    expect(examples.length).toBe(1158);
    expect(examples[0].text.slice(0, 4)).toBe('中共中央');
    expect(examples[0].entities[0]).toEqual({ start: 0, end: 4, type: 'ORG' });
    expect(examples[1].source).toEqual({ file: p, line: 2 });
    const types = new Set(examples.flatMap((e) => e.entities.map((x) => x.type)));
    expect([...types].sort()).toEqual(['LOC', 'ORG', 'PER']);
  });

  it('converts code-point offsets to UTF-16 (and back when writing)', async () => {
    const line = JSON.stringify({ text: '😀张三说', entities: [{ start: 1, end: 3, type: 'PER', text: '张三' }] });
    const p = await file('astral.jsonl', line + '\n');
    const { examples } = await readExamples(p);
    expect(examples[0].entities).toEqual([{ start: 2, end: 4, type: 'PER' }]);
    expect(examples[0].text.slice(2, 4)).toBe('张三');
    expect(toJsonlRecord(examples[0])).toEqual({ text: '😀张三说', entities: [{ start: 1, end: 3, type: 'PER' }] });
    const u16 = await readExamples(await file('astral16.jsonl', JSON.stringify({ text: '😀张三说', entities: [{ start: 2, end: 4, type: 'PER' }] })), { offsets: 'utf16' });
    expect(u16.examples[0].entities).toEqual([{ start: 2, end: 4, type: 'PER' }]);
  });

  it('missing entities = unlabelled; blank lines skipped; CRLF and BOM accepted', async () => {
    const p = await file('mixed.jsonl', '\ufeff{"text": "甲"}\r\n\r\n{"text": "乙丙", "entities": []}\r\n');
    const { examples } = await readExamples(p);
    expect(examples.map((e) => [e.text, e.entities.length, e.source?.line])).toEqual([['甲', 0, 1], ['乙丙', 0, 3]]);
  });

  it('reports bad lines with the file, the 1-based line and a hint', async () => {
    const cases: Array<[string, RegExp]> = [
      ['{"text": "ab"', /not valid JSON/],
      ['[1, 2]', /not a JSON object/],
      ['{"entities": []}', /missing "text"/],
      ['{"text": 5}', /not a string/],
      ['{"text": "ab", "entities": {}}', /not an array/],
      ['{"text": "ab", "entities": [{"start": 0.5, "end": 1, "type": "X"}]}', /integers/],
      ['{"text": "ab", "entities": [{"start": "0", "end": 1, "type": "X"}]}', /integers/],
      ['{"text": "ab", "entities": [{"start": 0, "end": 3, "type": "X"}]}', /outside the text/],
      ['{"text": "ab", "entities": [{"start": -1, "end": 1, "type": "X"}]}', /outside the text/],
      ['{"text": "ab", "entities": [{"start": 1, "end": 1, "type": "X"}]}', /not after start/],
      ['{"text": "abc", "entities": [{"start": 0, "end": 2, "type": "X"}, {"start": 1, "end": 3, "type": "Y"}]}', /overlap/],
      ['{"text": "ab", "entities": [{"start": 0, "end": 1}]}', /"type"/],
      ['{"text": "ab", "entities": [{"start": 0, "end": 1, "type": "X", "text": "b"}]}', /differs/],
      ['{"text": "ab", "label": {"name": {"a": [[0, 0]]}}}', /"label" field/],
    ];
    for (const [i, [body, re]] of cases.entries()) {
      const p = await file(`bad${i}.jsonl`, '{"text": "ok"}\n\n' + body + '\n');
      const e = await inputError(readExamples(p));
      expect(e.message, body).toMatch(re);
      expect(e.where).toEqual({ file: p, line: 3, node: undefined });
    }
  });

  it('unknown entity types: an error by default, or skipped and counted', async () => {
    const body = '{"text": "张三在北京", "entities": [{"start": 0, "end": 2, "type": "PER"}, {"start": 3, "end": 5, "type": "GPE"}]}\n';
    const p = await file('types.jsonl', body);
    const e = await inputError(readExamples(p, { types: ['PER', 'LOC'] }));
    expect(e.message).toMatch(/GPE/);
    expect(e.where.line).toBe(1);
    const r = await readExamples(p, { types: ['PER', 'LOC'], unknownTypes: 'skip' });
    expect(r.examples[0].entities).toEqual([{ start: 0, end: 2, type: 'PER' }]);
    expect(r.skipped).toEqual([{ file: p, line: 1, reason: expect.stringMatching(/GPE/) }]);
  });

  it('a missing file or a directory is an InputError naming it', async () => {
    const missing = join(dir, 'nope.jsonl');
    expect((await inputError(readExamples(missing))).where.file).toBe(missing);
    const sub = join(dir, 'sub.jsonl');
    await mkdir(sub);
    expect((await inputError(readExamples(sub))).message).toMatch(/not a regular file/);
  });
});

describe('readExamples: CoNLL', () => {
  it('reads a character-per-line BIO file (MSRA layout): text joined without spaces', async () => {
    const p = await file('msra.bio', '中\tB-ORG\n共\tI-ORG\n在\tO\n北\tB-LOC\n京\tI-LOC\n\n\n张\tB-PER\n三\tI-PER\n');
    const r = await readExamples(p);
    expect(r.format).toBe('conll');
    expect(r.scheme).toBe('BIO');
    expect(r.examples.map((e) => [e.text, e.entities, e.source?.line])).toEqual([
      ['中共在北京', [{ start: 0, end: 2, type: 'ORG' }, { start: 3, end: 5, type: 'LOC' }], 1],
      ['张三', [{ start: 0, end: 2, type: 'PER' }], 8],
    ]);
  });

  it('reads BMES and BIOES (with _ separators) and a lenient I- after O', async () => {
    const bmes = await file('resume.txt', '张 B-NAME\n三 E-NAME\n是 O\n中 B-ORG\n国 M-ORG\n银 M-ORG\n行 E-ORG\n人 S-PRO\n');
    const r = await readExamples(bmes);
    expect(r.scheme).toBe('BMES');
    expect(r.examples[0].entities).toEqual([
      { start: 0, end: 2, type: 'NAME' }, { start: 3, end: 7, type: 'ORG' }, { start: 7, end: 8, type: 'PRO' },
    ]);
    const bioes = await file('x.conll', 'a S_X\nb O\nc I_Y\nd E_Y\n');
    const r2 = await readExamples(bioes);
    expect(r2.scheme).toBe('BIOES');
    expect(r2.examples[0].entities).toEqual([{ start: 0, end: 1, type: 'X' }, { start: 2, end: 4, type: 'Y' }]);
  });

  it('word-per-line files (CoNLL-2003 columns) are joined with single spaces', async () => {
    const p = await file('eng.conll', '-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\ncall NN I-NP O\n');
    const r = await readExamples(p);
    expect(r.examples).toHaveLength(1);
    expect(r.examples[0].text).toBe('EU rejects German call');
    expect(r.examples[0].entities).toEqual([{ start: 0, end: 2, type: 'ORG' }, { start: 11, end: 17, type: 'MISC' }]);
  });

  it('a whitespace-token line keeps a space in the text', async () => {
    const p = await file('space.bio', 'A\tB-X\n \tO\nb\tB-Y\n');
    const r = await readExamples(p);
    expect(r.examples[0].text).toBe('A b');
    expect(r.examples[0].entities).toEqual([{ start: 0, end: 1, type: 'X' }, { start: 2, end: 3, type: 'Y' }]);
  });

  it('errors name the file and line: unknown tag, missing tag, mixed schemes, unknown type', async () => {
    const p1 = await file('bad1.bio', '中 O\n共 Q-ORG\n');
    expect(await inputError(readExamples(p1))).toMatchObject({ where: { file: p1, line: 2 } });
    const p2 = await file('bad2.bio', '中 O\n\n共\n');
    expect(await inputError(readExamples(p2))).toMatchObject({ where: { file: p2, line: 3 } });
    const p3 = await file('bad3.bio', '中 B-X\n共 M-X\n国 I-X\n');
    const e3 = await inputError(readExamples(p3));
    expect(e3.message).toMatch(/I-X/);
    expect(e3.where.line).toBe(3);
    const p4 = await file('bad4.bio', '中 O\n\n共 B-GPE\n国 I-GPE\n');
    expect(await inputError(readExamples(p4, { types: ['PER'] }))).toMatchObject({ where: { line: 3 } });
    const r = await readExamples(p4, { types: ['PER'], unknownTypes: 'skip' });
    expect(r.examples[1].entities).toEqual([]);
    expect(r.skipped).toHaveLength(1);
  });
});

describe('format detection, text lines, writing', () => {
  it('detects by extension, then by the first non-empty line; rejects a JSON array', async () => {
    expect(await detectFormat(await file('a.txt', '\n{"text": "x"}\n'))).toBe('jsonl');
    expect(await detectFormat(await file('b.txt', '\n中 O\n'))).toBe('conll');
    expect(await detectFormat(await file('c.bmes', ''))).toBe('conll');
    expect(await detectFormat(await file('d.jsonl', ''))).toBe('jsonl');
    expect((await inputError(detectFormat(await file('e.json', '[{"text": "x"}]')))).message).toMatch(/JSON array/);
  });

  it('readTextLines: one example per non-blank line, with its line number', async () => {
    const p = await file('raw.txt', '\ufeff第一句\n\n  \n第二句 with spaces  \r\n');
    expect((await readTextLines(p)).map((e) => [e.text, e.source?.line])).toEqual([['第一句', 1], ['第二句 with spaces  ', 4]]);
  });

  it('writeJsonl writes one JSON object per line, atomically, and reads back', async () => {
    const p = join(dir, 'out', 'pred.jsonl');
    await writeJsonl(p, [toJsonlRecord({ text: '张三', entities: [{ start: 0, end: 2, type: 'PER' }] }), { text: '无', entities: [] }]);
    expect(await readFile(p, 'utf8')).toBe('{"text":"张三","entities":[{"start":0,"end":2,"type":"PER"}]}\n{"text":"无","entities":[]}\n');
    const back = await readExamples(p);
    expect(back.examples.map((e) => e.entities.length)).toEqual([1, 0]);
  });
});
