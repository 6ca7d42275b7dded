import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { entitiesJson } from '../../src/cli/predict.js';
import { cli, FACTS, REPO } from './helpers.js';

const run = promisify(execFile);

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ranerc-predict-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** The exact answer line, keys in the documented order text, type, start, end. */
function line(entities: Array<{ text: string; type: string; start: number; end: number }>): string {
  const sorted = [...entities].sort((a, b) => a.start - b.start);
  return `{"entities":[${sorted
    .map((e) => `{"text":${JSON.stringify(e.text)},"type":${JSON.stringify(e.type)},"start":${e.start},"end":${e.end}}`)
    .join(',')}]}`;
}

const crfCase = FACTS.find((c) => c.id === 'bio-crf-msra-default-overlap')!;
const withEntities = crfCase.predictions.filter((p) => p.entities.length > 0);

describe('ranerc predict', () => {
  it('prints exactly {"entities":[{"text","type","start","end"}...]} for one text', async () => {
    const p = withEntities[0];
    const r = await cli('predict', '--model', join(REPO, crfCase.model), p.text);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    expect(r.out).toBe(`${line(p.entities)}\n`);
  });

  it('prints one line per text for several texts and for --file, in input order', async () => {
    const picks = crfCase.predictions.slice(0, 6);
    const args = picks.slice(0, 3).map((p) => p.text);
    const file = join(tmp, 'texts.txt');
    await writeFile(file, `${picks.slice(3).map((p) => p.text).join('\n')}\n\n`);
    const r = await cli('predict', '--model', join(REPO, crfCase.model), ...args, '--file', file);
    expect(r.code).toBe(0);
    expect(r.out).toBe(picks.map((p) => `${line(p.entities)}\n`).join(''));
  });

  it('handles sub-word pieces: entities cover whole words (English WordPiece model)', async () => {
    const c = FACTS.find((x) => x.id === 'wordpiece-english')!;
    const r = await cli('predict', '--model', join(REPO, c.model), ...c.predictions.map((p) => p.text));
    expect(r.code).toBe(0);
    expect(r.out.trimEnd().split('\n')).toEqual(c.predictions.map((p) => line(p.entities)));
  });

  it('counts offsets in code points by default (as the JSONL data and Python), UTF-16 units on request', () => {
    const text = '𠀋马云在杭州';
    const ents = [{ text: '马云', type: 'PER', start: 2, end: 4 }]; // UTF-16 indices: 𠀋 is a surrogate pair
    expect(text.slice(2, 4)).toBe('马云');
    expect(entitiesJson(text, ents)).toBe('{"entities":[{"text":"马云","type":"PER","start":1,"end":3}]}');
    expect(entitiesJson(text, ents, 'utf16')).toBe('{"entities":[{"text":"马云","type":"PER","start":2,"end":4}]}');
    expect([...text].slice(1, 3).join('')).toBe('马云');
  });

  it('exits 2 with a usage message when there is no text', async () => {
    const r = await cli('predict', '--model', join(REPO, crfCase.model));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/no text to predict/);
    expect(r.out).toBe('');
  });
});

describe('bin/ranerc.js (the built CLI)', () => {
  const bin = join(REPO, 'bin', 'ranerc.js');
  const built = existsSync(join(REPO, 'dist', 'cli', 'index.js'));

  it('predicts through the real executable', async () => {
    expect(built, 'build first: npx tsc -p tsconfig.build.json').toBe(true);
    const p = withEntities[1] ?? withEntities[0];
    const r = await run(process.execPath, [bin, 'predict', '--model', join(REPO, crfCase.model), p.text]);
    expect(r.stdout).toBe(`${line(p.entities)}\n`);
  });

  it('exits 2 and names the file for a missing model, writing nothing to stdout', async () => {
    expect(built, 'build first: npx tsc -p tsconfig.build.json').toBe(true);
    const missing = join(tmp, 'no-such-model');
    const err = await run(process.execPath, [bin, 'predict', '--model', missing, '马云']).catch((e: unknown) => e);
    const e = err as { code: number; stdout: string; stderr: string };
    expect(e.code).toBe(2);
    expect(e.stdout).toBe('');
    expect(e.stderr).toContain(missing);
    expect(e.stderr).toMatch(/hint:/);
  });
});
