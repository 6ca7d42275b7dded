/**
 * The CRF and KL importance losses (importance.ts) against independent computations in onnxruntime:
 * |∂L/∂ξ_h| equals central finite differences of
 * - the linear-chain CRF negative log-likelihood of each row's window, computed here by the textbook
 *   forward algorithm (log-sum-exp over paths) on onnxruntime's logits with crf.json's scores;
 * - KL(softmax(reference) ‖ softmax(model)) per counted token, the reference being the unpruned model
 *   and the model a copy with one head already scaled (at the reference itself the gradient is 0).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readExamples } from '../../src/ner/data.js';
import { LabelSet } from '../../src/ner/labels.js';
import { WordPieceTokenizer } from '../../src/ner/tokenizer.js';
import { findAttentionBlocks, type AttentionBlock } from '../../src/onnx/attention.js';
import { decodeModel, encodeModel, type onnx } from '../../src/onnx/codec.js';
import { loadModelFolder } from '../../src/onnx/folder.js';
import { loadModel } from '../../src/onnx/external.js';
import { dimsOf, makeTensor, tensorToFloat32 } from '../../src/onnx/tensor.js';
import { batchRows, scoringRows, type ScoringBatch } from '../../src/prune/data.js';
import { computeImportance, klLossValue, windowLengths } from '../../src/prune/importance.js';
import { MSRA_DEV, ortSession, TINY } from './helpers.js';

const DIR = join(TINY, 'bio-crf-op14');
const folder = await loadModelFolder({ model: DIR });
const model = decodeModel(encodeModel((await loadModel(folder.onnxPath)).model));
const blocks = findAttentionBlocks(model).blocks;
const labels = new LabelSet(folder.labels);
const tokenizer = await WordPieceTokenizer.fromFiles(folder.vocabPath as string, folder.tokenizerConfig);
const examples = (await readExamples(MSRA_DEV, { types: labels.types })).examples.slice(0, 3);
const rows = scoringRows(examples, tokenizer, labels, { windowSize: folder.maxLength - 2, overlap: 16 }).slice(0, 3);
const crfJson = JSON.parse(readFileSync(join(DIR, 'crf.json'), 'utf8')) as {
  transitions: number[][];
  start_transitions: number[];
  end_transitions: number[];
};

function scaledHead(m: onnx.IModelProto, block: AttentionBlock, h: number, f: number): onnx.IModelProto {
  const copy = decodeModel(encodeModel(m));
  const g = copy.graph as onnx.GraphProto;
  const i = g.initializer.findIndex((t) => t.name === block.output.weight);
  const w = g.initializer[i];
  const [r, c] = dimsOf(w);
  const v = tensorToFloat32(w);
  for (let a = 0; a < r; a++) {
    for (let b = 0; b < c; b++) {
      const inF = block.output.layout === 'in_out' ? a : b;
      if (inF >= h * block.headSize && inF < (h + 1) * block.headSize) v[a * c + b] *= f;
    }
  }
  g.initializer[i] = makeTensor(w.name ?? '', w.dataType ?? 1, [r, c], v);
  return copy;
}

const lse = (xs: number[]): number => {
  const m = Math.max(...xs);
  return m + Math.log(xs.reduce((s, x) => s + Math.exp(x - m), 0));
};

/** Σ rows CRF NLL of the window positions 1 … n (textbook forward algorithm). */
function crfNll(logits: Float32Array, b: ScoringBatch, L: number): number {
  const { transitions: T, start_transitions: S, end_transitions: E } = crfJson;
  let sum = 0;
  const lens = windowLengths(b);
  for (let r = 0; r < b.batch; r++) {
    const n = lens[r];
    const em = (t: number, j: number) => logits[(r * b.seqLen + 1 + t) * L + j];
    const y = (t: number) => b.labels[r * b.seqLen + 1 + t];
    let alpha = Array.from({ length: L }, (_, j) => S[j] + em(0, j));
    let gold = S[y(0)] + em(0, y(0));
    for (let t = 1; t < n; t++) {
      alpha = Array.from({ length: L }, (_, j) => lse(alpha.map((a, i) => a + T[i][j])) + em(t, j));
      gold += T[y(t - 1)][y(t)] + em(t, y(t));
    }
    gold += E[y(n - 1)];
    sum += lse(alpha.map((a, j) => a + E[j])) - gold;
  }
  return sum;
}

async function ortValue(m: onnx.IModelProto, b: ScoringBatch, f: (lg: Float32Array, L: number) => number): Promise<number> {
  const s = await ortSession(m);
  try {
    return f(await s.logits(b), folder.labels.length);
  } finally {
    await s.release();
  }
}

describe('importance losses', () => {
  it('KL is 0 with a zero gradient at the reference, and positive elsewhere', () => {
    const ref = Float32Array.from([1, 2, 0.5, -1, 0, 3]);
    const g = new Float32Array(6);
    expect(klLossValue(ref, ref, 3, [1, 1], g)).toBeCloseTo(0, 12);
    expect(Math.max(...g.map(Math.abs))).toBeLessThan(1e-7);
    const other = Float32Array.from([0, 2, 0.5, -1, 1, 3]);
    expect(klLossValue(other, ref, 3, [1, 1])).toBeGreaterThan(0);
    expect(klLossValue(other, ref, 3, [0, 0])).toBe(0);
  });

  it('CRF NLL: |∂L/∂ξ_h| per example equals central finite differences in onnxruntime', async () => {
    const single = rows.map((r) => batchRows([r], { maxRows: 1, maxTokens: 4096, padId: tokenizer.padId })[0]);
    const together = batchRows(rows, { maxRows: 3, maxTokens: 4096, padId: tokenizer.padId });
    const imp = await computeImportance(model, blocks, together, { loss: 'crf', crf: folder.crf });
    const tokens = windowLengths(together[0]).reduce((a, n) => a + n, 0);
    expect(imp.tokens).toBe(tokens);
    const base = (await ortValue(model, together[0], (lg, L) => crfNll(lg, together[0], L))) / tokens;
    expect(imp.loss).toBeCloseTo(base, 4);
    const eps = 1e-2;
    for (const [l, h] of [
      [0, 0],
      [1, 2],
    ]) {
      let sumAbs = 0;
      for (const b of single) {
        const up = await ortValue(scaledHead(model, blocks[l], h, 1 + eps), b, (lg, L) => crfNll(lg, b, L));
        const down = await ortValue(scaledHead(model, blocks[l], h, 1 - eps), b, (lg, L) => crfNll(lg, b, L));
        sumAbs += Math.abs((up - down) / (2 * eps));
      }
      const got = imp.heads[l][h] * tokens;
      expect(sumAbs).toBeGreaterThan(1e-3);
      expect(Math.abs(got - sumAbs), `layer ${l} head ${h}: ${got} vs FD ${sumAbs}`).toBeLessThan(1e-3 + 2e-3 * sumAbs);
    }
  });

  it('KL to the reference: |∂L/∂ξ_h| equals central finite differences in onnxruntime', async () => {
    const b = batchRows(rows.slice(0, 1), { maxRows: 1, maxTokens: 4096, padId: tokenizer.padId })[0];
    const drifted = scaledHead(model, blocks[0], 1, 0.3); // the model has drifted from the reference
    const s = await ortSession(model);
    const refLogits = await s.logits(b);
    await s.release();
    const kl = (lg: Float32Array, L: number) => klLossValue(lg, refLogits, L, b.lossMask);
    const imp = await computeImportance(drifted, blocks, [b], { loss: 'kl', reference: model });
    const eps = 1e-2;
    for (const [l, h] of [
      [0, 1],
      [1, 0],
    ]) {
      const up = await ortValue(scaledHead(drifted, blocks[l], h, 1 + eps), b, kl);
      const down = await ortValue(scaledHead(drifted, blocks[l], h, 1 - eps), b, kl);
      const fd = Math.abs((up - down) / (2 * eps));
      const got = imp.heads[l][h] * b.tokens;
      expect(fd).toBeGreaterThan(1e-5);
      expect(Math.abs(got - fd), `layer ${l} head ${h}: ${got} vs FD ${fd}`).toBeLessThan(1e-4 + 2e-3 * fd);
    }
  });
});
