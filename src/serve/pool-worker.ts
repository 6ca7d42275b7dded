/**
 * One inference worker thread of the serve pool (run by piscina from dist/serve/pool-worker.js): its own
 * Predictor (onnxruntime session with `threads` intra-op threads) opened once, then one task per
 * micro-batch. Answers cross the thread boundary as `{ok}` / `{err}` (plain data).
 */
import { workerData } from 'piscina';
import type { ModelFolder } from '../onnx/types.js';
import { Predictor } from '../runtime/predict.js';
import { batchRunner } from './run-batch.js';

export interface PoolWorkerData {
  folder: ModelFolder;
  threads: number;
  maxBatch: number;
  windowSize?: number;
  overlap?: number;
}

export type PoolAnswer = { ok: string } | { err: string };

export interface PoolResult {
  answers: PoolAnswer[];
  /** Predictor calls this batch made. */
  calls: number;
}

const data = workerData as PoolWorkerData;
const predictor = await Predictor.open(data.folder, {
  threads: data.threads,
  batchSize: data.maxBatch,
  windowSize: data.windowSize,
  overlap: data.overlap,
});
let calls = 0;
const run = batchRunner(predictor, () => calls++);

export default async function predictBatch(texts: string[]): Promise<PoolResult> {
  calls = 0;
  const out = await run(texts);
  return { answers: out.map((a) => (a instanceof Error ? { err: a.message } : { ok: a })), calls };
}
