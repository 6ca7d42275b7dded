/**
 * "Run in this browser" end to end in headless Chromium (Debian's /usr/bin/chromium via playwright-core):
 * the MSRA teacher quantized to INT8 (dynamic MatMulInteger, CRF kept) is served by ranerc; with the switch on, the page loads it
 * with onnxruntime-web (wasm from ranerc's node_modules) and its highlights for 50 MSRA sentences equal
 * POST /predict's answers, with every request to anything but the ranerc server aborted and no
 * /predict call made by the page.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
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
const blocked: string[] = [];
const pageRequests: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium package to run the browser test`);
  tmp = await mkdtemp(join(tmpdir(), 'ranerc-web-'));
  const out = join(tmp, 'int8');
  const q = await cli('quantize', '--model', join(REPO, 'fixtures/teacher/model'), '--dynamic', '--out', out, '--no-bench', '--json', '--report-dir', join(tmp, 'rep'));
  expect(q.code, q.err).toBe(0);
  server = (await createServer({ model: out, port: 0 })) as RanercServer & { url: string };
  context = await chromium.launchPersistentContext(join(tmp, 'profile'), { executablePath: CHROMIUM, headless: true, args: ARGS });
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(`${server.url}/`)) return route.continue();
    blocked.push(url);
    return route.abort();
  });
  context.on('request', (r) => pageRequests.push(r.url()));
}, 180_000);

afterAll(async () => {
  await context?.close();
  await server?.close();
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
});
