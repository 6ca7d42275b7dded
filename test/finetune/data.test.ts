/**
 * Fine-tuning data and schedule: rows are eval's windows (planWindows/ownerWindow, the functions eval
 * and fixtures/tools/bert_ner.py share) with tokenTagIds' gold labels; batches cover every row once per
 * epoch and respect the token budget; the learning rate follows the linear warm-up/decay formula.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { batchFeeds, makeMicroBatch, microBatches, planEpoch, trainingRows } from '../../src/autodiff/train/data.js';
import { repairCut } from '../../src/distill/batches.js';
import { learningRate, warmupStepsFor } from '../../src/autodiff/train/schedule.js';
import { GraphError } from '../../src/errors.js';
import { tokenTagIds } from '../../src/ner/align.js';
import { readExamples } from '../../src/ner/data.js';
import { LabelSet } from '../../src/ner/labels.js';
import { WordPieceTokenizer } from '../../src/ner/tokenizer.js';
import type { Example } from '../../src/ner/types.js';
import { ownerWindow, planWindows } from '../../src/ner/windows.js';
import { loadModelFolder } from '../../src/onnx/folder.js';
import { mulberry32 } from '../../src/runtime/bench.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIO = new LabelSet(['O', 'B-PER', 'I-PER', 'B-LOC', 'I-LOC', 'B-ORG', 'I-ORG']);
let tok: WordPieceTokenizer;
let examples: Example[];

beforeAll(async () => {
  const folder = await loadModelFolder({ model: join(REPO, 'fixtures/teacher/model') });
  tok = await WordPieceTokenizer.fromFiles(folder.vocabPath as string, folder.tokenizerConfig);
  examples = (await readExamples(join(REPO, 'fixtures/data/msra_train_sample.jsonl'))).examples;
});

describe('trainingRows', () => {
  it('cuts long sentences into eval\'s windows; every first piece counts once, in its owner window', () => {
    const size = 12;
    const overlap = 5;
    const long = examples.filter((e) => e.text.length > 60 && e.entities.length >= 3).slice(0, 5);
    expect(long.length).toBe(5);
    const rows = trainingRows(long, tok, BIO, { windowSize: size, overlap });
    let cut = 0;
    long.forEach((ex, e) => {
      const tokens = tok.tokenize(ex.text);
      const gold = tokenTagIds(ex, tokens, BIO);
      const windows = planWindows(tokens.length, size, overlap);
      const mine = rows.filter((r) => r.example === e);
      expect(mine.length).toBe(windows.length);
      const counted = new Array<number>(tokens.length).fill(0);
      windows.forEach(([a, b], w) => {
        const row = mine[w];
        expect(Array.from(row.ids)).toEqual([tok.clsId, ...tokens.slice(a, b).map((t) => t.id), tok.sepId]);
        for (let t = a; t < b; t++) {
          const first = t === 0 || tokens[t - 1].word !== tokens[t].word;
          expect(row.ceMask[t - a]).toBe(first && ownerWindow(windows, t) === w ? 1 : 0);
          counted[t] += row.ceMask[t - a];
          const g = BIO.parse(gold[t]);
          if (t === a && a > 0 && g.prefix === 'I') {
            // a window starting inside an entity starts it afresh
            expect(BIO.labels[row.tags[0]]).toBe(`B-${g.type}`);
            cut++;
          } else {
            expect(row.tags[t - a]).toBe(gold[t]);
          }
        }
      });
      tokens.forEach((t, k) => expect(counted[k]).toBe(k === 0 || tokens[k - 1].word !== t.word ? 1 : 0));
    });
    expect(cut).toBeGreaterThan(0); // the sample really exercises the repair
  });

  it('later WordPiece pieces carry gold tags for the CRF but no cross-entropy', () => {
    const ex: Example = { text: '１９９７年ABC公司', entities: [{ start: 5, end: 10, type: 'ORG' }] };
    const tokens = tok.tokenize(ex.text);
    const [row] = trainingRows([ex], tok, BIO, { windowSize: 254, overlap: 64 });
    const pieces = tokens.map((t) => t.piece);
    expect(pieces.some((p) => p.startsWith('##'))).toBe(true);
    tokens.forEach((t, k) => expect(row.ceMask[k]).toBe(t.piece.startsWith('##') ? 0 : 1));
    expect(BIO.names(Array.from(row.tags))).toEqual(BIO.names(tokenTagIds(ex, tokens, BIO)));
    expect(BIO.names(Array.from(row.tags)).filter((l) => l !== 'O')[0]).toBe('B-ORG');
  });
});

describe('repairCut (window cuts, from src/distill/batches.ts)', () => {
  const run = (labels: string[], tags: string[], cutStart: boolean, cutEnd: boolean): string[] => {
    const set = new LabelSet(labels);
    const ids = Int32Array.from(tags.map((t) => set.idOf(t)!));
    repairCut(ids, set, cutStart, cutEnd);
    return set.names(Array.from(ids));
  };
  it('BIO: a cut I- at the start becomes B-; the end is left alone', () => {
    expect(run(BIO.labels, ['I-PER', 'I-PER', 'O', 'B-LOC', 'I-LOC'], true, true)).toEqual(['B-PER', 'I-PER', 'O', 'B-LOC', 'I-LOC']);
    expect(run(BIO.labels, ['I-PER', 'O'], false, true)).toEqual(['I-PER', 'O']);
  });
  it('BIOES and BMES: starts become B/S, ends become E/S; a one-token cut piece becomes S', () => {
    const bioes = ['O', 'B-X', 'I-X', 'E-X', 'S-X'];
    expect(run(bioes, ['I-X', 'E-X', 'O', 'B-X', 'I-X'], true, true)).toEqual(['B-X', 'E-X', 'O', 'B-X', 'E-X']);
    expect(run(bioes, ['E-X', 'O', 'B-X'], true, true)).toEqual(['S-X', 'O', 'S-X']);
    expect(run(bioes, ['I-X'], true, true)).toEqual(['S-X']);
    const bmes = ['O', 'B-X', 'M-X', 'E-X', 'S-X'];
    expect(run(bmes, ['M-X', 'E-X', 'B-X', 'M-X'], true, true)).toEqual(['B-X', 'E-X', 'B-X', 'E-X']);
  });
  it('IO has no begin or end tags: unchanged', () => {
    expect(run(['O', 'I-X'], ['I-X', 'I-X'], true, true)).toEqual(['I-X', 'I-X']);
  });
});

describe('planEpoch', () => {
  const r = mulberry32(1);
  const lengths = Array.from({ length: 503 }, () => 3 + Math.floor(r() * 120));

  it('uses every row exactly once, in batches of at most batchRows, micro-batches within the token budget', () => {
    const plan = planEpoch(lengths, { batchRows: 32, maxTokens: 600 }, mulberry32(5));
    expect(plan.length).toBe(Math.ceil(503 / 32));
    const seen = plan.flat(2).sort((a, b) => a - b);
    expect(seen).toEqual(lengths.map((_, i) => i));
    for (const batch of plan) {
      expect(batch.flat().length).toBeLessThanOrEqual(32);
      for (const m of batch) {
        const longest = Math.max(...m.map((i) => lengths[i]));
        if (m.length > 1) expect(m.length * longest).toBeLessThanOrEqual(600);
      }
    }
  });

  it('is deterministic for a seed, and differs between seeds', () => {
    const a = planEpoch(lengths, { batchRows: 16, maxTokens: 4096 }, mulberry32(9));
    const b = planEpoch(lengths, { batchRows: 16, maxTokens: 4096 }, mulberry32(9));
    const c = planEpoch(lengths, { batchRows: 16, maxTokens: 4096 }, mulberry32(10));
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
  });

  it('buckets by length: padding stays far below what random batches waste', () => {
    const pad = (batches: number[][]) =>
      batches.reduce((s, b) => s + b.length * Math.max(...b.map((i) => lengths[i])) - b.reduce((t, i) => t + lengths[i], 0), 0);
    const planned = planEpoch(lengths, { batchRows: 16, maxTokens: 1 << 20 }, mulberry32(2)).map((b) => b.flat());
    const random: number[][] = [];
    for (let i = 0; i < lengths.length; i += 16) random.push(lengths.map((_, k) => k).slice(i, i + 16));
    expect(pad(planned)).toBeLessThan(pad(random) / 5);
  });

  it('microBatches: ascending length; a row longer than the budget runs alone', () => {
    const len = [10, 50, 20, 300, 40];
    expect(microBatches([0, 1, 2, 3, 4], len, 120)).toEqual([[0, 2, 4], [1], [3]]);
  });
});

describe('makeMicroBatch and batchFeeds', () => {
  it('pads rows as [CLS] tokens [SEP] [PAD]…, with tags and masks at positions 1 … len', () => {
    const rows = trainingRows(examples.slice(0, 3), tok, BIO, { windowSize: 254, overlap: 64 });
    const mb = makeMicroBatch(rows, [2, 0], tok.padId);
    const S = Math.max(rows[2].ids.length, rows[0].ids.length);
    expect([mb.rows, mb.seq]).toEqual([2, S]);
    [2, 0].forEach((i, r) => {
      const n = rows[i].ids.length;
      expect(Array.from(mb.ids.subarray(r * S, r * S + n))).toEqual(Array.from(rows[i].ids));
      expect(Array.from(mb.ids.subarray(r * S + n, (r + 1) * S)).every((x) => x === tok.padId)).toBe(true);
      expect(Array.from(mb.mask.subarray(r * S, (r + 1) * S))).toEqual(Array.from({ length: S }, (_, k) => (k < n ? 1 : 0)));
      expect(Array.from(mb.tags.subarray(r * S + 1, r * S + n - 1))).toEqual(Array.from(rows[i].tags));
      expect(mb.lens[r]).toBe(n - 2);
    });
    expect(mb.tokens).toBe(rows[2].ids.length + rows[0].ids.length);
    expect(mb.ceTokens).toBe([...rows[2].ceMask, ...rows[0].ceMask].reduce((a, b) => a + b, 0));
    const io = (name: string) => ({ name, elemType: 7, dims: ['batch', 'seq'] });
    const feeds = batchFeeds([io('input_ids'), io('attention_mask'), io('token_type_ids'), io('position_ids')], mb);
    expect(Array.from(feeds.position_ids.dataSync().slice(0, 4))).toEqual([0, 1, 2, 3]);
    expect(feeds.token_type_ids.sum().dataSync()[0]).toBe(0);
    expect(Array.from(feeds.input_ids.dataSync())).toEqual(Array.from(mb.ids));
    for (const t of Object.values(feeds)) t.dispose();
    expect(() => batchFeeds([io('input_ids'), io('pixel_values')], mb)).toThrow(GraphError);
  });
});

describe('learning-rate schedule', () => {
  it('warms up linearly to the peak, then decays linearly towards 0; a time budget caps the decay', () => {
    const s = { lr: 1e-3, totalSteps: 100, warmupSteps: warmupStepsFor(100, 0.1) };
    expect(s.warmupSteps).toBe(10);
    expect(learningRate(s, 0)).toBeCloseTo(1e-4, 12);
    expect(learningRate(s, 9)).toBeCloseTo(1e-3, 12);
    expect(learningRate(s, 10)).toBeCloseTo(1e-3, 12);
    expect(learningRate(s, 55)).toBeCloseTo(0.5e-3, 12);
    expect(learningRate(s, 99)).toBeCloseTo(1e-3 / 90, 12);
    expect(learningRate(s, 100)).toBe(0);
    expect(learningRate(s, 20, 0.75)).toBeCloseTo(0.25e-3, 12);
    expect(learningRate(s, 20, 1.2)).toBe(0);
    expect(learningRate(s, 5, 0.9)).toBeCloseTo(6e-4, 12); // warm-up ignores the clock
    expect(learningRate({ lr: 1, totalSteps: 4, warmupSteps: 0 }, 0)).toBe(1);
    expect(warmupStepsFor(7, 0)).toBe(0);
    expect(() => warmupStepsFor(7, 1)).toThrow(RangeError);
  });
});
