/**
 * The intake matrix: every encoder-family fixture (fixtures/intake/families/*) × {eval, predict, quantize,
 * prune (where heads can be pruned), finetune, distill as teacher, serve}, as a user runs them (the CLI
 * in-process, tiny data, one step). Data-driven: any folder added under families/ with a reference.json
 * joins the matrix. What is unsupported must exit 2 naming what and what to do, and write nothing.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { entitiesJson } from '../../src/cli/predict.js';
import { decodeModel } from '../../src/onnx/codec.js';
import { loadModelFolder } from '../../src/onnx/folder.js';
import { Predictor } from '../../src/runtime/predict.js';
import { NerSession } from '../../src/runtime/session.js';
import { createServer } from '../../src/serve/server.js';
import { cli, REPO } from '../cli/helpers.js';
import { postPredict } from '../serve/helpers.js';

const FAMILIES = join(REPO, 'fixtures/intake/families');
/** The tokenizer.json-only RoBERTa / XLM-R exports of fixtures/intake/make_roberta_xlmr.py (required). */
const EXTRA = ['roberta-bpe', 'xlmr-unigram'];
const FOLDERS = [...readdirSync(FAMILIES).filter((d) => existsSync(join(FAMILIES, d, 'reference.json'))).sort(), ...EXTRA.map((d) => `../${d}`)];
/** Folders whose layers share weights (prune refuses them). */
const SHARED = new Set(['albert-op12']);
const TEXTS = ['据新华社北京电，国务院总理李鹏今天会见了日本客人。', '中国人民银行在上海召开会议。'];

let tmp: string;
let train: string;
let dev: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ranerc-matrix-'));
  const lines = (f: string, n: number): string => readFileSync(join(REPO, 'fixtures/data', f), 'utf8').split('\n').filter(Boolean).slice(0, n).join('\n') + '\n';
  train = join(tmp, 'train.jsonl');
  dev = join(tmp, 'dev.jsonl');
  await writeFile(train, lines('msra_train_sample.jsonl', 8));
  await writeFile(dev, lines('msra_dev_sample.jsonl', 6));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

interface ReportJson {
  models?: Array<{ role: string }>;
  details: Record<string, unknown>;
}
const parse = (s: string): ReportJson => JSON.parse(s) as ReportJson;

describe.each(FOLDERS)('%s', (name) => {
  const model = join(FAMILIES, name);
  const w = (x: string): string => join(tmp, `${name}-${x}`);

  it('eval and predict', async () => {
    const e = await cli('eval', '--model', model, '--data', dev, '--json', '--report-dir', w('rep-eval'));
    expect(e.code, e.err).toBe(0);
    const p = await cli('predict', '--model', model, ...TEXTS);
    expect(p.code, p.err).toBe(0);
    // `ranerc predict` prints exactly what Predictor.predict gives
    const pr = await Predictor.open(await loadModelFolder({ model }));
    try {
      const want = (await pr.predict(TEXTS)).map((ents, i) => entitiesJson(TEXTS[i], ents));
      expect(p.out.trim().split('\n')).toEqual(want);
    } finally {
      await pr.close();
    }
  });

  it('quantize (static QDQ; LSTM: dynamic too)', async () => {
    const r = await cli('quantize', '--model', model, '--calib', train, '--calib-size', '8', '--out', w('q'), '--eval', dev, '--no-bench', '--json', '--report-dir', w('rep-q'));
    expect(r.code, r.err).toBe(0);
    const d = parse(r.out).details as { leftInFloat: Array<{ opType: string; reason: string }> };
    const hasLstm = decodeModel(readFileSync(join(model, 'model.onnx'))).graph!.node!.some((n) => n.opType === 'LSTM');
    if (hasLstm) {
      expect(d.leftInFloat.find((f) => f.opType === 'LSTM')?.reason).toMatch(/static mode.*DynamicQuantizeLSTM.*--dynamic/);
      const dyn = await cli('quantize', '--model', model, '--dynamic', '--out', w('qd'), '--eval', dev, '--no-bench', '--json', '--report-dir', w('rep-qd'));
      expect(dyn.code, dyn.err).toBe(0);
      const nodes = decodeModel(readFileSync(join(w('qd'), 'model.onnx'))).graph!.node!;
      expect(nodes.some((n) => n.opType === 'DynamicQuantizeLSTM' && n.domain === 'com.microsoft')).toBe(true);
      expect(nodes.some((n) => n.opType === 'LSTM')).toBe(false);
      // only the LSTM quantized: logits stay near the float model's on the PyTorch reference inputs (a wrong
      // weight layout — W/R not transposed to [dirs, k, 4·hidden] — or gate order gives errors of the logits' size)
      const only = await cli('quantize', '--model', model, '--dynamic', '--exclude', 'MatMul,Gather', '--out', w('ql'), '--no-bench', '--report-dir', w('rep-ql'));
      expect(only.code, only.err).toBe(0);
      const ref = JSON.parse(readFileSync(join(model, 'reference.json'), 'utf8')) as { cases: Array<{ batch: number; sequence: number; input_ids: number[][]; attention_mask: number[][]; token_type_ids?: number[][]; logits: number[][][] }> };
      const sq = await NerSession.open(w('ql'));
      try {
        let worst = 0;
        let scale = 0;
        for (const c of ref.cases) {
          const o = await sq.run({ ids: c.input_ids, mask: c.attention_mask, typeIds: c.token_type_ids, seqLen: c.sequence, batch: c.batch });
          const L = o.dims[2];
          for (let b = 0; b < c.batch; b++) {
            for (let t = 0; t < c.sequence; t++) {
              if (!c.attention_mask[b][t]) continue;
              for (let j = 0; j < L; j++) {
                worst = Math.max(worst, Math.abs(o.logits[(b * c.sequence + t) * L + j] - c.logits[b][t][j]));
                scale = Math.max(scale, Math.abs(c.logits[b][t][j]));
              }
            }
          }
        }
        expect(worst).toBeLessThan(0.02 * scale);
        expect(worst).toBeGreaterThan(0); // it did quantize
      } finally {
        await sq.close();
      }
    }
    if (SHARED.has(name)) {
      // the shared layer weights are quantized once: one int8 copy per shared float weight
      // (before: every Identity of a shared weight got its own int8 copy, 12 extra matrices)
      const matrices = (f: string, type: number): number =>
        decodeModel(readFileSync(join(f, 'model.onnx'))).graph!.initializer!.filter((t) => t.dataType === type && (t.dims ?? []).length >= 2).length;
      expect(matrices(model, 1)).toBe(11); // FLOAT: 3 embeddings, mapping, 6 shared layer weights, classifier
      expect(matrices(w('q'), 3)).toBe(11); // INT8: each once
    }
  });

  it(SHARED.has(name) ? 'prune refuses shared layer weights: exit 2, names the initializer, writes nothing' : 'prune --ratio 0.25 removes a quarter of the heads', async () => {
    const out = w('p');
    const rep = w('rep-p');
    const r = await cli('prune', '-m', model, '-d', dev, '--max-sentences', '6', '--no-bench', '--ratio', '0.25', '-o', out, '--cache-dir', w('cache'), '--report-dir', rep, '--json');
    if (SHARED.has(name)) {
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/share the weight initializer "[^"]+"/);
      expect(r.err).toMatch(/hint: .*quantize/);
      expect(existsSync(out)).toBe(false);
      expect(existsSync(rep)).toBe(false);
      return;
    }
    expect(r.code, r.err).toBe(0);
    const removed = (parse(r.out) as unknown as { settings: { removedHeads: Record<string, number[]> } }).settings.removedHeads;
    expect(Object.values(removed).flat().length).toBe(2); // 25 % of 2 layers × 4 heads
    expect(existsSync(join(out, 'model.onnx'))).toBe(true);
  });

  it('finetune (one step) and distill with it as teacher (one step)', async () => {
    const f = await cli('finetune', '--model', model, '--train', train, '--dev', dev, '--out', w('ft'), '--epochs', '1', '--batch', '8', '--lr', '1e-3', '--backend', 'wasm', '--report-dir', w('rep-ft'));
    expect(f.code, f.err).toBe(0);
    expect(existsSync(join(w('ft'), 'model.onnx'))).toBe(true);
    const d = await cli('distill', '--teacher', model, '--train', train, '--dev', dev, '--out', w('st'), '--max-steps', '1', '--hidden', '8', '--embedding-dim', '8', '--no-cache', '--bench-seconds', '0.1', '--report-dir', w('rep-d'));
    expect(d.code, d.err).toBe(0);
    expect(existsSync(join(w('st'), 'model.onnx'))).toBe(true);
  });

  it('serve answers /predict as Predictor.predict does', async () => {
    const s = await createServer({ model, port: 0 });
    try {
      const pr = await Predictor.open(await loadModelFolder({ model }));
      const want = (await pr.predict(TEXTS)).map((ents, i) => entitiesJson(TEXTS[i], ents));
      await pr.close();
      for (let i = 0; i < TEXTS.length; i++) {
        const r = await postPredict((s as unknown as { url: string }).url, { text: TEXTS[i] });
        expect(r.status).toBe(200);
        expect(r.body).toBe(want[i]);
      }
    } finally {
      await s.close();
    }
  });
});

describe('a converted model predicts what the raw export does', () => {
  it('modelscope-crf: `ranerc convert` output and the raw CRF-in-graph export give the same predict lines', async () => {
    const raw = join(REPO, 'fixtures/intake/modelscope-crf');
    const out = join(tmp, 'converted');
    const c = await cli('convert', '--model', raw, '--out', out, '--data', dev, '--report-dir', join(tmp, 'rep-conv'));
    expect(c.code, c.err).toBe(0);
    const a = await cli('predict', '--model', raw, ...TEXTS);
    const b = await cli('predict', '--model', out, ...TEXTS);
    expect(a.code, a.err).toBe(0);
    expect(b.code, b.err).toBe(0);
    expect(b.out).toBe(a.out);
    expect(a.out).toMatch(/"type":"(PER|LOC|ORG)"/);
  });
});
