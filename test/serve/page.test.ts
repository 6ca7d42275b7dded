/**
 * End to end: the web page in headless Chromium (Debian's /usr/bin/chromium through playwright-core).
 * A sentence is typed into the page; the highlighted spans, their types and colours must be the PyTorch
 * predictions of that sentence (test/cli/fixtures/eval_facts.json).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type RanercServer } from '../../src/serve/server.js';
import { FACTS, postPredict, REPO, type FactEntity } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

const EN = FACTS.find((c) => c.id === 'wordpiece-english')!;
const ZH = FACTS.find((c) => c.id === 'bio-crf-msra-default-overlap')!;

let context: BrowserContext;
let profile: string;
let en: RanercServer & { url: string };
let zh: RanercServer & { url: string };
const requested: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: install Debian's chromium package (apt-get install chromium) to run the page test`);
  }
  [en, zh] = (await Promise.all([
    createServer({ model: join(REPO, EN.model), port: 0 }),
    createServer({ model: join(REPO, ZH.model), port: 0, maxTextChars: 80 }),
  ])) as Array<RanercServer & { url: string }>;
  profile = await mkdtemp(join(tmpdir(), 'ranerc-chromium-'));
  context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS });
  context.on('request', (r) => requested.push(r.url()));
}, 120_000);

afterAll(async () => {
  await context?.close();
  if (profile) await rm(profile, { recursive: true, force: true });
  await Promise.all([en?.close(), zh?.close()]);
});

interface Mark extends FactEntity {
  color: string;
}

async function openPage(url: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]');
  return page;
}

/** Wait until the page shows the answer for exactly `text`, then read its highlights. */
async function highlights(page: Page, text: string): Promise<Mark[]> {
  await page.waitForFunction((t) => {
    const r = document.getElementById('result')!;
    return r.dataset.state === 'done' && r.dataset.text === t;
  }, text);
  return page.$$eval('#result mark.ent', (els) =>
    els.map((e) => {
      const m = e as HTMLElement;
      return { text: m.textContent ?? '', type: m.dataset.type ?? '', start: Number(m.dataset.start), end: Number(m.dataset.end), color: getComputedStyle(m).color };
    }),
  );
}

const RGB: Record<string, string> = { PER: 'rgb(255, 46, 99)', LOC: 'rgb(8, 247, 254)', ORG: 'rgb(254, 242, 0)' };

describe('web page in headless Chromium', () => {
  it('typing an English sentence highlights exactly the predicted entities, coloured by type, with a legend and latency', async () => {
    const page = await openPage(en.url);
    const legend = await page.$$eval('#legend .chip', (els) => els.map((e) => (e as HTMLElement).dataset.type));
    expect(legend).toEqual(['PER', 'LOC', 'ORG', 'MISC']);
    expect(await page.textContent('#model')).toContain('wordpiece-en-op11');

    const fact = EN.predictions.find((p) => new Set(p.entities.map((e) => e.type)).size >= 3)!;
    await page.locator('#text').pressSequentially(fact.text);
    const marks = await highlights(page, fact.text);
    expect(marks.map(({ color: _c, ...m }) => m)).toEqual([...fact.entities].sort((a, b) => a.start - b.start));
    for (const m of marks) {
      if (RGB[m.type]) expect(m.color, m.type).toBe(RGB[m.type]);
    }
    const colorOf = Object.fromEntries(marks.map((m) => [m.type, m.color]));
    expect(new Set(Object.values(colorOf)).size).toBe(Object.keys(colorOf).length); // each type its own colour
    // highlighting keeps the text as typed
    expect(await page.$eval('#result', (e) => e.textContent)).toBe(fact.text);
    expect(await page.textContent('#stats .latency')).toMatch(/^\d+\.\d ms round trip$/);
    expect(await page.$$eval('#table tbody tr', (rows) => rows.length)).toBe(fact.entities.length);
    // the legend counts what was found
    const counts = await page.$$eval('#legend .chip', (els) => els.map((e) => [(e as HTMLElement).dataset.type, e.querySelector('.n')?.textContent ?? '0']));
    for (const [type, n] of counts) expect(Number(n)).toBe(fact.entities.filter((e) => e.type === type).length);
    await page.close();
  });

  it('Chinese: typed text and the example button give the same spans as POST /predict; code-point offsets survive 𠀋', async () => {
    const page = await openPage(zh.url);
    const fact = ZH.predictions.find((p) => p.entities.length >= 2 && p.text.length <= 60)!;
    await page.locator('#text').pressSequentially(fact.text);
    const marks = await highlights(page, fact.text);
    expect(marks.map(({ color: _c, ...m }) => m)).toEqual([...fact.entities].sort((a, b) => a.start - b.start));
    for (const m of marks) expect(m.color).toBe(RGB[m.type]);

    // a character outside the BMP in front: the page slices by code points, as the API counts
    const shifted = `𠀋${fact.text}`;
    await page.fill('#text', shifted);
    const api = JSON.parse((await postPredict(zh.url, { text: shifted })).body) as { entities: FactEntity[] };
    const marks2 = await highlights(page, shifted);
    expect(marks2.map(({ color: _c, ...m }) => m)).toEqual(api.entities);
    expect(api.entities.length).toBeGreaterThan(0);

    await page.click('#example');
    const seed = '马云在杭州阿里巴巴总部发表演讲';
    const marks3 = await highlights(page, seed);
    const api3 = JSON.parse((await postPredict(zh.url, { text: seed })).body) as { entities: FactEntity[] };
    expect(marks3.map(({ color: _c, ...m }) => m)).toEqual(api3.entities);
    await page.close();
  });

  it('several lines: each line is tagged as its own text, offsets count from the start of the whole text', async () => {
    const page = await openPage(en.url);
    const [a, b] = EN.predictions.filter((p) => p.entities.length > 0).slice(0, 2);
    const text = `${a.text}\n\n${b.text}`;
    await page.fill('#text', text);
    const marks = await highlights(page, text);
    const shift = [...a.text].length + 2;
    expect(marks.map(({ color: _c, ...m }) => m)).toEqual([
      ...a.entities,
      ...b.entities.map((e) => ({ ...e, start: e.start + shift, end: e.end + shift })),
    ].sort((x, y) => x.start - y.start));
    for (const m of marks) expect([...text].slice(m.start, m.end).join('')).toBe(m.text);
    await page.close();
  });

  it('a text over the limit shows the API error instead of highlights', async () => {
    const page = await openPage(zh.url);
    await page.fill('#text', '中'.repeat(81));
    await page.waitForSelector('#error:not([hidden])');
    expect(await page.textContent('#error')).toMatch(/^text_too_long: /);
    expect(await page.$eval('#result', (e) => (e as HTMLElement).dataset.state)).toBe('error');
    await page.close();
  });

  it('the page loads nothing from outside the server', () => {
    expect(requested.length).toBeGreaterThan(5);
    const outside = requested.filter((u) => !u.startsWith(en.url) && !u.startsWith(zh.url));
    expect(outside).toEqual([]);
  });
});
