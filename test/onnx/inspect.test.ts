/**
 * inspectModel on real PyTorch exports. Expected numbers come from the PyTorch side (sum of
 * numel() per parameter group, written by make_models.py into models.json) and from Python's onnx
 * package reading the same file (IR version, producer, opsets, op histogram, inputs/outputs).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { onnx as OnnxTypes } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { findAttentionBlocks } from '../../src/onnx/attention.js';
import { decodeModel, encodeModel, onnx } from '../../src/onnx/codec.js';
import { groupByName, inspectModel, PARAM_GROUPS, tensorBytes } from '../../src/onnx/inspect.js';
import { DataType, makeTensor, tensorToFloat32 } from '../../src/onnx/tensor.js';

const DIR = fileURLToPath(new URL('./fixtures/attention/', import.meta.url));
const TINY = fileURLToPath(new URL('../../fixtures/tiny/', import.meta.url));

interface OnnxFacts {
  irVersion: number;
  producerName: string;
  producerVersion: string;
  opsets: Record<string, number>;
  nodes: number;
  ops: Record<string, number>;
  initializers: number;
  inputs: Array<{ name: string; elemType: string; shape: Array<number | string | null> }>;
  outputs: Array<{ name: string; elemType: string; shape: Array<number | string | null> }>;
}
interface Meta {
  layers: number;
  heads: number;
  headSize: number;
  hidden: number;
  intermediate: number;
  fused: string | null;
  parameterCount: number;
  parameterGroups: Record<string, number>;
  bytes: number;
  onnx: OnnxFacts;
}
const META = JSON.parse(readFileSync(`${DIR}models.json`, 'utf8')) as Record<string, Meta>;
const NAMES = Object.keys(META).sort();

function load(path: string): OnnxTypes.ModelProto {
  return decodeModel(readFileSync(path), path);
}

/** Python onnx writes TensorProto.DataType names; inspect uses numpy-style names. */
const PY_TYPE: Record<string, string> = { float: 'float32', double: 'float64', int64: 'int64', int32: 'int32' };

describe.each(NAMES)('inspectModel on %s', (name) => {
  const meta = META[name];
  const path = `${DIR}${name}.onnx`;
  const model = load(path);
  const r = inspectModel(model, { onnxPath: path, fileBytes: statSync(path).size });

  it('counts exactly the PyTorch parameters, in total and per group', () => {
    expect(r.parameters.total).toBe(meta.parameterCount);
    for (const g of PARAM_GROUPS) expect([g, r.parameters.groups[g]]).toEqual([g, meta.parameterGroups[g] ?? 0]);
    expect(r.initializers.count).toBe(meta.onnx.initializers);
    // All parameters are float32 here: 4 bytes each.
    const f32 = r.initializers.byDtype.find((d) => d.dtype === 'float32');
    expect(f32?.elements).toBe(meta.parameterCount);
    expect(f32?.bytes).toBe(4 * meta.parameterCount);
  });

  it('reads IR, producer, opsets, nodes, op histogram and I/O as the onnx package does', () => {
    expect(r.irVersion).toBe(meta.onnx.irVersion);
    expect(r.producer).toEqual({ name: meta.onnx.producerName, version: meta.onnx.producerVersion });
    expect(Object.fromEntries(r.opsets.map((o) => [o.domain, o.version]))).toEqual(meta.onnx.opsets);
    expect(r.nodes).toBe(meta.onnx.nodes);
    expect(Object.fromEntries(r.ops.map((o) => [o.op, o.count]))).toEqual(meta.onnx.ops);
    for (let i = 1; i < r.ops.length; i++) {
      const [a, b] = [r.ops[i - 1], r.ops[i]];
      expect(a.count > b.count || (a.count === b.count && a.op < b.op)).toBe(true);
    }
    const io = (xs: OnnxFacts['inputs']): unknown => xs.map((x) => ({ ...x, elemType: PY_TYPE[x.elemType] ?? x.elemType }));
    expect(r.inputs).toEqual(io(meta.onnx.inputs));
    expect(r.outputs).toEqual(io(meta.onnx.outputs));
  });

  it('reports size on disk and the attention summary', () => {
    expect(r.path).toBe(path);
    expect(r.size).toEqual({ fileBytes: meta.bytes, totalBytes: meta.bytes });
    expect(r.attention.shape).toBe(`${meta.layers} × ${meta.heads}`);
    expect(r.attention.headsPerLayer).toEqual(Array(meta.layers).fill(meta.heads));
    expect([r.attention.heads, r.attention.headSize, r.attention.hidden]).toEqual([meta.heads, meta.headSize, meta.hidden]);
    for (const l of r.attention.perLayer) {
      expect(l.intermediate).toBe(meta.intermediate);
      expect(l.qkv).toBe(meta.fused ? 'fused' : 'separate');
    }
    expect(r.attention.problems).toEqual([]);
  });
});

const tinyDirs = existsSync(TINY) ? ['bio-crf-op14', 'bioes-op17', 'bmes-op12-nobias', 'wordpiece-en-op11', 'bare'] : [];
describe.each(tinyDirs.filter((d) => existsSync(`${TINY}${d}/meta.json`)))('inspectModel on fixtures/tiny/%s', (dir) => {
  it('matches the parameter count and attention shape its generator recorded', () => {
    const meta = JSON.parse(readFileSync(`${TINY}${dir}/meta.json`, 'utf8')) as {
      parameter_count: number;
      layers: number;
      heads: number;
      head_size: number;
      hidden: number;
      intermediate: number;
      opset: number;
    };
    const r = inspectModel(load(`${TINY}${dir}/model.onnx`));
    expect(r.parameters.total).toBe(meta.parameter_count);
    expect(r.parameters.groups.other).toBe(0);
    expect(r.attention.shape).toBe(`${meta.layers} × ${meta.heads}`);
    expect([r.attention.headSize, r.attention.hidden]).toEqual([meta.head_size, meta.hidden]);
    expect(r.attention.perLayer.map((l) => l.intermediate)).toEqual(Array(meta.layers).fill(meta.intermediate));
    expect(r.opsets.find((o) => o.domain === 'ai.onnx')?.version).toBe(meta.opset);
  });
});

describe('inspectModel on a QDQ-quantized weight', () => {
  /** Quantize layer 0's query weight to int8 behind a DequantizeLinear (per-tensor scale, zero point 0). */
  function quantizeQuery(model: OnnxTypes.ModelProto): { weight: string; numel: number } {
    const block = findAttentionBlocks(model).blocks[0];
    if (block.qkv.kind !== 'separate') throw new Error('expected separate Q/K/V');
    const wName = block.qkv.q.weight;
    const graph = model.graph as OnnxTypes.GraphProto;
    const idx = graph.initializer.findIndex((t) => t.name === wName);
    const w = graph.initializer[idx];
    const values = tensorToFloat32(w);
    const scale = Math.max(...values.map(Math.abs)) / 127;
    const q = Int8Array.from(values, (v) => Math.round(v / scale));
    const dims = (w.dims ?? []).map(Number);
    graph.initializer.splice(
      idx,
      1,
      makeTensor('q_int8', DataType.INT8, dims, q),
      makeTensor('q_scale', DataType.FLOAT, [], [scale]),
      makeTensor('q_zero', DataType.INT8, [], [0]),
    );
    graph.node.unshift(
      onnx.NodeProto.create({ name: 'q_dequant', opType: 'DequantizeLinear', input: ['q_int8', 'q_scale', 'q_zero'], output: [wName] }),
    );
    return { weight: wName, numel: values.length };
  }

  it('counts the int8 weight as parameters and its scale/zero point as constants; the finder follows DequantizeLinear', async () => {
    const name = 'hf_scores_op14';
    const meta = META[name];
    const model = load(`${DIR}${name}.onnx`);
    const { numel } = quantizeQuery(model);
    // onnxruntime accepts the edited graph.
    const session = await ort.InferenceSession.create(encodeModel(model));
    await session.release();
    const r = inspectModel(model);
    expect(r.parameters.total).toBe(meta.parameterCount);
    expect(r.parameters.groups.attention).toBe(meta.parameterGroups.attention);
    expect(r.constants).toEqual({ tensors: 2, elements: 2 });
    expect(r.initializers.byDtype.find((d) => d.dtype === 'int8')).toEqual({ dtype: 'int8', tensors: 2, elements: numel + 1, bytes: numel + 1 });
    expect(r.initializers.byDtype.find((d) => d.dtype === 'float32')?.bytes).toBe(4 * (meta.parameterCount - numel) + 4);
    const b0 = findAttentionBlocks(model).blocks[0];
    expect(b0.qkv.kind === 'separate' && b0.qkv.q.weight).toBe('q_int8');
    expect(b0.qkv.kind === 'separate' && b0.qkv.q.weightDequantize).toBe('q_dequant');
  });
});

/** Move every Constant node's value into an initializer of the same name (as onnx-simplifier does). */
function constantsToInitializers(model: OnnxTypes.ModelProto): number {
  const graph = model.graph as OnnxTypes.GraphProto;
  const keep: OnnxTypes.INodeProto[] = [];
  let moved = 0;
  for (const n of graph.node) {
    const t = n.opType === 'Constant' ? n.attribute?.find((a) => a.name === 'value')?.t : undefined;
    if (t) {
      graph.initializer.push(onnx.TensorProto.create({ ...t, name: n.output?.[0] ?? '' }));
      moved++;
    } else keep.push(n);
  }
  graph.node = keep;
  return moved;
}

describe.each(['hf_scores_op14', 'kqt_nofold_op14', 'sdpa_op14'])('inspectModel with Constant nodes turned into initializers: %s', (name) => {
  it('still counts only the PyTorch parameters (scalars, shapes and index buffers are constants)', async () => {
    const model = load(`${DIR}${name}.onnx`);
    const moved = constantsToInitializers(model);
    expect(moved).toBeGreaterThan(10);
    const session = await ort.InferenceSession.create(encodeModel(model)); // still a valid model
    await session.release();
    const r = inspectModel(model);
    expect(r.parameters.total).toBe(META[name].parameterCount);
    for (const g of PARAM_GROUPS) expect([g, r.parameters.groups[g]]).toEqual([g, META[name].parameterGroups[g] ?? 0]);
    expect(r.constants.tensors).toBe(moved);
    expect(r.attention.shape).toBe(`${META[name].layers} × ${META[name].heads}`);
  });
});

describe('inspectModel edge cases', () => {
  it('external tensors: bytes from the external_data length, counted as external', () => {
    const ext = onnx.TensorProto.create({
      name: 'w',
      dataType: DataType.FLOAT,
      dims: [16, 64],
      dataLocation: 1,
      externalData: [
        { key: 'location', value: 'model.onnx.data' },
        { key: 'offset', value: '0' },
        { key: 'length', value: '4096' },
      ],
    });
    expect(tensorBytes(ext)).toBe(4096);
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'test',
      opsetImport: [{ domain: '', version: 14 }],
      graph: {
        name: 'g',
        node: [{ name: 'mm', opType: 'MatMul', input: ['x', 'w'], output: ['y'] }],
        initializer: [ext],
        input: [{ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'n' }, { dimValue: 16 }] } } } }],
        output: [{ name: 'y', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'n' }, {}] } } } }],
      },
    });
    const r = inspectModel(model, { fileBytes: 300, externalBytes: 4096 });
    expect(r.initializers).toEqual({ count: 1, bytes: 4096, external: 1, byDtype: [{ dtype: 'float32', tensors: 1, elements: 1024, bytes: 4096 }] });
    expect(r.size).toEqual({ fileBytes: 300, externalBytes: 4096, totalBytes: 4396 });
    expect(r.inputs).toEqual([{ name: 'x', elemType: 'float32', shape: ['n', 16] }]);
    expect(r.outputs).toEqual([{ name: 'y', elemType: 'float32', shape: ['n', null] }]);
    expect(r.parameters.groups.classifier).toBe(1024); // the dense layer feeding the graph output
    expect(r.attention.layers).toBe(0);
    expect(r.attention.shape).toBe('none');
    expect(r.attention.problems.length).toBe(1);
  });

  it('is pure: the model is not modified and the result is repeatable; a given attention report is used', () => {
    const path = `${DIR}gemm_op14.onnx`;
    const model = load(path);
    const before = encodeModel(model);
    const a = inspectModel(model);
    const b = inspectModel(model);
    expect(b).toEqual(a);
    expect(Buffer.from(encodeModel(model)).equals(Buffer.from(before))).toBe(true);
    const report = findAttentionBlocks(model);
    const c = inspectModel(model, { attention: { ...report, problems: ['x'] } });
    expect(c.attention.problems).toEqual(['x']);
  });

  it('groups Hugging Face parameter names', () => {
    const cases: Array<[string, string | undefined]> = [
      ['bert.embeddings.word_embeddings.weight', 'embeddings'],
      ['bert.embeddings.LayerNorm.weight', 'layernorm'],
      ['bert.encoder.layer.0.attention.self.query.weight', 'attention'],
      ['bert.encoder.layer.0.attention.output.dense.bias', 'attention'],
      ['bert.encoder.layer.0.attention.output.LayerNorm.bias', 'layernorm'],
      ['bert.encoder.layer.11.intermediate.dense.weight', 'ffn'],
      ['bert.encoder.layer.11.output.dense.bias', 'ffn'],
      ['classifier.weight', 'classifier'],
      ['crf.transitions', 'crf'],
      ['bert.pooler.dense.weight', undefined],
      ['onnx::MatMul_123', undefined],
    ];
    for (const [n, g] of cases) expect([n, groupByName(n)]).toEqual([n, g]);
  });
});
