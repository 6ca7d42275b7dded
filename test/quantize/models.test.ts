/**
 * Whole PyTorch-exported token classifiers, quantized in every format: the tiny fixture models (opsets
 * 11/12/14/17, with and without token_type_ids, BIO+CRF / BIOES / BMES, decomposed and fused LayerNorm).
 * Each quantized model must load and run in onnxruntime, keep the float model's logits within int8 error
 * (SQNR, argmax agreement), quantize every MatMul/Gemm and embedding Gather, and store weights as int8.
 * (The attention-variant exports are in attention.test.ts.)
 */
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { encodeModel } from '../../src/onnx/codec.js';
import { loadModel } from '../../src/onnx/external.js';
import { countModelParameters, countParameters } from '../../src/onnx/graph.js';
import { DataType, dimsOf, elementCount } from '../../src/onnx/tensor.js';
import type { FeedBatch } from '../../src/quantize/calibrate.js';
import { compareLogits as compare, countOps, quantize, type QuantizeOpts } from './helpers.js';

const REPO = new URL('../../', import.meta.url).pathname;

interface Reference {
  inputs: string[];
  cases: Array<{ name: string; batch: number; sequence: number; input_ids: number[][]; attention_mask: number[][]; token_type_ids?: number[][] }>;
}

function i64(rows: number[][]): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(rows.flat().map(BigInt)), [rows.length, rows[0].length]);
}

function referenceFeeds(dir: string): { feeds: FeedBatch[]; masks: number[][][] } {
  const ref = JSON.parse(readFileSync(`${REPO}${dir}/reference.json`, 'utf8')) as Reference;
  const feeds = ref.cases.map((c) => {
    const f: Record<string, ort.Tensor> = { input_ids: i64(c.input_ids), attention_mask: i64(c.attention_mask) };
    if (ref.inputs.includes('token_type_ids')) f.token_type_ids = i64(c.token_type_ids!);
    return { feeds: f };
  });
  return { feeds, masks: ref.cases.map((c) => c.attention_mask) };
}

function int8Elements(model: { graph?: { initializer?: Array<{ dataType?: number | null; dims?: unknown }> | null } | null }): number {
  let n = 0;
  for (const t of model.graph?.initializer ?? []) if (t.dataType === DataType.INT8) n += elementCount(dimsOf(t as never));
  return n;
}

const FORMATS: Array<[string, QuantizeOpts]> = [
  ['QDQ', {}],
  ['QDQ per-channel', { perChannel: true }],
  ['QOperator', { format: 'qoperator' }],
  ['dynamic', { mode: 'dynamic' }],
];

/** Every format on one model; two formats each on the others (the rewrite is op-local, so this covers the matrix). */
const MATRIX: Array<[string, Array<[string, QuantizeOpts]>]> = [
  ['fixtures/tiny/bio-crf-op14', FORMATS],
  ['fixtures/tiny/bioes-op17', [FORMATS[1], FORMATS[3]]],
  ['fixtures/tiny/bmes-op12-nobias', [FORMATS[1], FORMATS[2]]],
  ['fixtures/tiny/wordpiece-en-op11', [FORMATS[0], FORMATS[2]]],
];

describe('tiny fixture models', () => {
  for (const [dir, formats] of MATRIX) {
    for (const [fmt, opts] of formats) {
      it(`${dir.split('/').pop()} ${fmt}: runs, logits within int8 error, every MatMul and embedding quantized`, async () => {
        const { model } = await loadModel(`${REPO}${dir}/model.onnx`);
        const { feeds, masks } = referenceFeeds(dir);
        const q = await quantize(model, feeds.slice(0, 3), opts);
        const ops = countOps(model);
        const matmuls = (ops.MatMul ?? 0) + (ops.Gemm ?? 0);
        expect(q.quantized.length, JSON.stringify(q.plan.leftInFloat)).toBe(q.plan.nodes.length);
        expect(q.plan.leftInFloat).toEqual([]);
        expect(q.plan.nodes.filter((n) => n.opType === 'MatMul' || n.opType === 'Gemm').length).toBe(matmuls);
        // word, position and (when present) token-type embeddings
        const tables = q.plan.nodes.filter((n) => n.opType === 'Gather').map((n) => n.inputs[0].tensor);
        expect(tables).toContain('bert.embeddings.word_embeddings.weight');
        expect(tables).toContain('bert.embeddings.position_embeddings.weight');
        // the float parameters left are biases and LayerNorm weights; the rest is int8, element for element
        const floatBefore = countParameters(model.graph!);
        const floatAfter = countParameters(q.model.graph!);
        expect(floatAfter + int8Elements(q.model)).toBeGreaterThanOrEqual(floatBefore);
        expect(floatAfter).toBeLessThan(floatBefore * 0.1);
        // reports count parameters by use (float or quantized weights): the INT8 model has as many as the float one
        expect(countModelParameters(q.model.graph!)).toBe(countModelParameters(model.graph!));
        const r = await compare(encodeModel(model), encodeModel(q.model), feeds, masks);
        expect(r.sqnrDb).toBeGreaterThan(18);
        expect(r.agree).toBeGreaterThan(0.9);
      });
    }
  }
});
