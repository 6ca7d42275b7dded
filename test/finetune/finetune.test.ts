/**
 * `finetuneModelFolder` and `ranerc finetune` end to end on tiny PyTorch exports (seconds):
 * - a weakened fixtures/tiny/bio-crf-op14 (Gaussian noise, 0.5 × each tensor's RMS) gains dev F1 from
 *   one epoch of CRF fine-tuning on 200 MSRA sentences;
 * - the written folder runs in onnxruntime with the logits the executor computes from the trained
 *   weights (max |Δ| < 1e-4), its crf.json holds the trained CRF, and `ranerc eval` of it gives exactly
 *   the dev F1 the trainer reported;
 * - the CLI path (token cross-entropy on fixtures/tiny/bioes-op17, no CRF) writes the model and the
 *   report folder; bad flags and files fail with exit 2 and a hint.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OnnxExecutor } from '../../src/autodiff/executor.js';
import { finetuneModelFolder, type FinetuneResult } from '../../src/autodiff/train/finetune.js';
import { withInitializers } from '../../src/autodiff/weights.js';
import { main } from '../../src/cli/index.js';
import { WordPieceTokenizer } from '../../src/ner/tokenizer.js';
import { decodeModel } from '../../src/onnx/codec.js';
import { loadModel } from '../../src/onnx/external.js';
import { loadModelFolder, writeModelFolder } from '../../src/onnx/folder.js';
import { isFloatType, tensorToFloat32 } from '../../src/onnx/tensor.js';
import { renderMarkdown } from '../../src/report/markdown.js';
import { reportProblem } from '../../src/report/schema.js';
import { mulberry32 } from '../../src/runtime/bench.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const TINY = join(REPO, 'fixtures/tiny');
let tmp: string;
let weak: string;
let train: string;
let dev: string;
let result: FinetuneResult;

function lines(path: string, from: number, to: number): string {
  return readFileSync(path, 'utf8').split('\n').slice(from, to).join('\n') + '\n';
}

/** bio-crf-op14 with w ← w + 0.5 · rms(w) · N(0, 1) on every float tensor (seeded). */
async function weaken(out: string): Promise<void> {
  const folder = await loadModelFolder({ model: join(TINY, 'bio-crf-op14') });
  const { model } = await loadModel(folder.onnxPath);
  const rand = mulberry32(7);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const values = new Map<string, Float32Array>();
  for (const t of model.graph?.initializer ?? []) {
    if (!isFloatType(t.dataType ?? 0)) continue;
    const w = tensorToFloat32(t);
    const rms = Math.sqrt(w.reduce((s, x) => s + x * x, 0) / w.length);
    for (let i = 0; i < w.length; i++) w[i] += 0.5 * rms * gauss();
    values.set(t.name ?? '', w);
  }
  await writeModelFolder(out, folder, withInitializers(model, values), {
    provenance: { ranerc: 'test', command: 'test', createdAt: new Date(0).toISOString() },
  });
}

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(['node', 'ranerc', ...args], { out: (t) => void (out += t), err: (t) => void (err += t), interactive: false });
  return { code, out, err };
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'ranerc-finetune-test-'));
  weak = join(tmp, 'weak');
  await weaken(weak);
  train = join(tmp, 'train.jsonl');
  dev = join(tmp, 'dev.jsonl');
  writeFileSync(train, lines(join(REPO, 'fixtures/data/msra_train_sample.jsonl'), 0, 200));
  writeFileSync(dev, lines(join(REPO, 'fixtures/data/msra_dev_sample.jsonl'), 0, 80));
  result = await finetuneModelFolder({
    model: weak,
    train,
    dev,
    out: join(tmp, 'out'),
    epochs: 1,
    lr: 3e-3,
    batch: 16,
    evalEvery: 9,
    backend: 'wasm',
    seed: 1,
  });
}, 120_000);

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

describe('finetuneModelFolder (CRF, wasm)', () => {
  it('raises the dev F1 of the weakened model; the best evaluation is the one written', () => {
    const d = result.details;
    expect(d.backend).toBe('wasm');
    expect(d.loss).toBe('crf');
    expect(d.steps).toBe(Math.ceil(d.trainRows / 16));
    expect(d.evals.map((e) => e.step)).toEqual([0, 9, d.steps]);
    expect(d.evals[0].f1).toBe(result.f1.before.micro.f1);
    expect(result.f1.after.micro.f1).toBeGreaterThan(result.f1.before.micro.f1 + 0.05);
    const best = d.evals.reduce((a, e) => (e.f1 > a.f1 ? e : a));
    expect(d.best).toEqual({ step: best.step, epoch: best.epoch, f1: best.f1 });
    expect(result.f1.after.micro.f1).toBe(d.best.f1);
    expect(result.checkpoint).toBeDefined();
    expect(d.curve.length).toBe(d.steps);
    // (per-batch losses of length-bucketed batches are not comparable step to step; trainer.test.ts checks the descent)
    expect(d.curve.every((p) => Number.isFinite(p.loss) && p.loss > 0)).toBe(true);
    expect(d.warmupSteps).toBe(Math.ceil(0.1 * d.steps));
    expect(d.curve[0].lr).toBeCloseTo(3e-3 / d.warmupSteps, 12);
    expect(d.curve[d.warmupSteps - 1].lr).toBeCloseTo(3e-3, 12);
    expect(d.curve[d.steps - 1].lr).toBeCloseTo(3e-3 / (d.steps - d.warmupSteps), 12);
    expect(d.tokensPerSec).toBeGreaterThan(0);
    expect(d.tokens).toBe(d.curve.reduce((s, p) => s + p.tokens, 0));
  });

  it('the written folder runs in onnxruntime with the executor\'s logits of the trained weights (max |Δ| < 1e-4)', async () => {
    const ck = result.checkpoint!;
    const { model } = await loadModel(join(weak, 'model.onnx'));
    const ex = await OnnxExecutor.create(model, { backend: 'wasm', trainable: 'none' });
    try {
      for (const [name, v] of ex.variables) v.assign(tf.tensor(ck.weights.get(name)!, v.shape));
      const folder = await loadModelFolder({ model: result.outDir });
      const tok = await WordPieceTokenizer.fromFiles(folder.vocabPath as string, folder.tokenizerConfig);
      const texts = readFileSync(dev, 'utf8').split('\n').slice(0, 4).map((l) => (JSON.parse(l) as { text: string }).text);
      const toks = texts.map((t) => tok.tokenize(t).slice(0, folder.maxLength - 2));
      const S = Math.max(...toks.map((t) => t.length)) + 2;
      const ids = new Int32Array(texts.length * S).fill(tok.padId);
      const mask = new Int32Array(texts.length * S);
      toks.forEach((t, r) => {
        ids[r * S] = tok.clsId;
        t.forEach((x, k) => (ids[r * S + 1 + k] = x.id));
        ids[r * S + t.length + 1] = tok.sepId;
        mask.fill(1, r * S, r * S + t.length + 2);
      });
      const shape = [texts.length, S];
      const feeds = { input_ids: tf.tensor(ids, shape, 'int32'), attention_mask: tf.tensor(mask, shape, 'int32'), token_type_ids: tf.zeros(shape, 'int32') };
      const mine = ex.run(feeds).logits;
      const got = mine.dataSync();
      const session = await ort.InferenceSession.create(readFileSync(folder.onnxPath));
      const i64 = (a: Int32Array) => new ort.Tensor('int64', BigInt64Array.from(a, (v) => BigInt(v)), shape);
      const out = await session.run({ input_ids: i64(ids), attention_mask: i64(mask), token_type_ids: i64(new Int32Array(ids.length)) });
      await session.release();
      const ref = out.logits.data as Float32Array;
      expect(ref.length).toBe(got.length);
      let diff = 0;
      for (let i = 0; i < ref.length; i++) diff = Math.max(diff, Math.abs(ref[i] - got[i]));
      expect(diff).toBeLessThan(1e-4);
      // and the trained weights really differ from the starting ones
      const start = await loadModel(join(weak, 'model.onnx'));
      const inits = start.model.graph?.initializer ?? [];
      const moved = inits.filter((t) => {
        const a = tensorToFloat32(t);
        const b = ck.weights.get(t.name ?? '')!;
        return a.some((x, i) => Math.abs(x - b[i]) > 1e-6);
      });
      expect(moved.length).toBe(inits.length);
      tf.dispose([mine, ...Object.values(feeds)]);
    } finally {
      ex.dispose();
    }
  });

  it('crf.json holds the trained CRF; the graph is the same', async () => {
    const written = await loadModelFolder({ model: result.outDir });
    const crf = result.checkpoint!.crf!;
    expect(written.crf).toEqual(crf);
    const start = await loadModelFolder({ model: weak });
    expect(crf.transitions.flat().some((v, i) => Math.abs(v - start.crf!.transitions.flat()[i]) > 1e-4)).toBe(true);
    const a = decodeModel(readFileSync(start.onnxPath), 'a').graph!;
    const b = decodeModel(readFileSync(written.onnxPath), 'b').graph!;
    expect(b.node!.map((n) => `${n.opType}:${n.name}`)).toEqual(a.node!.map((n) => `${n.opType}:${n.name}`));
    expect(b.initializer!.map((t) => `${t.name}[${t.dims}]`)).toEqual(a.initializer!.map((t) => `${t.name}[${t.dims}]`));
    const prov = JSON.parse(readFileSync(join(result.outDir, 'ranerc.json'), 'utf8')) as { command: string; settings: { bestStep: number } };
    expect(prov.command).toBe('finetune');
    expect(prov.settings.bestStep).toBe(result.details.best.step);
  });

  it('`ranerc eval` of the written folder gives exactly the dev F1 the trainer reported', async () => {
    const r = await cli(['eval', '--model', result.outDir, '--data', dev, '--json', '--report-dir', join(tmp, 'eval-report')]);
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.out) as { models: Array<{ f1: { micro: { f1: number; tp: number; pred: number; gold: number } } }> };
    const m = rep.models[0].f1.micro;
    expect(m.f1).toBe(result.details.best.f1);
    expect([m.tp, m.pred, m.gold]).toEqual([result.f1.after.micro.tp, result.f1.after.micro.pred, result.f1.after.micro.gold]);
  });

  it('report: valid schema, before/after models with per-type F1, the curve picture', () => {
    const rep = result.report;
    expect(reportProblem(rep)).toBeUndefined();
    expect(rep.models.map((m) => m.role)).toEqual(['before', 'after']);
    expect(rep.models[1].f1).toEqual(result.f1.after);
    expect(Object.keys(rep.models[0].f1!.perType).sort()).toEqual(['LOC', 'ORG', 'PER']);
    expect(rep.environment.tfjsBackend).toBe('wasm');
    const md = renderMarkdown(rep);
    expect(md).toContain('![training curve](training-curve.svg)');
    expect(md).toContain('### Dev F1 before → after');
    expect(result.curveSvg.startsWith('<svg')).toBe(true);
    expect(result.curveSvg.match(/<polyline/g)!.length).toBeGreaterThanOrEqual(3);
    expect(result.curveSvg.match(/<circle/g)!.length).toBe(result.details.evals.length);
  });
});

describe('finetuneModelFolder stopping and options', () => {
  it('--max-minutes stops after the step that crosses the budget, evaluates that step and says so', async () => {
    const tr = join(tmp, 'tiny-train.jsonl');
    writeFileSync(tr, lines(join(REPO, 'fixtures/data/msra_train_sample.jsonl'), 300, 320));
    const r = await finetuneModelFolder({
      model: join(TINY, 'bio-crf-op14'),
      train: tr,
      dev,
      out: join(tmp, 'budget-out'),
      epochs: 3,
      batch: 4,
      maxMinutes: 1e-6,
      freeze: ['embeddings'],
      backend: 'wasm',
    });
    const d = r.details;
    expect(d.stoppedBy).toBe('max-minutes');
    expect(d.steps).toBe(1);
    expect(d.plannedSteps).toBe(3 * Math.ceil(d.trainRows / 4));
    expect(d.evals.map((e) => e.step)).toEqual([0, 1]);
    expect(r.report.warnings.join(' ')).toMatch(/--max-minutes/);
    // "embeddings" matches the three embedding tables and the embedding LayerNorm (HF names)
    expect(d.frozen).toEqual([
      'bert.embeddings.LayerNorm.bias',
      'bert.embeddings.LayerNorm.weight',
      'bert.embeddings.position_embeddings.weight',
      'bert.embeddings.token_type_embeddings.weight',
      'bert.embeddings.word_embeddings.weight',
    ]);
    expect(d.parameters.frozen).toBe((400 + 64 + 2) * 32 + 2 * 32);
    expect(d.parameters.trainable + d.parameters.frozen).toBe(32295 + 7 * 7 + 2 * 7);
  });
});

describe('ranerc finetune (CLI)', () => {
  it('token cross-entropy on a model without CRF: writes the model folder and report.json, report.md, training-curve.svg', async () => {
    const data = join(REPO, 'fixtures/data/cluener_dev_sample.jsonl');
    const tr = join(tmp, 'c-train.jsonl');
    const dv = join(tmp, 'c-dev.jsonl');
    writeFileSync(tr, lines(data, 0, 40));
    writeFileSync(dv, lines(data, 200, 230));
    const out = join(tmp, 'cli-out');
    const rd = join(tmp, 'cli-report');
    const r = await cli(['finetune', '--model', join(TINY, 'bioes-op17'), '--train', tr, '--dev', dv, '--out', out, '--epochs', '1', '--batch', '8', '--lr', '1e-3', '--backend', 'wasm', '--report-dir', rd, '--eval-every', '2']);
    expect(r.err).toContain('report: ');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/dev F1 %\s+before\s+after\s+change/);
    expect(r.out).toMatch(/5 steps \(1\.00 epochs\) in [\d.]+ s on tfjs wasm: [\d,.]+ tokens\/s/);
    expect(readdirSync(rd).sort()).toEqual(['report.json', 'report.md', 'training-curve.svg']);
    const rep = JSON.parse(readFileSync(join(rd, 'report.json'), 'utf8')) as { details: { loss: string; crfTrained: boolean; evals: Array<{ step: number }> } };
    expect(rep.details.loss).toBe('ce');
    expect(rep.details.crfTrained).toBe(false);
    expect(rep.details.evals.map((e) => e.step)).toEqual([0, 2, 4, 5]);
    expect(readdirSync(out)).toContain('model.onnx');
    expect(readdirSync(out)).not.toContain('crf.json');
  });

  it('bad flags and files: exit 2 with a hint, nothing written', async () => {
    const base = ['finetune', '--model', join(TINY, 'bioes-op17'), '--train', train, '--dev', dev, '--out', join(tmp, 'never')];
    const cases: Array<[string[], RegExp]> = [
      [['--backend', 'gpu'], /--backend must be one of auto, tensorflow, wasm, cpu[\s\S]*hint:/],
      [['--loss', 'crf'], /--loss crf needs a CRF, and the model folder has no crf\.json[\s\S]*hint: use --loss ce/],
      [['--freeze', 'no_such_tensor'], /--freeze "no_such_tensor" matches no float initializer[\s\S]*hint:/],
      [['--epochs', '0'], /--epochs must be an integer in \[1, 1000\]/],
    ];
    for (const [extra, msg] of cases) {
      const r = await cli([...base, ...extra]);
      expect(r.code, extra.join(' ')).toBe(2);
      expect(r.err).toMatch(msg);
    }
    const badData = join(tmp, 'bad.jsonl');
    writeFileSync(badData, '{"text": "ok", "entities": []}\n{"text": 5}\n');
    const r = await cli(['finetune', '--model', join(TINY, 'bioes-op17'), '--train', badData, '--dev', dev, '--out', join(tmp, 'never')]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/bad\.jsonl:2: /);
    expect(readdirSync(tmp)).not.toContain('never');
  });
});
