/**
 * findAttentionBlocks on real PyTorch exports (test/onnx/fixtures/attention, made by make_models.py).
 * The expectations come from the PyTorch side (models.json: architecture, how attention was written,
 * which ONNX initializer holds which PyTorch parameter — matched by value) and from onnxruntime
 * (attention probabilities recomputed from the reported projections, head split and scale).
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { onnx as OnnxTypes } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import {
  findAttentionBlocks,
  findNode,
  requireAttentionBlocks,
  type AttentionBlock,
  type LinearRef,
} from '../../src/onnx/attention.js';
import { decodeModel, encodeModel, onnx } from '../../src/onnx/codec.js';
import { inspectModel } from '../../src/onnx/inspect.js';
import { DataType, makeTensor, tensorToFloat32 } from '../../src/onnx/tensor.js';
import { GraphError } from '../../src/errors.js';

const DIR = fileURLToPath(new URL('./fixtures/attention/', import.meta.url));

interface Meta {
  opset: number;
  layers: number;
  heads: number;
  hidden: number;
  headSize: number;
  intermediate: number;
  bias: boolean;
  fused: 'split' | 'slice' | null;
  gemm: boolean;
  dynamic: boolean;
  constantFolding: boolean;
  gelu: 'erf' | 'tanh';
  scoresTransposed: boolean;
  expect: { scale: string; scaleOp: 'Mul' | 'Div' | null; reshape: 'concat' | 'constant' };
  initializers: Record<string, { onnx: string; transposed: boolean }>;
  parameterCount: number;
  parameterGroups: Record<string, number>;
}
const META = JSON.parse(readFileSync(`${DIR}models.json`, 'utf8')) as Record<string, Meta>;
const NAMES = Object.keys(META).sort();

function load(name: string): OnnxTypes.ModelProto {
  return decodeModel(readFileSync(`${DIR}${name}.onnx`), `${name}.onnx`);
}

/** The ONNX initializer PyTorch parameter `param` ended up in, and the layout that implies. */
function expectedParam(meta: Meta, param: string): { name: string; layout: 'in_out' | 'out_in' } {
  const m = meta.initializers[param];
  if (!m) throw new Error(`models.json has no ${param}`);
  // PyTorch stores Linear weights [out, in]; stored transposed means [in, out].
  return { name: m.onnx, layout: m.transposed ? 'in_out' : 'out_in' };
}

function checkLinear(meta: Meta, lin: LinearRef, prefix: string, inF: number, outF: number, hasBias: boolean): void {
  const w = expectedParam(meta, `${prefix}.weight`);
  expect(lin.weight).toBe(w.name);
  expect(lin.layout).toBe(w.layout);
  expect([lin.inFeatures, lin.outFeatures]).toEqual([inF, outF]);
  if (hasBias) expect(lin.bias?.initializer).toBe(expectedParam(meta, `${prefix}.bias`).name);
  else expect(lin.bias).toBeUndefined();
  expect(lin.op).toBe(meta.gemm ? 'Gemm' : 'MatMul');
  if (meta.gemm) {
    expect(lin.flatten?.before).toBeDefined();
    expect(lin.flatten?.after).toBeDefined();
  }
  if (!meta.constantFolding) expect(lin.weightTranspose).toBeDefined();
}

/** Value of a constant tensor read straight from the graph (initializer or Constant node). */
function constantValues(model: OnnxTypes.IModelProto, tensor: string): number[] {
  const g = model.graph ?? {};
  const fromTensor = (t: OnnxTypes.ITensorProto): number[] => {
    const raw = t.rawData ?? new Uint8Array();
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    if (t.dataType === 7) return Array.from({ length: raw.byteLength / 8 }, (_, i) => Number(dv.getBigInt64(i * 8, true)));
    if (t.dataType === 1) return Array.from({ length: raw.byteLength / 4 }, (_, i) => dv.getFloat32(i * 4, true));
    throw new Error(`dtype ${t.dataType}`);
  };
  const init = (g.initializer ?? []).find((t) => t.name === tensor);
  if (init) return fromTensor(init);
  const node = (g.node ?? []).find((n) => n.opType === 'Constant' && n.output?.[0] === tensor);
  const t = node?.attribute?.find((a) => a.name === 'value')?.t;
  if (!t) throw new Error(`no constant ${tensor}`);
  return fromTensor(t);
}

function isConstantTensor(model: OnnxTypes.IModelProto, tensor: string): boolean {
  const g = model.graph ?? {};
  return (
    (g.initializer ?? []).some((t) => t.name === tensor) ||
    (g.node ?? []).some((n) => n.opType === 'Constant' && n.output?.[0] === tensor)
  );
}

function countUsers(model: OnnxTypes.IModelProto, tensor: string): number {
  return (model.graph?.node ?? []).reduce((a, n) => a + (n.input ?? []).filter((x) => x === tensor).length, 0);
}

describe.each(NAMES)('findAttentionBlocks on %s', (name) => {
  const meta = META[name];
  const model = load(name);
  const report = findAttentionBlocks(model);

  it('finds every layer, with exact heads × head size and no problems', () => {
    expect(report.problems).toEqual([]);
    expect(report.blocks.map((b) => b.layer)).toEqual([...Array(meta.layers).keys()]);
    for (const b of report.blocks) {
      expect([b.numHeads, b.headSize, b.allHeadSize, b.hidden]).toEqual([meta.heads, meta.headSize, meta.hidden, meta.hidden]);
    }
  });

  it('names the projection, FFN and LayerNorm initializers PyTorch wrote', () => {
    const H = meta.hidden;
    for (const b of report.blocks) {
      const L = `bert.encoder.layer.${b.layer}`;
      if (meta.fused) {
        expect(b.qkv.kind).toBe('fused');
        if (b.qkv.kind !== 'fused') return;
        checkLinear(meta, b.qkv.linear, `${L}.attention.self.qkv`, H, 3 * H, meta.bias);
        // q, k, v = Linear(h, 3h)(x) split in this order (make_models.py).
        expect(b.qkv.ranges).toEqual({ q: [0, H], k: [H, 2 * H], v: [2 * H, 3 * H] });
        expect(b.qkv.splitter.op).toBe(meta.fused === 'split' ? 'Split' : 'Slice');
      } else {
        expect(b.qkv.kind).toBe('separate');
        if (b.qkv.kind !== 'separate') return;
        checkLinear(meta, b.qkv.q, `${L}.attention.self.query`, H, H, meta.bias);
        checkLinear(meta, b.qkv.k, `${L}.attention.self.key`, H, H, meta.bias);
        checkLinear(meta, b.qkv.v, `${L}.attention.self.value`, H, H, meta.bias);
        expect(b.qkv.k.input).toBe(b.qkv.q.input);
        expect(b.qkv.v.input).toBe(b.qkv.q.input);
      }
      checkLinear(meta, b.output, `${L}.attention.output.dense`, H, H, true);
      expect(b.layerNorm?.scale).toBe(expectedParam(meta, `${L}.attention.output.LayerNorm.weight`).name);
      expect(b.layerNorm?.bias).toBe(expectedParam(meta, `${L}.attention.output.LayerNorm.bias`).name);
      expect(b.layerNorm?.kind).toBe(meta.opset >= 17 ? 'LayerNormalization' : 'decomposed');
      expect(b.layerNorm?.epsilon).toBeCloseTo(1e-12, 15); // layer_norm_eps of the config
      expect(b.residual?.skip).toBe(b.input);
      const f = b.ffn;
      expect(f).toBeDefined();
      if (!f) return;
      checkLinear(meta, f.intermediate, `${L}.intermediate.dense`, H, meta.intermediate, true);
      checkLinear(meta, f.output, `${L}.output.dense`, meta.intermediate, H, true);
      expect(f.activation.kind).toBe(meta.gelu === 'tanh' ? 'gelu-tanh' : 'gelu-erf');
      expect(f.layerNorm?.scale).toBe(expectedParam(meta, `${L}.output.LayerNorm.weight`).name);
      expect(f.residual?.skip).toBe(b.layerNorm?.output);
    }
  });

  it('reports where the 1/√d scale is applied', () => {
    for (const b of report.blocks) {
      expect(b.scale.placement).toBe(meta.expect.scale);
      if (meta.expect.scaleOp) expect(new Set(b.scale.ops.map((o) => o.op))).toEqual(new Set([meta.expect.scaleOp]));
      if (meta.expect.scale === 'none') {
        expect(b.scale.ops).toEqual([]);
        expect(b.scale.standard).toBe(false);
      } else {
        expect(b.scale.factor).toBeCloseTo(1 / Math.sqrt(meta.headSize), 6);
        expect(b.scale.standard).toBe(true);
      }
      if (meta.expect.scale === 'qk') {
        for (const o of b.scale.ops) expect(o.factor).toBeCloseTo(Math.sqrt(1 / Math.sqrt(meta.headSize)), 6);
      }
      expect(b.scores.swapped).toBe(meta.scoresTransposed);
    }
  });

  it('points at the head-split and head-merge shape constants', () => {
    for (const b of report.blocks) {
      for (const br of [b.q, b.k, b.v]) {
        expect(br.split.shape.kind).toBe(meta.expect.reshape);
        const heads = br.split.heads;
        const size = br.split.headSize;
        // hfnew_op14 writes view(..., -1, head_dim): the head count is inferred.
        expect(heads.value).toBe(name.startsWith('hfnew') ? -1 : meta.heads);
        expect(size.value).toBe(meta.headSize);
        for (const el of [heads, size]) {
          expect(constantValues(model, el.constant.tensor)[el.index]).toBe(el.value);
          expect(el.constant.users).toBe(countUsers(model, el.constant.tensor));
        }
        if (meta.expect.reshape === 'concat') expect(heads.concatInput).toBe((size.concatInput ?? 0) - 1);
      }
      expect(b.q.perm).toEqual(meta.scoresTransposed ? [0, 2, 3, 1] : [0, 2, 1, 3]);
      expect(b.k.perm).toEqual(meta.scoresTransposed ? [0, 2, 1, 3] : [0, 2, 3, 1]);
      expect(b.v.perm).toEqual([0, 2, 1, 3]);
      const all = b.merge.reshape.allHeadSize;
      expect(all.value).toBe(name.startsWith('hfnew') ? -1 : meta.hidden);
      expect(constantValues(model, all.constant.tensor)[all.index]).toBe(all.value);
      expect(b.merge.perm).toEqual([0, 2, 1, 3]);
      const sm = findNode(model.graph ?? {}, b.softmax.node);
      expect(sm?.opType).toBe('Softmax');
      expect(b.softmax.axis < 0 ? b.softmax.axis + 4 : b.softmax.axis).toBe(3);
    }
  });

  it('every node reference resolves to a node of the right type', () => {
    const g = model.graph ?? {};
    const op = (ref: string | undefined): string | undefined => (ref ? (findNode(g, ref)?.opType ?? undefined) : undefined);
    for (const b of report.blocks) {
      expect(op(b.scores.matmul)).toBe('MatMul');
      expect(op(b.context.matmul)).toBe('MatMul');
      expect(op(b.merge.reshape.node)).toBe('Reshape');
      for (const br of [b.q, b.k, b.v]) {
        expect(op(br.split.node)).toBe('Reshape');
        for (const t of br.transposes) expect(op(t.node)).toBe('Transpose');
      }
      for (const s of b.scale.ops) expect(op(s.node)).toBe(s.op);
      for (const m of b.masks) expect(op(m.node)).toBe(m.op);
    }
  });
});

interface TinyMeta {
  layers: number;
  heads: number;
  head_size: number;
  hidden: number;
  intermediate: number;
  opset: number;
  exporter: { attention_scale_on: string; attention_bias: boolean };
  initializers: Array<{ parameter: string; initializer: string; transposed: boolean }>;
}
const TINY = fileURLToPath(new URL('../../fixtures/tiny/', import.meta.url));
const TINY_DIRS = ['bio-crf-op14', 'bioes-op17', 'bmes-op12-nobias', 'wordpiece-en-op11'].filter((d) => existsSync(`${TINY}${d}/meta.json`));

describe.each(TINY_DIRS)('findAttentionBlocks on fixtures/tiny/%s', (dir) => {
  it('matches what the fixture generator recorded (heads, scale placement, bias, initializer names)', () => {
    const meta = JSON.parse(readFileSync(`${TINY}${dir}/meta.json`, 'utf8')) as TinyMeta;
    const model = decodeModel(readFileSync(`${TINY}${dir}/model.onnx`), `${dir}/model.onnx`);
    const r = findAttentionBlocks(model);
    expect(r.problems).toEqual([]);
    expect(r.blocks.length).toBe(meta.layers);
    const init = (param: string): string | undefined => meta.initializers.find((x) => x.parameter === param)?.initializer;
    for (const b of r.blocks) {
      expect([b.numHeads, b.headSize, b.hidden]).toEqual([meta.heads, meta.head_size, meta.hidden]);
      expect(b.scale.placement).toBe(meta.exporter.attention_scale_on);
      expect(b.scale.standard).toBe(true);
      const L = `bert.encoder.layer.${b.layer}`;
      if (b.qkv.kind !== 'separate') throw new Error('expected separate Q/K/V');
      for (const [lin, nm] of [
        [b.qkv.q, 'attention.self.query'],
        [b.qkv.k, 'attention.self.key'],
        [b.qkv.v, 'attention.self.value'],
      ] as const) {
        expect(lin.weight).toBe(init(`${L}.${nm}.weight`));
        expect(lin.bias?.initializer).toBe(meta.exporter.attention_bias ? init(`${L}.${nm}.bias`) : undefined);
      }
      expect(b.output.weight).toBe(init(`${L}.attention.output.dense.weight`));
      expect(b.ffn?.intermediate.weight).toBe(init(`${L}.intermediate.dense.weight`));
      expect(b.ffn?.intermediate.outFeatures).toBe(meta.intermediate);
      expect(b.ffn?.output.weight).toBe(init(`${L}.output.dense.weight`));
      expect(b.ffn?.layerNorm?.scale).toBe(init(`${L}.output.LayerNorm.weight`));
      expect(b.layerNorm?.kind).toBe(meta.opset >= 17 ? 'LayerNormalization' : 'decomposed');
    }
  });
});

/** Run a model in onnxruntime with extra graph outputs; B=2, S=8, the second row padded after 5 tokens. */
async function runWithOutputs(
  model: OnnxTypes.IModelProto,
  names: string[],
  types: Record<string, number> = {},
): Promise<Record<string, ort.Tensor>> {
  const copy = decodeModel(encodeModel(model));
  const graph = copy.graph as OnnxTypes.GraphProto;
  const have = new Set(graph.output.map((o) => o.name));
  for (const n of names) {
    if (!have.has(n)) graph.output.push(onnx.ValueInfoProto.create({ name: n, type: { tensorType: { elemType: types[n] ?? 1 } } }));
  }
  const session = await ort.InferenceSession.create(encodeModel(copy));
  const B = 2;
  const S = 8;
  const ids = BigInt64Array.from({ length: B * S }, (_, i) => BigInt(1 + ((i * 7) % 37)));
  const mask = BigInt64Array.from({ length: B * S }, (_, i) => (i >= S + 5 ? 0n : 1n));
  const out = await session.run(
    {
      input_ids: new ort.Tensor('int64', ids, [B, S]),
      attention_mask: new ort.Tensor('int64', mask, [B, S]),
      token_type_ids: new ort.Tensor('int64', new BigInt64Array(B * S), [B, S]),
    },
    names,
  );
  await session.release();
  return out;
}

function projectionOf(b: AttentionBlock, role: 'q' | 'k' | 'v'): { tensor: string; offset: number } {
  return b.qkv.kind === 'separate'
    ? { tensor: b.qkv[role].output, offset: 0 }
    : { tensor: b.qkv.linear.output, offset: b.qkv.ranges[role][0] };
}

describe('the reported structure reproduces onnxruntime attention probabilities', () => {
  it.each(NAMES)('%s: softmax(factor · Q·Kᵀ + mask) from the reported projections and heads', async (name) => {
    const model = load(name);
    const { blocks } = findAttentionBlocks(model);
    const g = model.graph ?? {};
    const wanted: string[] = [];
    const types: Record<string, number> = {};
    for (const b of blocks) {
      const sm = findNode(g, b.softmax.node)?.output?.[0] ?? '';
      wanted.push(projectionOf(b, 'q').tensor, projectionOf(b, 'k').tensor, b.masks[0].input, sm);
      if (b.masks[0].op === 'Where') types[b.masks[0].input] = DataType.BOOL;
    }
    const out = await runWithOutputs(model, [...new Set(wanted)], types);
    for (const b of blocks) {
      const q = projectionOf(b, 'q');
      const k = projectionOf(b, 'k');
      const Q = out[q.tensor];
      const K = out[k.tensor];
      const M = out[b.masks[0].input];
      const P = out[findNode(g, b.softmax.node)?.output?.[0] ?? ''];
      const [B, h, S, S2] = P.dims;
      expect([h, S2]).toEqual([b.numHeads, S]); // onnxruntime agrees on the head count
      const width = Q.dims[2];
      const qd = Q.data as Float32Array;
      const kd = K.data as Float32Array;
      const md = Array.from(M.data as ArrayLike<number | boolean>, Number);
      const pd = P.data as Float32Array;
      const [m0, m1, m2, m3] = M.dims;
      const mIdx = (bb: number, hh: number, i: number, j: number): number =>
        (((m0 === 1 ? 0 : bb) * m1 + (m1 === 1 ? 0 : hh)) * m2 + (m2 === 1 ? 0 : i)) * m3 + (m3 === 1 ? 0 : j);
      // Add: scores + mask. Where (masked_fill): where(cond, fill, scores) or where(cond, scores, fill).
      const maskNode = findNode(g, b.masks[0].node);
      const where = b.masks[0].op === 'Where';
      const fillAt = where ? (maskNode?.input ?? []).findIndex((x, i) => i > 0 && isConstantTensor(model, x ?? '')) : -1;
      const fill = where ? constantValues(model, maskNode?.input?.[fillAt] ?? '')[0] : 0;
      const masked = (score: number, m: number): number => (!where ? score + m : (m !== 0) === (fillAt === 1) ? fill : score);
      let maxDiff = 0;
      for (let bb = 0; bb < B; bb++) {
        for (let hh = 0; hh < h; hh++) {
          for (let i = 0; i < S; i++) {
            const row: number[] = [];
            for (let j = 0; j < S; j++) {
              let dot = 0;
              for (let e = 0; e < b.headSize; e++) {
                const col = hh * b.headSize + e;
                dot += qd[(bb * S + i) * width + q.offset + col] * kd[(bb * S + j) * width + k.offset + col];
              }
              row.push(masked(dot * b.scale.factor, md[mIdx(bb, hh, i, j)]));
            }
            const mx = Math.max(...row);
            const ex = row.map((x) => Math.exp(x - mx));
            const sum = ex.reduce((a, x) => a + x, 0);
            for (let j = 0; j < S; j++) {
              maxDiff = Math.max(maxDiff, Math.abs(ex[j] / sum - pd[((bb * h + hh) * S + i) * S + j]));
            }
          }
        }
      }
      expect(maxDiff).toBeLessThan(1e-5);
    }
  });
});

describe('findAttentionBlocks on graphs it cannot (fully) match', () => {
  it('a scale that is not a constant: the block is reported as a problem naming the node, the others still match', () => {
    const model = load('hf_scores_op14');
    const before = findAttentionBlocks(model).blocks[0];
    const div = findNode(model.graph ?? {}, before.scale.ops[0].node);
    expect(div?.opType).toBe('Div');
    if (!div?.input) throw new Error('no Div');
    div.input[1] = 'input_ids'; // an activation, not a constant
    const r = findAttentionBlocks(model);
    expect(r.blocks.map((b) => b.layer)).toEqual([1]);
    expect(r.failures).toHaveLength(1);
    expect(r.failures[0]).toMatchObject({ layer: 0, part: 'attention', node: before.scale.ops[0].node });
    expect(r.problems[0]).toContain(before.scale.ops[0].node);
    expect(r.problems[0]).toMatch(/^layer 0: /);
  });

  it('an FFN that cannot be matched keeps the attention block and is reported as an FFN problem', () => {
    const model = load('hf_scores_op14');
    const b1 = findAttentionBlocks(model).blocks[1];
    const mm = findNode(model.graph ?? {}, b1.ffn?.output.node ?? '');
    if (!mm?.input) throw new Error('no FFN output MatMul');
    mm.input[1] = 'attention_mask'; // no longer a dense layer with a weight
    const r = findAttentionBlocks(model);
    expect(r.blocks.map((b) => [b.layer, b.ffn === undefined])).toEqual([
      [0, false],
      [1, true],
    ]);
    expect(r.failures).toHaveLength(1);
    expect(r.failures[0]).toMatchObject({ layer: 1, part: 'ffn', node: b1.ffn?.output.node });
    expect(requireAttentionBlocks(r)).toHaveLength(2);
    expect(() => requireAttentionBlocks(r, { needFfn: true })).toThrow(GraphError);
  });

  it('a head-split target shape that is neither a constant nor a Concat names the Reshape', () => {
    const model = load('static_op13');
    const b0 = findAttentionBlocks(model).blocks[0];
    const reshape = findNode(model.graph ?? {}, b0.k.split.node);
    if (!reshape?.input) throw new Error('no Reshape');
    reshape.input[1] = 'attention_mask';
    const r = findAttentionBlocks(model);
    expect(r.blocks.map((b) => b.layer)).toEqual([1]);
    expect(r.failures[0]).toMatchObject({ layer: 0, node: b0.k.split.node });
    expect(r.failures[0].message).toMatch(/expected a constant or a Concat/);
  });

  it('requireAttentionBlocks throws a GraphError naming the node, with a hint; passes clean reports through', () => {
    const model = load('hf_scores_op14');
    const clean = findAttentionBlocks(model);
    expect(requireAttentionBlocks(clean, { needFfn: true })).toBe(clean.blocks);
    const ctx = findNode(model.graph ?? {}, clean.blocks[1].context.matmul);
    if (!ctx) throw new Error('no context MatMul');
    ctx.opType = 'Einsum'; // the probabilities no longer reach a MatMul
    const r = findAttentionBlocks(model);
    expect(r.failures[0]).toMatchObject({ layer: 1, node: clean.blocks[1].softmax.node });
    let err: unknown;
    try {
      requireAttentionBlocks(r, { file: 'model.onnx' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GraphError);
    const ge = err as GraphError;
    expect(ge.where.node).toBe(clean.blocks[1].softmax.node);
    expect(ge.where.file).toBe('model.onnx');
    expect(ge.hint).toBeTruthy();
    expect(ge.exitCode).toBe(2);
  });

  it('an optimizer-fused com.microsoft Attention node is reported, not silently skipped', () => {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 14 }, { domain: 'com.microsoft', version: 1 }],
      graph: {
        name: 'fused',
        node: [
          { name: 'Attention_0', opType: 'Attention', domain: 'com.microsoft', input: ['x', 'w', 'b', 'mask'], output: ['y'] },
        ],
        input: [{ name: 'x' }, { name: 'mask' }],
        output: [{ name: 'y' }],
      },
    });
    const r = findAttentionBlocks(model);
    expect(r.blocks).toEqual([]);
    expect(r.failures).toHaveLength(1);
    expect(r.failures[0].node).toBe('Attention_0');
    expect(r.problems[0]).toMatch(/com\.microsoft\.Attention/);
    expect(() => requireAttentionBlocks(r)).toThrow(GraphError);
  });

  it('a graph without attention says so (a Softmax over a classifier is not attention)', () => {
    const w = onnx.TensorProto.create({ name: 'w', dataType: 1, dims: [2, 2], floatData: [1, 2, 3, 4] });
    const model = onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 14 }],
      graph: {
        name: 'mlp',
        node: [
          { name: 'mm', opType: 'MatMul', input: ['x', 'w'], output: ['z'] },
          { name: 'sm', opType: 'Softmax', input: ['z'], output: ['y'] },
        ],
        initializer: [w],
        input: [{ name: 'x' }],
        output: [{ name: 'y' }],
      },
    });
    const r = findAttentionBlocks(model);
    expect(r.blocks).toEqual([]);
    expect(r.problems).toEqual(['node (graph): no attention found: no Softmax over a MatMul of two activations']);
  });
});

describe.each(['static_op13', 'kqt_nofold_op14', 'sdpa_op14', 'fused_slice_op11'])('constants stored as initializers (onnx-simplifier style): %s', (name) => {
  it('finds the same blocks, reading shapes and scales from initializers', () => {
    const before = findAttentionBlocks(load(name));
    const model = load(name);
    const graph = model.graph as OnnxTypes.GraphProto;
    const keep: OnnxTypes.INodeProto[] = [];
    for (const n of graph.node) {
      const t = n.opType === 'Constant' ? n.attribute?.find((a) => a.name === 'value')?.t : undefined;
      if (t) graph.initializer.push(onnx.TensorProto.create({ ...t, name: n.output?.[0] ?? '' }));
      else keep.push(n);
    }
    graph.node = keep;
    const after = findAttentionBlocks(model);
    expect(after.problems).toEqual([]);
    expect(after.blocks.length).toBe(before.blocks.length);
    for (let i = 0; i < after.blocks.length; i++) {
      const [a, b] = [before.blocks[i], after.blocks[i]];
      expect([b.numHeads, b.headSize, b.scale.placement, b.scale.factor]).toEqual([a.numHeads, a.headSize, a.scale.placement, a.scale.factor]);
      expect(b.q.split.heads.constant.source).toBe('initializer');
      expect(b.q.split.heads.constant.tensor).toBe(a.q.split.heads.constant.tensor);
      expect(b.merge.reshape.allHeadSize.value).toBe(a.merge.reshape.allHeadSize.value);
      expect(b.ffn?.activation.kind).toBe(a.ffn?.activation.kind);
      expect(b.layerNorm?.epsilon).toBe(a.layerNorm?.epsilon);
    }
  });
});

/**
 * Quantize a model the way a static QDQ quantizer does: every MatMul weight becomes int8 behind a
 * DequantizeLinear; every MatMul activation input and output goes through QuantizeLinear →
 * DequantizeLinear (uint8, one shared scale).
 */
function qdqize(model: OnnxTypes.ModelProto): void {
  const graph = model.graph as OnnxTypes.GraphProto;
  const inits = new Map(graph.initializer.map((t) => [t.name, t]));
  // Unfolded exports transpose the weight in the graph; a quantizer leaves those alone.
  const weightTransposes = new Set(
    graph.node.filter((n) => n.opType === 'Transpose' && inits.has(n.input?.[0] ?? '')).map((n) => n.output?.[0] ?? ''),
  );
  graph.initializer.push(makeTensor('act_scale', DataType.FLOAT, [], [0.05]), makeTensor('act_zero', DataType.UINT8, [], [128]));
  const nodes: OnnxTypes.INodeProto[] = [];
  let k = 0;
  const qdq = (x: string, out: string): OnnxTypes.INodeProto[] => {
    return [
      { name: `q_${out}`, opType: 'QuantizeLinear', input: [x, 'act_scale', 'act_zero'], output: [`${out}_q`] },
      { name: `dq_${out}`, opType: 'DequantizeLinear', input: [`${out}_q`, 'act_scale', 'act_zero'], output: [out] },
    ];
  };
  for (const n of graph.node) {
    if (n.opType !== 'MatMul') {
      nodes.push(n);
      continue;
    }
    const ins = n.input ?? [];
    ins.forEach((x, i) => {
      const w = inits.get(x);
      if (w) {
        const values = tensorToFloat32(w);
        const scale = Math.max(...values.map(Math.abs)) / 127;
        graph.initializer.splice(graph.initializer.indexOf(w), 1);
        graph.initializer.push(
          makeTensor(`${x}_int8`, DataType.INT8, (w.dims ?? []).map(Number), Int8Array.from(values, (v) => Math.round(v / scale))),
          makeTensor(`${x}_scale`, DataType.FLOAT, [], [scale]),
        );
        nodes.push({ name: `${x}_dequant`, opType: 'DequantizeLinear', input: [`${x}_int8`, `${x}_scale`], output: [x] });
      } else if (!weightTransposes.has(x)) {
        const name = `${x}_qdq${++k}`;
        nodes.push(...qdq(x, name));
        ins[i] = name;
      }
    });
    const out = n.output?.[0] ?? '';
    if (n.output) n.output[0] = `${out}_raw`;
    nodes.push(n, ...qdq(`${out}_raw`, out));
  }
  graph.node = nodes;
}

describe.each(['hf_scores_op14', 'hf_q_nobias_op11', 'qk_sqrt_op17', 'fused_split_op13', 'kqt_nofold_op14'])('QDQ-quantized: %s', (name) => {
  it('onnxruntime runs it and the finder sees the same blocks, with the int8 weights', async () => {
    const meta = META[name];
    const ref = findAttentionBlocks(load(name));
    const model = load(name);
    qdqize(model);
    const session = await ort.InferenceSession.create(encodeModel(model));
    await session.release();
    const r = findAttentionBlocks(model);
    expect(r.problems).toEqual([]);
    expect(r.blocks.length).toBe(meta.layers);
    for (let i = 0; i < r.blocks.length; i++) {
      const [a, b] = [ref.blocks[i], r.blocks[i]];
      expect([b.numHeads, b.headSize, b.scale.placement, b.scale.factor]).toEqual([a.numHeads, a.headSize, a.scale.placement, a.scale.factor]);
      const lin = (x: AttentionBlock): LinearRef => (x.qkv.kind === 'separate' ? x.qkv.q : x.qkv.linear);
      if (lin(a).weightTranspose) {
        expect(lin(b).weight).toBe(lin(a).weight);
      } else {
        expect(lin(b).weight).toBe(`${lin(a).weight}_int8`);
        expect(lin(b).weightDequantize).toBe(`${lin(a).weight}_dequant`);
      }
      expect(lin(b).bias?.initializer).toBe(lin(a).bias?.initializer);
      expect(b.output.bias?.initializer).toBe(a.output.bias?.initializer);
      expect(b.layerNorm?.scale).toBe(a.layerNorm?.scale);
      expect(b.ffn?.intermediate.weight).toBe(`${a.ffn?.intermediate.weight}${a.ffn?.intermediate.weightTranspose ? '' : '_int8'}`);
      expect(b.ffn?.output.outFeatures).toBe(meta.hidden);
      expect(b.ffn?.layerNorm?.scale).toBe(a.ffn?.layerNorm?.scale);
    }
    const info = inspectModel(model);
    expect(info.parameters.total).toBe(meta.parameterCount);
    expect(info.parameters.groups.attention).toBe(meta.parameterGroups.attention);
    expect(info.parameters.groups.ffn).toBe(meta.parameterGroups.ffn);
  });
});

/**
 * Quantize a model the way onnxruntime's quantize_dynamic does: for every MatMul with a weight,
 * DynamicQuantizeLinear(x) (shared per input) → MatMulInteger(x_q, W_int8, x_zp, W_zp) → Cast →
 * Mul(·, x_scale · W_scale).
 */
function dynamicQuantize(model: OnnxTypes.ModelProto): void {
  const graph = model.graph as OnnxTypes.GraphProto;
  const inits = new Map(graph.initializer.map((t) => [t.name, t]));
  const quantized = new Map<string, string>();
  const nodes: OnnxTypes.INodeProto[] = [];
  for (const n of graph.node) {
    const [x, wName] = n.input ?? [];
    const w = n.opType === 'MatMul' ? inits.get(wName) : undefined;
    if (!w) {
      nodes.push(n);
      continue;
    }
    let xq = quantized.get(x);
    if (!xq) {
      xq = `${x}_quant`;
      quantized.set(x, xq);
      nodes.push({ name: `${xq}_node`, opType: 'DynamicQuantizeLinear', input: [x], output: [xq, `${xq}_scale`, `${xq}_zero`] });
    }
    const values = tensorToFloat32(w);
    const scale = Math.max(...values.map(Math.abs)) / 127;
    graph.initializer.splice(graph.initializer.indexOf(w), 1);
    graph.initializer.push(
      makeTensor(`${wName}_int8`, DataType.INT8, (w.dims ?? []).map(Number), Int8Array.from(values, (v) => Math.round(v / scale))),
      makeTensor(`${wName}_scale`, DataType.FLOAT, [], [scale]),
      makeTensor(`${wName}_zero`, DataType.INT8, [], [0]),
    );
    const out = n.output?.[0] ?? '';
    nodes.push(
      { name: `${out}_mmi`, opType: 'MatMulInteger', input: [xq, `${wName}_int8`, `${xq}_zero`, `${wName}_zero`], output: [`${out}_i32`] },
      { name: `${out}_cast`, opType: 'Cast', input: [`${out}_i32`], output: [`${out}_f32`], attribute: [{ name: 'to', type: 2, i: 1 }] },
      { name: `${out}_scales`, opType: 'Mul', input: [`${xq}_scale`, `${wName}_scale`], output: [`${out}_s`] },
      { name: `${out}_dequant`, opType: 'Mul', input: [`${out}_f32`, `${out}_s`], output: [out] },
    );
  }
  graph.node = nodes;
}

describe.each(['hf_scores_op14', 'hf_q_nobias_op11', 'qk_sqrt_op17', 'fused_slice_op11', 'distil_where_op13'])(
  'dynamically quantized (MatMulInteger): %s',
  (name) => {
    it('onnxruntime runs it and the finder reports MatMulInteger projections with the int8 weights', async () => {
      const meta = META[name];
      const ref = findAttentionBlocks(load(name));
      const model = load(name);
      dynamicQuantize(model);
      const session = await ort.InferenceSession.create(encodeModel(model));
      await session.release();
      const r = findAttentionBlocks(model);
      expect(r.problems).toEqual([]);
      expect(r.blocks.length).toBe(meta.layers);
      const lin = (x: AttentionBlock): LinearRef => (x.qkv.kind === 'separate' ? x.qkv.v : x.qkv.linear);
      for (let i = 0; i < r.blocks.length; i++) {
        const [a, b] = [ref.blocks[i], r.blocks[i]];
        expect([b.numHeads, b.headSize, b.scale.placement, b.scale.factor]).toEqual([a.numHeads, a.headSize, a.scale.placement, a.scale.factor]);
        for (const [la, lb] of [
          [lin(a), lin(b)],
          [a.output, b.output],
          [a.ffn?.intermediate, b.ffn?.intermediate],
          [a.ffn?.output, b.ffn?.output],
        ] as const) {
          expect(lb?.op).toBe('MatMulInteger');
          expect(lb?.weight).toBe(`${la?.weight}_int8`);
          expect(lb?.dynamicQuant?.dequantize).toHaveLength(2);
          expect(lb?.input).toBe(la?.input);
          expect(lb?.bias?.initializer).toBe(la?.bias?.initializer);
          expect([lb?.inFeatures, lb?.outFeatures]).toEqual([la?.inFeatures, la?.outFeatures]);
        }
        expect(b.ffn?.activation.kind).toBe(a.ffn?.activation.kind);
        expect(b.ffn?.layerNorm?.scale).toBe(a.ffn?.layerNorm?.scale);
      }
      const info = inspectModel(model);
      expect(info.parameters.total).toBe(meta.parameterCount);
      expect(info.parameters.groups.attention).toBe(meta.parameterGroups.attention);
      expect(info.parameters.groups.classifier).toBe(meta.parameterGroups.classifier);
    });
  },
);

describe('initializers also listed as graph inputs (keep_initializers_as_inputs, IR < 4 exports)', () => {
  it('finds the same blocks; inspect lists only the real inputs', () => {
    const a = findAttentionBlocks(load('hf_k_op12'));
    const model = load('hf_k_op12');
    const graph = model.graph as OnnxTypes.GraphProto;
    for (const t of graph.initializer) {
      graph.input.push(onnx.ValueInfoProto.create({ name: t.name, type: { tensorType: { elemType: t.dataType, shape: { dim: (t.dims ?? []).map((d) => ({ dimValue: d })) } } } }));
    }
    const b = findAttentionBlocks(model);
    expect(b.problems).toEqual([]);
    expect(b.blocks.map((x) => [x.numHeads, x.qkv.kind === 'separate' && x.qkv.k.weight, x.ffn?.output.weight])).toEqual(
      a.blocks.map((x) => [x.numHeads, x.qkv.kind === 'separate' && x.qkv.k.weight, x.ffn?.output.weight]),
    );
    expect(inspectModel(model).inputs.map((i) => i.name)).toEqual(['input_ids', 'attention_mask', 'token_type_ids']);
  });
});

describe('duplicated node names', () => {
  it('refers to such nodes by #index:op, which findNode resolves', () => {
    const model = load('hf_scores_op14');
    for (const n of model.graph?.node ?? []) if (n.opType === 'Reshape') n.name = 'Reshape';
    const r = findAttentionBlocks(model);
    expect(r.problems).toEqual([]);
    for (const b of r.blocks) {
      for (const ref of [b.q.split.node, b.k.split.node, b.v.split.node, b.merge.reshape.node]) {
        expect(ref).toMatch(/^#\d+:Reshape$/);
        expect(findNode(model.graph ?? {}, ref)?.opType).toBe('Reshape');
      }
      expect(new Set([b.q.split.node, b.k.split.node, b.v.split.node, b.merge.reshape.node]).size).toBe(4);
      expect(b.softmax.node).toBe(`/bert/encoder/layer.${b.layer}/attention/self/Softmax`);
    }
  });
});

describe('unnamed nodes', () => {
  it('gives the same blocks, with #index:op references that findNode resolves to the same nodes', () => {
    const named = load('gemm_op14');
    const anon = load('gemm_op14');
    for (const n of anon.graph?.node ?? []) n.name = '';
    const a = findAttentionBlocks(named);
    const b = findAttentionBlocks(anon);
    expect(b.problems).toEqual([]);
    expect(b.blocks.length).toBe(a.blocks.length);
    const idx = (m: OnnxTypes.IModelProto, ref: string): number => {
      const n = findNode(m.graph ?? {}, ref);
      return n ? (m.graph?.node ?? []).indexOf(n) : -1;
    };
    for (let i = 0; i < a.blocks.length; i++) {
      const x = a.blocks[i];
      const y = b.blocks[i];
      expect(y.q.split.node).toMatch(/^#\d+:Reshape$/);
      for (const [rx, ry] of [
        [x.q.split.node, y.q.split.node],
        [x.scores.matmul, y.scores.matmul],
        [x.output.node, y.output.node],
        [x.softmax.node, y.softmax.node],
      ]) {
        expect(idx(anon, ry)).toBe(idx(named, rx));
        expect(idx(anon, ry)).toBeGreaterThanOrEqual(0);
      }
      expect(y.qkv.kind === 'separate' && y.qkv.q.weight).toBe(x.qkv.kind === 'separate' && x.qkv.q.weight);
      expect(y.scale.factor).toBe(x.scale.factor);
    }
  });
});
