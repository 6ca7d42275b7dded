/**
 * A lightweight index over an ONNX GraphProto (producers, consumers, initializers, constants) and
 * graph utilities: attribute getters, topological sort, dead-code removal, parameter counts, and
 * walkers over every (sub)graph and tensor of a model.
 *
 * Subgraphs (If/Loop/Scan bodies) may read tensors of the enclosing graph by name without listing
 * them as node inputs; {@link implicitInputs} finds those names, and the index records them as
 * consumers with `inputIndex: -1`, so topological sort and dead-code removal respect them.
 */
import type Long from 'long';
import { GraphError } from '../errors.js';
import { onnx } from './codec.js';
import { DataType, dimsOf, elementCount, isFloatType, readTensor, toNumber, type TensorData } from './tensor.js';

const AT = onnx.AttributeProto.AttributeType;

export interface ProducerRef {
  node: onnx.INodeProto;
  /** Position of the node in `graph.node`. */
  index: number;
  /** Which of the node's outputs the tensor is. */
  outputIndex: number;
}

export interface ConsumerRef {
  node: onnx.INodeProto;
  /** Position of the node in `graph.node`. */
  index: number;
  /** Which input reads the tensor; -1 when a subgraph of the node reads it implicitly. */
  inputIndex: number;
}

function nodeLabel(node: onnx.INodeProto, index?: number): string {
  if (node.name) return node.name;
  return `${node.opType ?? '?'}${index === undefined ? '' : `#${index}`}`;
}

/** Names a node's subgraph attributes (If/Loop/Scan bodies, at any depth) read from outer scopes. */
export function implicitInputs(node: onnx.INodeProto): string[] {
  const out = new Set<string>();
  for (const a of node.attribute ?? []) {
    for (const g of [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]) for (const n of outerNames(g)) out.add(n);
  }
  return [...out];
}

function outerNames(g: onnx.IGraphProto): Set<string> {
  const defined = new Set<string>();
  for (const i of g.input ?? []) if (i.name) defined.add(i.name);
  for (const t of g.initializer ?? []) if (t.name) defined.add(t.name);
  for (const s of g.sparseInitializer ?? []) if (s.values?.name) defined.add(s.values.name);
  for (const n of g.node ?? []) for (const o of n.output ?? []) if (o) defined.add(o);
  const used = new Set<string>();
  for (const n of g.node ?? []) {
    for (const i of n.input ?? []) if (i && !defined.has(i)) used.add(i);
    for (const i of implicitInputs(n)) if (!defined.has(i)) used.add(i);
  }
  for (const o of g.output ?? []) if (o.name && !defined.has(o.name)) used.add(o.name);
  return used;
}

export class GraphIndex {
  readonly graph: onnx.IGraphProto;
  private inits = new Map<string, onnx.ITensorProto>();
  private producers = new Map<string, ProducerRef>();
  private consumerMap = new Map<string, ConsumerRef[]>();
  private byName = new Map<string, onnx.INodeProto>();
  private inputs = new Set<string>();
  private outputs = new Set<string>();
  private valueInfos = new Map<string, onnx.IValueInfoProto>();
  private used = new Set<string>();

  constructor(graph: onnx.IGraphProto) {
    this.graph = graph;
    this.rebuild();
  }

  /** Re-index after the graph was changed. */
  rebuild(): void {
    const g = this.graph;
    this.inits.clear();
    this.producers.clear();
    this.consumerMap.clear();
    this.byName.clear();
    this.inputs.clear();
    this.outputs.clear();
    this.valueInfos.clear();
    this.used.clear();
    const use = (n: string | null | undefined): void => {
      if (n) this.used.add(n);
    };
    for (const t of g.initializer ?? []) {
      if (t.name) this.inits.set(t.name, t);
      use(t.name);
    }
    for (const s of g.sparseInitializer ?? []) use(s.values?.name);
    for (const v of g.input ?? []) {
      if (v.name) this.inputs.add(v.name);
      use(v.name);
    }
    for (const v of g.output ?? []) {
      if (v.name) this.outputs.add(v.name);
      use(v.name);
    }
    for (const v of [...(g.valueInfo ?? []), ...(g.output ?? []), ...(g.input ?? [])]) {
      if (v.name) this.valueInfos.set(v.name, v);
    }
    (g.node ?? []).forEach((node, index) => {
      use(node.name);
      if (node.name && !this.byName.has(node.name)) this.byName.set(node.name, node);
      (node.output ?? []).forEach((o, outputIndex) => {
        if (!o) return;
        use(o);
        if (!this.producers.has(o)) this.producers.set(o, { node, index, outputIndex });
      });
      (node.input ?? []).forEach((i, inputIndex) => {
        if (!i) return;
        use(i);
        this.addConsumer(i, { node, index, inputIndex });
      });
      for (const i of implicitInputs(node)) {
        use(i);
        this.addConsumer(i, { node, index, inputIndex: -1 });
      }
      for (const a of node.attribute ?? []) {
        for (const sg of [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]) forEachGraph(sg, (sub) => this.collectNames(sub));
      }
    });
  }

  private collectNames(g: onnx.IGraphProto): void {
    for (const t of g.initializer ?? []) if (t.name) this.used.add(t.name);
    for (const v of [...(g.input ?? []), ...(g.output ?? []), ...(g.valueInfo ?? [])]) if (v.name) this.used.add(v.name);
    for (const n of g.node ?? []) {
      if (n.name) this.used.add(n.name);
      for (const x of [...(n.input ?? []), ...(n.output ?? [])]) if (x) this.used.add(x);
    }
  }

  private addConsumer(name: string, ref: ConsumerRef): void {
    const list = this.consumerMap.get(name);
    if (list) list.push(ref);
    else this.consumerMap.set(name, [ref]);
  }

  get nodes(): onnx.INodeProto[] {
    return this.graph.node ?? [];
  }

  initializer(name: string): onnx.ITensorProto | undefined {
    return this.inits.get(name);
  }

  /** The node that outputs `tensor` (undefined for graph inputs, initializers and outer-scope names). */
  producer(tensor: string): ProducerRef | undefined {
    return this.producers.get(tensor);
  }

  /** Nodes reading `tensor`, in graph order (a node reading it twice appears twice). */
  consumers(tensor: string): ConsumerRef[] {
    return this.consumerMap.get(tensor) ?? [];
  }

  nodeByName(name: string): onnx.INodeProto | undefined {
    return this.byName.get(name);
  }

  isGraphInput(name: string): boolean {
    return this.inputs.has(name);
  }

  isGraphOutput(name: string): boolean {
    return this.outputs.has(name);
  }

  /** Type/shape info recorded for `name` (graph input, output or value_info), if any. */
  valueInfo(name: string): onnx.IValueInfoProto | undefined {
    return this.valueInfos.get(name);
  }

  /**
   * The value of `tensor` when it is constant: an initializer (also when it is listed as a graph
   * input, as IR < 4 exporters do for every weight) or the output of a Constant node (`value`,
   * `value_float(s)`, `value_int(s)`, `value_string(s)`). Undefined otherwise (incl. sparse values).
   * The data is a fresh copy.
   */
  constantValue(tensor: string): TensorData | undefined {
    const init = this.inits.get(tensor);
    if (init) return readTensor(init);
    const p = this.producers.get(tensor);
    if (!p || p.node.opType !== 'Constant' || (p.node.domain ?? '') !== '' || p.outputIndex !== 0) return undefined;
    return constantNodeValue(p.node);
  }

  /** A name used by no tensor, node or initializer of this graph or its subgraphs; reserved once returned. */
  uniqueName(prefix: string): string {
    let name = prefix;
    for (let i = 1; this.used.has(name); i++) name = `${prefix}_${i}`;
    this.used.add(name);
    return name;
  }
}

/** The value a Constant node produces, or undefined for sparse_value / unknown attributes. */
export function constantNodeValue(node: onnx.INodeProto): TensorData | undefined {
  const a = (node.attribute ?? [])[0];
  if (!a || (node.attribute ?? []).length !== 1) return undefined;
  switch (a.name) {
    case 'value':
      return a.t ? readTensor(a.t) : undefined;
    case 'value_float':
      return { dataType: DataType.FLOAT, dims: [], data: Float32Array.of(a.f ?? 0) };
    case 'value_floats':
      return { dataType: DataType.FLOAT, dims: [(a.floats ?? []).length], data: Float32Array.from(a.floats ?? []) };
    case 'value_int':
      return { dataType: DataType.INT64, dims: [], data: BigInt64Array.of(BigInt((a.i ?? 0).toString())) };
    case 'value_ints':
      return {
        dataType: DataType.INT64,
        dims: [(a.ints ?? []).length],
        data: BigInt64Array.from((a.ints ?? []).map((v) => BigInt(v.toString()))),
      };
    case 'value_string':
      return { dataType: DataType.STRING, dims: [], data: [new TextDecoder().decode(a.s ?? new Uint8Array())] };
    case 'value_strings': {
      const dec = new TextDecoder();
      return { dataType: DataType.STRING, dims: [(a.strings ?? []).length], data: (a.strings ?? []).map((s) => dec.decode(s)) };
    }
    default:
      return undefined;
  }
}

// ------------------------------------------------------------------------------------ opsets

/** The opset version the model imports for `domain` ('' and 'ai.onnx' are the same); undefined if none. */
export function opsetVersion(model: onnx.IModelProto, domain = ''): number | undefined {
  const norm = (d: string | null | undefined): string => (d === 'ai.onnx' ? '' : (d ?? ''));
  const want = norm(domain);
  const o = (model.opsetImport ?? []).find((x) => norm(x.domain) === want);
  return o ? toNumber(o.version ?? 0) : undefined;
}

// ------------------------------------------------------------------------------------ attributes

/** The attribute `name` of `node`, if present. */
export function attr(node: onnx.INodeProto, name: string): onnx.IAttributeProto | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}

/** The attribute's type, inferred from the field that is set when `type` is missing (old exporters). */
function attrType(a: onnx.IAttributeProto): number {
  if (a.type) return a.type;
  if (a.floats?.length) return AT.FLOATS;
  if (a.ints?.length) return AT.INTS;
  if (a.strings?.length) return AT.STRINGS;
  if (a.tensors?.length) return AT.TENSORS;
  if (a.graphs?.length) return AT.GRAPHS;
  if (a.t) return AT.TENSOR;
  if (a.g) return AT.GRAPH;
  if (a.s?.length) return AT.STRING;
  if (a.i != null && Object.prototype.hasOwnProperty.call(a, 'i')) return AT.INT;
  if (a.f != null && Object.prototype.hasOwnProperty.call(a, 'f')) return AT.FLOAT;
  return AT.UNDEFINED;
}

const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(AT).map(([k, v]) => [v, k]));

function getTyped(node: onnx.INodeProto, name: string, want: number): onnx.IAttributeProto | undefined {
  const a = attr(node, name);
  if (!a) return undefined;
  const t = attrType(a);
  // an empty list attribute has no field set, so an untyped empty attribute matches any list type
  if (t !== want && !(t === AT.UNDEFINED && [AT.FLOATS, AT.INTS, AT.STRINGS, AT.TENSORS, AT.GRAPHS].includes(want))) {
    throw new GraphError(`attribute "${name}" is ${TYPE_NAMES[t] ?? t}, expected ${TYPE_NAMES[want]}`, {
      node: nodeLabel(node),
      hint: 'the node does not follow the ONNX operator definition; re-export the model',
    });
  }
  return a;
}

export function attrInt(node: onnx.INodeProto, name: string): number | undefined;
export function attrInt(node: onnx.INodeProto, name: string, dflt: number): number;
/** An INT attribute as a number (GraphError if its type differs or it exceeds 2^53). */
export function attrInt(node: onnx.INodeProto, name: string, dflt?: number): number | undefined {
  const a = getTyped(node, name, AT.INT);
  return a ? toNumber(a.i ?? 0, { what: `attribute "${name}" of ${nodeLabel(node)}` }) : dflt;
}

export function attrInts(node: onnx.INodeProto, name: string, dflt?: undefined, opts?: { clamp?: boolean }): number[] | undefined;
export function attrInts(node: onnx.INodeProto, name: string, dflt: number[], opts?: { clamp?: boolean }): number[];
/** An INTS attribute as numbers; values beyond ±2^53 (INT64_MAX sentinels) are clamped with `clamp`. */
export function attrInts(node: onnx.INodeProto, name: string, dflt?: number[], opts: { clamp?: boolean } = {}): number[] | undefined {
  const a = getTyped(node, name, AT.INTS);
  return a ? (a.ints ?? []).map((v: number | Long) => toNumber(v, { clamp: opts.clamp, what: `attribute "${name}" of ${nodeLabel(node)}` })) : dflt;
}

export function attrFloat(node: onnx.INodeProto, name: string): number | undefined;
export function attrFloat(node: onnx.INodeProto, name: string, dflt: number): number;
export function attrFloat(node: onnx.INodeProto, name: string, dflt?: number): number | undefined {
  const a = getTyped(node, name, AT.FLOAT);
  return a ? (a.f ?? 0) : dflt;
}

export function attrFloats(node: onnx.INodeProto, name: string): number[] | undefined;
export function attrFloats(node: onnx.INodeProto, name: string, dflt: number[]): number[];
export function attrFloats(node: onnx.INodeProto, name: string, dflt?: number[]): number[] | undefined {
  const a = getTyped(node, name, AT.FLOATS);
  return a ? [...(a.floats ?? [])] : dflt;
}

export function attrString(node: onnx.INodeProto, name: string): string | undefined;
export function attrString(node: onnx.INodeProto, name: string, dflt: string): string;
/** A STRING attribute decoded as UTF-8. */
export function attrString(node: onnx.INodeProto, name: string, dflt?: string): string | undefined {
  const a = getTyped(node, name, AT.STRING);
  return a ? new TextDecoder().decode(a.s ?? new Uint8Array()) : dflt;
}

export function attrStrings(node: onnx.INodeProto, name: string): string[] | undefined {
  const a = getTyped(node, name, AT.STRINGS);
  const dec = new TextDecoder();
  return a ? (a.strings ?? []).map((s) => dec.decode(s)) : undefined;
}

export function attrTensor(node: onnx.INodeProto, name: string): onnx.ITensorProto | undefined {
  return getTyped(node, name, AT.TENSOR)?.t ?? undefined;
}

export function attrGraph(node: onnx.INodeProto, name: string): onnx.IGraphProto | undefined {
  return getTyped(node, name, AT.GRAPH)?.g ?? undefined;
}

// ------------------------------------------------------------------------------------ sorting

/** Binary min-heap of node positions. */
class MinHeap {
  private a: number[] = [];
  get size(): number {
    return this.a.length;
  }
  push(v: number): void {
    const a = this.a;
    a.push(v);
    for (let i = a.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (a[p] <= a[i]) break;
      [a[p], a[i]] = [a[i], a[p]];
      i = p;
    }
  }
  pop(): number {
    const a = this.a;
    const top = a[0];
    const last = a.pop() as number;
    if (a.length > 0) {
      a[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l] < a[m]) m = l;
        if (r < a.length && a[r] < a[m]) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i], a[m]];
        i = m;
      }
    }
    return top;
  }
}

/**
 * The graph's nodes in a topological order (every node after the producers of its inputs, including
 * tensors its subgraphs read implicitly), keeping the original order wherever it is already valid.
 * Does not modify the graph: assign the result to `graph.node` to apply it. Throws GraphError naming
 * a node on a cycle, or a tensor produced by two nodes.
 */
export function topologicalSort(graph: onnx.IGraphProto): onnx.INodeProto[] {
  const nodes = graph.node ?? [];
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => {
    for (const o of n.output ?? []) {
      if (!o) continue;
      const prev = producer.get(o);
      if (prev !== undefined) {
        throw new GraphError(`tensor "${o}" is produced by both ${nodeLabel(nodes[prev], prev)} and ${nodeLabel(n, i)}`, {
          node: nodeLabel(n, i),
          hint: 'every tensor must have a single producer (SSA); rename one of the outputs',
        });
      }
      producer.set(o, i);
    }
  });
  const deps: number[][] = nodes.map(() => []);
  const users: number[][] = nodes.map(() => []);
  const indeg = new Array<number>(nodes.length).fill(0);
  nodes.forEach((n, i) => {
    const seen = new Set<number>();
    for (const name of [...(n.input ?? []), ...implicitInputs(n)]) {
      if (!name) continue;
      const p = producer.get(name);
      if (p === undefined || seen.has(p)) continue;
      seen.add(p);
      deps[i].push(p);
      users[p].push(i);
      indeg[i]++;
    }
  });
  const heap = new MinHeap();
  indeg.forEach((d, i) => {
    if (d === 0) heap.push(i);
  });
  const order: onnx.INodeProto[] = [];
  while (heap.size > 0) {
    const i = heap.pop();
    order.push(nodes[i]);
    for (const u of users[i]) if (--indeg[u] === 0) heap.push(u);
  }
  if (order.length !== nodes.length) {
    // walk back through unsorted predecessors until one repeats: that node lies on a cycle
    let i = indeg.findIndex((d) => d > 0);
    const visited = new Set<number>();
    while (!visited.has(i)) {
      visited.add(i);
      i = deps[i].find((p) => indeg[p] > 0) ?? i;
    }
    throw new GraphError(`the graph has a cycle through ${nodeLabel(nodes[i], i)}`, {
      node: nodeLabel(nodes[i], i),
      hint: 'an ONNX graph must be acyclic; check the edits that rewired this node',
    });
  }
  return order;
}

// ------------------------------------------------------------------------------------ dead code

/**
 * Remove, in place, nodes none of whose outputs reach a graph output, initializers (and sparse
 * initializers) no remaining node or output reads, and value_info of vanished tensors. An unused
 * initializer that is also listed as a graph input (IR < 4 style weights) is removed from the inputs
 * too; other graph inputs are kept. Returns how many nodes and initializers were removed.
 */
export function removeUnused(graph: onnx.IGraphProto): { nodes: number; initializers: number } {
  const nodes = graph.node ?? [];
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => (n.output ?? []).forEach((o) => o && !producer.has(o) && producer.set(o, i)));
  const needed = new Set<string>();
  const live = new Set<number>();
  const stack: string[] = [];
  const need = (name: string | null | undefined): void => {
    if (name && !needed.has(name)) {
      needed.add(name);
      stack.push(name);
    }
  };
  for (const o of graph.output ?? []) need(o.name);
  while (stack.length > 0) {
    const p = producer.get(stack.pop() as string);
    if (p === undefined || live.has(p)) continue;
    live.add(p);
    for (const i of nodes[p].input ?? []) need(i);
    for (const i of implicitInputs(nodes[p])) need(i);
  }
  const keptNodes = nodes.filter((_, i) => live.has(i));
  const inits = graph.initializer ?? [];
  const keptInits = inits.filter((t) => t.name && needed.has(t.name));
  const removedInitNames = new Set(inits.filter((t) => !(t.name && needed.has(t.name))).map((t) => t.name ?? ''));
  const sparse = graph.sparseInitializer ?? [];
  const keptSparse = sparse.filter((s) => s.values?.name && needed.has(s.values.name));
  for (const s of sparse) if (!keptSparse.includes(s)) removedInitNames.add(s.values?.name ?? '');
  const removed = { nodes: nodes.length - keptNodes.length, initializers: inits.length - keptInits.length + sparse.length - keptSparse.length };
  graph.node = keptNodes;
  graph.initializer = keptInits;
  if (graph.sparseInitializer) graph.sparseInitializer = keptSparse;
  if (graph.input) graph.input = graph.input.filter((v) => !removedInitNames.has(v.name ?? ''));
  if (graph.valueInfo) {
    const exists = new Set<string>();
    for (const n of keptNodes) for (const o of n.output ?? []) exists.add(o);
    graph.valueInfo = graph.valueInfo.filter((v) => v.name && exists.has(v.name) && needed.has(v.name));
  }
  return removed;
}

// ------------------------------------------------------------------------------------ counting & walking

/** Number of elements in the graph's floating-point initializers (float, double, (b)float16, float8). */
export function countParameters(graph: onnx.IGraphProto): number {
  let n = 0;
  for (const t of graph.initializer ?? []) if (isFloatType(t.dataType ?? 0)) n += elementCount(dimsOf(t));
  return n;
}

/** Ops whose integer inputs (by index) are quantized weights (Gather: an int8 embedding table). */
const QUANT_WEIGHT_INPUTS: Record<string, number[]> = {
  DequantizeLinear: [0],
  Gather: [0],
  MatMulInteger: [0, 1],
  QLinearMatMul: [0, 3],
  ConvInteger: [0, 1],
  QLinearConv: [0, 3],
  DynamicQuantizeMatMul: [1],
  MatMulNBits: [1],
  GatherBlockQuantized: [0],
};
/** Float inputs that are quantization scales/zero points, not parameters. */
const QUANT_PARAM_INPUTS: Record<string, number[]> = {
  DequantizeLinear: [1, 2],
  QuantizeLinear: [1, 2],
  QLinearMatMul: [1, 2, 4, 5, 6, 7],
  QLinearConv: [1, 2, 4, 5, 6, 7],
  MatMulInteger: [2, 3],
  DynamicQuantizeMatMul: [2, 3],
  MatMulNBits: [2, 3],
};

/**
 * Names of the initializers that are model parameters, decided by how the graph uses them, whatever
 * the exporter named them: floating-point tensors with more than one element (except quantization
 * scales and zero points), and integer tensors that hold quantized weights (inputs of
 * DequantizeLinear, MatMulInteger, QLinearMatMul, ...). Shape constants, index buffers and scalars are
 * constants, not parameters. `ranerc inspect` and every report count parameters this way, so a float
 * model and its INT8 version report the same count.
 */
export function parameterInitializers(graph: onnx.IGraphProto): Set<string> {
  const uses = new Map<string, Array<{ op: string; input: number }>>();
  for (const n of graph.node ?? []) {
    (n.input ?? []).forEach((t, i) => {
      if (!t) return;
      let l = uses.get(t);
      if (!l) uses.set(t, (l = []));
      l.push({ op: n.opType ?? '', input: i });
    });
  }
  const usedAs = (t: string, table: Record<string, number[]>): boolean =>
    (uses.get(t) ?? []).some((u) => (table[u.op] ?? []).includes(u.input));
  const params = new Set<string>();
  for (const t of graph.initializer ?? []) {
    const name = t.name ?? '';
    const dt = t.dataType ?? 0;
    if (elementCount(dimsOf(t)) <= 1) continue;
    const isParam = isFloatType(dt)
      ? !usedAs(name, QUANT_PARAM_INPUTS) || usedAs(name, QUANT_WEIGHT_INPUTS)
      : dt !== DataType.INT64 && dt !== DataType.UINT64 && dt !== DataType.STRING && dt !== DataType.BOOL &&
        usedAs(name, QUANT_WEIGHT_INPUTS);
    if (isParam) params.add(name);
  }
  return params;
}

/** Number of parameter elements (see `parameterInitializers`), float or quantized. */
export function countModelParameters(graph: onnx.IGraphProto): number {
  const names = parameterInitializers(graph);
  let n = 0;
  for (const t of graph.initializer ?? []) if (names.has(t.name ?? '')) n += elementCount(dimsOf(t));
  return n;
}

/** Call `fn` on `graph` and every subgraph inside its nodes' attributes, depth first. */
export function forEachGraph(graph: onnx.IGraphProto, fn: (g: onnx.IGraphProto, path: string) => void, path = 'graph'): void {
  fn(graph, path);
  (graph.node ?? []).forEach((n, i) => {
    for (const a of n.attribute ?? []) {
      const label = `${path}/${nodeLabel(n, i)}.${a.name ?? ''}`;
      if (a.g) forEachGraph(a.g, fn, label);
      (a.graphs ?? []).forEach((g, j) => forEachGraph(g, fn, `${label}[${j}]`));
    }
  });
}

export type TensorSite = 'initializer' | 'sparse_initializer' | 'attribute' | 'function';

/**
 * Call `fn` on every TensorProto of the model: initializers and sparse-initializer parts of the
 * main graph, its subgraphs and training graphs, and tensors held by node attributes (Constant
 * values, ...), including nodes of model-local functions.
 */
export function forEachTensor(model: onnx.IModelProto, fn: (t: onnx.ITensorProto, site: TensorSite, path: string) => void): void {
  const visitNodes = (nodes: onnx.INodeProto[], path: string, site: TensorSite): void => {
    nodes.forEach((n, i) => {
      for (const a of n.attribute ?? []) {
        const label = `${path}/${nodeLabel(n, i)}.${a.name ?? ''}`;
        if (a.t) fn(a.t, site, label);
        for (const t of a.tensors ?? []) fn(t, site, label);
        for (const s of [...(a.sparseTensor ? [a.sparseTensor] : []), ...(a.sparseTensors ?? [])]) {
          if (s.values) fn(s.values, site, label);
          if (s.indices) fn(s.indices, site, label);
        }
      }
    });
  };
  const visitGraph = (root: onnx.IGraphProto, rootPath: string): void =>
    forEachGraph(
      root,
      (g, path) => {
        for (const t of g.initializer ?? []) fn(t, 'initializer', path);
        for (const s of g.sparseInitializer ?? []) {
          if (s.values) fn(s.values, 'sparse_initializer', path);
          if (s.indices) fn(s.indices, 'sparse_initializer', path);
        }
        visitNodes(g.node ?? [], path, 'attribute');
      },
      rootPath,
    );
  if (model.graph) visitGraph(model.graph, 'graph');
  (model.trainingInfo ?? []).forEach((ti, i) => {
    if (ti.initialization) visitGraph(ti.initialization, `training_info[${i}].initialization`);
    if (ti.algorithm) visitGraph(ti.algorithm, `training_info[${i}].algorithm`);
  });
  for (const f of model.functions ?? []) {
    visitNodes(f.node ?? [], `function ${f.domain ?? ''}.${f.name ?? ''}`, 'function');
    for (const n of f.node ?? []) {
      for (const a of n.attribute ?? []) {
        for (const g of [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]) visitGraph(g, `function ${f.name ?? ''}/${nodeLabel(n)}`);
      }
    }
  }
}
