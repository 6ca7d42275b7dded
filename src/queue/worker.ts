/**
 * The worker side of the job queue: one BullMQ Worker over a model folder. Each job's texts run through
 * the shared Predictor pipeline (windows as the client asked) and its answer lines go to the run's result
 * hash under the chunk index (HSET: idempotent, so a retried job cannot duplicate answers).
 */
import { hostname } from 'node:os';
import { UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { entitiesJson } from '../cli/predict.js';
import type { ModelFolder } from '../onnx/types.js';
import { Predictor } from '../runtime/predict.js';
import { sha256File } from '../util/fs.js';
import { assertReachable, connectionOf, resultsKey, type EmissionsChunk, type PredictJob } from './protocol.js';

export interface QueueWorkerOptions {
  url: string;
  queueName: string;
  folder: ModelFolder;
  threads?: number;
  /** Jobs processed at once (default 1). */
  concurrency?: number;
  /** Job lock time: a worker silent this long is taken for dead and its job retried (default 30 s). */
  lockMs?: number;
  /** Worker name recorded on the jobs it takes (BullMQ processedBy; default hostname:pid). */
  name?: string;
  /** Result hashes expire after this many seconds (default 1 day), so an abandoned run does not stay. */
  resultTtlS?: number;
  onJob?: (texts: number) => void;
}

export interface QueueWorker {
  worker: Worker;
  modelSha: string;
  close(): Promise<void>;
}

export async function startQueueWorker(o: QueueWorkerOptions): Promise<QueueWorker> {
  await assertReachable(o.url);
  const modelSha = await sha256File(o.folder.onnxPath);
  const connection = connectionOf(o.url);
  const redis = new Redis({ ...connection, maxRetriesPerRequest: 20 });
  redis.on('error', () => {});
  const predictors = new Map<string, Promise<Predictor>>();
  const predictorFor = (j: PredictJob): Promise<Predictor> => {
    const k = `${j.windowSize ?? ''}:${j.overlap ?? ''}:${j.batch}`;
    let p = predictors.get(k);
    if (!p) {
      p = Predictor.open(o.folder, { threads: o.threads, windowSize: j.windowSize, overlap: j.overlap, batchSize: j.batch });
      predictors.set(k, p);
    }
    return p;
  };
  const lockMs = o.lockMs ?? 30_000;
  const worker = new Worker<PredictJob, number>(
    o.queueName,
    async (job) => {
      const j = job.data;
      if (j.modelSha !== modelSha) {
        throw new UnrecoverableError(`this worker serves a different model (SHA-256 ${modelSha.slice(0, 12)}…, the job wants ${j.modelSha.slice(0, 12)}…)`);
      }
      const predictor = await predictorFor(j);
      let value: string;
      if (j.kind === 'emissions') {
        const ems = await predictor.emissions(j.texts);
        const all = new Float32Array(ems.reduce((n, e) => n + e.logits.length, 0));
        let at = 0;
        for (const e of ems) {
          all.set(e.logits, at);
          at += e.logits.length;
        }
        const chunk: EmissionsChunk = { counts: ems.map((e) => e.tokens.length), logits: Buffer.from(all.buffer, all.byteOffset, all.byteLength).toString('base64') };
        value = JSON.stringify(chunk);
      } else {
        const ents = await predictor.predict(j.texts);
        value = JSON.stringify(j.texts.map((t, i) => entitiesJson(t, ents[i], j.offsets)));
      }
      const key = resultsKey(j.run);
      await redis.multi().hset(key, String(j.index), value).expire(key, o.resultTtlS ?? 86_400).exec();
      o.onJob?.(j.texts.length);
      return j.texts.length;
    },
    {
      connection,
      name: o.name ?? `${hostname()}:${process.pid}`,
      concurrency: o.concurrency ?? 1,
      lockDuration: lockMs,
      stalledInterval: Math.max(500, Math.round(lockMs / 2)),
      maxStalledCount: 5,
    },
  );
  worker.on('error', () => {});
  await worker.waitUntilReady();
  return {
    worker,
    modelSha,
    async close() {
      await worker.close();
      for (const p of predictors.values()) await (await p).close();
      redis.disconnect();
    },
  };
}
