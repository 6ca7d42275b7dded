/** Teacher logits: the disk cache (float16/float32), deadlines and continuation. */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { teacherLogits } from '../../src/distill/teacher.js';
import { readExamples } from '../../src/ner/data.js';
import { Predictor } from '../../src/runtime/predict.js';
import { workspace, type Workspace } from './helpers.js';

let ws: Workspace;
beforeAll(async () => {
  ws = await workspace();
});
afterAll(async () => {
  await ws.cleanup();
});

describe('teacher logits', () => {
  it('come from the cache on a second run, equal to what the first run trained on', async () => {
    const texts = (await readExamples(ws.trainFile)).examples.map((e) => e.text).slice(0, 50);
    const dir = join(ws.tmp, 'cache2');
    const a = await teacherLogits(ws.teacher, texts, { cacheDir: dir, chunkTexts: 16 });
    expect(a.fromCache).toBe(0);
    expect(a.count).toBe(50);
    const b = await teacherLogits(ws.teacher, texts, { cacheDir: dir });
    expect(b.fromCache).toBe(50);
    expect(b.computeMs).toBe(0);
    // a limit reads a prefix from the same cache (the key covers all texts)
    const lim = await teacherLogits(ws.teacher, texts, { cacheDir: dir, limit: 20 });
    expect([lim.count, lim.fromCache, lim.key]).toEqual([20, 20, a.key]);
    for (let i = 0; i < 50; i++) expect(Array.from(b.emissions[i].logits)).toEqual(Array.from(a.emissions[i].logits));
    const tokens = a.emissions.reduce((n, e) => n + e.tokens.length, 0);
    expect(a.cacheBytes! - tokens * 7 * 2 - 50 * 4).toBeLessThan(400); // float16 payload dominates
    // float32 storage: exactly the logits onnxruntime gave
    const c = await teacherLogits(ws.teacher, texts, { cacheDir: join(ws.tmp, 'cache3'), cacheDtype: 'float32' });
    const p = await Predictor.open(ws.teacher);
    const direct = await p.emissions(texts);
    await p.close();
    for (let i = 0; i < 50; i++) expect(Array.from(c.emissions[i].logits)).toEqual(Array.from(direct[i].logits));
    expect(c.cacheBytes! - tokens * 7 * 4 - 50 * 4).toBeLessThan(400);
  });

  it('a deadline stops at a prefix; the next run continues from the cache', async () => {
    const texts = (await readExamples(ws.trainFile)).examples.map((e) => e.text).slice(0, 64);
    const dir = join(ws.tmp, 'cache4');
    const a = await teacherLogits(ws.teacher, texts, { cacheDir: dir, chunkTexts: 16, deadline: performance.now() - 1 });
    expect(a.count).toBe(0);
    let calls = 0;
    const b = await teacherLogits(ws.teacher, texts, {
      cacheDir: dir,
      chunkTexts: 16,
      onProgress: () => {
        calls++;
      },
      deadline: performance.now() + 60_000,
    });
    expect(b.count).toBe(64);
    expect(calls).toBeGreaterThan(1);
  });
});

