import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GraphError } from '../../src/errors.js';
import { decodeModel, encodeModel, onnx } from '../../src/onnx/codec.js';
import {
  attr,
  attrFloat,
  attrFloats,
  attrInt,
  attrInts,
  attrString,
  attrTensor,
  countParameters,
  forEachTensor,
  GraphIndex,
  implicitInputs,
  opsetVersion,
  removeUnused,
  topologicalSort,
} from '../../src/onnx/graph.js';
import { DataType, makeTensor, readTensor, type TensorValues } from '../../src/onnx/tensor.js';
import { fixture, graphOf, maxAbsDiff, ort, reference, runBert, session } from './helpers.js';

const BERTS = ['tiny_bert/model.onnx', 'tiny_bert_opset11.onnx', 'tiny_bert_opset17.onnx'];
const load = (name: string): onnx.ModelProto => decodeModel(readFileSync(fixture(name)), name);
const AT = onnx.AttributeProto.AttributeType;

function jsonable(data: TensorValues): Array<number | string | boolean> {
  return Array.from(data as ArrayLike<number | bigint | boolean | string>, (v) =>
    typeof v === 'bigint' ? (v > BigInt(2 ** 53) || v < -BigInt(2 ** 53) ? v.toString() : Number(v)) : v,
  );
}

/** Every node's inputs are graph inputs, initializers, or outputs of earlier nodes. */
function isTopological(graph: onnx.IGraphProto, nodes: onnx.INodeProto[], outer: Set<string> = new Set()): boolean {
  const avail = new Set<string>([...outer, '']);
  for (const i of graph.input ?? []) avail.add(i.name ?? '');
  for (const t of graph.initializer ?? []) avail.add(t.name ?? '');
  for (const n of nodes) {
    for (const i of [...(n.input ?? []), ...implicitInputs(n)]) if (!avail.has(i)) return false;
    for (const o of n.output ?? []) avail.add(o);
  }
  return true;
}

/** Deterministic Fisher–Yates shuffle. */
function shuffled<T>(xs: T[], seed: number): T[] {
  const a = xs.slice();
  let s = seed;
  for (let i = a.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const j = s % (i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

describe('GraphIndex on real exports', () => {
  it.each(BERTS)('%s: producers, consumers and counts agree with the onnx package', (name) => {
    const m = load(name);
    const g = graphOf(m);
    const facts = reference.models[name];
    const idx = new GraphIndex(g);
    expect(countParameters(g)).toBe(facts.floatParameters);
    expect(countParameters(g)).toBe(reference.bert.torchParameters); // every PyTorch parameter, nothing else
    expect(isTopological(g, g.node)).toBe(true);
    (g.node as onnx.NodeProto[]).forEach((n, i) => {
      n.output.forEach((o, k) => expect(idx.producer(o)).toEqual({ node: n, index: i, outputIndex: k }));
      n.input.forEach((inp, k) => {
        if (inp) expect(idx.consumers(inp)).toContainEqual({ node: n, index: i, inputIndex: k });
      });
      if (n.name) expect(idx.nodeByName(n.name)).toBe(n);
    });
    for (const [iname, dims] of Object.entries(facts.initializerShapes)) {
      const t = idx.initializer(iname);
      expect(t?.dims?.map(Number)).toEqual(dims);
      expect(idx.producer(iname)).toBeUndefined();
      const value = idx.constantValue(iname)!;
      const sum = Array.from(value.data as Float32Array | BigInt64Array, Number).reduce((a, b) => a + b, 0);
      expect(Math.abs(sum - facts.initializerSums[iname])).toBeLessThan(1e-3 * Math.max(1, Math.abs(facts.initializerSums[iname])));
    }
    for (const i of facts.inputs) expect(idx.isGraphInput(i)).toBe(true);
    for (const o of facts.outputs) expect(idx.isGraphOutput(o)).toBe(true);
    expect(idx.isGraphInput(facts.outputs[0])).toBe(false);
    expect(opsetVersion(m)).toBe(facts.opset[0].version);
    expect(opsetVersion(m, 'ai.onnx')).toBe(facts.opset[0].version);
    expect(opsetVersion(m, 'com.microsoft')).toBeUndefined();
  });

  it.each(BERTS)('%s: constantValue of every Constant node equals numpy', (name) => {
    const idx = new GraphIndex(graphOf(load(name)));
    const constants = reference.models[name].constants;
    expect(Object.keys(constants).length).toBeGreaterThan(10);
    for (const [out, values] of Object.entries(constants)) {
      const v = idx.constantValue(out);
      expect(v, out).toBeDefined();
      expect(jsonable(v!.data).map((x) => (typeof x === 'number' ? Math.fround(x) : x)), out).toEqual(
        values.map((x) => (typeof x === 'number' ? Math.fround(x) : x)),
      );
    }
    // a computed tensor is not constant
    expect(idx.constantValue(reference.models[name].outputs[0])).toBeUndefined();
  });

  it('attribute getters read what the onnx package reads', () => {
    const m = load('tiny_bert_opset17.onnx');
    const idx = new GraphIndex(graphOf(m));
    const facts = reference.models['tiny_bert_opset17.onnx'].attributes;
    let checked = 0;
    for (const [nodeName, attrs] of Object.entries(facts)) {
      const node = idx.nodeByName(nodeName)!;
      for (const [a, { type, value }] of Object.entries(attrs)) {
        if (type === 'int') expect(attrInt(node, a)).toBe(value);
        else if (type === 'ints') expect(attrInts(node, a)).toEqual(value);
        else if (type === 'float') expect(attrFloat(node, a)).toBe(Math.fround(value as number));
        else if (type === 'floats') expect(attrFloats(node, a)).toEqual(value);
        else if (type === 'string') expect(attrString(node, a)).toBe(value);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(20);
    const ln = graphOf(m).node.find((n) => n.opType === 'LayerNormalization')!;
    expect(() => attrInts(ln, 'epsilon')).toThrow(GraphError);
    expect(() => attrInts(ln, 'epsilon')).toThrow(/epsilon.*FLOAT, expected INTS/);
    expect(attrInt(ln, 'no_such', 7)).toBe(7);
    expect(attrInt(ln, 'no_such')).toBeUndefined();
    const constant = graphOf(m).node.find((n) => n.opType === 'Constant')!;
    expect(attrTensor(constant, 'value')).toBe(attr(constant, 'value')!.t);
    // INT64_MAX sentinels (Slice ends) only convert when clamped
    const slice = { opType: 'Slice', name: 's', attribute: [{ name: 'ends', type: AT.INTS, ints: [onnx.AttributeProto.create().i, '9223372036854775807'] }] };
    const sliceNode = onnx.NodeProto.decode(onnx.NodeProto.encode(slice as onnx.INodeProto).finish());
    expect(() => attrInts(sliceNode, 'ends')).toThrow(/2\^53/);
    expect(attrInts(sliceNode, 'ends', undefined, { clamp: true })).toEqual([0, Number.MAX_SAFE_INTEGER]);
  });

  it('forEachTensor visits every initializer and Constant tensor', () => {
    const name = 'tiny_bert/model.onnx';
    let inits = 0;
    let attrs = 0;
    forEachTensor(load(name), (_t, site) => (site === 'initializer' ? inits++ : attrs++));
    expect(inits).toBe(reference.models[name].initializers);
    expect(attrs).toBe(reference.models[name].ops.Constant);
  });
});

describe('topologicalSort', () => {
  it.each(BERTS)('%s: restores a valid order from shuffled nodes, and onnxruntime agrees', async (name) => {
    const m = load(name);
    const g = graphOf(m);
    const original = g.node.slice();
    expect(topologicalSort(g)).toEqual(original); // an already sorted graph keeps its order
    g.node = shuffled(original, 42);
    expect(isTopological(g, g.node)).toBe(false);
    const sorted = topologicalSort(g);
    expect(g.node).not.toEqual(sorted); // the input is not modified
    expect(sorted).toHaveLength(original.length);
    expect(isTopological(g, sorted)).toBe(true);
    g.node = sorted;
    const [a, b] = [await runBert(fixture(name)), await runBert(encodeModel(m))];
    expect(Array.from(b.data as Float32Array)).toEqual(Array.from(a.data as Float32Array));
  });

  it('orders a node after what its subgraphs read from the outer scope', () => {
    const g = graphOf(load('subgraph.onnx'));
    expect(g.node.map((n) => n.name)).toEqual(['branch', 'relu', 'dead_sigmoid', 'dead_add']);
    expect(implicitInputs(g.node[0]).sort()).toEqual(['V', 'W', 'xr']);
    const sorted = topologicalSort(g).map((n) => n.name);
    expect(sorted.indexOf('relu')).toBeLessThan(sorted.indexOf('branch'));
    expect(sorted).toEqual(['relu', 'branch', 'dead_sigmoid', 'dead_add']);
  });

  it('throws a GraphError naming a node on a cycle, and on a tensor with two producers', () => {
    const g = graphOf(load('tiny_bert/model.onnx'));
    const idx = new GraphIndex(g);
    const mm = g.node.find((n) => n.opType === 'MatMul') as onnx.NodeProto;
    const after = idx.consumers(mm.output[0])[0].node as onnx.NodeProto; // feed a later node's output back into the MatMul
    mm.input[0] = after.output[0];
    let err: unknown;
    try {
      topologicalSort(g);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GraphError);
    expect([mm.name, after.name]).toContain((err as GraphError).where.node);
    const g2 = graphOf(load('subgraph.onnx'));
    g2.node[2].output = ['xr'];
    expect(() => topologicalSort(g2)).toThrow(/"xr" is produced by both relu and dead_sigmoid/);
  });
});

describe('removeUnused', () => {
  it('removes dead nodes and initializers, keeps what subgraphs read; onnxruntime agrees', async () => {
    const m = load('subgraph.onnx');
    const g = graphOf(m);
    const idx = new GraphIndex(g);
    expect(idx.consumers('xr')).toEqual([{ node: g.node[0], index: 0, inputIndex: -1 }]);
    expect(idx.consumers('W').map((c) => c.node.name)).toEqual(['branch']);
    expect(removeUnused(g)).toEqual({ nodes: 2, initializers: 1 });
    expect(g.node.map((n) => n.name)).toEqual(['branch', 'relu']);
    expect(g.initializer.map((t) => t.name)).toEqual(['W', 'V']);
    expect(g.input.map((i) => i.name)).toEqual(['x', 'cond']);
    for (const cond of [true, false]) {
      const s = await session(encodeModel(m));
      const y = (await s.run({ x: new ort.Tensor('float32', Float32Array.from(reference.subgraph.x), [3]), cond: new ort.Tensor('bool', [cond], []) })).y;
      expect(maxAbsDiff(y.data as Float32Array, cond ? reference.subgraph.then : reference.subgraph.else)).toBeLessThan(1e-6);
    }
    expect(removeUnused(g)).toEqual({ nodes: 0, initializers: 0 });
  });

  it('leaves a real export alone, and drops unused IR<4-style weight inputs with their initializers', async () => {
    const m = load('tiny_bert/model.onnx');
    const g = graphOf(m);
    expect(removeUnused(g)).toEqual({ nodes: 0, initializers: 0 });
    // an extra weight listed as a graph input too (as IR 3 exporters did), read by a dead node
    g.initializer.push(makeTensor('old_weight', DataType.FLOAT, [2], [1, 2]));
    g.input.push(onnx.ValueInfoProto.create({ name: 'old_weight', type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimValue: 2 }] } } } }));
    g.node.push(onnx.NodeProto.create({ opType: 'Relu', name: 'dead', input: ['old_weight'], output: ['dead_out'] }));
    g.valueInfo.push(onnx.ValueInfoProto.create({ name: 'dead_out' }));
    expect(removeUnused(g)).toEqual({ nodes: 1, initializers: 1 });
    expect(g.input.map((i) => i.name)).toEqual(reference.models['tiny_bert/model.onnx'].inputs);
    expect(g.valueInfo.some((v) => v.name === 'dead_out')).toBe(false);
    const logits = await runBert(encodeModel(m));
    expect(maxAbsDiff(logits.data as Float32Array, reference.bert.logits)).toBeLessThan(1e-4);
  });
});

describe('uniqueName and Constant attribute forms', () => {
  it('never returns a name in use, including inside subgraphs', () => {
    const idx = new GraphIndex(graphOf(load('subgraph.onnx')));
    expect(idx.uniqueName('fresh')).toBe('fresh');
    expect(idx.uniqueName('fresh')).toBe('fresh_1');
    expect(idx.uniqueName('then_out')).toBe('then_out_1'); // a subgraph's tensor
    expect(idx.uniqueName('relu')).toBe('relu_1'); // a node name
    expect(idx.uniqueName('W')).toBe('W_1');
  });

  it('constantValue reads value_float(s) / value_int(s) / value as onnxruntime computes them', async () => {
    const mk = (out: string, a: onnx.IAttributeProto): onnx.INodeProto => ({ opType: 'Constant', name: out, output: [out], attribute: [a] });
    const nodes = [
      mk('cf', { name: 'value_float', type: AT.FLOAT, f: 0.1 }),
      mk('cfs', { name: 'value_floats', type: AT.FLOATS, floats: [1.5, -2.25] }),
      mk('ci', { name: 'value_int', type: AT.INT, i: -7 }),
      mk('cis', { name: 'value_ints', type: AT.INTS, ints: [3, 4, -1] }),
      mk('ct', { name: 'value', type: AT.TENSOR, t: makeTensor('', DataType.INT32, [2, 2], [1, 2, 3, 4]) }),
    ];
    const graph: onnx.IGraphProto = {
      name: 'c',
      node: nodes,
      output: nodes.map((n) => ({ name: n.output![0], type: { tensorType: { elemType: 0 } } })),
    };
    const types: Record<string, number> = { cf: 1, cfs: 1, ci: 7, cis: 7, ct: 6 };
    for (const o of graph.output!) o.type!.tensorType!.elemType = types[o.name!];
    const s = await session(encodeModel({ irVersion: 8, opsetImport: [{ domain: '', version: 13 }], graph }));
    const out = await s.run({});
    const idx = new GraphIndex(graph);
    for (const name of Object.keys(types)) {
      const v = idx.constantValue(name)!;
      expect(v.dims, name).toEqual(out[name].dims);
      expect(v.dataType).toBe(types[name]);
      expect(Array.from(v.data as ArrayLike<unknown>), name).toEqual(Array.from(out[name].data as ArrayLike<unknown>));
    }
    expect(readTensor(makeTensor('x', DataType.FLOAT, [], [0.1])).data[0]).toBe((idx.constantValue('cf')!.data as Float32Array)[0]);
  });
});
