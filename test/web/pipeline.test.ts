/**
 * src/web/pipeline.ts (what the page runs) against src/runtime/predict.ts (what /predict runs), both on
 * onnxruntime-node here: identical entities for MSRA test sentences, including the long ones that need
 * several overlapping windows (and, with a 30-token window, every sentence does), with and without the CRF.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModelFolder } from '../../src/onnx/folder.js';
import { NerSession } from '../../src/runtime/session.js';
import { Predictor } from '../../src/runtime/predict.js';
import { webSpec } from '../../src/web/assets.js';
import { WebPredictor } from '../../src/web/pipeline.js';
import { REPO } from '../cli/helpers.js';

const MODEL = join(REPO, 'fixtures/tiny/bio-crf-op14');
const TEXTS = readFileSync(join(REPO, 'fixtures/data/msra_test_sample.jsonl'), 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => (JSON.parse(l) as { text: string }).text);
const LONG = TEXTS.filter((t) => Array.from(t).length > 256).slice(0, 10);
const SHORT = TEXTS.slice(0, 40);

const closers: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of closers) await c();
});

async function both(opts: { windowSize?: number; noCrf?: boolean }) {
  const folder = await loadModelFolder({ model: MODEL });
  if (opts.noCrf) delete folder.crf;
  const predictor = await Predictor.open(folder, { windowSize: opts.windowSize });
  const session = await NerSession.open(folder.onnxPath, {});
  closers.push(() => predictor.close(), () => session.close());
  const spec = await webSpec(folder, { model: 'x', window: predictor.windowSize, overlap: predictor.overlap, onnx: 'web/model.onnx' });
  const web = new WebPredictor(spec, async (b) => (await session.runFlat(b)).logits);
  return { predictor, web };
}

describe('WebPredictor = Predictor', () => {
  it('long sentences (several windows) and short ones, CRF Viterbi', async () => {
    const { predictor, web } = await both({});
    expect(LONG.length).toBe(10);
    let windows = 0;
    let entities = 0;
    for (const text of [...LONG, ...SHORT]) {
      const n = predictor.tokenizer.tokenize(text).length;
      if (n > predictor.windowSize) windows++;
      const expected = (await predictor.predict([text]))[0];
      expect(await web.predict(text), text).toEqual(expected);
      entities += expected.length;
    }
    expect(windows).toBeGreaterThanOrEqual(10);
    expect(entities).toBeGreaterThan(20);
  });

  it('a 30-token window, argmax', async () => {
    const { predictor, web } = await both({ windowSize: 30, noCrf: true });
    expect(web.decoder).toBe('argmax');
    for (const text of [...LONG.slice(0, 3), ...SHORT]) expect(await web.predict(text), text).toEqual((await predictor.predict([text]))[0]);
  });
});
