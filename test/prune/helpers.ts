/** Shared helpers for test/prune: fixture models, onnxruntime runs, token cross-entropy in plain JS. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { decodeModel, encodeModel, type onnx } from '../../src/onnx/codec.js';
import type { ScoringBatch } from '../../src/prune/data.js';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const TINY = join(REPO, 'fixtures', 'tiny');
export const ATTENTION = join(REPO, 'test', 'onnx', 'fixtures', 'attention');
export const MSRA_DEV = join(REPO, 'fixtures', 'data', 'msra_dev_sample.jsonl');
export const MSRA_TEST = join(REPO, 'fixtures', 'data', 'msra_test_sample.jsonl');
export const MSRA_TRAIN = join(REPO, 'fixtures', 'data', 'msra_train_sample.jsonl');
export const CLUENER_DEV = join(REPO, 'fixtures', 'data', 'cluener_dev_sample.jsonl');

export interface FixtureModel {
  name: string;
  path: string;
  /** Fixed [batch, sequence] of a static export. */
  fixed?: [number, number];
}

/** Every PyTorch-exported fixture with attention: fixtures/tiny/* and test/onnx/fixtures/attention/*. */
export function fixtureModels(): FixtureModel[] {
  const tiny = ['bio-crf-op14', 'bioes-op17', 'bmes-op12-nobias', 'wordpiece-en-op11', 'optimum-layout', 'bare']
    .map((name) => {
      const dir = join(TINY, name);
      const path = existsSync(join(dir, 'model.onnx')) ? join(dir, 'model.onnx') : join(dir, 'onnx', 'model.onnx');
      return { name: `tiny/${name}`, path };
    })
    .filter((m) => existsSync(m.path));
  const facts = attentionFacts();
  const att = Object.entries(facts).map(([name, f]) => ({
    name: `attention/${name}`,
    path: join(ATTENTION, `${name}.onnx`),
    ...(f.dynamic ? {} : { fixed: [2, 8] as [number, number] }),
  }));
  return [...tiny, ...att];
}

export interface AttentionFact {
  bias: boolean;
  dynamic: boolean;
  heads: number;
  headSize: number;
  hidden: number;
  intermediate: number;
  layers: number;
  fused: string | null;
  opset: number;
  parameterGroups: { attention: number; ffn: number };
  expect: { scale: string; reshape: string };
}

/** test/onnx/fixtures/attention/models.json (PyTorch-side facts written by make_models.py). */
export function attentionFacts(): Record<string, AttentionFact> {
  return JSON.parse(readFileSync(join(ATTENTION, 'models.json'), 'utf8')) as Record<string, AttentionFact>;
}

export function load(path: string): onnx.ModelProto {
  return decodeModel(readFileSync(path), path);
}

/** Deterministic pseudo-random ints in [lo, hi). */
export function lcg(n: number, lo: number, hi: number, seed: number): number[] {
  let s = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push(lo + (s % (hi - lo)));
  }
  return out;
}

/** Vocabulary size of a BERT export (rows of its word embedding). */
export function vocabSize(model: onnx.IModelProto): number {
  const t = (model.graph?.initializer ?? []).find((x) => (x.name ?? '').includes('word_embeddings'));
  return t ? Number(t.dims?.[0]?.toString() ?? 30) : 30;
}

/** A padded batch of random ids: row r has T − r real tokens (at least 2). */
export function randomBatch(B: number, T: number, vocab: number, seed: number): ScoringBatch {
  const ids = Int32Array.from(lcg(B * T, 1, vocab, seed));
  const mask = new Int32Array(B * T);
  for (let r = 0; r < B; r++) mask.fill(1, r * T, r * T + Math.max(2, T - r));
  return { batch: B, seqLen: T, ids, mask, labels: new Int32Array(B * T), lossMask: Float32Array.from(mask), tokens: mask.reduce((a, b) => a + b, 0) };
}

/** An onnxruntime session whose `logits(batch)` returns copied logits (onnxruntime may reuse output buffers). */
export async function ortSession(model: onnx.IModelProto | Uint8Array): Promise<{ logits(b: ScoringBatch): Promise<Float32Array>; release(): Promise<void> }> {
  const bytes = model instanceof Uint8Array ? model : encodeModel(model);
  const s = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
  return {
    async logits(b) {
      const feeds: Record<string, ort.Tensor> = {};
      for (const name of s.inputNames) {
        const src = name === 'input_ids' ? b.ids : name === 'attention_mask' ? b.mask : new Int32Array(b.batch * b.seqLen);
        feeds[name] = new ort.Tensor('int64', BigInt64Array.from(Array.from(src), (x) => BigInt(x)), [b.batch, b.seqLen]);
      }
      const out = await s.run(feeds);
      return Float32Array.from(out[s.outputNames[0]].data as Float32Array);
    },
    release: () => s.release(),
  };
}

/** onnxruntime logits for one batch (a session of its own). */
export async function ortLogits(model: onnx.IModelProto | Uint8Array, b: ScoringBatch): Promise<Float32Array> {
  const s = await ortSession(model);
  try {
    return await s.logits(b);
  } finally {
    await s.release();
  }
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/**
 * Σ over counted positions of the token cross-entropy of `logits` ([B·T, L] row-major) to `targets`
 * (gold labels, or the argmax of `logits` when targets is 'argmax'), in float64.
 */
export function crossEntropySum(logits: Float32Array, b: ScoringBatch, targets: Int32Array | 'argmax'): number {
  const n = b.batch * b.seqLen;
  const L = logits.length / n;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    if (!b.lossMask[i]) continue;
    let m = -Infinity;
    let arg = 0;
    for (let j = 0; j < L; j++) {
      if (logits[i * L + j] > m) {
        m = logits[i * L + j];
        arg = j;
      }
    }
    let z = 0;
    for (let j = 0; j < L; j++) z += Math.exp(logits[i * L + j] - m);
    const t = targets === 'argmax' ? arg : targets[i];
    sum += b.lossMask[i] * -(logits[i * L + t] - m - Math.log(z));
  }
  return sum;
}
