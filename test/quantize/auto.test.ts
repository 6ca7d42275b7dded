/**
 * `ranerc quantize --format auto` end to end on a tiny fixture: every candidate (QDQ, QOperator, dynamic,
 * weights-only) is built and listed in the report with its p50, size and speed-up; exactly one thing is
 * written (a candidate, or the float graph) and the output folder is that model; no timing is asserted.
 * Weights-only on its own: int8 weight initializers behind DequantizeLinear, no activation QuantizeLinear,
 * and onnxruntime's logits within the weights' quantization error of the float model's.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../src/onnx/external.js';
import { DataType } from '../../src/onnx/tensor.js';
import { quantizeModelFolder } from '../../src/quantize/index.js';
import type { QuantizeDetails } from '../../src/quantize/types.js';
import type { Report } from '../../src/report/schema.js';
import { NerSession } from '../../src/runtime/session.js';
import { cli, REPO } from '../cli/helpers.js';

const TMP = mkdtempSync(join(tmpdir(), 'ranerc-quantize-auto-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));
const MODEL = `${REPO}fixtures/tiny/bio-crf-op14`;
const CALIB = `${REPO}fixtures/data/msra_calib.jsonl`;

describe('ranerc quantize --format auto', () => {
  it('builds and times every candidate, lists them, writes the chosen one', async () => {
    const out = join(TMP, 'auto');
    const r = await cli('quantize', '--model', MODEL, '--calib', CALIB, '--calib-size', '20', '--out', out, '--format', 'auto', '--bench-seconds', '0.2', '--threads', '1', '--json', '--report-dir', join(TMP, 'rep'));
    expect(r.code, r.err).toBe(0);
    const report = JSON.parse(r.out) as Report<QuantizeDetails>;
    const a = report.details.auto!;
    expect(a.candidates.map((c) => c.name).sort()).toEqual(['dynamic', 'qdq', 'qoperator', 'weights-only']);
    for (const c of a.candidates) {
      expect(c.error, c.name).toBeUndefined();
      expect(c.points).toHaveLength(1);
      expect(c.points![0]).toMatchObject({ seqLen: 64, batch: 1 });
      expect(c.points![0].p50Ms).toBeGreaterThan(0);
      expect(c.bytes).toBeLessThan(a.float.bytes);
      expect(c.speedup).toBeCloseTo(a.float.points[0].p50Ms / c.points![0].p50Ms, 12);
      expect(c.slower).toBe(c.points![0].p50Ms > a.float.points[0].p50Ms);
      if (c.slower) expect(c.chosen).toBe(false);
    }
    expect(a.candidates.filter((c) => c.chosen).length).toBe(a.chosen === 'float' ? 0 : 1);
    // the folder holds what was chosen: the float file byte count, or the candidate's
    const written = await loadModel(join(out, 'model.onnx'));
    const ops = new Set((written.model.graph?.node ?? []).map((n) => n.opType));
    const [, after] = report.models;
    if (a.chosen === 'float') {
      // the float graph, unchanged (re-serialized with new provenance, so not byte-identical)
      const src = await loadModel(join(MODEL, 'model.onnx'));
      const sig = (m: typeof src): string[] => (m.model.graph?.node ?? []).map((n) => `${n.opType}:${n.name}:${(n.input ?? []).join(',')}`);
      expect(sig(written)).toEqual(sig(src));
      expect(written.model.graph?.initializer?.length).toBe(src.model.graph?.initializer?.length);
    } else {
      expect(after.bytes).toBe(a.candidates.find((c) => c.chosen)!.bytes);
      expect(ops.has('DequantizeLinear') || ops.has('MatMulInteger')).toBe(true);
    }
    expect(after.latency![0].p50Ms).toBe(a.chosen === 'float' ? a.float.points[0].p50Ms : a.candidates.find((c) => c.chosen)!.points![0].p50Ms);
    // no candidate folder left behind next to --out
    expect(readdirSync(dirname(out)).filter((f) => f.includes('.tmp'))).toEqual([]);
    expect(existsSync(join(out, 'crf.json'))).toBe(true);
  }, 120_000);

  it('--format auto with --no-bench is a usage error (exit 2), nothing written', async () => {
    const out = join(TMP, 'nobench');
    const r = await cli('quantize', '--model', MODEL, '--calib', CALIB, '--out', out, '--format', 'auto', '--no-bench');
    expect(r.code).toBe(2);
    expect(r.err).toContain('--no-bench');
    expect(existsSync(out)).toBe(false);
  });
});

describe('weights-only quantization', () => {
  it('int8 weights behind DequantizeLinear, float activations, logits close to float', async () => {
    const out = join(TMP, 'wo');
    const res = await quantizeModelFolder({ model: MODEL, out, weightsOnly: true, perChannel: true, bench: false });
    expect(res.report.details.weightsOnly).toBe(true);
    const { model } = await loadModel(res.onnxPath);
    const g = model.graph!;
    const nodes = g.node ?? [];
    expect(nodes.some((n) => n.opType === 'QuantizeLinear' || n.opType === 'DynamicQuantizeLinear')).toBe(false);
    const dqOut = new Set(nodes.filter((n) => n.opType === 'DequantizeLinear').map((n) => n.output![0]));
    const inits = new Map((g.initializer ?? []).map((t) => [t.name!, t]));
    // every MatMul either reads a dequantized int8 weight or has no constant operand at all
    for (const n of nodes.filter((x) => x.opType === 'MatMul')) {
      const consts = n.input!.filter((i) => inits.has(i));
      expect(consts, n.name!).toEqual([]);
    }
    const dqs = nodes.filter((n) => n.opType === 'DequantizeLinear');
    expect(dqs.length).toBeGreaterThan(0);
    // a DequantizeLinear reads an int8 initializer, or the rows a Gather took from an int8 table
    const gatherTable = new Map(nodes.filter((n) => n.opType === 'Gather').map((n) => [n.output![0], n.input![0]]));
    for (const n of dqs) expect(inits.get(gatherTable.get(n.input![0]) ?? n.input![0])?.dataType, n.name!).toBe(DataType.INT8);
    expect(nodes.filter((n) => n.opType === 'MatMul' && n.input!.some((i) => dqOut.has(i))).length).toBe(res.report.details.nodes.byOpType.MatMul.quantized);
    expect(res.after.bytes).toBeLessThan(res.before.bytes * 0.6);

    // onnxruntime: same inputs through both; weights-only logits stay close to float
    const ids = Int32Array.from({ length: 16 }, (_, i) => (i === 0 ? 2 : i === 15 ? 3 : 20 + i * 17));
    const feed = { ids, mask: new Int32Array(16).fill(1), seqLen: 16, batch: 1 };
    const f = await NerSession.open(MODEL);
    const q = await NerSession.open(out);
    try {
      const a = (await f.runFlat(feed)).logits;
      const b = (await q.runFlat(feed)).logits;
      let num = 0;
      let den = 0;
      for (let i = 0; i < a.length; i++) {
        num += (a[i] - b[i]) ** 2;
        den += a[i] ** 2;
      }
      const sqnr = 10 * Math.log10(den / num);
      expect(sqnr).toBeGreaterThan(25);
    } finally {
      await f.close();
      await q.close();
    }
  });
});
