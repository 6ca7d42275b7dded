/**
 * The shared answer cache in Redis (ioredis): `GET`/`SET … PX ttl` of answer JSON under a key that hashes
 * the model's SHA-256, the prediction settings and the text, so replicas serving the same model with the
 * same settings share answers and nothing else collides. Redis is an optimization, never a dependency:
 * a command that fails (Redis down, slow, restarting) counts as a failure and reads as a miss; ioredis
 * keeps reconnecting in the background (offline queue off, so nothing waits for a dead server).
 */
import { Redis } from 'ioredis';
import { sha256 } from '../../util/fs.js';

export interface RedisCacheOptions {
  /** redis://[user:pass@]host:port[/db] */
  url: string;
  /** Model SHA-256 + settings: the namespace of every key. */
  namespace: string;
  /** Entry lifetime in seconds (0 = no expiry). */
  ttlSeconds: number;
  /** Longest wait for one command before it counts as failed (default 250 ms). */
  commandTimeoutMs?: number;
  /** Called on each failed command (metrics). */
  onFailure?: (op: 'get' | 'set', err: unknown) => void;
}

export class RedisCache {
  private readonly client: Redis;
  private readonly prefix: string;

  constructor(readonly opts: RedisCacheOptions) {
    this.prefix = `ranerc:answer:${sha256(opts.namespace).slice(0, 32)}:`;
    this.client = new Redis(opts.url, {
      lazyConnect: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 2000,
      commandTimeout: opts.commandTimeoutMs ?? 250,
      // reconnect forever, backing off to one attempt per second
      retryStrategy: (times: number) => Math.min(50 * times, 1000),
    });
    // connection errors are expected while Redis is away; commands report their own failures
    this.client.on('error', () => {});
  }

  /** Whether the connection is up now. */
  get ready(): boolean {
    return this.client.status === 'ready';
  }

  key(text: string): string {
    return this.prefix + sha256(text);
  }

  /** The cached answer, or undefined (miss or failure). */
  async get(text: string): Promise<string | undefined> {
    try {
      const v = await this.client.get(this.key(text));
      return v ?? undefined;
    } catch (e) {
      this.opts.onFailure?.('get', e);
      return undefined;
    }
  }

  /** Store an answer; failures are counted, never thrown. */
  async set(text: string, answer: string): Promise<void> {
    try {
      if (this.opts.ttlSeconds > 0) await this.client.set(this.key(text), answer, 'PX', Math.round(this.opts.ttlSeconds * 1000));
      else await this.client.set(this.key(text), answer);
    } catch (e) {
      this.opts.onFailure?.('set', e);
    }
  }

  /** Wait (up to `ms`) for the first connection; false when Redis did not answer in time. */
  async waitReady(ms: number): Promise<boolean> {
    if (this.ready) return true;
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.client.off('ready', on);
        resolve(false);
      }, ms);
      const on = (): void => {
        clearTimeout(t);
        resolve(true);
      };
      this.client.once('ready', on);
    });
  }

  async close(): Promise<void> {
    this.client.disconnect(false);
  }
}
