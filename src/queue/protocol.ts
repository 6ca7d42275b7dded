/**
 * The job queue of `ranerc predict --queue` and `ranerc worker` (BullMQ on Redis).
 *
 * A run cuts its texts into chunks; chunk k becomes job `<run>:<k>` (BullMQ refuses a second job with the
 * same id, so nothing is enqueued twice). A worker writes the chunk's answer lines to the Redis hash
 * `ranerc:results:<run>` under field k — an idempotent write, so a chunk processed twice (a worker that
 * stalled, then came back) stores the same lines once. The client waits until the hash holds every chunk,
 * prints them in chunk order, and deletes the hash. A worker that dies holding a job loses its lock;
 * BullMQ's stalled-job check puts the job back for another worker.
 */
import { Redis } from 'ioredis';
import { InputError } from '../errors.js';

export const DEFAULT_QUEUE_NAME = 'ranerc-predict';

export interface PredictJob {
  /** predict: answer lines (default); emissions: teacher logits per text (for distill). */
  kind?: 'predict' | 'emissions';
  run: string;
  index: number;
  texts: string[];
  /** SHA-256 of the client's ONNX model: a worker serving another model refuses the job. */
  modelSha: string;
  offsets: 'codepoint' | 'utf16';
  windowSize?: number;
  overlap?: number;
  batch: number;
}

/** One chunk's teacher logits as stored: token counts and the row-major float32 logits, base64. */
export interface EmissionsChunk {
  counts: number[];
  logits: string;
}

export function resultsKey(run: string): string {
  return `ranerc:results:${run}`;
}

export function jobId(run: string, index: number): string {
  return `${run}-${index}`;
}

/** BullMQ connection options from a redis:// URL (BullMQ needs maxRetriesPerRequest null for workers). */
export function connectionOf(url: string): { host: string; port: number; username?: string; password?: string; db?: number; maxRetriesPerRequest: null } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InputError(`--queue "${url}" is not a URL`, { hint: 'give the Redis address as redis://host:port' });
  }
  if (u.protocol !== 'redis:') throw new InputError(`--queue "${url}" is not a redis:// URL`, { hint: 'give the Redis address as redis://host:port' });
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : undefined;
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(db !== undefined && Number.isInteger(db) ? { db } : {}),
    maxRetriesPerRequest: null,
  };
}

/** Fail fast (InputError, exit 2) when the queue's Redis does not answer PING within `ms`. */
export async function assertReachable(url: string, ms = 5000): Promise<void> {
  const c = connectionOf(url);
  const r = new Redis({ ...c, maxRetriesPerRequest: 0, lazyConnect: true, connectTimeout: ms, retryStrategy: () => null });
  r.on('error', () => {});
  try {
    await r.connect();
    await r.ping();
  } catch (e) {
    throw new InputError(`cannot reach the queue's Redis at ${url}: ${e instanceof Error ? e.message : String(e)}`, {
      hint: 'start redis-server there (or fix --queue host:port)',
      cause: e,
    });
  } finally {
    r.disconnect();
  }
}
