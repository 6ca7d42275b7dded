import { cp, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exists } from '../../src/util/fs.js';
import { cli, REPO } from './helpers.js';

let tmp: string;
const TINY = join(REPO, 'fixtures', 'tiny', 'bio-crf-op14');
const GOOD = [
  '{"text": "马云在杭州", "entities": [{"start": 0, "end": 2, "type": "PER"}, {"start": 3, "end": 5, "type": "LOC"}]}',
  '{"text": "今天下雨", "entities": []}',
];

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ranerc-errors-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function data(name: string, lines: string[]): Promise<string> {
  const p = join(tmp, name);
  await writeFile(p, `${lines.join('\n')}\n`);
  return p;
}

async function modelCopy(name: string): Promise<string> {
  const d = join(tmp, name);
  await cp(TINY, d, { recursive: true });
  return d;
}

/** Run eval with an explicit report dir and check: exit 2, stderr names `mention`, nothing written. */
async function expectRefused(args: string[], mention: RegExp | string): Promise<string> {
  const reportDir = join(tmp, 'reports', `r${Math.random().toString(36).slice(2)}`);
  const r = await cli(...args, '--report-dir', reportDir);
  expect(r.code, r.err).toBe(2);
  if (typeof mention === 'string') expect(r.err).toContain(mention);
  else expect(r.err).toMatch(mention);
  expect(r.err).toMatch(/hint:/);
  expect(r.out).toBe('');
  expect(await exists(reportDir)).toBe(false);
  if (await exists(join(tmp, 'reports'))) expect(await readdir(join(tmp, 'reports'))).toEqual([]);
  return r.err;
}

describe('eval refuses bad input with exit code 2, naming the file (and line), writing nothing', () => {
  it('missing model folder', async () => {
    const missing = join(tmp, 'nope');
    await expectRefused(['eval', '--model', missing, '--data', await data('ok1.jsonl', GOOD)], missing);
  });

  it('missing data file', async () => {
    const missing = join(tmp, 'missing.jsonl');
    await expectRefused(['eval', '--model', TINY, '--data', missing], missing);
  });

  it('corrupt (truncated) ONNX', async () => {
    const d = await modelCopy('truncated');
    await truncate(join(d, 'model.onnx'), 5000);
    await expectRefused(['eval', '--model', d, '--data', await data('ok2.jsonl', GOOD)], join(d, 'model.onnx'));
  });

  it('garbage ONNX', async () => {
    const d = await modelCopy('garbage');
    await writeFile(join(d, 'model.onnx'), 'this is not a protobuf at all'.repeat(10));
    await expectRefused(['eval', '--model', d, '--data', await data('ok3.jsonl', GOOD)], 'model.onnx');
  });

  it('a JSONL line that is not JSON', async () => {
    const f = await data('notjson.jsonl', [GOOD[0], '{"text": "坏", "entities": [', GOOD[1]]);
    await expectRefused(['eval', '--model', TINY, '--data', f], `${f}:2`);
  });

  it('a span outside its text', async () => {
    const f = await data('outside.jsonl', [GOOD[0], GOOD[1], '{"text": "北京", "entities": [{"start": 1, "end": 9, "type": "LOC"}]}']);
    await expectRefused(['eval', '--model', TINY, '--data', f], `${f}:3`);
  });

  it('an entity type the model lacks (without --skip-unknown-types)', async () => {
    const f = await data('unknown.jsonl', [GOOD[0], '{"text": "北京", "entities": [{"start": 0, "end": 2, "type": "CITY"}]}']);
    await expectRefused(['eval', '--model', TINY, '--data', f], `${f}:2`);
  });

  it('config.json without labels', async () => {
    const d = await modelCopy('nolabels');
    const cfg = JSON.parse(await readFile(join(d, 'config.json'), 'utf8')) as Record<string, unknown>;
    delete cfg.id2label;
    delete cfg.label2id;
    await writeFile(join(d, 'config.json'), JSON.stringify(cfg));
    await expectRefused(['eval', '--model', d, '--data', await data('ok4.jsonl', GOOD)], 'config.json');
  });

  it('a bad --mode and a bad --batch are usage errors', async () => {
    const f = await data('ok5.jsonl', GOOD);
    await expectRefused(['eval', '--model', TINY, '--data', f, '--mode', 'lenient'], /--mode/);
    const r = await cli('eval', '--model', TINY, '--data', f, '--batch', '0');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--batch/);
  });
});

describe('the other commands refuse bad input the same way', () => {
  it('predict: corrupt ONNX', async () => {
    const d = await modelCopy('truncated-predict');
    await truncate(join(d, 'model.onnx'), 5000);
    const r = await cli('predict', '--model', d, '马云');
    expect(r.code).toBe(2);
    expect(r.err).toContain('model.onnx');
    expect(r.out).toBe('');
  });

  it('bench: sequence longer than the model supports', async () => {
    const reportDir = join(tmp, 'bench-too-long');
    const r = await cli('bench', '--model', TINY, '--seq', '1000', '--report-dir', reportDir);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--seq 1000/);
    expect(await exists(reportDir)).toBe(false);
  });
});
