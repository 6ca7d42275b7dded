/**
 * "Run in this browser" end to end in headless Chromium (Debian's /usr/bin/chromium via playwright-core):
 * the MSRA teacher quantized to INT8 (dynamic MatMulInteger, CRF kept) is served by ranerc; with the switch on, the page loads it
 * with onnxruntime-web (wasm from ranerc's node_modules) and its highlights for 50 MSRA sentences equal
 * POST /predict's answers, with every request to anything but the ranerc server aborted and no
 * /predict call made by the page.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type RanercServer } from '../../src/serve/server.js';
import { cli } from '../cli/helpers.js';
import { postPredict, REPO } from '../serve/helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const SENTENCES = readFileSync(join(REPO, 'fixtures/data/msra_dev_sample.jsonl'), 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .slice(0, 50)
  .map((l) => (JSON.parse(l) as { text: string }).text);

let tmp: string;
let context: BrowserContext;
let server: RanercServer & { url: string };
let int8Dir: string;
let staticServer: Server | undefined;
const blocked: string[] = [];
let staticUrl = '';
const pageRequests: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium package to run the browser test`);
  tmp = await mkdtemp(join(tmpdir(), 'ranerc-web-'));
  const out = join(tmp, 'int8');
  int8Dir = out;
  const q = await cli('quantize', '--model', join(REPO, 'fixtures/teacher/model'), '--dynamic', '--out', out, '--no-bench', '--json', '--report-dir', join(tmp, 'rep'));
  expect(q.code, q.err).toBe(0);
  server = (await createServer({ model: out, port: 0 })) as RanercServer & { url: string };
  context = await chromium.launchPersistentContext(join(tmp, 'profile'), { executablePath: CHROMIUM, headless: true, args: ARGS });
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(`${server.url}/`) || (staticUrl !== '' && url.startsWith(`${staticUrl}/`))) return route.continue();
    blocked.push(url);
    return route.abort();
  });
  context.on('request', (r) => pageRequests.push(r.url()));
}, 180_000);

afterAll(async () => {
  await context?.close();
  await server?.close();
  await new Promise<void>((r) => (staticServer ? staticServer.close(() => r()) : r()));
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function highlights(page: Page, text: string): Promise<Array<{ text: string; type: string; start: number; end: number }>> {
  await page.fill('#text', text);
  await page.click('#analyze');
  await page.waitForFunction((t) => {
    const r = document.getElementById('result')!;
    return r.dataset.state === 'done' && r.dataset.text === t;
  }, text);
  return page.$$eval('#result mark.ent', (els) =>
    els.map((e) => {
      const m = e as HTMLElement;
      return { text: m.textContent ?? '', type: m.dataset.type ?? '', start: Number(m.dataset.start), end: Number(m.dataset.end) };
    }),
  );
}

describe('run in this browser', () => {
  it('gives the same entities as /predict for 50 sentences, offline, without calling /predict', async () => {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    const consoleLines: string[] = [];
    page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    await page.goto(`${server.url}/`);
    await page.waitForSelector('body[data-ready="true"]');
    await page.check('#inbrowser');
    await page.waitForFunction(() => document.body.dataset.browserReady === 'true' || !document.getElementById('error')!.hidden, undefined, { timeout: 120_000 });
    const failure = await page.$eval('#error', (e) => ((e as HTMLElement).hidden ? '' : (e.textContent ?? '')));
    expect(failure, [...errors, ...consoleLines, ...blocked].join('\n')).toBe('');
    expect(await page.getAttribute('#model', 'data-browser')).toBe('int8');
    const before = pageRequests.length;

    let withEntities = 0;
    let entities = 0;
    for (const text of SENTENCES) {
      const r = await postPredict(server.url, { text });
      expect(r.status).toBe(200);
      const expected = (JSON.parse(r.body) as { entities: Array<{ text: string; type: string; start: number; end: number }> }).entities;
      expect(await highlights(page, text), text).toEqual(expected);
      if (expected.length > 0) withEntities++;
      entities += expected.length;
    }
    console.log(`in-browser = /predict on ${SENTENCES.length} sentences: ${entities} entities in ${withEntities} of them`);
    expect(withEntities).toBeGreaterThan(20); // the comparison is not vacuous (40 entities in 24 sentences when written)
    expect(pageRequests.slice(before).filter((u) => u.includes('/predict'))).toEqual([]);
    expect(pageRequests.some((u) => u.endsWith('/web/ort/ort-wasm-simd-threaded.wasm'))).toBe(true);
    expect(blocked).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  }, 300_000);

  it('export-web writes a static folder that any static server serves; it predicts like /predict with no server API', async () => {
    const site = join(tmp, 'site');
    const r = await cli('export-web', '--model', int8Dir, '--out', site, '--json');
    expect(r.code, r.err).toBe(0);
    const res = JSON.parse(r.out) as { files: number; int8Ops: string[] };
    expect(res.int8Ops).toContain('MatMulInteger');
    for (const f of ['index.html', 'api/info', 'web/model.json', 'web/model.onnx', 'web/js/web/page.js', 'web/js/ner/viterbi.js', 'web/ort/ort-wasm-simd-threaded.wasm']) {
      expect(existsSync(join(site, f)), f).toBe(true);
    }
    // a plain static file server: GET a file under the folder, nothing else (no /predict, no /api other than the file)
    const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css', '.wasm': 'application/wasm', '.svg': 'image/svg+xml' };
    staticServer = createHttpServer((req, res) => {
      const path = decodeURIComponent((req.url ?? '/').split('?')[0]);
      const file = join(site, path === '/' ? 'index.html' : path);
      if (req.method !== 'GET' || !file.startsWith(site)) return void res.writeHead(405).end();
      readFile(file).then(
        (body) => res.writeHead(200, { 'content-type': TYPES[/\.[a-z]+$/.exec(file)?.[0] ?? ''] ?? 'application/octet-stream' }).end(body),
        () => res.writeHead(404).end(),
      );
    });
    await new Promise<void>((ok) => staticServer!.listen(0, '127.0.0.1', ok));
    staticUrl = `http://127.0.0.1:${(staticServer.address() as AddressInfo).port}`;

    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    const requests: string[] = [];
    page.on('request', (q) => requests.push(q.url()));
    await page.goto(`${staticUrl}/`);
    await page.waitForSelector('body[data-ready="true"]');
    expect(await page.isChecked('#inbrowser')).toBe(true);
    expect(await page.isDisabled('#inbrowser')).toBe(true);
    await page.waitForFunction(() => document.body.dataset.browserReady === 'true' || !document.getElementById('error')!.hidden, undefined, { timeout: 120_000 });
    for (const text of SENTENCES.slice(0, 15)) {
      const expected = (JSON.parse((await postPredict(server.url, { text })).body) as { entities: unknown[] }).entities;
      expect(await highlights(page, text), text).toEqual(expected);
    }
    expect(requests.every((u) => u.startsWith(`${staticUrl}/`))).toBe(true);
    expect(requests.some((u) => u.includes('/predict'))).toBe(false);
    expect(errors).toEqual([]);
    await page.close();
  }, 300_000);

  it('export-web of a model that cannot go to a browser writes nothing', async () => {
    const r = await cli('export-web', '--model', join(tmp, 'missing'), '--out', join(tmp, 'none'));
    expect(r.code).toBe(2);
    expect(existsSync(join(tmp, 'none'))).toBe(false);
  });
});
