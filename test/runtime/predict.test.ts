import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GraphError } from '../../src/errors.js';
import { Predictor, type TextEmissions } from '../../src/runtime/predict.js';
import { NerSession } from '../../src/runtime/session.js';
import { tinyFolder, tinyReference } from './helpers/tiny.js';

const FOLDERS = ['bio-crf-op14', 'bioes-op17', 'bmes-op12-nobias', 'wordpiece-en-op11', 'optimum-layout', 'bare'];

interface EvalFacts {
  cases: Array<{
    id: string;
    model: string;
    onnx_sha256: string;
    overlap: number;
    mode: 'default' | 'strict';
    predictions: Array<{ text: string; entities: Array<{ text: string; type: string; start: number; end: number }> }>;
  }>;
}
const FACTS = JSON.parse(readFileSync(new URL('../cli/fixtures/eval_facts.json', import.meta.url), 'utf8')) as EvalFacts;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('Predictor.emissions equals the PyTorch reference logits of the tiny fixtures', () => {
  for (const name of FOLDERS) {
    it(name, async () => {
      const folder = tinyFolder(name);
      // a bare .onnx carries no max length (its position table has 128 rows): give the window explicitly
      const p = await Predictor.open(folder, name === 'bare' ? { windowSize: 126 } : {});
      try {
        let compared = 0;
        for (const c of tinyReference(name)) {
          const ems = await p.emissions(c.texts);
          for (let r = 0; r < c.texts.length; r++) {
            const real = c.attention_mask[r].reduce((s, v) => s + v, 0);
            const types = c.token_type_ids?.[r] ?? [];
            // rows PyTorch saw as [CLS] tokens [SEP] of one text with segment 0 are comparable
            if (types.some((t) => t !== 0)) continue;
            const { tokens, logits } = ems[r];
            const L = folder.labels.length;
            const ref = c.input_ids[r].slice(0, real);
            if (ref.length !== tokens.length + 2) continue; // truncated by the reference (longer than max length)
            expect(ref).toEqual([p.tokenizer.clsId, ...tokens.map((t) => t.id), p.tokenizer.sepId]);
            const want = c.logits[r].slice(1, 1 + tokens.length).flat();
            expect(logits.length).toBe(tokens.length * L);
            expect(maxAbsDiff(logits, want)).toBeLessThan(1e-4);
            compared++;
          }
        }
        expect(compared).toBeGreaterThanOrEqual(4);
      } finally {
        await p.close();
      }
    });
  }
});

describe('windows, batching and decoding', () => {
  const longText =
    '据新华社北京电，国务院总理李鹏今天在人民大会堂会见了来访的日本外务大臣，双方就中日关系和亚太地区形势交换了意见。';

  it('merges overlapping windows token by token from each token’s owner window', async () => {
    const folder = tinyFolder('bio-crf-op14');
    const p = await Predictor.open(folder, { windowSize: 8, overlap: 3 });
    const s = await NerSession.open(folder.onnxPath);
    try {
      const [em] = await p.emissions([longText]);
      const T = em.tokens.length;
      expect(T).toBeGreaterThan(20);
      // size 8, overlap 3 → step 5: windows [0,8) [5,13) [10,18) [15,23) ...; a token belongs to the window
      // whose nearer edge is farthest (the earlier one on ties): 0..6 → w0, 7..11 → w1, 12..16 → w2, ...
      const starts: number[] = [];
      for (let a = 0; ; a += 5) {
        starts.push(a);
        if (a + 8 >= T) break;
      }
      const owner = (t: number) => {
        let best = -1;
        let bi = -1;
        starts.forEach((a, i) => {
          const b = Math.min(a + 8, T);
          if (a <= t && t < b && Math.min(t - a, b - 1 - t) > best) {
            best = Math.min(t - a, b - 1 - t);
            bi = i;
          }
        });
        return bi;
      };
      expect([0, 6, 7, 11, 12, 16].map(owner)).toEqual([0, 0, 1, 1, 2, 2]);
      const L = folder.labels.length;
      const perWindow = [];
      for (const a of starts) {
        const b = Math.min(a + 8, T);
        const ids = [p.tokenizer.clsId, ...em.tokens.slice(a, b).map((t) => t.id), p.tokenizer.sepId];
        perWindow.push(await s.run({ ids: [ids], mask: [ids.map(() => 1)], seqLen: ids.length, batch: 1 }));
      }
      const want = new Float32Array(T * L);
      for (let t = 0; t < T; t++) {
        const w = owner(t);
        const row = 1 + t - starts[w];
        want.set(perWindow[w].logits.subarray(row * L, (row + 1) * L), t * L);
      }
      expect(maxAbsDiff(em.logits, want)).toBeLessThan(1e-5);
    } finally {
      await p.close();
      await s.close();
    }
  });

  it('gives the same logits whatever the batching', async () => {
    const folder = tinyFolder('bmes-op12-nobias');
    const texts = [longText, '在法院', '', '这些年来，人大的威信在逐年提高。', longText.slice(5, 40), 'ＡＰＥＣ秘书处'];
    const runs: TextEmissions[][] = [];
    for (const opts of [{ batchSize: 32 }, { batchSize: 1 }, { batchSize: 3, maxBatchTokens: 60 }, { chunkTexts: 2 }]) {
      const p = await Predictor.open(folder, { ...opts, windowSize: 16 });
      runs.push(await p.emissions(texts));
      await p.close();
    }
    for (const r of runs.slice(1)) {
      r.forEach((em, i) => {
        expect(em.tokens).toEqual(runs[0][i].tokens);
        expect(maxAbsDiff(em.logits, runs[0][i].logits)).toBeLessThan(1e-5);
      });
    }
    expect(runs[0][2].tokens).toEqual([]);
    expect(runs[0][2].logits.length).toBe(0);
  });

  for (const c of FACTS.cases) {
    it(`predicts the entities PyTorch's predict_spans found (${c.id})`, async () => {
      const folder = tinyFolder(c.model.replace('fixtures/tiny/', ''));
      const progress: Array<[number, number]> = [];
      const p = await Predictor.open(folder, {
        overlap: c.overlap,
        mode: c.mode,
        onProgress: (d, n) => progress.push([d, n]),
      });
      try {
        const texts = c.predictions.map((x) => x.text);
        const got = await p.predict(texts);
        const norm = (es: Array<{ text: string; type: string; start: number; end: number }>) =>
          es.map((e) => ({ text: e.text, type: e.type, start: e.start, end: e.end })).sort((a, b) => a.start - b.start);
        expect(got.map(norm)).toEqual(c.predictions.map((x) => norm(x.entities)));
        expect(progress[progress.length - 1]).toEqual([texts.length, texts.length]);
        for (let i = 1; i < progress.length; i++) expect(progress[i][0]).toBeGreaterThanOrEqual(progress[i - 1][0]);
      } finally {
        await p.close();
      }
    });
  }

  it('serves concurrent calls one at a time with the same results as sequential ones', async () => {
    const c = FACTS.cases.find((x) => x.id === 'bio-crf-msra')!;
    const p = await Predictor.open(tinyFolder('bio-crf-op14'), { overlap: c.overlap, batchSize: 4 });
    try {
      const texts = c.predictions.map((x) => x.text);
      const halves = [texts.slice(0, 20), texts.slice(20), texts.slice(5, 25)];
      const sequential = [];
      for (const h of halves) sequential.push(await p.predict(h));
      const concurrent = await Promise.all(halves.map((h) => p.predict(h)));
      expect(concurrent).toEqual(sequential);
    } finally {
      await p.close();
    }
  });

  it('returns no entities for empty text', async () => {
    const p = await Predictor.open(tinyFolder('bio-crf-op14'));
    try {
      expect(await p.predict(['', ' \t'])).toEqual([[], []]);
    } finally {
      await p.close();
    }
  });

  it('refuses labels whose count differs from the logits dimension with a GraphError', async () => {
    const folder = tinyFolder('bioes-op17');
    const wrong = { ...folder, labels: folder.labels.slice(0, 5), crf: undefined };
    const err = await Predictor.open(wrong)
      .then(async (p) => {
        try {
          await p.predict(['北京']);
        } finally {
          await p.close();
        }
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GraphError);
    expect((err as GraphError).message).toMatch(/41 logits per token but config.json lists 5 labels/);
  });
});
