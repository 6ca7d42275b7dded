/**
 * Inference engines behind /predict. An engine takes one text at a time and answers its JSON line;
 * inside, `lanes` micro-batchers (one per inference worker, src/serve/batcher.ts) each keep at most one
 * model run in flight, so N workers run N batches at once. A text goes to the lane that can start it
 * soonest (idle first, then the shortest queue).
 *
 * - in-process (`workers: 0`): one lane, one Predictor on the main thread (the behaviour before workers);
 * - worker pool (`workers: N`, src/serve/workers.ts): N lanes over N worker threads, each thread with its
 *   own onnxruntime session, so the main thread only parses HTTP, caches and batches.
 */
import { MicroBatcher } from './batcher.js';
import type { BatchRun } from './run-batch.js';

export interface EngineHooks {
  onBatch?: (size: number, ms: number, ok: boolean) => void;
}

export class LaneEngine {
  private readonly lanes: Array<MicroBatcher<string, string | Error>>;

  constructor(
    runs: BatchRun[],
    opts: { maxBatch: number; maxWaitMs: number } & EngineHooks,
    private readonly release: () => Promise<void>,
  ) {
    if (runs.length === 0) throw new RangeError('an engine needs at least one lane');
    this.lanes = runs.map((run) => new MicroBatcher<string, string | Error>(run, { maxBatch: opts.maxBatch, maxWaitMs: opts.maxWaitMs, onBatch: opts.onBatch }));
  }

  /** Number of lanes (inference workers). */
  get size(): number {
    return this.lanes.length;
  }

  /** Texts waiting for a model run, over all lanes (runs in flight not counted). */
  get pending(): number {
    let n = 0;
    for (const l of this.lanes) n += l.pending;
    return n;
  }

  /** Model runs in flight. */
  get busy(): number {
    return this.lanes.filter((l) => l.busy).length;
  }

  submit(text: string): Promise<string | Error> {
    let best = this.lanes[0];
    let bestCost = Infinity;
    for (const l of this.lanes) {
      const cost = l.pending + (l.busy ? l.opts.maxBatch : 0);
      if (cost < bestCost) {
        best = l;
        bestCost = cost;
      }
    }
    return best.submit(text);
  }

  flushNow(): void {
    for (const l of this.lanes) l.flushNow();
  }

  /** Run what is queued, then release the model(s). */
  async close(): Promise<void> {
    await Promise.all(this.lanes.map((l) => l.close()));
    await this.release();
  }
}
