/** The client side of `ranerc predict --queue`: enqueue chunks, wait for every result, return the lines in input order. */
import { randomBytes } from 'node:crypto';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { GraphError } from '../errors.js';
import { assertReachable, connectionOf, jobId, resultsKey, type EmissionsChunk, type PredictJob } from './protocol.js';

/** The run's settings that every job carries (PredictJob), plus where and what to enqueue. */
export interface QueuePredictOptions extends Pick<PredictJob, 'modelSha' | 'offsets' | 'windowSize' | 'overlap' | 'batch'> {
  url: string;
  queueName: string;
  texts: string[];
  /** Texts per job (default 100). */
  chunk?: number;
  /** Tries per job before the run fails (default 5). */
  attempts?: number;
  onProgress?: (doneTexts: number) => void;
}

/** Answer lines of `o.texts` (as `ranerc predict` prints them), in input order. */
export async function predictViaQueue(o: QueuePredictOptions): Promise<string[]> {
  const chunk = o.chunk ?? 100;
  const fields = await runViaQueue(o, 'predict');
  const out: string[] = [];
  fields.forEach((f, k) => {
    const lines = JSON.parse(f) as string[];
    const want = Math.min(chunk, o.texts.length - k * chunk);
    if (!Array.isArray(lines) || lines.length !== want) throw new GraphError(`queue chunk ${k} came back with ${lines?.length ?? 0} answers, expected ${want}`);
    out.push(...lines);
  });
  return out;
}

/** Teacher logits of `o.texts` computed by the workers: one row-major tokens × labels array per text, in input order. */
export async function emissionsViaQueue(o: Omit<QueuePredictOptions, 'offsets'>): Promise<Array<{ tokens: number; logits: Float32Array }>> {
  const chunk = o.chunk ?? 100;
  const fields = await runViaQueue({ ...o, offsets: 'codepoint' }, 'emissions');
  const out: Array<{ tokens: number; logits: Float32Array }> = [];
  fields.forEach((f, k) => {
    const c = JSON.parse(f) as EmissionsChunk;
    const want = Math.min(chunk, o.texts.length - k * chunk);
    if (c.counts.length !== want) throw new GraphError(`queue chunk ${k} came back with logits of ${c.counts.length} texts, expected ${want}`);
    const buf = Buffer.from(c.logits, 'base64');
    const all = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    const total = c.counts.reduce((a, b) => a + b, 0);
    if (total === 0 ? all.length !== 0 : all.length % total !== 0) throw new GraphError(`queue chunk ${k}: ${all.length} logits do not split over ${total} tokens`);
    const L = total === 0 ? 0 : all.length / total;
    let at = 0;
    for (const n of c.counts) {
      out.push({ tokens: n, logits: all.slice(at * L, (at + n) * L) });
      at += n;
    }
  });
  return out;
}

/** Enqueue the chunks, wait for every result field, return them in chunk order (and delete the hash). */
async function runViaQueue(o: QueuePredictOptions, kind: 'predict' | 'emissions'): Promise<string[]> {
  const chunk = o.chunk ?? 100;
  await assertReachable(o.url);
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
    // a job that will be retried waits (delayed); one out of tries, or refused for good, stays failed
    void queue.getJob(id).then(async (job) => {
      if (job && (await job.getState()) === 'failed') failed ??= new GraphError(`queue job ${id} failed after ${job.attemptsMade} tries: ${failedReason}`);
    });
  });
  try {
    await events.waitUntilReady();
    const jobs = Array.from({ length: chunks }, (_, k) => {
      const data: PredictJob = {
        kind,
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
      const f = all[String(k)];
      if (f === undefined) throw new GraphError(`chunk ${k} of queue run ${run} has no result`);
      out.push(f);
    }
    await redis.del(key);
    return out;
  } finally {
    await events.close();
    await queue.close();
    redis.disconnect();
  }
}
