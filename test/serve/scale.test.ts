/**
 * The scale features against a real redis-server (started here on a free port, never the system service):
 * two replicas sharing one Redis, Redis killed mid-load, the queue bound (429), the worker pool, --lazy,
 * CORS and the per-client rate limit. Answers are checked against the PyTorch facts of the tiny fixture.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type RanercServer } from '../../src/serve/server.js';
import { answerLine, FACTS, http, metrics, postPredict, REPO } from './helpers.js';
import { ensureDist, REDIS_BIN, startRedis, type TestRedis } from './redis.js';

const CASE = FACTS.find((c) => c.id === 'bio-crf-msra-default-overlap')!;
const MODEL = join(REPO, CASE.model);
const TEXTS = CASE.predictions.map((p) => p.text);
const WANT = CASE.predictions.map((p) => answerLine(p.entities));

type Up = RanercServer & { url: string };
const servers: RanercServer[] = [];
async function start(opts: Partial<Parameters<typeof createServer>[0]> = {}): Promise<Up> {
  const s = await createServer({ model: MODEL, port: 0, ...opts });
  servers.push(s);
  return s as Up;
}

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await redis?.stop();
});

describe.skipIf(!REDIS_BIN)('two replicas sharing one Redis', () => {
  it('a text answered by replica A is a Redis hit on replica B, with the same (PyTorch) answer', async () => {
    const a = await start({ redis: redis.url });
    const b = await start({ redis: redis.url });
    const ra = await postPredict(a.url, { text: TEXTS[0] });
    expect(ra.status).toBe(200);
    expect(ra.body).toBe(WANT[0]);
    // the write to Redis is fire-and-forget: wait until A's SET has landed
    for (let i = 0; i < 50 && (await metrics(a.url)).get('ranerc_redis_misses_total') !== 1; i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 50));
    const before = await metrics(b.url);
    expect(before.get('ranerc_redis_hits_total')).toBe(0);
    const rb = await postPredict(b.url, { text: TEXTS[0] });
    expect(rb.status).toBe(200);
    expect(rb.body).toBe(WANT[0]);
    const mb = await metrics(b.url);
    expect(mb.get('ranerc_redis_hits_total')).toBe(1);
    expect(mb.get('ranerc_predict_calls_total')).toBe(0); // B never ran its model
    expect(mb.get('ranerc_redis_up')).toBe(1);
    const h = JSON.parse((await http(b.url, { path: '/healthz' })).body) as { redis: string };
    expect(h.redis).toBe('ready');
  });

  it('killing Redis mid-load gives zero 5xx; failures are counted; the server reconnects when Redis is back', async () => {
    const s = await start({ redis: redis.url, cacheSize: 0 });
    const n = 300;
    const statuses: number[] = [];
    const bodies: string[] = [];
    let sent = 0;
    const one = async (i: number): Promise<void> => {
      const r = await postPredict(s.url, { text: TEXTS[i % TEXTS.length] });
      statuses[i] = r.status;
      bodies[i] = r.body;
    };
    const worker = async (): Promise<void> => {
      while (sent < n) {
        const i = sent++;
        if (i === 100) await redis.kill();
        await one(i);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    expect(statuses.filter((c) => c >= 500)).toEqual([]);
    expect(statuses.every((c) => c === 200)).toBe(true);
    bodies.forEach((b, i) => expect(b).toBe(WANT[i % TEXTS.length]));
    const m = await metrics(s.url);
    expect((m.get('ranerc_redis_failures_total{op="get"}') ?? 0) + (m.get('ranerc_redis_failures_total{op="set"}') ?? 0)).toBeGreaterThan(0);
    expect(m.get('ranerc_redis_up')).toBe(0);
    expect(JSON.parse((await http(s.url, { path: '/healthz' })).body).redis).toBe('down');
    await redis.restart();
    let up = 0;
    for (let i = 0; i < 100 && up !== 1; i++) {
      await new Promise((r) => setTimeout(r, 50));
      up = (await metrics(s.url)).get('ranerc_redis_up') ?? 0;
    }
    expect(up).toBe(1);
    const r = await postPredict(s.url, { text: TEXTS[1] });
    expect(r.body).toBe(WANT[1]);
  }, 60_000);
});

describe('backpressure and limits', () => {
  it('a flood beyond the queue bound is answered 429 with Retry-After, never 5xx; the rest are right', async () => {
    const s = await start({ maxQueue: 4, maxBatch: 1, maxWaitMs: 0, cacheSize: 0 });
    const res = await Promise.all(Array.from({ length: 120 }, (_, i) => postPredict(s.url, { text: TEXTS[i % TEXTS.length] })));
    const codes = res.map((r) => r.status);
    expect(codes.filter((c) => c !== 200 && c !== 429)).toEqual([]);
    const rejected = res.filter((r) => r.status === 429);
    expect(rejected.length).toBeGreaterThan(0);
    for (const r of rejected) {
      expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(JSON.parse(r.body).error.code).toBe('queue_full');
    }
    res.forEach((r, i) => r.status === 200 && expect(r.body).toBe(WANT[i % TEXTS.length]));
    const m = await metrics(s.url);
    expect(m.get('ranerc_rejected_total')).toBe(rejected.length);
  }, 60_000);

  it('--rate-limit: the request past the limit gets 429 in the API error shape', async () => {
    const s = await start({ rateLimit: 3 });
    const codes: number[] = [];
    let last = '';
    for (let i = 0; i < 4; i++) {
      const r = await postPredict(s.url, { text: TEXTS[0] });
      codes.push(r.status);
      last = r.body;
    }
    expect(codes).toEqual([200, 200, 200, 429]);
    expect(JSON.parse(last).error.code).toBe('rate_limited');
    expect((await http(s.url, { path: '/healthz' })).status).toBe(200); // only /predict is limited
  });

  it('--cors ORIGIN answers the preflight and tags answers; without it no CORS headers', async () => {
    const s = await start({ cors: 'https://app.example' });
    const pre = await http(s.url, {
      method: 'OPTIONS',
      path: '/predict',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBe('https://app.example');
    const r = await http(s.url, { method: 'POST', path: '/predict', headers: { origin: 'https://app.example', 'content-type': 'application/json' }, body: JSON.stringify({ text: TEXTS[0] }) });
    expect(r.headers['access-control-allow-origin']).toBe('https://app.example');
    const plain = await start();
    const r2 = await http(plain.url, { method: 'POST', path: '/predict', headers: { origin: 'https://app.example', 'content-type': 'application/json' }, body: JSON.stringify({ text: TEXTS[0] }) });
    expect(r2.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('--lazy: /healthz says the model is not loaded until the first /predict, then ready', async () => {
    const s = await start({ lazy: true });
    const h0 = JSON.parse((await http(s.url, { path: '/healthz' })).body);
    expect(h0.state).toBe('unloaded');
    expect(h0.status).toBe('loading');
    expect((await postPredict(s.url, { text: TEXTS[2] })).body).toBe(WANT[2]);
    const h1 = JSON.parse((await http(s.url, { path: '/healthz' })).body);
    expect(h1).toMatchObject({ status: 'ok', state: 'ready' });
  });
});

describe('worker pool', () => {
  beforeAll(() => ensureDist(['dist/serve/pool-worker.js']), 120_000);

  it('2 worker threads answer exactly the PyTorch entities, batches spread over both', async () => {
    const s = await start({ workers: 2, cacheSize: 0, maxBatch: 4, maxWaitMs: 2 });
    const res = await Promise.all(Array.from({ length: 64 }, (_, i) => postPredict(s.url, { text: TEXTS[i % TEXTS.length] })));
    res.forEach((r, i) => {
      expect(r.status).toBe(200);
      expect(r.body).toBe(WANT[i % TEXTS.length]);
    });
    const many = await postPredict(s.url, { texts: TEXTS });
    expect(many.body).toBe(`{"results":[${WANT.join(',')}]}`);
    const m = await metrics(s.url);
    expect(m.get('ranerc_workers')).toBe(2);
    expect(m.get('ranerc_batch_size_count')).toBeGreaterThanOrEqual(2);
    expect(m.get('ranerc_predict_calls_total')).toBeGreaterThan(0);
    expect(JSON.parse((await http(s.url, { path: '/healthz' })).body).workers).toBe(2);
  }, 60_000);
});
