/**
 * Micro-batching: items submitted by concurrent requests are collected for at most `maxWaitMs` (or until
 * `maxBatch` items wait) and handed to `run` together, so one onnxruntime run serves many requests.
 * Only one `run` is in flight at a time (the Predictor reuses its input buffers, and onnxruntime already
 * uses every core for one run); items that arrive meanwhile wait for the next batch, which starts as
 * soon as the current one ends if it is full or its oldest item has waited `maxWaitMs`.
 *
 * `maxBatch: 1, maxWaitMs: 0` is one-at-a-time serving (each item its own run, in arrival order).
 */

export interface MicroBatcherOptions {
  /** Most items per run (>= 1). */
  maxBatch: number;
  /** Longest time the first item of a batch waits for company (>= 0 ms). */
  maxWaitMs: number;
  /** Called after each run with its size and wall time (ms), whether it succeeded or not. */
  onBatch?: (size: number, ms: number, ok: boolean) => void;
}

interface Pending<I, O> {
  item: I;
  at: number;
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
}

/** Thrown to items submitted after `close()`. */
export class BatcherClosedError extends Error {
  constructor() {
    super('the service is shutting down');
    this.name = 'BatcherClosedError';
  }
}

export class MicroBatcher<I, O> {
  private readonly queue: Array<Pending<I, O>> = [];
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private closed = false;
  private hurry = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly run: (items: I[]) => Promise<O[]>,
    readonly opts: MicroBatcherOptions,
  ) {
    if (!Number.isInteger(opts.maxBatch) || opts.maxBatch < 1) throw new RangeError(`maxBatch must be an integer >= 1, got ${opts.maxBatch}`);
    if (!Number.isFinite(opts.maxWaitMs) || opts.maxWaitMs < 0) throw new RangeError(`maxWaitMs must be >= 0, got ${opts.maxWaitMs}`);
  }

  /** Items waiting for a run (not counting the run in flight). */
  get pending(): number {
    return this.queue.length;
  }

  /** Whether a run is in flight. */
  get busy(): boolean {
    return this.running;
  }

  /** Queue one item; resolves with its result from the batch it ran in. */
  submit(item: I): Promise<O> {
    if (this.closed) return Promise.reject(new BatcherClosedError());
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, at: performance.now(), resolve, reject });
      this.schedule();
    });
  }

  /**
   * Stop waiting for company: queued items run now, and items submitted later run as soon as the model
   * is free (used while shutting down, so requests in flight are not held for `maxWaitMs`).
   */
  flushNow(): void {
    this.hurry = true;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.schedule();
  }

  /** Stop taking items, run everything already queued, and resolve once idle. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.flush();
    if (!this.running && this.queue.length === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private schedule(): void {
    if (this.running || this.queue.length === 0) return;
    const waited = performance.now() - this.queue[0].at;
    if (this.closed || this.hurry || this.queue.length >= this.opts.maxBatch || waited >= this.opts.maxWaitMs) {
      this.flush();
      return;
    }
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, this.opts.maxWaitMs - waited);
    }
  }

  private flush(): void {
    if (this.running || this.queue.length === 0) {
      if (!this.running && this.queue.length === 0) this.wakeIdle();
      return;
    }
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const batch = this.queue.splice(0, this.opts.maxBatch);
    this.running = true;
    void this.runBatch(batch);
  }

  private async runBatch(batch: Array<Pending<I, O>>): Promise<void> {
    const t0 = performance.now();
    let out: O[] | undefined;
    let error: unknown;
    try {
      out = await this.run(batch.map((p) => p.item));
      if (!Array.isArray(out) || out.length !== batch.length) {
        throw new Error(`batch run returned ${Array.isArray(out) ? out.length : typeof out} results for ${batch.length} items`);
      }
    } catch (e) {
      out = undefined;
      error = e;
    }
    // Report before answering, so whoever sees an answer also sees the batch counted.
    try {
      this.opts.onBatch?.(batch.length, performance.now() - t0, out !== undefined);
    } catch {
      // a failing observer must not lose answers
    }
    batch.forEach((p, i) => (out !== undefined ? p.resolve(out[i]) : p.reject(error)));
    this.running = false;
    if (this.queue.length === 0) this.wakeIdle();
    else this.schedule();
  }

  private wakeIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }
}

/**
 * Split a micro-batch into groups of similar token length, so that padding every row of a model run to
 * its longest row wastes little: items are taken in ascending length and a group is closed when the
 * next item is longer than its first by more than `max(slack, ratio × (first + 2))` tokens (+2 for
 * [CLS]/[SEP]). Returns item indices per group, groups in ascending length, stable within equal lengths.
 * On CPU a run costs about its padded token count, so one run over texts of 20 and 250 tokens costs
 * nearly two runs of 250: grouping keeps the saving of fewer runs without paying for the padding.
 */
export function lengthGroups(lengths: readonly number[], opts: { ratio?: number; slack?: number } = {}): number[][] {
  const ratio = opts.ratio ?? 0.25;
  const slack = opts.slack ?? 8;
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[a] - lengths[b] || a - b);
  const out: number[][] = [];
  let cur: number[] = [];
  let first = 0;
  for (const i of order) {
    if (cur.length > 0 && lengths[i] - first > Math.max(slack, ratio * (first + 2))) {
      out.push(cur);
      cur = [];
    }
    if (cur.length === 0) first = lengths[i];
    cur.push(i);
  }
  if (cur.length > 0) out.push(cur);
  return out;
}
