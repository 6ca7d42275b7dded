/** Teacher logits: the disk cache (float16/float32), deadlines and continuation. */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { transferItems } from '../../src/distill/batches.js';
import { teacherLogits } from '../../src/distill/teacher.js';
import { tokenTagIds } from '../../src/ner/align.js';
import { LabelSet } from '../../src/ner/labels.js';
import { viterbiDecode } from '../../src/ner/viterbi.js';
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


describe('transfer items', () => {
  it('hard labels: gold tags for labelled texts, the teacher\'s Viterbi path for unlabelled text; windows of the teacher\'s size', async () => {
    const labels = new LabelSet(ws.teacher.labels);
    const ex = (await readExamples(ws.trainFile, { types: labels.types })).examples.slice(0, 30);
    const tl = await teacherLogits(ws.teacher, ex.map((e) => e.text), { cacheDir: null });
    const texts = ex.map((example, i) => ({ example: { ...example, entities: i % 2 ? [] : example.entities }, gold: i % 2 === 0 }));
    const size = 20;
    const { items, goldItems, tokens } = transferItems(texts, tl.emissions, labels, ws.teacher.crf, size);
    expect(tokens).toBe(tl.emissions.reduce((n, e) => n + e.tokens.length, 0));
    expect(goldItems.every((it) => it.text % 2 === 0)).toBe(true);
    expect(items.every((it) => it.ids.length <= size)).toBe(true);
    for (let i = 0; i < 30; i++) {
      const em = tl.emissions[i];
      const own = items.filter((it) => it.text === i);
      expect(own.flatMap((it) => Array.from(it.ids))).toEqual(em.tokens.map((t) => t.id));
      expect(own.flatMap((it) => Array.from(it.teacher!))).toEqual(Array.from(em.logits));
      const tags = own.flatMap((it) => Array.from(it.tags!));
      if (i % 2 === 1) {
        const rows = em.tokens.map((_, t) => em.logits.subarray(t * 7, (t + 1) * 7));
        const path = viterbiDecode(rows, ws.teacher.crf!);
        // equal except where a window cut repaired an I- into a B-
        tags.forEach((t, k) => expect(t === path[k] || labels.labels[path[k]].replace('I-', 'B-') === labels.labels[t]).toBe(true));
      } else if (em.tokens.length <= size) {
        expect(tags).toEqual(tokenTagIds(texts[i].example, em.tokens, labels));
      }
    }
  });
});
