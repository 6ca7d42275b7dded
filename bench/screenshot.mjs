#!/usr/bin/env node
/**
 * Make docs/serve-screenshot.png (the README's picture of the `ranerc serve` page): start the server
 * in-process on a model folder, open the page in headless Chromium (Debian's /usr/bin/chromium through
 * playwright-core), type the seed example and a longer sentence, wait for the highlights and save a
 * screenshot. Needs `npm run build` first, and a CJK font on the system (Debian: fonts-wqy-microhei or
 * fonts-noto-cjk), or the Chinese text renders as boxes.
 *
 *   node bench/screenshot.mjs [--model DIR] [--out docs/serve-screenshot.png] [--text "..."]... [--scale 1] [--in-browser]
 *
 * `--in-browser` turns on the page's "run in this browser" switch first (onnxruntime-web in the page).
 *
 * The default model is the best one in the repository: fixtures/teacher/model once committed, else the tiny
 * fixtures/tiny/bio-crf-op14. It prints the entities the page shows.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const CHROMIUM = '/usr/bin/chromium';
const SEED = '马云在杭州阿里巴巴总部发表演讲';
const LONGER = '国务院总理温家宝在北京人民大会堂会见了联合国秘书长安南，双方就中国与联合国教科文组织在上海和西藏的合作交换了意见。';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    out: { type: 'string', default: join(REPO, 'docs', 'serve-screenshot.png') },
    text: { type: 'string', multiple: true },
    scale: { type: 'string', default: '1' },
    'in-browser': { type: 'boolean', default: false },
  },
});

function defaultModel() {
  const teacher = join(REPO, 'fixtures', 'teacher', 'model');
  return existsSync(join(teacher, 'config.json')) ? teacher : join(REPO, 'fixtures', 'tiny', 'bio-crf-op14');
}

function fail(msg) {
  console.error(`bench/screenshot: ${msg}`);
  process.exit(2);
}

if (!existsSync(join(REPO, 'dist', 'serve', 'server.js'))) fail('dist/ is missing; run `npm run build` first');
if (!existsSync(CHROMIUM)) fail(`${CHROMIUM} not found; install Debian's chromium package`);
let cjk = '';
try {
  cjk = execFileSync('fc-list', [':lang=zh', 'family'], { encoding: 'utf8' }).trim();
} catch {
  // no fontconfig: cannot tell
}
if (cjk === '') fail('no CJK font found (fc-list :lang=zh is empty): install fonts-wqy-microhei or fonts-noto-cjk so Chinese renders');

const { createServer } = await import('../dist/serve/server.js');
const { atomicWriteFile } = await import('../dist/util/fs.js');
const { chromium } = await import('playwright-core');

const model = resolve(args.model ?? defaultModel());
const texts = args.text ?? [SEED, LONGER];
const text = texts.join('\n');
const server = await createServer({ model, port: 0 });
const profile = await mkdtemp(join(tmpdir(), 'ranerc-screenshot-'));
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--font-render-hinting=none'],
    viewport: { width: 1120, height: 800 },
    deviceScaleFactor: Number(args.scale),
    colorScheme: 'dark',
  });
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(server.url);
  await page.waitForSelector('body[data-ready="true"]');
  if (args['in-browser']) {
    await page.check('#inbrowser');
    await page.waitForSelector('body[data-browser-ready="true"]', { timeout: 120_000 });
  }
  // type the seed example, then paste the rest, as a user would
  await page.locator('#text').pressSequentially(texts[0]);
  if (texts.length > 1) await page.locator('#text').fill(text);
  await page.waitForFunction((t) => {
    const r = document.getElementById('result');
    return r.dataset.state === 'done' && r.dataset.text === t;
  }, text);
  const marks = await page.$$eval('#result mark.ent', (els) => els.map((e) => `${e.textContent}/${e.dataset.type}`));
  await page.evaluate(() => document.activeElement?.blur());
  const png = await page.screenshot({ fullPage: true, type: 'png' });
  await atomicWriteFile(args.out, png);
  console.log(`model ${relative(REPO, model) || model}: ${marks.length} entities highlighted: ${marks.join(' ')}`);
  console.log(`wrote ${relative(process.cwd(), args.out)} (${png.length} bytes)`);
} finally {
  await context?.close();
  await rm(profile, { recursive: true, force: true });
  await server.close();
}
