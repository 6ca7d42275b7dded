/** Helpers for test/quantize: small graphs built in code, onnxruntime runs, and a quantize-one-model shortcut. */
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { expect } from 'vitest';
import { encodeModel, onnx } from '../../src/onnx/codec.js';
import { DataType, makeTensor } from '../../src/onnx/tensor.js';
import { collectRanges, type CalibBatch, type FeedBatch } from '../../src/quantize/calibrate.js';
import { planQuantization, tensorsToCalibrate } from '../../src/quantize/plan.js';
import { sqnr, type Range } from '../../src/quantize/qparams.js';
import { rewriteModel } from '../../src/quantize/rewrite.js';
import type { CalibrationMethod, QuantFormat, QuantMode, QuantPlan, RewriteResult } from '../../src/quantize/types.js';

export const AT = onnx.AttributeProto.AttributeType;

export interface GraphSpec {
  nodes: onnx.INodeProto[];
  initializers?: onnx.ITensorProto[];
  inputs: Array<{ name: string; dims: number[]; type?: number }>;
  outputs: string[];
  opset?: number;
}

export function buildModel(spec: GraphSpec): onnx.ModelProto {
  const graph = onnx.GraphProto.create({
    name: 'test',
    node: spec.nodes,
    initializer: spec.initializers ?? [],
    input: spec.inputs.map((i) => ({
      name: i.name,
      type: { tensorType: { elemType: i.type ?? DataType.FLOAT, shape: { dim: i.dims.map((d) => ({ dimValue: d })) } } },
    })),
    output: spec.outputs.map((name) => ({ name, type: { tensorType: { elemType: DataType.FLOAT } } })),
  });
  return onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: spec.opset ?? 14 }], graph, producerName: 'ranerc-test' });
}

export function floatInit(name: string, dims: number[], values: ArrayLike<number>): onnx.TensorProto {
  return makeTensor(name, DataType.FLOAT, dims, Float32Array.from(values));
}

/** Deterministic pseudo-random floats in [-amp, amp). */
export function noise(n: number, seed: number, amp = 1): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * amp;
  }
  return out;
}

export async function run(model: onnx.IModelProto | Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const s = await ort.InferenceSession.create(model instanceof Uint8Array ? model : encodeModel(model), { logSeverityLevel: 3 });
  try {
    return await s.run(feeds);
  } finally {
    await s.release();
  }
}

export interface QuantizeOpts {
  format?: QuantFormat;
  mode?: QuantMode;
  perChannel?: boolean;
  exclude?: string[];
  method?: CalibrationMethod;
}

/** Plan, calibrate (min/max over `calib` in onnxruntime) and rewrite `model`. */
export async function quantize(
  model: onnx.IModelProto,
  calib: CalibBatch[],
  opts: QuantizeOpts = {},
): Promise<RewriteResult & { plan: QuantPlan; ranges: Map<string, Range> }> {
  const mode = opts.mode ?? 'static';
  const format = mode === 'dynamic' ? 'qoperator' : (opts.format ?? 'qdq');
  const plan = planQuantization(model, { format, mode, perChannel: opts.perChannel ?? false, exclude: opts.exclude });
  const ranges = new Map<string, Range>();
  if (mode === 'static') {
    const res = await collectRanges(model, tensorsToCalibrate(plan), calib, { method: opts.method ?? 'minmax' });
    for (const [k, v] of res.ranges) ranges.set(k, { min: v.min, max: v.max });
  }
  const r = rewriteModel(model, plan, ranges, { format, mode, perChannel: plan.perChannel });
  return { ...r, plan, ranges };
}

export function opsOf(model: onnx.IModelProto): string[] {
  return (model.graph?.node ?? []).map((n) => n.opType ?? '');
}

export function countOps(model: onnx.IModelProto): Record<string, number> {
  const h: Record<string, number> = {};
  for (const op of opsOf(model)) h[op] = (h[op] ?? 0) + 1;
  return h;
}

export function initializer(model: onnx.IModelProto, name: string): onnx.ITensorProto | undefined {
  return (model.graph?.initializer ?? []).find((t) => t.name === name);
}

/** Logits SQNR and argmax agreement over the real (mask 1) tokens of every batch. */
export async function compareLogits(floatModel: Uint8Array, quantModel: Uint8Array, feeds: FeedBatch[], masks?: number[][][]): Promise<{ sqnrDb: number; agree: number }> {
  const fs = await ort.InferenceSession.create(floatModel, { logSeverityLevel: 3 });
  const qs = await ort.InferenceSession.create(quantModel, { logSeverityLevel: 3 });
  const ref: number[] = [];
  const got: number[] = [];
  let same = 0;
  let total = 0;
  try {
    for (const [bi, b] of feeds.entries()) {
      const name = fs.outputNames[0];
      const a = (await fs.run(b.feeds))[name];
      const q = (await qs.run(b.feeds))[name];
      expect(q.dims).toEqual(a.dims);
      const [B, S, L] = a.dims as number[];
      const ad = a.data as Float32Array;
      const qd = q.data as Float32Array;
      for (let r = 0; r < B; r++) {
        for (let t = 0; t < S; t++) {
          if (masks && masks[bi][r][t] === 0) continue;
          const o = (r * S + t) * L;
          let am = 0;
          let qm = 0;
          for (let l = 0; l < L; l++) {
            ref.push(ad[o + l]);
            got.push(qd[o + l]);
            if (ad[o + l] > ad[o + am]) am = l;
            if (qd[o + l] > qd[o + qm]) qm = l;
          }
          total++;
          if (am === qm) same++;
        }
      }
    }
  } finally {
    await fs.release();
    await qs.release();
  }
  return { sqnrDb: sqnr(ref, got), agree: same / total };
}

/** Calibration batches from a tiny fixture's reference.json (its PyTorch reference inputs), first `n` cases. */
export function referenceCalib(dir: string, n = 3): CalibBatch[] {
  const ref = JSON.parse(readFileSync(`${dir}/reference.json`, 'utf8')) as {
    inputs: string[];
    cases: Array<{ input_ids: number[][]; attention_mask: number[][]; token_type_ids?: number[][] }>;
  };
  const i64 = (rows: number[][]): ort.Tensor => new ort.Tensor('int64', BigInt64Array.from(rows.flat().map(BigInt)), [rows.length, rows[0].length]);
  return ref.cases.slice(0, n).map((c) => {
    const feeds: Record<string, ort.Tensor> = { input_ids: i64(c.input_ids), attention_mask: i64(c.attention_mask) };
    if (ref.inputs.includes('token_type_ids')) feeds.token_type_ids = i64(c.token_type_ids!);
    return { feeds };
  });
}
