/**
 * Latency measurement. `latencyStats` is a pure function of the samples; `measureLatency` times an async
 * call; `benchModel` times a NerSession over a grid of sequence lengths × batch sizes.
 *
 * Percentiles use linear interpolation between closest ranks, the definition of numpy's default
 * `np.percentile(x, q)` (method "linear"): sort x ascending, h = (n − 1)·q/100, and
 * p = x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋]). `stdev` is the population standard deviation
 * (numpy's `np.std` with ddof = 0).
 */
import type { NerTokenizer } from '../ner/tokenizers/index.js';
import type { FlatBatch, NerSession } from './session.js';

/** Summary of latency samples, in milliseconds. */
export interface LatencyStats {
  /** The measured samples in run order (ms). */
  samplesMs: number[];
  p50: number;
  p95: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
  /** Population standard deviation (ddof = 0). */
  stdev: number;
  iterations: number;
}

/** Percentile q ∈ [0, 100] of ascending-sorted values, numpy "linear" method. */
export function percentileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) throw new RangeError('percentile of no samples');
  if (!(q >= 0 && q <= 100)) throw new RangeError(`percentile must be in [0, 100], got ${q}`);
  const h = ((n - 1) * q) / 100;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, n - 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

/** Summary statistics of latency samples (ms). */
export function latencyStats(samplesMs: readonly number[]): LatencyStats {
  const n = samplesMs.length;
  if (n === 0) throw new RangeError('latencyStats needs at least one sample');
  const sorted = Float64Array.from(samplesMs).sort();
  let sum = 0;
  for (const v of samplesMs) sum += v;
  const mean = sum / n;
  let ss = 0;
  for (const v of samplesMs) ss += (v - mean) * (v - mean);
  return {
    samplesMs: [...samplesMs],
    p50: percentileSorted(sorted, 50),
    p95: percentileSorted(sorted, 95),
    p99: percentileSorted(sorted, 99),
    mean,
    min: sorted[0],
    max: sorted[n - 1],
    stdev: Math.sqrt(ss / n),
    iterations: n,
  };
}

export interface MeasureOptions {
  /** Untimed calls before measuring. */
  warmup: number;
  /** Keep making untimed calls until this many seconds have passed as well (default 0). */
  warmupSeconds?: number;
  /** Timed calls (at least this many). */
  iterations?: number;
  /** Keep timing until this many seconds of timed calls have passed (and `iterations` are done). */
  minSeconds?: number;
  /** Upper bound on timed calls when `minSeconds` drives the loop (default 100000). */
  maxIterations?: number;
  /** Clock in milliseconds (default `performance.now`); injectable for tests. */
  now?: () => number;
}

/**
 * Time `run`: `warmup` untimed calls (and more until `warmupSeconds` have passed), then timed calls until
 * both `iterations` calls (default 20 when neither bound is given, else 1) and `minSeconds` seconds are
 * reached.
 */
export async function measureLatency(run: () => Promise<unknown>, opts: MeasureOptions): Promise<LatencyStats> {
  const now = opts.now ?? (() => performance.now());
  const minIter = opts.iterations ?? (opts.minSeconds === undefined ? 20 : 1);
  const minMs = (opts.minSeconds ?? 0) * 1000;
  const maxIter = Math.max(minIter, opts.maxIterations ?? 100_000);
  if (!Number.isInteger(opts.warmup) || opts.warmup < 0) throw new RangeError(`warmup must be an integer >= 0`);
  if (!Number.isInteger(minIter) || minIter < 1) throw new RangeError(`iterations must be an integer >= 1`);
  const warmupMs = (opts.warmupSeconds ?? 0) * 1000;
  const w0 = now();
  for (let i = 0; i < opts.warmup || now() - w0 < warmupMs; i++) await run();
  const samples: number[] = [];
  let total = 0;
  while (samples.length < maxIter && (samples.length < minIter || total < minMs)) {
    const t0 = now();
    await run();
    const dt = now() - t0;
    samples.push(dt);
    total += dt;
  }
  return latencyStats(samples);
}

/**
 * Untimed time at the start of every block of an interleaved comparison. After a switch from one
 * onnxruntime session to another, the new one's first runs are slow while the previous session's
 * intra-op threads still spin for work (measured here, 2 cores, 2 threads each: runs 2–10 after a switch
 * took up to 2.8× the fixture teacher's steady p50, and timing the two models call by call made a
 * 2× speed-up look like none). Blocks with this warm-up give the steady-state latency of each model.
 */
export const SWITCH_WARMUP_SECONDS = 0.1;

export interface InterleaveOptions {
  /** Blocks per model: the models take turns `rounds` times, so drifts in machine load touch all alike. */
  rounds: number;
  /** Untimed calls of each model before its first block (with several models, every block also warms
   * up for `SWITCH_WARMUP_SECONDS` and at least 3 calls). */
  warmup: number;
  /** Timed calls per model in total, at least (split over the rounds). */
  iterations?: number;
  /** Timed seconds per model in total, at least (split over the rounds). */
  seconds?: number;
  /** Called after each round with the number of rounds done. */
  onRound?: (done: number) => void;
  /** Clock in milliseconds (default `performance.now`); injectable for tests. */
  now?: () => number;
}

/**
 * Time several models on the same machine in one session: `rounds` rounds, each a block of timed calls
 * per model (after a switch warm-up). Returns each model's statistics over all its blocks.
 */
export async function measureInterleaved(runs: readonly (() => Promise<unknown>)[], opts: InterleaveOptions): Promise<LatencyStats[]> {
  if (!Number.isInteger(opts.rounds) || opts.rounds < 1) throw new RangeError('rounds must be an integer >= 1');
  const samples: number[][] = runs.map(() => []);
  for (let r = 0; r < opts.rounds; r++) {
    for (const [m, run] of runs.entries()) {
      const switching = runs.length > 1;
      const st = await measureLatency(run, {
        warmup: r === 0 ? Math.max(switching ? 3 : 0, opts.warmup) : switching ? 3 : 0,
        warmupSeconds: switching ? SWITCH_WARMUP_SECONDS : 0,
        iterations: Math.max(1, Math.ceil((opts.iterations ?? 1) / opts.rounds)),
        minSeconds: (opts.seconds ?? 0) / opts.rounds,
        now: opts.now,
      });
      samples[m].push(...st.samplesMs);
    }
    opts.onRound?.(r + 1);
  }
  return samples.map((s) => latencyStats(s));
}

/** One grid point of `benchModel`. */
export interface BenchRow {
  /** Tokens per sequence, including [CLS] and [SEP]. */
  seqLen: number;
  batch: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  meanMs: number;
  minMs: number;
  maxMs: number;
  stdevMs: number;
  iterations: number;
  /** Sentences per second at the mean latency: batch / mean. */
  sentencesPerSec: number;
  /** Tokens per second at the mean latency: batch × seqLen / mean. */
  tokensPerSec: number;
}

export interface BenchInputs {
  /** Where the token ids come from: real sentences (`--data`) or seeded random ids. */
  source: 'data' | 'synthetic';
  /** Token id streams (without [CLS]/[SEP]); rows are cut from their concatenation. */
  sequences?: number[][];
  clsId: number;
  sepId: number;
  padId: number;
  /** For synthetic ids: draw uniformly from [firstId, vocabSize). */
  vocabSize?: number;
  firstId?: number;
  seed?: number;
}

/** What bench inputs need of a tokenizer. */
export type BenchTokenizer = Pick<NerTokenizer, 'clsId' | 'sepId' | 'padId' | 'vocabSize' | 'tokenize'>;

/** Seeded random token ids (seed 1), skipping the leading special/unused entries when the vocabulary is big enough. */
export function syntheticBenchInputs(tokenizer: BenchTokenizer): BenchInputs {
  return {
    source: 'synthetic',
    clsId: tokenizer.clsId,
    sepId: tokenizer.sepId,
    padId: tokenizer.padId,
    vocabSize: tokenizer.vocabSize,
    firstId: tokenizer.vocabSize > 1000 ? 1000 : Math.min(5, tokenizer.vocabSize - 1),
    seed: 1,
  };
}

/** Token ids of real texts (texts that give no tokens are left out; the caller checks for none). */
export function textBenchInputs(tokenizer: BenchTokenizer, texts: readonly string[]): BenchInputs & { sequences: number[][] } {
  const sequences = texts.map((t) => tokenizer.tokenize(t).map((x) => x.id)).filter((q) => q.length > 0);
  return { source: 'data', sequences, clsId: tokenizer.clsId, sepId: tokenizer.sepId, padId: tokenizer.padId };
}

export interface BenchOptions extends Omit<MeasureOptions, 'now'> {
  seqLens: number[];
  batchSizes: number[];
  inputs: BenchInputs;
  /** Called before each grid point is measured. */
  onPoint?: (index: number, total: number, seqLen: number, batch: number) => void;
}

/** Deterministic 32-bit PRNG (mulberry32) for synthetic token ids. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Build a full (unpadded) batch of `batch` rows of `seqLen` tokens: [CLS] + seqLen − 2 ids + [SEP].
 * Real ids are read round-robin from the concatenated `sequences`; synthetic ones are seeded random.
 */
export function makeBenchBatch(
  inputs: BenchInputs,
  seqLen: number,
  batch: number,
): FlatBatch & { ids: Int32Array; mask: Int32Array } {
  if (seqLen < 2) throw new RangeError(`seqLen must be >= 2 (room for [CLS] and [SEP]), got ${seqLen}`);
  const ids = new Int32Array(batch * seqLen);
  const mask = new Int32Array(batch * seqLen).fill(1);
  const inner = seqLen - 2;
  let nextId: () => number;
  if (inputs.source === 'data') {
    const stream = (inputs.sequences ?? []).flat();
    if (stream.length === 0) throw new RangeError('benchmark data has no tokens');
    let k = 0;
    nextId = () => {
      const v = stream[k];
      k = (k + 1) % stream.length;
      return v;
    };
  } else {
    const vocab = inputs.vocabSize ?? 0;
    const first = Math.min(inputs.firstId ?? 0, Math.max(0, vocab - 1));
    if (vocab < 1) throw new RangeError('synthetic benchmark inputs need vocabSize >= 1');
    const rand = mulberry32(inputs.seed ?? 1);
    nextId = () => first + Math.floor(rand() * (vocab - first));
  }
  for (let r = 0; r < batch; r++) {
    const o = r * seqLen;
    ids[o] = inputs.clsId;
    for (let i = 0; i < inner; i++) ids[o + 1 + i] = nextId();
    ids[o + seqLen - 1] = inputs.sepId;
  }
  return { ids, mask, seqLen, batch };
}

/** Time `session` on every (seqLen, batch) pair; rows in seqLens-major order. */
export async function benchModel(session: NerSession, opts: BenchOptions): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const total = opts.seqLens.length * opts.batchSizes.length;
  let index = 0;
  for (const seqLen of opts.seqLens) {
    for (const batch of opts.batchSizes) {
      opts.onPoint?.(index++, total, seqLen, batch);
      const feed = makeBenchBatch(opts.inputs, seqLen, batch);
      const stats = await measureLatency(() => session.runFlat(feed), opts);
      rows.push(benchRow(seqLen, batch, stats));
    }
  }
  return rows;
}

/** A BenchRow from latency stats (pure). */
export function benchRow(seqLen: number, batch: number, s: LatencyStats): BenchRow {
  return {
    seqLen,
    batch,
    p50Ms: s.p50,
    p95Ms: s.p95,
    p99Ms: s.p99,
    meanMs: s.mean,
    minMs: s.min,
    maxMs: s.max,
    stdevMs: s.stdev,
    iterations: s.iterations,
    sentencesPerSec: (batch * 1000) / s.mean,
    tokensPerSec: (batch * seqLen * 1000) / s.mean,
  };
}

/** Peak resident set size of this process so far, in bytes (`process.resourceUsage().maxRSS` is KiB). */
export function peakRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}
