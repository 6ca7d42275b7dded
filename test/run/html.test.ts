/**
 * summary.html renders in headless Chromium without touching the network, and shows the numbers of
 * summary.json: the table's cells (rounded as printed), the scatter's points (placed by latency and F1)
 * and the size bars (lengths proportional to size).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { esc, niceDomain, niceStep } from '../../src/run/html.js';
import { loadRecipe } from '../../src/run/recipe.js';
import { runRecipe } from '../../src/run/runner.js';
import type { RunSummary } from '../../src/run/summary.js';
import { msraSlice, registerResave, resaveRecipe, tempDir } from './helpers.js';

registerResave();
let dir: string;
let cleanup: () => Promise<void>;
let profile: string;
let context: BrowserContext;
let page: Page;
let summary: RunSummary;
let html: string;
const requests: string[] = [];
const problems: string[] = [];

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('html'));
  const recipeFile = join(dir, 'recipe.yaml');
  await writeFile(recipeFile, resaveRecipe(await msraSlice(join(dir, 'slice.jsonl'), 40), 'gates:\n  max-f1-drop: 0.5\n'));
  const out = join(dir, 'out');
  await runRecipe(await loadRecipe(recipeFile), { outDir: out, interactive: false, log: () => undefined });
  summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8')) as RunSummary;
  html = await readFile(join(out, 'summary.html'), 'utf8');
  profile = await mkdtemp(join(tmpdir(), 'ranerc-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  page = await context.newPage();
  page.on('request', (r) => requests.push(r.url()));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(pathToFileURL(join(out, 'summary.html')).href, { waitUntil: 'load' });
}, 120_000);

afterAll(async () => {
  await context?.close();
  if (profile) await rm(profile, { recursive: true, force: true });
  await cleanup();
});

const pct = (x: number) => x * 100;

describe('summary.html in headless Chromium', () => {
  it('renders with one request (the file itself), no errors, and visible charts', async () => {
    expect(requests.length).toBe(1);
    expect(requests[0]).toMatch(/^file:\/\/.*summary\.html$/);
    expect(problems).toEqual([]);
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/<script|<link|<img|@import|url\(/i);
    expect(await page.title()).toBe(`ranerc run: ${summary.recipe.name}`);
    for (const id of ['#variants', '#scatter', '#sizes']) {
      const box = await page.locator(id).boundingBox();
      expect(box && box.width > 100 && box.height > 50, id).toBe(true);
    }
    const shot = await page.screenshot({ fullPage: true });
    expect(shot.length).toBeGreaterThan(10_000);
  });

  it('the table shows summary.json’s numbers, rounded as printed', async () => {
    const rows = await page.locator('#variants tbody tr').evaluateAll((trs) =>
      trs.map((tr) => Object.fromEntries(Array.from(tr.querySelectorAll('td')).map((td) => [td.getAttribute('data-field'), { text: td.textContent ?? '', value: td.getAttribute('data-value') }]))),
    );
    expect(rows.length).toBe(summary.variants.length);
    const base = summary.variants.find((v) => v.baseline)!;
    summary.variants.forEach((v, i) => {
      const r = rows[i];
      expect(r.name.text).toBe(v.baseline ? `${v.name} (baseline)` : v.name);
      // visible text within half a unit of the last printed digit of the JSON number
      expect(Math.abs(Number(r.f1.text) - pct(v.f1.f1))).toBeLessThanOrEqual(0.005 + 1e-9);
      expect(Math.abs(Number(r['size-mb'].text) - v.sizeBytes / 1e6)).toBeLessThanOrEqual(0.005 + 1e-9);
      expect(Math.abs(Number(r.p50.text) - v.latency!.p50Ms)).toBeLessThanOrEqual(0.005 + 1e-9);
      if (v.baseline) expect(r['delta-f1'].text).toBe('');
      else expect(Math.abs(Number(r['delta-f1'].text) - (pct(v.f1.f1) - pct(base.f1.f1)))).toBeLessThanOrEqual(0.005 + 1e-9);
      if (!v.baseline) expect(Math.abs(Number(r.speedup.text.replace('×', '')) - base.latency!.p50Ms / v.latency!.p50Ms)).toBeLessThanOrEqual(0.005 + 1e-9);
      // the exact values ride along
      expect(Number(r.f1.value)).toBe(v.f1.f1);
      expect(Number(r['size-mb'].value)).toBe(v.sizeMB);
      expect(Number(r.p50.value)).toBe(v.latency!.p50Ms);
      expect(r.gates.text).toBe(v.passed ? 'pass' : `FAIL ${v.gates.filter((g) => !g.passed).map((g) => g.gate).join(', ')}`);
    });
    expect(summary.gates.passed).toBe(false); // bmes loses more than 0.5 F1 points
    expect(await page.locator('#status li').allTextContents()).toEqual(summary.gates.failures);
  });

  it('the scatter places each variant by its latency (x) and F1 (y)', async () => {
    const pts = await page.locator('#scatter g.point').evaluateAll((gs) =>
      gs.map((g) => {
        const c = g.querySelector('circle')!;
        return { name: g.getAttribute('data-variant'), p50: Number(g.getAttribute('data-p50-ms')), f1: Number(g.getAttribute('data-f1')), cx: Number(c.getAttribute('cx')), cy: Number(c.getAttribute('cy')) };
      }),
    );
    expect(pts.map((p) => p.name)).toEqual(summary.variants.map((v) => v.name));
    const frame = await page.locator('#scatter > rect').first().evaluate((r) => ({ x: Number(r.getAttribute('x')), y: Number(r.getAttribute('y')), w: Number(r.getAttribute('width')), h: Number(r.getAttribute('height')) }));
    for (const [i, p] of pts.entries()) {
      expect(p.p50).toBe(summary.variants[i].latency!.p50Ms);
      expect(p.f1).toBe(summary.variants[i].f1.f1);
      expect(p.cx).toBeGreaterThanOrEqual(frame.x);
      expect(p.cx).toBeLessThanOrEqual(frame.x + frame.w);
      expect(p.cy).toBeGreaterThanOrEqual(frame.y);
      expect(p.cy).toBeLessThanOrEqual(frame.y + frame.h);
    }
    // positions are linear in the values: x grows with latency, y falls as F1 grows (SVG y points down)
    for (const a of pts) {
      for (const b of pts) {
        if (a.p50 < b.p50 - 1e-9) expect(a.cx).toBeLessThanOrEqual(b.cx + 0.05);
        if (a.f1 < b.f1 - 1e-9) expect(a.cy).toBeGreaterThanOrEqual(b.cy - 0.05);
      }
    }
  });

  it('the size bars are proportional to size and labelled with it', async () => {
    const bars = await page.locator('#sizes g.bar').evaluateAll((gs) =>
      gs.map((g) => ({ name: g.getAttribute('data-variant'), mb: Number(g.getAttribute('data-size-mb')), width: Number(g.querySelector('rect')!.getAttribute('width')), label: g.querySelector('text.value')!.textContent ?? '' })),
    );
    expect(bars.map((b) => b.name)).toEqual(summary.variants.map((v) => v.name));
    const max = Math.max(...bars.map((b) => b.mb));
    const full = bars.find((b) => b.mb === max)!.width;
    for (const [i, b] of bars.entries()) {
      expect(b.mb).toBe(summary.variants[i].sizeMB);
      expect(Math.abs(b.width - (full * b.mb) / max)).toBeLessThanOrEqual(0.1);
      expect(Math.abs(Number(b.label.replace(' MB', '')) - b.mb)).toBeLessThanOrEqual(0.005 + 1e-9);
    }
  });
});

describe('chart helpers', () => {
  it('nice steps and domains', () => {
    expect(niceStep(100, 5)).toBe(20);
    expect(niceStep(7, 5)).toBe(1); // 7/5 = 1.4 → 1
    expect(niceStep(12, 5)).toBe(2); // 2.4 → 2
    expect(niceStep(0.3, 5)).toBeCloseTo(0.05, 12);
    expect(niceDomain(0, 0.162)).toEqual({ lo: 0, hi: 0.2, ticks: [0, 0.05, 0.1, 0.15, 0.2] }); // 0.0324 → 0.05
    expect(niceDomain(94.1, 97.2)).toEqual({ lo: 94, hi: 97.5, ticks: [94, 94.5, 95, 95.5, 96, 96.5, 97, 97.5] });
    expect(niceDomain(5, 5).lo).toBeLessThan(5);
  });

  it('escapes text for HTML', () => {
    expect(esc(`<b a="x">'&'</b>`)).toBe('&lt;b a=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/b&gt;');
  });
});
