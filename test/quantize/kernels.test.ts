/**
 * onnxruntime must run ranerc's INT8 output on integer kernels: the graph onnxruntime actually executes
 * (written by `optimizedModelFilePath` after its graph optimizations) must hold one integer matrix
 * product (MatMulIntegerToFloat / QLinearMatMul / DynamicQuantizeMatMul / MatMulInteger / QGemm) per
 * MatMul or Gemm ranerc quantized, and no DequantizeLinear feeding a float matrix product. If an
 * onnxruntime upgrade (or a change in ranerc's Q/DQ placement) stops the fusion, the INT8 model would
 * silently run in float plus conversions: this test fails then.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeModel, encodeModel } from '../../src/onnx/codec.js';
import { loadModel } from '../../src/onnx/external.js';
import { INTEGER_GEMM_OPS } from '../../src/runtime/profile-table.js';
import { NerSession } from '../../src/runtime/session.js';
import { quantize, referenceCalib, type QuantizeOpts } from './helpers.js';


const REPO = new URL('../../', import.meta.url).pathname;
const FLOAT_GEMM = new Set(['MatMul', 'FusedMatMul', 'Gemm', 'FusedGemm']);

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ranerc-kernels-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const CASES: Array<[string, string, QuantizeOpts]> = [
  ['bio-crf-op14', 'QDQ per-channel', { perChannel: true }],
  ['bio-crf-op14', 'QDQ per-tensor', {}],
  ['bio-crf-op14', 'QOperator', { format: 'qoperator' }],
  ['bio-crf-op14', 'dynamic', { mode: 'dynamic' }],
  ['bioes-op17', 'QDQ per-channel', { perChannel: true }],
  ['bmes-op12-nobias', 'QDQ', {}],
  ['wordpiece-en-op11', 'dynamic', { mode: 'dynamic' }],
];

describe('onnxruntime turns ranerc INT8 output into integer kernels', () => {
  for (const [fixture, label, opts] of CASES) {
    it(`${fixture} ${label}`, async () => {
      const dir = `${REPO}fixtures/tiny/${fixture}`;
      const { model } = await loadModel(`${dir}/model.onnx`);
      const q = await quantize(model, referenceCalib(dir), opts);
      const quantizedGemms = q.plan.nodes.filter((n) => q.quantized.includes(n.label) && (n.opType === 'MatMul' || n.opType === 'Gemm')).length;
      expect(quantizedGemms).toBeGreaterThan(0);
      const path = join(tmp, `${fixture}-${label.replace(/\W+/g, '-')}.onnx`);
      const optimized = `${path}.optimized.onnx`;
      await writeFile(path, encodeModel(q.model));
      const s = await NerSession.open(path, { threads: 1, optimizedModelFilePath: optimized });
      await s.close();
      const ran = decodeModel(await readFile(optimized));
      const nodes = ran.graph?.node ?? [];
      const integer = nodes.filter((n) => INTEGER_GEMM_OPS.includes(n.opType ?? ''));
      expect(integer.length, nodes.map((n) => n.opType).join(' ')).toBe(quantizedGemms);
      const dqOutputs = new Set(nodes.filter((n) => n.opType === 'DequantizeLinear').flatMap((n) => n.output ?? []));
      const floatFromDq = nodes.filter((n) => FLOAT_GEMM.has(n.opType ?? '') && (n.input ?? []).some((i) => dqOutputs.has(i)));
      expect(floatFromDq.map((n) => n.name)).toEqual([]);
    });
  }
});
