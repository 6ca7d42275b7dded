/**
 * The pure parts of the service: LRU cache, Prometheus exposition, micro-batcher, type colours.
 */
import { describe, expect, it } from 'vitest';
import { BatcherClosedError, lengthGroups, MicroBatcher } from '../../src/serve/batcher.js';
import { hslHex, PALETTE, typeColors } from '../../src/serve/colors.js';
import { modelName } from '../../src/serve/server.js';
import { LruCache } from '../../src/serve/cache/lru.js';

describe('LruCache', () => {
  it('evicts the least recently used entry; get refreshes recency', () => {
    const c = new LruCache<string, number>(3);
    c.set('a', 1);
    c.set('b', 2);
    c.set('c', 3);
    expect(c.get('a')).toBe(1); // a is now the newest: order b, c, a
    c.set('d', 4); // evicts b
    expect(c.keys()).toEqual(['c', 'a', 'd']);
    expect(c.get('b')).toBeUndefined();
    c.set('c', 30); // overwrite refreshes c
    c.set('e', 5); // evicts a
    expect(c.keys()).toEqual(['d', 'c', 'e']);
    expect(c.get('c')).toBe(30);
    expect(c.size).toBe(3);
  });

  it('capacity 0 stores nothing', () => {
    const c = new LruCache<string, number>(0);
    c.set('a', 1);
    expect(c.get('a')).toBeUndefined();
    expect(c.size).toBe(0);
    expect(() => new LruCache(-1)).toThrow(RangeError);
  });
});

/** A run function that records the batches it gets and answers each item doubled, after `ms`. */
function recorder(ms = 5): { batches: number[][]; run: (items: number[]) => Promise<number[]> } {
  const batches: number[][] = [];
  return {
    batches,
    run: async (items) => {
      batches.push([...items]);
      await new Promise((r) => setTimeout(r, ms));
      return items.map((x) => 2 * x);
    },
  };
}

describe('MicroBatcher', () => {
  it('collects concurrent items into batches of at most maxBatch, in arrival order', async () => {
    const rec = recorder();
    const b = new MicroBatcher(rec.run, { maxBatch: 8, maxWaitMs: 1000 });
    const items = Array.from({ length: 20 }, (_, i) => i);
    const out = await Promise.all(items.map((i) => b.submit(i)));
    expect(out).toEqual(items.map((i) => 2 * i));
    // full batches go at once (no 1 s wait); the 4 left wait for the timer or for close
    expect(rec.batches.slice(0, 2)).toEqual([items.slice(0, 8), items.slice(8, 16)]);
    expect(rec.batches.flat()).toEqual(items);
    await b.close();
  });

  it('waits at most maxWaitMs for company, then runs what it has', async () => {
    const rec = recorder(0);
    const b = new MicroBatcher(rec.run, { maxBatch: 100, maxWaitMs: 30 });
    const t0 = performance.now();
    const p1 = b.submit(1);
    const p2 = b.submit(2);
    expect(await Promise.all([p1, p2])).toEqual([2, 4]);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
    expect(rec.batches).toEqual([[1, 2]]);
    await b.close();
  });

  it('maxBatch 1 with no wait runs one item at a time, never two runs at once', async () => {
    let inFlight = 0;
    let most = 0;
    const sizes: number[] = [];
    const b = new MicroBatcher<number, number>(
      async (items) => {
        inFlight++;
        most = Math.max(most, inFlight);
        sizes.push(items.length);
        await new Promise((r) => setTimeout(r, 2));
        inFlight--;
        return items;
      },
      { maxBatch: 1, maxWaitMs: 0 },
    );
    await Promise.all(Array.from({ length: 10 }, (_, i) => b.submit(i)));
    expect(sizes).toEqual(new Array(10).fill(1));
    expect(most).toBe(1);
  });

  it('items arriving during a run form the next batch as soon as it ends', async () => {
    const rec = recorder(40);
    const b = new MicroBatcher(rec.run, { maxBatch: 16, maxWaitMs: 0 });
    const first = b.submit(0);
    await new Promise((r) => setTimeout(r, 5)); // the first run is in flight
    const rest = [1, 2, 3, 4, 5].map((i) => b.submit(i));
    expect(b.pending).toBe(5);
    await Promise.all([first, ...rest]);
    expect(rec.batches).toEqual([[0], [1, 2, 3, 4, 5]]);
  });

  it('a failing run rejects every item of its batch and the batcher keeps working', async () => {
    const reports: Array<[number, boolean]> = [];
    let fail = true;
    const b = new MicroBatcher<number, number>(
      async (items) => {
        if (fail) throw new Error('boom');
        return items;
      },
      { maxBatch: 4, maxWaitMs: 5, onBatch: (n, _ms, ok) => reports.push([n, ok]) },
    );
    const bad = await Promise.allSettled([b.submit(1), b.submit(2)]);
    expect(bad.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    fail = false;
    expect(await b.submit(3)).toBe(3);
    expect(reports).toEqual([
      [2, false],
      [1, true],
    ]);
  });

  it('a run returning the wrong number of results rejects its items', async () => {
    const b = new MicroBatcher<number, number>(async () => [1], { maxBatch: 4, maxWaitMs: 5 });
    const r = await Promise.allSettled([b.submit(1), b.submit(2)]);
    expect(r.every((x) => x.status === 'rejected')).toBe(true);
  });

  it('flushNow stops waiting for company: queued items run now, later ones as soon as the model is free', async () => {
    const rec = recorder(0);
    const b = new MicroBatcher(rec.run, { maxBatch: 10, maxWaitMs: 60_000 });
    const t0 = performance.now();
    const p = [b.submit(1), b.submit(2)];
    b.flushNow();
    expect(await Promise.all(p)).toEqual([2, 4]);
    expect(await b.submit(3)).toBe(6);
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(rec.batches).toEqual([[1, 2], [3]]);
  });

  it('close runs what is queued at once, then refuses new items', async () => {
    const rec = recorder(0);
    const b = new MicroBatcher(rec.run, { maxBatch: 10, maxWaitMs: 60_000 });
    const p = [b.submit(1), b.submit(2)];
    const t0 = performance.now();
    await b.close();
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(await Promise.all(p)).toEqual([2, 4]);
    await expect(b.submit(3)).rejects.toBeInstanceOf(BatcherClosedError);
  });
});

describe('typeColors', () => {
  it('people red, places cyan, organisations yellow', () => {
    expect(typeColors(['PER', 'LOC', 'ORG'])).toEqual({ PER: '#ff2e63', LOC: '#08f7fe', ORG: '#fef200' });
    // the order of types does not move the reserved colours; the other types take the palette in order
    expect(typeColors(['MISC', 'ORG', 'LOC', 'PER'])).toEqual({ MISC: PALETTE[0], ORG: '#fef200', LOC: '#08f7fe', PER: '#ff2e63' });
  });

  it('CLUENER types: name red, address cyan, organization yellow (company is another type, another colour), all distinct', () => {
    const types = ['address', 'book', 'company', 'game', 'government', 'movie', 'name', 'organization', 'position', 'scene'];
    const c = typeColors(types);
    expect(c.name).toBe('#ff2e63');
    expect(c.address).toBe('#08f7fe');
    expect(c.organization).toBe('#fef200');
    expect(new Set(Object.values(c)).size).toBe(types.length);
  });

  it('stays distinct beyond the palette', () => {
    const types = Array.from({ length: 60 }, (_, i) => `T${i}`);
    const c = typeColors(types);
    expect(new Set(Object.values(c)).size).toBe(60);
    for (const v of Object.values(c)) expect(v).toMatch(/^#[0-9a-f]{6}$/);
  });

  it('hslHex matches the CSS colour conversion', () => {
    // CSS Color 4: hsl(0 100% 50%) = #ff0000, hsl(120 100% 50%) = #00ff00, hsl(180 100% 50%) = #00ffff, hsl(0 0% 50%) = #808080
    expect(hslHex(0, 100, 50)).toBe('#ff0000');
    expect(hslHex(120, 100, 50)).toBe('#00ff00');
    expect(hslHex(180, 100, 50)).toBe('#00ffff');
    expect(hslHex(0, 0, 50)).toBe('#808080');
  });
});

describe('modelName', () => {
  it('is the folder name, with its parent for generic names, or the .onnx file name for a bare model', () => {
    expect(modelName({ bare: false, dir: '/x/fixtures/tiny/bio-crf-op14', onnxPath: '/x/fixtures/tiny/bio-crf-op14/model.onnx' })).toBe('bio-crf-op14');
    expect(modelName({ bare: false, dir: '/x/fixtures/teacher/model', onnxPath: '/x/fixtures/teacher/model/model.onnx' })).toBe('teacher/model');
    expect(modelName({ bare: true, dir: '/x/fixtures/tiny/bare', onnxPath: '/x/fixtures/tiny/bare/model.onnx' })).toBe('model.onnx');
  });
});

describe('lengthGroups', () => {
  it('groups ascending lengths, closing a group when the next is longer than its first by max(8, 25% of first + 2)', () => {
    //          0   1   2    3   4    5   6
    const L = [40, 12, 250, 15, 45, 256, 21];
    // ascending 12(1) 15(3) | 21(6) | 40(0) 45(4) | 250(2) 256(5): 21 − 12 = 9 > max(8, 0.25 × 14) closes [12, 15];
    // 40 − 21 = 19 > 8 closes [21]; 45 − 40 = 5 stays; 250 − 40 > 10.5 closes; 256 − 250 = 6 stays
    expect(lengthGroups(L)).toEqual([[1, 3], [6], [0, 4], [2, 5]]);
    expect(lengthGroups(L).flat().sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it('keeps equal lengths together in input order; one item is one group; ratio and slack are settable', () => {
    expect(lengthGroups([30, 30, 30])).toEqual([[0, 1, 2]]);
    expect(lengthGroups([7])).toEqual([[0]]);
    expect(lengthGroups([])).toEqual([]);
    expect(lengthGroups([10, 100, 1000], { ratio: 100 })).toEqual([[0, 1, 2]]);
    expect(lengthGroups([10, 11, 12], { ratio: 0, slack: 0 })).toEqual([[0], [1], [2]]);
  });
});
