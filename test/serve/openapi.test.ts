/**
 * /openapi.json: checked against the OpenAPI 3.0.3 specification's required structure (no maintained
 * OpenAPI validator is installed: the checks follow https://spec.openapis.org/oas/v3.0.3 — OpenAPI Object,
 * Info, Paths, Operation, Responses, Response, Media Type objects), every schema compiles in ajv, and real
 * answers of the server (success and error, each documented status) validate against the documented schema.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type RanercServer } from '../../src/serve/server.js';
import { FACTS, http, postPredict, REPO, type HttpResult } from './helpers.js';

const CASE = FACTS.find((c) => c.id === 'bio-crf-msra-default-overlap')!;
const MODEL = join(REPO, CASE.model);
const TEXTS = CASE.predictions.map((p) => p.text);

interface Media {
  schema?: Record<string, unknown>;
}
interface Response {
  description: string;
  content?: Record<string, Media>;
}
interface Operation {
  responses: Record<string, Response>;
  requestBody?: { content: Record<string, Media>; required?: boolean };
}
interface Doc {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, Operation>>;
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
let s: RanercServer & { url: string };
let tight: RanercServer & { url: string };
let doc: Doc;
const ajv = new Ajv({ strict: false, allErrors: true });

beforeAll(async () => {
  s = (await createServer({ model: MODEL, port: 0, rateLimit: 1000 })) as typeof s;
  tight = (await createServer({ model: MODEL, port: 0, maxQueue: 2, maxBatch: 1, maxWaitMs: 0, cacheSize: 0 })) as typeof tight;
  const r = await http(s.url, { path: '/openapi.json' });
  expect(r.status).toBe(200);
  expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
  doc = JSON.parse(r.body) as Doc;
});
afterAll(async () => {
  await s?.close();
  await tight?.close();
});

/** The documented schema for a real answer: exact status, then its range (4XX), then default. */
function schemaFor(path: string, method: string, status: number, type: string): ValidateFunction {
  const responses = doc.paths[path]?.[method]?.responses;
  if (!responses) throw new Error(`${method.toUpperCase()} ${path} is not documented`);
  const res = responses[String(status)] ?? responses[`${String(status)[0]}XX`] ?? responses.default;
  if (!res) throw new Error(`${method.toUpperCase()} ${path} does not document status ${status}`);
  const media = res.content?.[type.split(';')[0].trim()];
  if (!media?.schema) throw new Error(`${method.toUpperCase()} ${path} ${status} documents no schema for ${type}`);
  return ajv.compile(media.schema);
}

function expectDocumented(path: string, method: string, r: HttpResult): void {
  const type = String(r.headers['content-type']);
  const v = schemaFor(path, method, r.status, type);
  const body: unknown = type.startsWith('application/json') ? JSON.parse(r.body) : r.body;
  if (!v(body)) throw new Error(`${method.toUpperCase()} ${path} ${r.status}: ${ajv.errorsText(v.errors)}\n${r.body.slice(0, 300)}`);
}

describe('/openapi.json', () => {
  it('has the structure OpenAPI 3.0.3 requires, and every schema compiles', () => {
    expect(doc.openapi).toMatch(/^3\.0\.\d+$/);
    expect(typeof doc.info.title).toBe('string');
    expect(typeof doc.info.version).toBe('string');
    expect(Object.keys(doc.paths).sort()).toEqual(['/api/info', '/healthz', '/metrics', '/predict']);
    for (const [path, item] of Object.entries(doc.paths)) {
      expect(path.startsWith('/')).toBe(true);
      for (const [method, op] of Object.entries(item)) {
        expect(METHODS).toContain(method);
        const codes = Object.keys(op.responses);
        expect(codes.length).toBeGreaterThan(0);
        for (const code of codes) {
          expect(code).toMatch(/^([1-5](\d\d|XX)|default)$/); // Responses Object: HTTP codes, 1XX-5XX ranges, default
          const res = op.responses[code];
          expect(typeof res.description).toBe('string'); // required in a Response Object
          for (const media of Object.values(res.content ?? {})) if (media.schema) ajv.compile(media.schema);
        }
        for (const media of Object.values(op.requestBody?.content ?? {})) if (media.schema) ajv.compile(media.schema);
      }
    }
    expect(Object.keys(doc.paths['/predict'].post.requestBody!.content)).toEqual(['application/json']);
  });

  it('real answers of every route match the documented shapes (success and errors)', async () => {
    expectDocumented('/predict', 'post', await postPredict(s.url, { text: TEXTS[0] }));
    expectDocumented('/predict', 'post', await postPredict(s.url, { text: TEXTS[3] }));
    expectDocumented('/predict', 'post', await postPredict(s.url, { texts: TEXTS }));
    const errors = [
      await postPredict(s.url, '{"text": 5}'),
      await postPredict(s.url, '{"nope": 1}'),
      await postPredict(s.url, '{not json'),
      await postPredict(s.url, { text: 'x'.repeat(6000) }),
      await postPredict(s.url, { texts: Array.from({ length: 65 }, () => 'a') }),
      await http(s.url, { method: 'POST', path: '/predict', headers: { 'content-type': 'text/plain' }, body: 'hi' }),
    ];
    expect(errors.map((r) => r.status)).toEqual([400, 400, 400, 413, 413, 415]);
    for (const r of errors) expectDocumented('/predict', 'post', r);
    const flood = await Promise.all(Array.from({ length: 60 }, (_, i) => postPredict(tight.url, { text: TEXTS[i % TEXTS.length] })));
    const busy = flood.find((r) => r.status === 429);
    expect(busy).toBeDefined();
    expectDocumented('/predict', 'post', busy!);
    expectDocumented('/healthz', 'get', await http(s.url, { path: '/healthz' }));
    expectDocumented('/api/info', 'get', await http(s.url, { path: '/api/info' }));
    const m = await http(s.url, { path: '/metrics' });
    expect(m.status).toBe(200);
    expectDocumented('/metrics', 'get', m);
  }, 60_000);

  it('a lazy server documents and answers /healthz the same way while unloaded', async () => {
    const lazy = (await createServer({ model: MODEL, port: 0, lazy: true })) as typeof s;
    try {
      const h = await http(lazy.url, { path: '/healthz' });
      expect(JSON.parse(h.body).state).toBe('unloaded');
      expectDocumented('/healthz', 'get', h);
    } finally {
      await lazy.close();
    }
  });
});
