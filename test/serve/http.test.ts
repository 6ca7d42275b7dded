/**
 * HTTP tests against real servers on loopback (port 0) over the tiny fixture models. Answers are checked
 * against the PyTorch predictions of the same texts (test/cli/fixtures/eval_facts.json, the facts
 * `ranerc predict` is tested on) and against Predictor.predict.
 */
import { readFile } from 'node:fs/promises';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { entitiesJson } from '../../src/cli/predict.js';
import { loadModelFolder } from '../../src/onnx/folder.js';
import { Predictor } from '../../src/runtime/predict.js';
import { createServer, PUBLIC_DIR, type RanercServer } from '../../src/serve/server.js';
import { answerLine, FACTS, http, metrics, postPredict, REPO } from './helpers.js';

const CASE = FACTS.find((c) => c.id === 'bio-crf-msra-default-overlap')!;
const MODEL = join(REPO, CASE.model);
const TEXTS = CASE.predictions.map((p) => p.text);
const WANT = CASE.predictions.map((p) => answerLine(p.entities));

const servers: RanercServer[] = [];
async function start(opts: Parameters<typeof createServer>[0]): Promise<RanercServer & { url: string }> {
  const s = await createServer({ port: 0, ...opts });
  servers.push(s);
  return s as RanercServer & { url: string };
}

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

describe('POST /predict answers', () => {
  let s: RanercServer & { url: string };
  let fromPredictor: string[];
  beforeAll(async () => {
    s = await start({ model: MODEL });
    const p = await Predictor.open(await loadModelFolder({ model: MODEL }));
    try {
      fromPredictor = (await p.predict(TEXTS)).map((e, i) => entitiesJson(TEXTS[i], e));
    } finally {
      await p.close();
    }
  });

  it('{"text"} → exactly the PyTorch entities, as Predictor.predict and `ranerc predict` give them (long texts windowed)', async () => {
    expect(CASE.window).toBe(62); // the folder's own window (max positions 64 − 2), as eval uses by default
    expect(TEXTS.some((t) => t.length > 62)).toBe(true);
    const agent = new Agent({ keepAlive: true });
    try {
      for (let i = 0; i < TEXTS.length; i++) {
        const r = await postPredict(s.url, { text: TEXTS[i] }, agent);
        expect(r.status).toBe(200);
        expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
        expect(r.headers['server-timing']).toMatch(/^predict;dur=\d+(\.\d+)?$/);
        expect(r.body).toBe(WANT[i]);
        expect(r.body).toBe(fromPredictor[i]);
      }
    } finally {
      agent.destroy();
    }
    expect(WANT.filter((w) => w !== '{"entities":[]}').length).toBeGreaterThan(20);
  });

  it('{"texts"} → {"results":[...]} in input order', async () => {
    const r = await postPredict(s.url, { texts: TEXTS });
    expect(r.status).toBe(200);
    expect(r.body).toBe(`{"results":[${WANT.join(',')}]}`);
    const parsed = JSON.parse(r.body) as { results: Array<{ entities: unknown[] }> };
    expect(parsed.results).toHaveLength(TEXTS.length);
  });

  it('offsets count code points: text outside the BMP before an entity', async () => {
    const i = CASE.predictions.findIndex((p) => p.entities.length >= 2 && p.text.length < 62);
    const text = `𠀋𠀋${TEXTS[i]}`;
    const r = await postPredict(s.url, { text });
    const { entities } = JSON.parse(r.body) as { entities: Array<{ text: string; start: number; end: number }> };
    expect(entities.length).toBeGreaterThan(0);
    const cps = [...text];
    for (const e of entities) {
      expect(cps.slice(e.start, e.end).join('')).toBe(e.text);
      expect(text.slice(e.start, e.end)).not.toBe(e.text); // UTF-16 indices would be 2 further on
    }
  });

  it('GET /healthz, /api/info (labels from config.json, reserved colours)', async () => {
    const h = await http(s.url, { path: '/healthz' });
    expect(h.status).toBe(200);
    expect(JSON.parse(h.body)).toMatchObject({ status: 'ok', model: 'bio-crf-op14' });
    const i = JSON.parse((await http(s.url, { path: '/api/info' })).body) as Record<string, unknown>;
    const config = JSON.parse(await readFile(join(MODEL, 'config.json'), 'utf8')) as { id2label: Record<string, string> };
    expect(i.labels).toEqual(Object.keys(config.id2label).sort((a, b) => +a - +b).map((k) => config.id2label[k]));
    expect(i).toMatchObject({ model: 'bio-crf-op14', decoder: 'crf', scheme: 'BIO', types: ['PER', 'LOC', 'ORG'], window: 62 });
    expect(i.colors).toEqual({ PER: '#ff2e63', LOC: '#08f7fe', ORG: '#fef200' });
  });

  it('the page and its assets are served locally with a same-origin CSP and reference nothing outside', async () => {
    for (const [path, type, file] of [
      ['/', 'text/html', 'index.html'],
      ['/assets/app.js', 'text/javascript', 'app.js'],
      ['/assets/style.css', 'text/css', 'style.css'],
      ['/assets/favicon.svg', 'image/svg+xml', 'favicon.svg'],
    ]) {
      const r = await http(s.url, { path });
      expect(r.status, path).toBe(200);
      expect(String(r.headers['content-type'])).toContain(type);
      expect(String(r.headers['content-security-policy'])).toContain("default-src 'self'");
      expect(r.body).toBe(await readFile(new URL(file, PUBLIC_DIR), 'utf8'));
      // no CDN, no web fonts: no absolute URLs, protocol-relative URLs, @import or url() in the page files
      const code = r.body.replace(/http:\/\/www\.w3\.org\/2000\/svg/g, '');
      expect(code, path).not.toMatch(/https?:\/\/|["'(]\/\/|@import|url\(|@font-face/);
    }
  });

  it('GET /metrics: Prometheus text with request counts by route/status, latency histogram, model info', async () => {
    const s2 = await start({ model: MODEL });
    for (let i = 0; i < 3; i++) await postPredict(s2.url, { text: TEXTS[i] });
    await postPredict(s2.url, { text: 1 });
    await http(s2.url, { path: '/nope' });
    await http(s2.url, { path: '/%E0%A4%A' });
    const r = await http(s2.url, { path: '/metrics' });
    expect(r.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    const m = await metrics(s2.url);
    expect(m.get('ranerc_http_requests_total{method="POST",route="/predict",status="200"}')).toBe(3);
    expect(m.get('ranerc_http_requests_total{method="POST",route="/predict",status="400"}')).toBe(1);
    expect(m.get('ranerc_http_requests_total{method="GET",route="unmatched",status="404"}')).toBe(1);
    expect(m.get('ranerc_http_errors_total{code="text_not_string"}')).toBe(1);
    expect(m.get('ranerc_http_errors_total{code="not_found"}')).toBe(1);
    expect(m.get('ranerc_http_requests_total{method="GET",route="unmatched",status="400"}')).toBe(1);
    expect(m.get('ranerc_http_errors_total{code="bad_url"}')).toBe(1);
    expect(m.get('ranerc_http_request_duration_seconds_count{route="/predict"}')).toBe(4);
    expect(m.get('ranerc_http_request_duration_seconds_bucket{le="+Inf",route="/predict"}')).toBe(4);
    expect(m.get('ranerc_predict_texts_total')).toBe(3);
    expect(m.get('ranerc_batch_size_sum')).toBe(3);
    expect(m.get('ranerc_model_info{model="bio-crf-op14",decoder="crf",scheme="BIO",labels="7",window="62"}')).toBe(1);
    // cumulative buckets never decrease
    // (prom-client writes the le label first; Prometheus does not care about label order)
    const buckets = [...m.entries()].filter(([k]) => k.startsWith('ranerc_http_request_duration_seconds_bucket{') && k.endsWith(',route="/predict"}'));
    expect(buckets.length).toBe(14);
    for (let i = 1; i < buckets.length; i++) expect(buckets[i][1]).toBeGreaterThanOrEqual(buckets[i - 1][1]);
    expect(r.body).toContain('# TYPE ranerc_http_request_duration_seconds histogram');
  });
});

describe('micro-batching and caching', () => {
  it('16 concurrent requests share model runs (a batch > 1), and every answer is still exact', async () => {
    const s = await start({ model: MODEL, maxWaitMs: 200, maxBatch: 32, cacheSize: 0 });
    const picks = Array.from({ length: 16 }, (_, i) => i);
    const rs = await Promise.all(picks.map((i) => postPredict(s.url, { text: TEXTS[i] })));
    rs.forEach((r, k) => expect(r.body).toBe(WANT[picks[k]]));
    const m = await metrics(s.url);
    const count = m.get('ranerc_batch_size_count')!;
    expect(m.get('ranerc_batch_size_sum')).toBe(16);
    expect(count).toBeLessThan(16);
    expect(m.get('ranerc_batch_size_bucket{le="1"}')).toBeLessThan(count); // some batch held more than one text
    expect(m.get('ranerc_cache_hits_total')).toBe(0);
  });

  it('--max-batch 1 runs every text alone', async () => {
    const s = await start({ model: MODEL, maxWaitMs: 0, maxBatch: 1, cacheSize: 0 });
    const rs = await Promise.all(TEXTS.slice(0, 8).map((t) => postPredict(s.url, { text: t })));
    rs.forEach((r, k) => expect(r.body).toBe(WANT[k]));
    const m = await metrics(s.url);
    expect(m.get('ranerc_batch_size_count')).toBe(8);
    expect(m.get('ranerc_batch_size_bucket{le="1"}')).toBe(8);
  });

  it('the LRU cache answers repeated texts (hits and misses counted, least recently used evicted)', async () => {
    const s = await start({ model: MODEL, cacheSize: 2, maxWaitMs: 0 });
    const [a, b, c] = [0, 1, 2];
    for (const i of [a, a, b, c, a, c]) {
      // a miss, a hit, b miss, c miss (evicts a), a miss (evicts b), c hit
      const r = await postPredict(s.url, { text: TEXTS[i] });
      expect(r.body).toBe(WANT[i]);
    }
    const m = await metrics(s.url);
    expect(m.get('ranerc_cache_hits_total')).toBe(2);
    expect(m.get('ranerc_cache_misses_total')).toBe(4);
    expect(m.get('ranerc_cache_entries')).toBe(2);
    expect(m.get('ranerc_batch_size_sum')).toBe(4);
  });

  it('identical texts in flight together share one model run', async () => {
    const s = await start({ model: MODEL, cacheSize: 16, maxWaitMs: 150 });
    const rs = await Promise.all(Array.from({ length: 6 }, () => postPredict(s.url, { text: TEXTS[3] })));
    for (const r of rs) expect(r.body).toBe(WANT[3]);
    const m = await metrics(s.url);
    expect(m.get('ranerc_batch_size_sum')).toBe(1);
    expect((m.get('ranerc_cache_coalesced_total') ?? 0) + (m.get('ranerc_cache_hits_total') ?? 0)).toBe(5);
  });

  it('cache size 0 sends every text to the model', async () => {
    const s = await start({ model: MODEL, cacheSize: 0, maxWaitMs: 0 });
    for (let k = 0; k < 3; k++) expect((await postPredict(s.url, { text: TEXTS[0] })).body).toBe(WANT[0]);
    const m = await metrics(s.url);
    expect(m.get('ranerc_cache_hits_total')).toBe(0);
    expect(m.get('ranerc_batch_size_sum')).toBe(3);
  });
});

describe('bad requests get a 4xx JSON error', () => {
  let s: RanercServer & { url: string };
  beforeAll(async () => {
    s = await start({ model: MODEL, maxTextChars: 20, maxTexts: 3, maxBodyBytes: 2048 });
  });

  const J = { 'content-type': 'application/json' };
  const cases: Array<[string, { method?: string; path?: string; headers?: Record<string, string>; body?: string | Buffer }, number, string]> = [
    ['not JSON', { method: 'POST', path: '/predict', headers: J, body: '{"text": "马云"' }, 400, 'invalid_json'],
    ['empty body', { method: 'POST', path: '/predict', headers: J, body: '' }, 400, 'empty_body'],
    ['whitespace body', { method: 'POST', path: '/predict', headers: J, body: ' \n ' }, 400, 'empty_body'],
    ['invalid UTF-8', { method: 'POST', path: '/predict', headers: J, body: Buffer.from([0x7b, 0x22, 0x74, 0x65, 0x78, 0x74, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]) }, 400, 'invalid_utf8'],
    ['text/plain', { method: 'POST', path: '/predict', headers: { 'content-type': 'text/plain' }, body: '马云' }, 415, 'unsupported_media_type'],
    ['form', { method: 'POST', path: '/predict', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'text=a' }, 415, 'unsupported_media_type'],
    ['no content type', { method: 'POST', path: '/predict', body: '{"text":"a"}' }, 415, 'unsupported_media_type'],
    ['no body at all', { method: 'POST', path: '/predict' }, 400, 'empty_body'],
    ['latin1 charset', { method: 'POST', path: '/predict', headers: { 'content-type': 'application/json; charset=latin1' }, body: '{"text":"a"}' }, 415, 'unsupported_charset'],
    ['JSON null', { method: 'POST', path: '/predict', headers: J, body: 'null' }, 400, 'body_not_object'],
    ['JSON array', { method: 'POST', path: '/predict', headers: J, body: '["马云"]' }, 400, 'body_not_object'],
    ['JSON string', { method: 'POST', path: '/predict', headers: J, body: '"马云"' }, 400, 'body_not_object'],
    ['missing text', { method: 'POST', path: '/predict', headers: J, body: '{}' }, 400, 'missing_text'],
    ['misspelt field', { method: 'POST', path: '/predict', headers: J, body: '{"txt":"马云"}' }, 400, 'unknown_field'],
    ['number text', { method: 'POST', path: '/predict', headers: J, body: '{"text":42}' }, 400, 'text_not_string'],
    ['null text', { method: 'POST', path: '/predict', headers: J, body: '{"text":null}' }, 400, 'text_not_string'],
    ['array text', { method: 'POST', path: '/predict', headers: J, body: '{"text":["马云"]}' }, 400, 'text_not_string'],
    ['empty text', { method: 'POST', path: '/predict', headers: J, body: '{"text":""}' }, 400, 'empty_text'],
    ['lone surrogate', { method: 'POST', path: '/predict', headers: J, body: '{"text":"马\\ud800云"}' }, 400, 'invalid_text'],
    ['text over the limit', { method: 'POST', path: '/predict', headers: J, body: JSON.stringify({ text: '中'.repeat(21) }) }, 413, 'text_too_long'],
    ['text and texts', { method: 'POST', path: '/predict', headers: J, body: '{"text":"a","texts":["b"]}' }, 400, 'ambiguous_body'],
    ['texts not an array', { method: 'POST', path: '/predict', headers: J, body: '{"texts":"马云"}' }, 400, 'texts_not_array'],
    ['texts with a number', { method: 'POST', path: '/predict', headers: J, body: '{"texts":["a",1]}' }, 400, 'text_not_string'],
    ['texts empty', { method: 'POST', path: '/predict', headers: J, body: '{"texts":[]}' }, 400, 'empty_texts'],
    ['texts with an empty text', { method: 'POST', path: '/predict', headers: J, body: '{"texts":["a",""]}' }, 400, 'empty_text'],
    ['too many texts', { method: 'POST', path: '/predict', headers: J, body: '{"texts":["a","b","c","d"]}' }, 413, 'too_many_texts'],
    ['a long text in texts', { method: 'POST', path: '/predict', headers: J, body: JSON.stringify({ texts: ['a', 'x'.repeat(21)] }) }, 413, 'text_too_long'],
    ['body over the limit', { method: 'POST', path: '/predict', headers: J, body: JSON.stringify({ text: 'a'.repeat(3000) }) }, 413, 'body_too_large'],
    ['unknown path', { path: '/predictions' }, 404, 'not_found'],
    ['unknown POST path', { method: 'POST', path: '/v1/predict', headers: J, body: '{"text":"a"}' }, 404, 'not_found'],
    ['trailing slash', { method: 'POST', path: '/predict/', headers: J, body: '{"text":"a"}' }, 404, 'not_found'],
    ['bad percent-encoding', { path: '/%E0%A4%A' }, 400, 'bad_url'],
  ];
  for (const [name, req, status, code] of cases) {
    it(`${name} → ${status} ${code}`, async () => {
      const r = await http(s.url, req);
      expect(r.status).toBe(status);
      expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
      const body = JSON.parse(r.body) as { error: { code: string; message: string } };
      expect(body.error.code).toBe(code);
      expect(body.error.message.length).toBeGreaterThan(5);
    });
  }

  it('a text of exactly the limit in code points (20 characters outside the BMP = 40 UTF-16 units) is accepted', async () => {
    const r = await postPredict(s.url, { text: '𠀋'.repeat(20) });
    expect(r.status).toBe(200);
    expect(r.body).toBe('{"entities":[]}');
  });

  const wrongMethods: Array<[string, string, string]> = [
    ['GET', '/predict', 'POST'],
    ['PUT', '/predict', 'POST'],
    ['DELETE', '/predict', 'POST'],
    ['PATCH', '/predict', 'POST'],
    ['POST', '/healthz', 'GET, HEAD'],
    ['POST', '/metrics', 'GET, HEAD'],
    ['DELETE', '/', 'GET, HEAD'],
    ['POST', '/api/info', 'GET, HEAD'],
  ];
  for (const [method, path, allow] of wrongMethods) {
    it(`${method} ${path} → 405 with Allow: ${allow}`, async () => {
      const r = await http(s.url, { method, path });
      expect(r.status).toBe(405);
      expect(r.headers.allow).toBe(allow);
      expect((JSON.parse(r.body) as { error: { code: string } }).error.code).toBe('method_not_allowed');
    });
  }

  it('HEAD on GET routes answers without a body', async () => {
    const r = await http(s.url, { method: 'HEAD', path: '/healthz' });
    expect(r.status).toBe(200);
    expect(r.body).toBe('');
  });

  it('errors are counted by code in /metrics', async () => {
    const m = await metrics(s.url);
    expect(m.get('ranerc_http_errors_total{code="method_not_allowed"}')).toBe(wrongMethods.length);
    expect(m.get('ranerc_http_errors_total{code="unsupported_media_type"}')).toBe(3);
  });
});

describe('model failures', () => {
  it('a text the model cannot run gets 500; texts batched with it still get their answers; the server stays up', async () => {
    // windows of 100 tokens on a model with 64 positions: onnxruntime rejects texts longer than 62 tokens
    const s = await start({ model: MODEL, windowSize: 100, overlap: 10, maxWaitMs: 100 });
    const long = TEXTS.find((t) => [...t].length > 80)!;
    const short = [0, 1, 2].map((i) => TEXTS[i]).filter((t) => t.length < 60);
    expect(short.length).toBeGreaterThan(0);
    const [bad, ...good] = await Promise.all([postPredict(s.url, { text: long }), ...short.map((t) => postPredict(s.url, { text: t }))]);
    expect(bad.status).toBe(500);
    expect((JSON.parse(bad.body) as { error: { code: string } }).error.code).toBe('internal_error');
    good.forEach((r, k) => expect(r.body).toBe(WANT[TEXTS.indexOf(short[k])]));
    expect((await http(s.url, { path: '/healthz' })).status).toBe(200);
    const m = await metrics(s.url);
    expect(m.get('ranerc_batch_failures_total')).toBe(0); // the batch recovered by running texts one by one
    expect(m.get('ranerc_http_errors_total{code="internal_error"}')).toBe(1);
  });
});

describe('close()', () => {
  it('finishes requests in flight without waiting out --max-wait-ms, then refuses connections', async () => {
    const s = await createServer({ model: MODEL, port: 0, maxWaitMs: 60_000 });
    const pending = [0, 1, 2].map((i) => postPredict(s.url!, { text: TEXTS[i] }));
    // wait until the three texts are queued
    for (let k = 0; k < 200; k++) {
      const h = JSON.parse((await http(s.url!, { path: '/healthz' })).body) as { queue: number };
      if (h.queue === 3) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const t0 = performance.now();
    await s.close();
    expect(performance.now() - t0).toBeLessThan(30_000);
    const rs = await Promise.all(pending);
    rs.forEach((r, k) => expect(r.body).toBe(WANT[k]));
    // a new connection (not a kept-alive socket of the default agent) is refused
    await expect(http(s.url!, { path: '/healthz', agent: new Agent() })).rejects.toThrow(/ECONNREFUSED/);
    await s.close(); // idempotent
  });
});
