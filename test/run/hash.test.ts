import { execFileSync } from 'node:child_process';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson, contentHash, HashCache, listFiles, stepKey, treeLines } from '../../src/run/hash.js';
import { tempDir } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('hash'));
  await mkdir(join(dir, 'a', 'sub'), { recursive: true });
  await writeFile(join(dir, 'a', 'abc.txt'), 'abc');
  await writeFile(join(dir, 'a', 'sub', 'empty.bin'), '');
  await writeFile(join(dir, 'a', 'B.txt'), 'B');
});
afterAll(async () => cleanup());

describe('content hashes', () => {
  it('a file hashes to its SHA-256 (FIPS 180-2 examples)', async () => {
    expect(await contentHash(join(dir, 'a', 'abc.txt'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(await contentHash(join(dir, 'a', 'sub', 'empty.bin'))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('folder lines are sorted relative paths in sha256sum format (checked by sha256sum -c)', async () => {
    expect(await listFiles(join(dir, 'a'))).toEqual(['B.txt', 'abc.txt', 'sub/empty.bin']);
    const lines = await treeLines(join(dir, 'a'));
    expect(lines).toBe(
      'df7e70e5021544f4834bbee64a9e3789febc4be81470df629cad6ddb03320a5c  B.txt\n' +
        'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  abc.txt\n' +
        'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  sub/empty.bin\n',
    );
    await writeFile(join(dir, 'a.sums'), lines);
    const ok = execFileSync('sha256sum', ['-c', join(dir, 'a.sums')], { cwd: join(dir, 'a'), encoding: 'utf8' });
    expect(ok.trim().split('\n')).toEqual(['B.txt: OK', 'abc.txt: OK', 'sub/empty.bin: OK']);
  });

  it('a folder hash does not depend on where the folder is, changes with one byte, ignores ranerc.json', async () => {
    const h = await contentHash(join(dir, 'a'));
    await cp(join(dir, 'a'), join(dir, 'moved'), { recursive: true });
    expect(await contentHash(join(dir, 'moved'))).toBe(h);
    await writeFile(join(dir, 'moved', 'ranerc.json'), '{"createdAt": "now"}');
    await writeFile(join(dir, 'moved', '.x.1234.abcd.tmp'), 'partial');
    expect(await contentHash(join(dir, 'moved'))).toBe(h);
    await writeFile(join(dir, 'moved', 'abc.txt'), 'abd');
    expect(await contentHash(join(dir, 'moved'))).not.toBe(h);
  });

  it('the memo re-hashes only after forget', async () => {
    const cache = new HashCache();
    const p = join(dir, 'memo.txt');
    await writeFile(p, 'abc');
    expect(await cache.hash(p)).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    await writeFile(p, '');
    expect(await cache.hash(p)).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    cache.forget(p);
    expect(await cache.hash(p)).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });
});

describe('step keys', () => {
  it('canonical JSON sorts keys at every depth and drops undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: undefined } })).toBe('{"a":{"d":[3,{"y":2,"z":1}]},"b":1}');
  });

  it('a key depends on every part of its material, not on key order', () => {
    const m = { format: 'ranerc.run-key/1' as const, ranerc: '0.1.0', kind: 'eval', kindVersion: 1, settings: { a: 1, b: { sha256: 'x' } } };
    const k = stepKey(m);
    expect(k).toMatch(/^[0-9a-f]{64}$/);
    expect(stepKey({ ...m, settings: { b: { sha256: 'x' }, a: 1 } })).toBe(k);
    expect(stepKey({ ...m, ranerc: '0.1.1' })).not.toBe(k);
    expect(stepKey({ ...m, kindVersion: 2 })).not.toBe(k);
    expect(stepKey({ ...m, settings: { a: 1, b: { sha256: 'y' } } })).not.toBe(k);
    expect(stepKey({ ...m, machine: { cpu: 'x' } })).not.toBe(k);
  });
});
