import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  benchModel,
  benchRow,
  latencyStats,
  makeBenchBatch,
  measureInterleaved,
  measureLatency,
  percentileSorted,
  peakRssBytes,
} from '../../src/runtime/bench.js';
import { NerSession } from '../../src/runtime/session.js';
import { buildToyModel } from './helpers/toy-model.js';

/**
 * Facts computed with numpy 1.24.2: np.percentile(a, q) (default method "linear"), a.mean(), a.std()
 * (ddof = 0), a.min(), a.max().
 */
const NUMPY_FACTS = [
  {
    samples: [12.5, 3.25, 7.0, 9.75, 4.5, 100.0, 5.125, 6.0, 8.5, 11.0],
    p50: 7.75, p95: 60.62499999999991, p99: 92.12500000000001, mean: 16.7625, std: 27.88696211942061,
    min: 3.25, max: 100.0, p10: 4.375,
  },
  { samples: [42.0], p50: 42.0, p95: 42.0, p99: 42.0, mean: 42.0, std: 0.0, min: 42.0, max: 42.0, p10: 42.0 },
  { samples: [1.0, 2.0], p50: 1.5, p95: 1.95, p99: 1.99, mean: 1.5, std: 0.5, min: 1.0, max: 2.0, p10: 1.1 },
  {
    // np.round(np.random.RandomState(3).lognormal(1.0, 0.5, 37), 4)
    samples: [
      6.648, 3.3813, 2.8527, 1.0706, 2.3662, 2.2765, 2.6081, 1.9867, 2.6594, 2.1413, 1.4093, 4.2305, 4.2235, 6.3903,
      2.7871, 2.2203, 2.0695, 1.2545, 4.4424, 1.5675, 1.503, 2.4527, 5.7149, 3.0598, 1.6292, 1.9031, 3.7159, 2.5086,
      1.8507, 2.4229, 3.9453, 7.3013, 1.4593, 1.9873, 1.8187, 0.811, 1.7128,
    ],
    p50: 2.3662, p95: 6.441839999999999, p99: 7.066112, mean: 2.821140540540541, std: 1.5661103555157796,
    min: 0.811, max: 7.3013, p10: 1.4393,
  },
];

describe('latencyStats', () => {
  for (const [i, f] of NUMPY_FACTS.entries()) {
    it(`matches numpy on case ${i} (${f.samples.length} samples)`, () => {
      const s = latencyStats(f.samples);
      expect(s.p50).toBeCloseTo(f.p50, 10);
      expect(s.p95).toBeCloseTo(f.p95, 10);
      expect(s.p99).toBeCloseTo(f.p99, 10);
      expect(s.mean).toBeCloseTo(f.mean, 10);
      expect(s.stdev).toBeCloseTo(f.std, 10);
      expect(s.min).toBe(f.min);
      expect(s.max).toBe(f.max);
      expect(s.iterations).toBe(f.samples.length);
      expect(s.samplesMs).toEqual(f.samples); // run order kept
      const sorted = [...f.samples].sort((a, b) => a - b);
      expect(percentileSorted(sorted, 10)).toBeCloseTo(f.p10, 10);
      expect(percentileSorted(sorted, 0)).toBe(f.min);
      expect(percentileSorted(sorted, 100)).toBe(f.max);
    });
  }

  it('rejects empty input and out-of-range percentiles', () => {
    expect(() => latencyStats([])).toThrow(RangeError);
    expect(() => percentileSorted([1, 2], 101)).toThrow(RangeError);
  });
});

describe('measureLatency', () => {
  it('runs warmup untimed, then exactly `iterations` timed calls', async () => {
    let calls = 0;
    let t = 0;
    const stats = await measureLatency(
      async () => {
        calls++;
        t += calls; // the k-th call "takes" k ms on the fake clock
      },
      { warmup: 3, iterations: 5, now: () => t },
    );
    expect(calls).toBe(8);
    expect(stats.samplesMs).toEqual([4, 5, 6, 7, 8]);
    expect(stats.p50).toBe(6);
  });

  it('with minSeconds keeps timing until that much timed time has passed', async () => {
    let t = 0;
    const stats = await measureLatency(
      async () => {
        t += 300;
      },
      { warmup: 1, minSeconds: 1, now: () => t },
    );
    // 300 ms per call: 4 calls reach 1.2 s >= 1 s
    expect(stats.iterations).toBe(4);
    const both = await measureLatency(
      async () => {
        t += 300;
      },
      { warmup: 0, minSeconds: 1, iterations: 6, now: () => t },
    );
    expect(both.iterations).toBe(6);
    const capped = await measureLatency(
      async () => {
        t += 1;
      },
      { warmup: 0, minSeconds: 10, maxIterations: 7, now: () => t },
    );
    expect(capped.iterations).toBe(7);
  });

  it('with warmupSeconds keeps warming up until that much time has passed', async () => {
    let t = 0;
    let calls = 0;
    const stats = await measureLatency(
      async () => {
        calls++;
        t += 30;
      },
      { warmup: 1, warmupSeconds: 0.1, iterations: 2, now: () => t },
    );
    // 30 ms per call: 4 untimed calls reach 120 ms >= 100 ms, then 2 timed
    expect(calls).toBe(6);
    expect(stats.iterations).toBe(2);
  });
});

describe('measureInterleaved', () => {
  it('times the models in blocks, each after a switch warm-up, and keeps their samples apart', async () => {
    let t = 0;
    const log: string[] = [];
    // A switch penalty like onnxruntime's spinning threads: the first 2 calls after a switch take 50 ms.
    let last = -1;
    let sinceSwitch = 0;
    const model = (m: number, ms: number) => async () => {
      if (last !== m) {
        last = m;
        sinceSwitch = 0;
      }
      sinceSwitch++;
      t += sinceSwitch <= 2 ? 50 : ms;
      log.push(String(m));
    };
    const rounds: number[] = [];
    const [a, b] = await measureInterleaved([model(0, 4), model(1, 2)], {
      rounds: 3,
      warmup: 0,
      iterations: 6,
      now: () => t,
      onRound: (r) => rounds.push(r),
    });
    expect(rounds).toEqual([1, 2, 3]);
    // every timed sample is steady-state: the switch penalty stayed in the warm-ups
    expect(a.samplesMs).toEqual([4, 4, 4, 4, 4, 4]);
    expect(b.samplesMs).toEqual([2, 2, 2, 2, 2, 2]);
    // blocks alternate: model 0's calls of round 1 all come before model 1's
    const firstSwitch = log.indexOf('1');
    expect(log.slice(0, firstSwitch).every((m) => m === '0')).toBe(true);
    expect(log.lastIndexOf('0')).toBeGreaterThan(firstSwitch);
  });

  it('rejects a round count below 1', async () => {
    await expect(measureInterleaved([async () => {}], { rounds: 0, warmup: 0 })).rejects.toThrow(RangeError);
  });
});

describe('bench rows', () => {
  it('derives throughput from the mean latency', () => {
    const row = benchRow(128, 8, latencyStats([40, 40, 40, 40]));
    expect(row.sentencesPerSec).toBeCloseTo(200, 10); // 8 sentences per 40 ms
    expect(row.tokensPerSec).toBeCloseTo(25600, 10);
    expect(row.p50Ms).toBe(40);
  });

  it('builds [CLS] ids [SEP] rows from real token streams, round-robin', () => {
    const b = makeBenchBatch({ source: 'data', sequences: [[10, 11], [12]], clsId: 2, sepId: 3, padId: 0 }, 5, 2);
    expect(Array.from(b.ids)).toEqual([2, 10, 11, 12, 3, 2, 10, 11, 12, 3]);
    expect(Array.from(b.mask)).toEqual(new Array(10).fill(1));
  });

  it('draws synthetic ids in [firstId, vocabSize), reproducibly', () => {
    const inp = { source: 'synthetic' as const, clsId: 2, sepId: 3, padId: 0, vocabSize: 50, firstId: 5, seed: 9 };
    const a = makeBenchBatch(inp, 64, 4);
    const b = makeBenchBatch(inp, 64, 4);
    expect(Array.from(a.ids)).toEqual(Array.from(b.ids));
    for (let r = 0; r < 4; r++) {
      const row = Array.from(a.ids.slice(r * 64, (r + 1) * 64));
      expect(row[0]).toBe(2);
      expect(row[63]).toBe(3);
      for (const id of row.slice(1, 63)) expect(id >= 5 && id < 50).toBe(true);
    }
  });

  it('benchModel measures every (seq, batch) point on a real session', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ranerc-bench-'));
    try {
      const path = join(dir, 'm.onnx');
      await writeFile(path, buildToyModel({ vocab: 30, labels: 3 }).bytes);
      const s = await NerSession.open(path);
      const seen: string[] = [];
      const rows = await benchModel(s, {
        seqLens: [8, 16],
        batchSizes: [1, 4],
        warmup: 1,
        iterations: 3,
        inputs: { source: 'synthetic', clsId: 1, sepId: 2, padId: 0, vocabSize: 30, firstId: 3 },
        onPoint: (i, n, seq, batch) => seen.push(`${i}/${n}:${seq}x${batch}`),
      });
      await s.close();
      expect(seen).toEqual(['0/4:8x1', '1/4:8x4', '2/4:16x1', '3/4:16x4']);
      expect(rows.map((r) => [r.seqLen, r.batch, r.iterations])).toEqual([
        [8, 1, 3],
        [8, 4, 3],
        [16, 1, 3],
        [16, 4, 3],
      ]);
      for (const r of rows) expect(r.p50Ms).toBeGreaterThan(0);
      expect(peakRssBytes()).toBeGreaterThan(1 << 20);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
