/**
 * Fuzz: 1,200 malformed requests of varied kinds (seeded, so a failure replays) against one server.
 * Every answer must be a 4xx with the JSON error shape, and afterwards the server must be healthy and
 * still give the exact answer for a real text.
 */
import { Agent } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type RanercServer } from '../../src/serve/server.js';
import { answerLine, FACTS, http, metrics, postPredict, REPO, type HttpResult } from './helpers.js';

const CASE = FACTS.find((c) => c.id === 'bio-crf-msra-default-overlap')!;
const MAX_CHARS = 64;
const MAX_TEXTS = 4;
const MAX_BODY = 4096;

/** mulberry32: a small seeded PRNG. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface FuzzReq {
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

const JSON_CT = { 'content-type': 'application/json' };

/**
 * A body only where the method frames one (node's client sends a GET/DELETE/OPTIONS body without
 * Content-Length, which is a different malformation: stray bytes, tested with the raw requests below).
 */
function withBody(q: Omit<FuzzReq, 'body'>, body: string): FuzzReq {
  return ['POST', 'PUT', 'PATCH'].includes(q.method) ? { ...q, body: Buffer.from(body) } : { ...q, headers: {} };
}

/** One malformed request of a kind drawn by `r`. */
function makeRequest(r: () => number, i: number): FuzzReq {
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const text = CASE.predictions[i % CASE.predictions.length].text.slice(0, 30);
  const post = (kind: string, body: string | Buffer, headers: Record<string, string> = JSON_CT): FuzzReq => ({
    kind,
    method: 'POST',
    path: '/predict',
    headers,
    body: typeof body === 'string' ? Buffer.from(body) : body,
  });
  const valid = JSON.stringify({ text });
  switch (i % 16) {
    case 0: {
      // truncated or corrupted JSON
      const cut = Math.max(1, Math.floor(r() * (valid.length - 1)));
      return post('truncated-json', valid.slice(0, cut));
    }
    case 1: {
      const bytes = Buffer.from(valid);
      const k = Math.floor(r() * bytes.length);
      bytes[k] = pick([0x7b, 0x7d, 0x5b, 0x2c, 0x3a, 0x00, 0x5c]);
      const s = bytes.toString('latin1');
      // keep only corruptions that really break the JSON
      try {
        JSON.parse(Buffer.from(s, 'latin1').toString('utf8'));
        return post('garbage', `${valid}}`);
      } catch {
        return post('corrupted-json', bytes);
      }
    }
    case 2:
      return post('non-json', pick(['hello', "{'text': 'x'}", '{"text": "a",}', 'NaN', '[1, 2', '{"text":', '<xml/>', 'text=马云', '\u0000', '{{}}']));
    case 3:
      return post(
        'wrong-shape',
        pick(['null', '[]', '42', '"马云"', 'true', '{}', '[{"text":"a"}]', '{"text":{"a":1}}', '{"text":[1]}', '{"text":null}', '{"text":false}', '{"texts":{}}', '{"texts":"a"}', '{"texts":[null]}', '{"texts":[["a"]]}', '{"texts":[]}']),
      );
    case 4:
      return post('unknown-field', JSON.stringify({ [pick(['txt', 'Text', 'TEXT', 'input', 'sentence', '__proto__', 'constructor'])]: text }));
    case 5:
      return post('empty-text', pick(['{"text":""}', '{"texts":[""]}', '{"texts":["a",""]}', '{"text":"a","texts":["b"]}']));
    case 6: {
      const n = MAX_CHARS + 1 + Math.floor(r() * 200);
      const ch = pick(['中', 'a', '𠀋', ' ']);
      return post('text-too-long', JSON.stringify(r() < 0.5 ? { text: ch.repeat(n) } : { texts: ['a', ch.repeat(n)] }));
    }
    case 7:
      return post('too-many-texts', JSON.stringify({ texts: Array.from({ length: MAX_TEXTS + 1 + Math.floor(r() * 20) }, () => 'a') }));
    case 8:
      return post('body-too-large', JSON.stringify({ text: 'a'.repeat(MAX_BODY + Math.floor(r() * 20_000)) }));
    case 9: {
      const ct = pick([
        'text/plain',
        'text/html',
        'application/xml',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/octet-stream',
        'application/json; charset=iso-8859-1',
        'application/json; charset=utf-16',
        'application/jsonx',
        'json',
      ]);
      return post('content-type', valid, { 'content-type': ct });
    }
    case 10: {
      // invalid UTF-8 inside a JSON string
      const bad = pick([[0xff], [0xc3], [0xe4, 0xb8], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xc0, 0xaf]]);
      return post('invalid-utf8', Buffer.concat([Buffer.from('{"text":"马'), Buffer.from(bad), Buffer.from('云"}')]));
    }
    case 11:
      return post('lone-surrogate', pick(['{"text":"\\ud800"}', '{"text":"a\\udc00b"}', '{"texts":["a","\\udbff"]}']));
    case 12: {
      const [method, path] = pick([
        ['GET', '/predict'],
        ['PUT', '/predict'],
        ['DELETE', '/predict'],
        ['PATCH', '/predict'],
        ['OPTIONS', '/predict'],
        ['POST', '/healthz'],
        ['PUT', '/metrics'],
        ['POST', '/'],
        ['DELETE', '/api/info'],
        ['POST', '/assets/app.js'],
      ] as const);
      return withBody({ kind: 'wrong-method', method, path, headers: JSON_CT }, valid);
    }
    case 13: {
      const path = pick([
        '/predictx',
        '/predict/',
        '/predict/1',
        '/v1/predict',
        '/PREDICT',
        '/../etc/passwd',
        '/assets/../../package.json',
        '/assets/',
        `/${'a'.repeat(2000)}`,
        '/%E4%B8%AD',
        '/healthz/',
        '/index.html',
      ]);
      return withBody({ kind: 'unknown-path', method: pick(['GET', 'POST']), path, headers: JSON_CT }, valid);
    }
    case 14:
      return { kind: 'bad-url', method: 'GET', path: pick(['/%', '/%zz', '/predict%', '/%E0%A4%A']), headers: {} };
    default: {
      // deeply nested or huge-number JSON (still within the body limit)
      const depth = 500 + Math.floor(r() * 1500);
      return post('nested-json', pick([`${'['.repeat(depth)}${']'.repeat(depth)}`, `{"text":${'['.repeat(depth)}${']'.repeat(depth)}}`, '{"text":1e999}', '{"text":-0}']));
    }
  }
}

/** Raw bytes that are not valid HTTP/1.1 (answered by the client-error handler). */
const RAW: readonly string[] = [
  'GARBAGE\r\n\r\n',
  'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
  'POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
  'GET / HTTP/9.9\r\n\r\n',
  'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello',
  'GET / HTTP/1.1\r\nBad Header Line\r\n\r\n',
  `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
  'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
];

function rawRequest(url: string, bytes: string): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(u.port), u.hostname);
    let data = '';
    sock.on('data', (c) => (data += c.toString('utf8')));
    sock.on('error', reject);
    sock.on('close', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0);
      resolve({ status, body: data.slice(data.indexOf('\r\n\r\n') + 4) });
    });
    sock.end(bytes);
  });
}

let s: RanercServer & { url: string };
beforeAll(async () => {
  s = (await createServer({ model: join(REPO, CASE.model), port: 0, maxTextChars: MAX_CHARS, maxTexts: MAX_TEXTS, maxBodyBytes: MAX_BODY })) as RanercServer & { url: string };
});
afterAll(async () => {
  await s.close();
});

describe('fuzz: malformed requests', () => {
  it('1,200 malformed requests of 16 kinds: every one 4xx with {"error":{"code","message"}}; the server stays healthy', async () => {
    const r = rng(20240611);
    const reqs = Array.from({ length: 1200 }, (_, i) => makeRequest(r, i));
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    const byKind = new Map<string, number>();
    const failures: string[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < reqs.length) {
        const q = reqs[next++];
        let res: HttpResult;
        try {
          res = await http(s.url, { method: q.method, path: q.path, headers: q.headers, body: q.body, agent });
        } catch (e) {
          failures.push(`${q.kind} ${q.method} ${q.path.slice(0, 40)}: ${(e as Error).message}`);
          continue;
        }
        let ok = res.status >= 400 && res.status < 500;
        if (ok && q.method !== 'HEAD') {
          try {
            const b = JSON.parse(res.body) as { error?: { code?: unknown; message?: unknown } };
            ok = typeof b.error?.code === 'string' && typeof b.error?.message === 'string';
          } catch {
            ok = false;
          }
        }
        if (!ok) failures.push(`${q.kind} ${q.method} ${q.path.slice(0, 40)} ${q.body?.toString('utf8').slice(0, 60)} → ${res.status} ${res.body.slice(0, 120)}`);
        byKind.set(q.kind, (byKind.get(q.kind) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    agent.destroy();
    expect(failures).toEqual([]);
    expect(byKind.size).toBeGreaterThanOrEqual(16);

    // every request answered with an error was counted once, by code
    const errorsCounted = (m: Map<string, number>): number =>
      [...m.entries()].filter(([k]) => k.startsWith('ranerc_http_errors_total')).reduce((a, [, v]) => a + v, 0);
    expect(errorsCounted(await metrics(s.url))).toBe(reqs.length);

    for (const raw of RAW) {
      const res = await rawRequest(s.url, raw);
      expect(res.status, JSON.stringify(raw.slice(0, 60))).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect((JSON.parse(res.body) as { error: { code: string } }).error.code).toMatch(/^(bad_http|headers_too_large)$/);
    }

    // healthy afterwards: health check, an exact answer, and no 5xx counted anywhere
    expect((await http(s.url, { path: '/healthz' })).status).toBe(200);
    const p = CASE.predictions.find((x) => x.entities.length > 0 && [...x.text].length <= MAX_CHARS)!;
    const ok = await postPredict(s.url, { text: p.text });
    expect(ok.status).toBe(200);
    expect(ok.body).toBe(answerLine(p.entities));
    const m = await metrics(s.url);
    const fiveXX = [...m.entries()].filter(([k, v]) => k.startsWith('ranerc_http_requests_total') && /status="5/.test(k) && v > 0);
    expect(fiveXX).toEqual([]);
    // a raw request can be answered and then fail to parse further (e.g. a bad chunk after the headers)
    expect(errorsCounted(m)).toBeGreaterThanOrEqual(reqs.length + RAW.length);
  });
});
