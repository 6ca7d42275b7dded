/** Shared pieces of the serve tests: fixture facts, HTTP helpers, a /metrics parser. */
import { request as httpRequest, Agent } from 'node:http';
import { readFileSync } from 'node:fs';

export const REPO = new URL('../../', import.meta.url).pathname;

export interface FactEntity {
  text: string;
  type: string;
  start: number;
  end: number;
}

export interface FactsCase {
  id: string;
  model: string;
  window: number;
  overlap: number;
  mode: 'default' | 'strict';
  predictions: Array<{ text: string; entities: FactEntity[] }>;
}

/** PyTorch predictions of the tiny fixtures (test/cli/fixtures/make_eval_facts.py, the `predict_spans` reference). */
export const FACTS = (
  JSON.parse(readFileSync(new URL('../cli/fixtures/eval_facts.json', import.meta.url), 'utf8')) as { cases: FactsCase[] }
).cases;

/** The exact `/predict` answer for entities, keys in the documented order, sorted by start. */
export function answerLine(entities: FactEntity[]): string {
  const sorted = [...entities].sort((a, b) => a.start - b.start);
  return `{"entities":[${sorted
    .map((e) => `{"text":${JSON.stringify(e.text)},"type":${JSON.stringify(e.type)},"start":${e.start},"end":${e.end}}`)
    .join(',')}]}`;
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP request with node:http (raw bytes allowed), keep-alive through `agent` when given. */
export function http(
  url: string,
  opts: { method?: string; path?: string; headers?: Record<string, string | number>; body?: string | Buffer; agent?: Agent } = {},
): Promise<HttpResult> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: u.hostname,
        port: u.port,
        method: opts.method ?? 'GET',
        path: opts.path ?? '/',
        headers: opts.headers,
        agent: opts.agent,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (opts.body !== undefined) req.end(opts.body);
    else req.end();
  });
}

/** POST a JSON value (or raw string) to /predict. */
export function postPredict(url: string, body: unknown, agent?: Agent): Promise<HttpResult> {
  const raw = typeof body === 'string' ? body : JSON.stringify(body);
  return http(url, { method: 'POST', path: '/predict', headers: { 'content-type': 'application/json' }, body: raw, agent });
}

/** Samples of a Prometheus text exposition: `name{labels}` → value. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$/.exec(line);
    if (!m) throw new Error(`not an exposition sample line: ${JSON.stringify(line)}`);
    out.set(m[1], m[2] === '+Inf' ? Infinity : m[2] === '-Inf' ? -Infinity : Number(m[2]));
  }
  return out;
}

/** GET /metrics, parsed. */
export async function metrics(url: string): Promise<Map<string, number>> {
  const r = await http(url, { path: '/metrics' });
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
  return parseMetrics(r.body);
}
