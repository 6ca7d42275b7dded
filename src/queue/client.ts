/** The client side of `ranerc predict --queue`: enqueue chunks, wait for every result, return the lines in input order. */
import { randomBytes } from 'node:crypto';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { GraphError } from '../errors.js';
import { connectionOf, jobId, resultsKey, type PredictJob } from './protocol.js';

export interface QueuePredictOptions {
  url: string;
  queueName: string;
  texts: string[];
  modelSha: string;
  offsets: 'codepoint' | 'utf16';
  windowSize?: number;
  overlap?: number;
  batch: number;
  /** Texts per job (default 100). */
  chunk?: number;
  /** Tries per job before the run fails (default 5). */
  attempts?: number;
  onProgress?: (doneTexts: number) => void;
}

export async function predictViaQueue(o: QueuePredictOptions): Promise<string[]> {
  const chunk = o.chunk ?? 100;
  const run = `${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
  const connection = connectionOf(o.url);
  const queue = new Queue(o.queueName, { connection });
  const events = new QueueEvents(o.queueName, { connection });
  const redis = new Redis({ ...connection, maxRetriesPerRequest: 20 });
  redis.on('error', () => {});
  const chunks = Math.ceil(o.texts.length / chunk);
  let failed: Error | undefined;
  events.on('failed', ({ jobId: id, failedReason }) => {
    if (!id.startsWith(`${run}-`)) return;
    void queue.getJob(id).then((job) => {
      if (job && job.attemptsMade >= (job.opts.attempts ?? 1)) failed ??= new GraphError(`job ${id} failed ${job.attemptsMade} times: ${failedReason}`);
    });
  });
  try {
    await events.waitUntilReady();
    const jobs = Array.from({ length: chunks }, (_, k) => {
      const data: PredictJob = {
        run,
        index: k,
        texts: o.texts.slice(k * chunk, (k + 1) * chunk),
        modelSha: o.modelSha,
        offsets: o.offsets,
        windowSize: o.windowSize,
        overlap: o.overlap,
        batch: o.batch,
      };
      return {
        name: 'predict',
        data,
        opts: { jobId: jobId(run, k), attempts: o.attempts ?? 5, backoff: { type: 'fixed', delay: 200 }, removeOnComplete: true, removeOnFail: 1000 },
      };
    });
    for (let i = 0; i < jobs.length; i += 500) await queue.addBulk(jobs.slice(i, i + 500));
    const key = resultsKey(run);
    for (;;) {
      if (failed) throw failed;
      const n = await redis.hlen(key);
      o.onProgress?.(Math.min(o.texts.length, n * chunk));
      if (n >= chunks) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const all = await redis.hgetall(key);
    const out: string[] = [];
    for (let k = 0; k < chunks; k++) {
      const lines = JSON.parse(all[String(k)] ?? 'null') as string[] | null;
      const want = Math.min(chunk, o.texts.length - k * chunk);
      if (!Array.isArray(lines) || lines.length !== want) throw new GraphError(`chunk ${k} of run ${run} came back with ${lines?.length ?? 0} answers, expected ${want}`);
      out.push(...lines);
    }
    await redis.del(key);
    return out;
  } finally {
    await events.close();
    await queue.close();
    redis.disconnect();
  }
}
