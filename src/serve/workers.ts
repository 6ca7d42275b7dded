/**
 * The serve worker pool: N worker threads (piscina), each with its own onnxruntime session
 * (src/serve/pool-worker.ts) and its own lane (micro-batcher) in the engine. Intra-op threads per worker
 * default to cores / workers, so the workers together use the cores once instead of oversubscribing them.
 *
 * The worker runs compiled JavaScript: dist/serve/pool-worker.js (`npm run build`), found from both
 * src/serve/ (tests) and dist/serve/ (the CLI).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { InputError } from '../errors.js';
import type { ModelFolder } from '../onnx/types.js';
import { physicalCores } from './cores.js';
import { LaneEngine, type EngineHooks } from './engine.js';
import type { PoolResult, PoolWorkerData } from './pool-worker.js';

export const POOL_WORKER = new URL('../../dist/serve/pool-worker.js', import.meta.url);

export interface PoolOptions extends EngineHooks {
  folder: ModelFolder;
  workers: number;
  /** Intra-op threads per worker (default max(1, floor(physical cores / workers))). */
  threads?: number;
  maxBatch: number;
  maxWaitMs: number;
  windowSize?: number;
  overlap?: number;
  /** Called with the Predictor calls each batch made (metrics). */
  onCalls?: (n: number) => void;
}

/** Start the pool and wait until every worker has opened its model. */
export async function createPoolEngine(o: PoolOptions): Promise<LaneEngine> {
  const filename = fileURLToPath(POOL_WORKER);
  if (!existsSync(filename)) {
    throw new InputError(`the worker pool needs the compiled worker ${filename}`, { hint: 'run `npm run build` (or serve with --workers 0)' });
  }
  const threads = o.threads ?? Math.max(1, Math.floor(physicalCores() / o.workers));
  const workerData: PoolWorkerData = { folder: o.folder, threads, maxBatch: o.maxBatch, windowSize: o.windowSize, overlap: o.overlap };
  const pool = new Piscina({
    filename,
    workerData,
    minThreads: o.workers,
    maxThreads: o.workers,
    concurrentTasksPerWorker: 1,
    idleTimeout: Number.MAX_SAFE_INTEGER,
  });
  // Each worker opens its model at start-up; a warm-up task per worker surfaces load errors now.
  try {
    await Promise.all(Array.from({ length: o.workers }, () => pool.run([] as string[])));
  } catch (e) {
    await pool.destroy();
    throw e;
  }
  const run = async (texts: string[]): Promise<Array<string | Error>> => {
    const r = (await pool.run(texts)) as PoolResult;
    o.onCalls?.(r.calls);
    return r.answers.map((a) => ('ok' in a ? a.ok : new Error(a.err)));
  };
  return new LaneEngine(
    Array.from({ length: o.workers }, () => run),
    { maxBatch: o.maxBatch, maxWaitMs: o.maxWaitMs, onBatch: o.onBatch },
    () => pool.destroy(),
  );
}
