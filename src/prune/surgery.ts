/**
 * Physical removal of attention heads and FFN neurons from an ONNX graph.
 *
 * For every layer (an {@link AttentionBlock} from `findAttentionBlocks`):
 * - the Q/K/V projections keep the weight columns (or rows, for [out, in] storage) and bias entries
 *   of the kept heads — for a fused QKV projection, within each of its Q/K/V ranges, and the
 *   Split sizes / Slice starts and ends are rewritten;
 * - the output projection keeps the weight rows (in-features) of the kept heads;
 * - every shape constant that encodes the head count or the all-head size is rewritten: the head
 *   split Reshape targets, the head merge Reshape target, the Reshapes around Gemm-style linears.
 *   A constant is never changed in place: the Reshape (or its Concat, which is cloned per Reshape)
 *   gets a fresh initializer, so constants the exporter shares across layers stay intact;
 * - a layer left without heads (only with `allowEmptyLayers`) loses its whole attention subgraph: its
 *   output becomes the output projection's bias (what a layer whose heads are all gated to 0 gives).
 * FFN neurons: the intermediate dense keeps the columns and bias entries of the kept neurons, the
 * output dense the matching rows; the Reshapes around Gemm-style layers are rewritten too.
 *
 * The input model is never modified: the result shares every untouched tensor and node with it.
 * Weight slicing works on the raw bytes, so float32/float16/bfloat16/double weights are all kept
 * in their type. Quantized layers (QDQ, MatMulInteger) are refused: prune before quantizing.
 */
import { GraphError } from '../errors.js';
import {
  findNode,
  type AttentionBlock,
  type FusedQkv,
  type LinearRef,
  type NodeRef,
  type ShapeElementRef,
  type ShapeSpec,
} from '../onnx/attention.js';
import { onnx } from '../onnx/codec.js';
import { constantNodeValue, removeUnused, topologicalSort } from '../onnx/graph.js';
import { DataType, dimsOf, elementCount, elementSize, tensorRawBytes, tensorToNumbers } from '../onnx/tensor.js';

type Node = onnx.INodeProto;
type Tensor = onnx.ITensorProto;

/** What to remove, by layer (index into the blocks), in the model's current numbering. */
export interface PrunePlan {
  /** Per layer: indices of the heads to remove. */
  heads: number[][];
  /** Per layer: indices of the FFN intermediate neurons to remove (omit or [] to keep all). */
  neurons?: number[][];
}

export interface SurgeryOptions {
  /** Allow removing every head of a layer (its attention output becomes the output bias). */
  allowEmptyLayers?: boolean;
}

export interface SurgeryResult {
  model: onnx.ModelProto;
  /** Heads per layer after surgery. */
  headsAfter: number[];
  /** FFN intermediate size per layer after surgery (undefined for a layer without a matched FFN). */
  ffnAfter: Array<number | undefined>;
  /** Layers whose attention was removed entirely. */
  emptiedLayers: number[];
  /** Layers whose FFN was removed entirely (output = the FFN output bias). */
  ffnRemovedLayers: number[];
  /**
   * Layers with attention and FFN both removed: nothing of the layer but its constant biases and
   * LayerNorms remains (post-LN BERT: LN2(LN1(x + b_O) + b_FFN), the function gating all to zero gives).
   */
  removedLayers: number[];
  /** Nodes and initializers dropped as dead code. */
  removedNodes: number;
  removedInitializers: number;
}

// ------------------------------------------------------------------------------ message copies

/** A copy of a protobufjs message keeping its prototype and symbol-keyed (unknown-field) data. */
function cloneMessage<T extends object>(m: T, patch: Partial<T> = {}): T {
  return Object.assign(Object.create(Object.getPrototypeOf(m) as object) as T, m, patch);
}

function int64Tensor(name: string, values: readonly number[]): onnx.TensorProto {
  const raw = new BigInt64Array(values.map((v) => BigInt(v)));
  return new onnx.TensorProto({
    name,
    dataType: DataType.INT64,
    dims: [values.length],
    rawData: new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength),
  });
}

// ------------------------------------------------------------------------------ raw slicing

function rawElementSize(t: Tensor, what: string): number {
  const size = elementSize(t.dataType ?? 0);
  if (size === undefined || !Number.isInteger(size) || size <= 0) {
    throw new GraphError(`${what} "${t.name ?? ''}" has element type ${t.dataType ?? 0}, which ranerc cannot slice`, {
      node: t.name ?? undefined,
      hint: 'prune the float model (before quantizing or converting it)',
    });
  }
  return size;
}

/** A copy of `t` keeping only `keep` (sorted indices) along `axis` (rank 1 or 2). */
export function sliceTensor(t: Tensor, axis: number, keep: readonly number[]): onnx.TensorProto {
  const dims = dimsOf(t);
  const es = rawElementSize(t, 'tensor');
  const src = tensorRawBytes(t);
  if (dims.length === 1 && axis === 0) {
    const out = new Uint8Array(keep.length * es);
    keep.forEach((k, i) => out.set(src.subarray(k * es, (k + 1) * es), i * es));
    return new onnx.TensorProto({ name: t.name, dataType: t.dataType, dims: [keep.length], rawData: out });
  }
  if (dims.length !== 2 || (axis !== 0 && axis !== 1)) {
    throw new GraphError(`tensor "${t.name ?? ''}" has shape [${dims.join(', ')}]; expected a vector or a matrix`, {
      node: t.name ?? undefined,
      hint: 'ranerc slices 2-D weights and 1-D biases only',
    });
  }
  const [rows, cols] = dims;
  if (axis === 0) {
    const rowBytes = cols * es;
    const out = new Uint8Array(keep.length * rowBytes);
    keep.forEach((r, i) => out.set(src.subarray(r * rowBytes, (r + 1) * rowBytes), i * rowBytes));
    return new onnx.TensorProto({ name: t.name, dataType: t.dataType, dims: [keep.length, cols], rawData: out });
  }
  const out = new Uint8Array(rows * keep.length * es);
  // Copy runs of consecutive kept columns in one go (heads are contiguous column blocks).
  const runs: Array<[number, number]> = [];
  for (const c of keep) {
    const last = runs[runs.length - 1];
    if (last && last[1] === c) last[1] = c + 1;
    else runs.push([c, c + 1]);
  }
  let o = 0;
  for (let r = 0; r < rows; r++) {
    const base = r * cols * es;
    for (const [a, b] of runs) {
      out.set(src.subarray(base + a * es, base + b * es), o);
      o += (b - a) * es;
    }
  }
  return new onnx.TensorProto({ name: t.name, dataType: t.dataType, dims: [rows, keep.length], rawData: out });
}

/** A copy of `t` with the entries at `zero` (indices along `axis`, rank 1 or 2) set to 0. */
export function zeroTensorSlices(t: Tensor, axis: number, zero: readonly number[]): onnx.TensorProto {
  const dims = dimsOf(t);
  const es = rawElementSize(t, 'tensor');
  // A real copy: raw_data decoded by protobufjs is a Node Buffer, whose slice() is a view.
  const out = new Uint8Array(tensorRawBytes(t));
  if (dims.length === 1 && axis === 0) {
    for (const k of zero) out.fill(0, k * es, (k + 1) * es);
  } else if (dims.length === 2 && axis === 0) {
    const rowBytes = dims[1] * es;
    for (const r of zero) out.fill(0, r * rowBytes, (r + 1) * rowBytes);
  } else if (dims.length === 2 && axis === 1) {
    const rowBytes = dims[1] * es;
    for (let r = 0; r < dims[0]; r++) for (const c of zero) out.fill(0, r * rowBytes + c * es, r * rowBytes + (c + 1) * es);
  } else {
    throw new GraphError(`tensor "${t.name ?? ''}" has shape [${dims.join(', ')}]; expected a vector or a matrix`, {
      node: t.name ?? undefined,
      hint: 'ranerc edits 2-D weights and 1-D biases only',
    });
  }
  return new onnx.TensorProto({ name: t.name, dataType: t.dataType, dims: dims.slice(), rawData: out });
}

// ------------------------------------------------------------------------------ the editor

/** A reshape target element to rewrite: where the value lives now. */
interface ElementSite {
  reshape: NodeRef;
  /** The value in the graph. */
  value: number;
  /** 'constant': the Reshape's whole target is a constant; 'concat': one Concat input is. */
  kind: 'constant' | 'concat';
  /** Values of the constant (the whole target, or the Concat input). */
  base: number[];
  index: number;
  concat?: NodeRef;
  concatInput?: number;
}

/**
 * A copy-on-write view of a model: nodes are cloned when first edited (keeping their position, so
 * `#index:op` references stay valid), initializers replaced or added by name.
 */
class Editor {
  readonly model: onnx.ModelProto;
  readonly graph: onnx.GraphProto;
  private readonly cloned = new Set<Node>();
  private readonly names = new Set<string>();
  private readonly inits = new Map<string, number>();
  /** Per Reshape node: its own Concat clone (so a shared Concat is never changed for others). */
  private readonly concatClones = new Map<Node, Node>();
  /** Current values of the constants this editor created, by tensor name. */
  private readonly created = new Map<string, number[]>();

  constructor(model: onnx.IModelProto) {
    const g = model.graph;
    if (!g) throw new GraphError('the model has no graph', { hint: 'pass a complete ONNX model' });
    this.graph = cloneMessage(g as onnx.GraphProto, {
      node: [...(g.node ?? [])],
      initializer: [...(g.initializer ?? [])],
      input: [...(g.input ?? [])],
      valueInfo: [...(g.valueInfo ?? [])],
    });
    this.model = cloneMessage(model as onnx.ModelProto, { graph: this.graph });
    this.graph.initializer.forEach((t, i) => {
      if (t.name) this.inits.set(t.name, i);
    });
    for (const t of this.graph.initializer) if (t.name) this.names.add(t.name);
    for (const v of this.graph.input) if (v.name) this.names.add(v.name);
    for (const n of this.graph.node) {
      if (n.name) this.names.add(n.name);
      for (const o of n.output ?? []) if (o) this.names.add(o);
    }
  }

  unique(base: string): string {
    let name = base;
    for (let i = 1; this.names.has(name); i++) name = `${base}_${i}`;
    this.names.add(name);
    return name;
  }

  find(ref: NodeRef): Node {
    const n = findNode(this.graph, ref);
    if (!n) throw new GraphError(`node ${ref} is not in the graph`, { node: ref, hint: 'this is a ranerc bug: the attention report does not match the model' });
    return n;
  }

  /** A node to edit: cloned on first edit, in place in the node list. */
  edit(ref: NodeRef | Node): Node {
    const n = typeof ref === 'string' ? this.find(ref) : ref;
    if (this.cloned.has(n)) return n;
    const copy = cloneMessage(n as onnx.NodeProto, {
      input: [...(n.input ?? [])],
      output: [...(n.output ?? [])],
      attribute: [...(n.attribute ?? [])],
    });
    const i = this.graph.node.indexOf(n);
    if (i < 0) throw new GraphError(`node ${n.name ?? n.opType ?? '?'} is not in the graph`, { node: n.name ?? undefined, hint: 'this is a ranerc bug' });
    this.graph.node[i] = copy;
    this.cloned.add(copy);
    return copy;
  }

  addNode(n: Node): void {
    this.graph.node.push(n);
    this.cloned.add(n);
  }

  init(name: string, what: string, node?: string): Tensor {
    const i = this.inits.get(name);
    if (i === undefined) {
      throw new GraphError(`${what} "${name}" is not an initializer`, {
        node: node ?? name,
        hint: 'ranerc prunes weights stored as initializers; export the model with its weights inside the graph',
      });
    }
    return this.graph.initializer[i];
  }

  /** How many node inputs (and graph outputs) read `tensor`. */
  uses(tensor: string): number {
    let n = 0;
    for (const node of this.graph.node) for (const i of node.input ?? []) if (i === tensor) n++;
    for (const o of this.graph.output ?? []) if (o.name === tensor) n++;
    return n;
  }

  /** Replace an initializer's value (same name); a graph input of the same name gets the new dims. */
  setInit(name: string, t: onnx.TensorProto): void {
    const i = this.inits.get(name);
    if (i === undefined) throw new GraphError(`no initializer "${name}"`, { node: name, hint: 'this is a ranerc bug' });
    t.name = name;
    this.graph.initializer[i] = t;
    this.graph.input = this.graph.input.map((v) => {
      if (v.name !== name || !v.type?.tensorType) return v;
      const shape = new onnx.TensorShapeProto({ dim: (t.dims ?? []).map((d) => new onnx.TensorShapeProto.Dimension({ dimValue: d })) });
      const tensorType = cloneMessage(v.type.tensorType as onnx.TypeProto.Tensor, { shape });
      return cloneMessage(v as onnx.ValueInfoProto, { type: cloneMessage(v.type as onnx.TypeProto, { tensorType }) });
    });
  }

  /** Add an initializer under a fresh name derived from `base`; returns the name. */
  addInit(base: string, t: onnx.TensorProto): string {
    const name = this.unique(base);
    t.name = name;
    this.inits.set(name, this.graph.initializer.length);
    this.graph.initializer.push(t);
    return name;
  }

  /**
   * Transform initializer `name` as read by input `input` of `node`: in place when nothing else
   * reads it, else as a new initializer that only this node reads.
   */
  rewriteInit(node: Node, input: number, fn: (t: Tensor) => onnx.TensorProto, what: string): void {
    const name = node.input?.[input] ?? '';
    const t = this.init(name, what, node.name ?? undefined);
    const next = fn(t);
    if (this.uses(name) <= 1) {
      this.setInit(name, next);
    } else {
      const fresh = this.addInit(`${name}.pruned`, next);
      this.edit(node).input![input] = fresh;
    }
  }

  /** Values of a small constant (initializer or Constant node output). */
  constantValues(tensor: string): number[] | undefined {
    const made = this.created.get(tensor);
    if (made) return made.slice();
    const i = this.inits.get(tensor);
    if (i !== undefined) {
      const t = this.graph.initializer[i];
      return elementCount(dimsOf(t)) <= 64 ? tensorToNumbers(t, { clamp: true }) : undefined;
    }
    const p = this.graph.node.find((n) => (n.output ?? []).includes(tensor));
    if (!p || p.opType !== 'Constant') return undefined;
    const v = constantNodeValue(p);
    if (!v || v.data.length > 64) return undefined;
    return tensorToNumbers(v, { clamp: true });
  }

  producer(tensor: string): Node | undefined {
    return this.graph.node.find((n) => (n.output ?? []).includes(tensor));
  }

  /** Set one element of a Reshape's target shape to `value`. */
  setElement(site: ElementSite, value: number, what: string): void {
    if (site.value === value || site.value === -1) return; // -1 is inferred from the data
    if (site.value === 0) {
      throw new GraphError(`the ${what} in the target of Reshape ${site.reshape} is 0 (copy an input dim); ranerc cannot change it`, {
        node: site.reshape,
        hint: 'export the model with explicit head counts in its view()/reshape() calls',
      });
    }
    const reshape = this.edit(site.reshape);
    if (site.kind === 'constant') {
      const current = this.constantValues(reshape.input?.[1] ?? '') ?? site.base;
      const values = current.slice();
      values[site.index] = value;
      const name = this.addInit(`${reshape.name || 'reshape'}.pruned_shape`, int64Tensor('', values));
      this.created.set(name, values);
      reshape.input![1] = name;
      return;
    }
    let concat = this.concatClones.get(reshape);
    if (!concat) {
      const orig = this.find(site.concat!);
      const out = this.unique(`${orig.output?.[0] ?? 'concat'}.pruned`);
      concat = cloneMessage(orig as onnx.NodeProto, {
        name: this.unique(`${orig.name || 'Concat'}.pruned`),
        input: [...(orig.input ?? [])],
        output: [out],
        attribute: [...(orig.attribute ?? [])],
      });
      this.addNode(concat);
      this.concatClones.set(reshape, concat);
      reshape.input![1] = out;
    }
    const k = site.concatInput!;
    const current = this.constantValues(concat.input?.[k] ?? '') ?? site.base;
    const values = current.slice();
    values[site.index] = value;
    const name = this.addInit(`${concat.name || 'concat'}.pruned_part${k}`, int64Tensor('', values));
    this.created.set(name, values);
    concat.input![k] = name;
  }

  finish(): { removedNodes: number; removedInitializers: number } {
    const removed = removeUnused(this.graph);
    this.graph.node = topologicalSort(this.graph);
    // Intermediate shapes changed; onnxruntime infers them again.
    this.graph.valueInfo = [];
    return { removedNodes: removed.nodes, removedInitializers: removed.initializers };
  }
}

// ------------------------------------------------------------------------------ shape sites

function siteOf(reshape: NodeRef, spec: ShapeSpec, el: ShapeElementRef): ElementSite {
  return spec.kind === 'constant'
    ? { reshape, value: el.value, kind: 'constant', base: el.constant.value.slice(), index: el.index }
    : { reshape, value: el.value, kind: 'concat', base: el.constant.value.slice(), index: el.index, concat: el.concat, concatInput: el.concatInput };
}

/** The last element of a Reshape target given as a ShapeSpec. */
function lastOfSpec(reshape: NodeRef, spec: ShapeSpec): ElementSite {
  if (spec.kind === 'constant') {
    const v = spec.constant.value;
    return { reshape, value: v[v.length - 1], kind: 'constant', base: v.slice(), index: v.length - 1 };
  }
  const part = spec.parts[spec.parts.length - 1];
  if (!part?.constant) {
    throw new GraphError(`the last element of the target of Reshape ${reshape} (Concat ${spec.concat} input ${spec.parts.length - 1}) is not a constant`, {
      node: spec.concat,
      hint: 'export the model with constant feature sizes in its reshape() calls',
    });
  }
  const v = part.constant.value;
  return { reshape, value: v[v.length - 1], kind: 'concat', base: v.slice(), index: v.length - 1, concat: spec.concat, concatInput: part.input };
}

const PASS = new Set(['Unsqueeze', 'Squeeze', 'Cast', 'Identity', 'Reshape']);

/** The last element of a Reshape's target, found in the graph (constant, or a Concat whose last input is one). */
function lastOfReshape(ed: Editor, ref: NodeRef): ElementSite {
  const reshape = ed.find(ref);
  const target = reshape.input?.[1] ?? '';
  const whole = ed.constantValues(target);
  if (whole) return { reshape: ref, value: whole[whole.length - 1], kind: 'constant', base: whole, index: whole.length - 1 };
  const concat = ed.producer(target);
  if (concat?.opType === 'Concat') {
    const k = (concat.input ?? []).length - 1;
    let t = concat.input?.[k] ?? '';
    for (let i = 0; i < 4; i++) {
      const v = ed.constantValues(t);
      if (v) {
        const concatRef = concat.name && ed.graph.node.filter((n) => n.name === concat.name).length === 1 ? concat.name : `#${ed.graph.node.indexOf(concat)}:Concat`;
        return { reshape: ref, value: v[v.length - 1], kind: 'concat', base: v, index: v.length - 1, concat: concatRef, concatInput: k };
      }
      const p = ed.producer(t);
      if (!p || !PASS.has(p.opType ?? '')) break;
      t = p.input?.[0] ?? '';
    }
  }
  throw new GraphError(`the target shape of Reshape ${ref} has no constant last element`, {
    node: ref,
    hint: 'export the model with constant feature sizes in its reshape() calls',
  });
}

// ------------------------------------------------------------------------------ linear layers

function refuseQuantized(l: LinearRef, what: string): void {
  if (l.op === 'MatMulInteger' || l.weightDequantize || l.dynamicQuant) {
    throw new GraphError(`the ${what} (${l.node}) is quantized; ranerc prunes float models`, {
      node: l.node,
      hint: 'prune the float model first, then quantize the pruned model',
    });
  }
}

/** The node that reads the weight initializer directly, and on which input. */
function weightReader(ed: Editor, l: LinearRef): { node: Node; input: number } {
  const node = ed.find(l.weightTranspose ?? l.node);
  const input = (node.input ?? []).indexOf(l.weight);
  if (input < 0) throw new GraphError(`node ${l.node} does not read weight "${l.weight}"`, { node: l.node, hint: 'this is a ranerc bug' });
  return { node, input };
}

function checkWeight(t: Tensor, l: LinearRef, what: string): void {
  const dims = dimsOf(t);
  const want = l.layout === 'in_out' ? [l.inFeatures, l.outFeatures] : [l.outFeatures, l.inFeatures];
  if (dims.length !== 2 || dims[0] !== want[0] || dims[1] !== want[1]) {
    throw new GraphError(`the ${what} weight "${l.weight}" has shape [${dims.join(', ')}], expected [${want.join(', ')}]`, {
      node: l.node,
      hint: 'this is a ranerc bug or a graph the attention finder misread; run `ranerc inspect` on the model',
    });
  }
}

/** Keep only output features `keep` of a linear layer (weight, bias, and the 3-D Reshape after a Gemm). */
function keepOutputs(ed: Editor, l: LinearRef, keep: number[], what: string): void {
  refuseQuantized(l, what);
  const w = weightReader(ed, l);
  ed.rewriteInit(
    w.node,
    w.input,
    (t) => {
      checkWeight(t, l, what);
      return sliceTensor(t, l.layout === 'in_out' ? 1 : 0, keep);
    },
    `${what} weight`,
  );
  if (l.bias) {
    const node = ed.find(l.bias.node);
    const input = (node.input ?? []).indexOf(l.bias.initializer);
    ed.rewriteInit(
      node,
      input,
      (t) => {
        const dims = dimsOf(t);
        if (dims.length === 1 && dims[0] === l.outFeatures) return sliceTensor(t, 0, keep);
        if (dims.length === 2 && dims[0] === 1 && dims[1] === l.outFeatures) {
          const s = sliceTensor(new onnx.TensorProto({ ...t, dims: [dims[1]] }), 0, keep);
          s.dims = [1, keep.length];
          return s;
        }
        throw new GraphError(`the ${what} bias "${l.bias!.initializer}" has shape [${dims.join(', ')}], expected [${l.outFeatures}]`, {
          node: l.bias!.node,
          hint: 'ranerc slices per-feature biases only',
        });
      },
      `${what} bias`,
    );
  }
  if (l.flatten?.after && l.flatten.afterShape) {
    ed.setElement(lastOfSpec(l.flatten.after, l.flatten.afterShape), keep.length, `${what} output size`);
  }
}

/** Keep only input features `keep` of a linear layer (weight rows, and the 2-D Reshape before a Gemm). */
function keepInputs(ed: Editor, l: LinearRef, keep: number[], what: string): void {
  refuseQuantized(l, what);
  const w = weightReader(ed, l);
  ed.rewriteInit(
    w.node,
    w.input,
    (t) => {
      checkWeight(t, l, what);
      return sliceTensor(t, l.layout === 'in_out' ? 0 : 1, keep);
    },
    `${what} weight`,
  );
  if (l.flatten?.before) ed.setElement(lastOfReshape(ed, l.flatten.before), keep.length, `${what} input size`);
}

/** Zero input features `zero` of a linear layer's weight (the gated-model equivalent of removing them). */
function zeroInputs(ed: Editor, l: LinearRef, zero: number[], what: string): void {
  refuseQuantized(l, what);
  const w = weightReader(ed, l);
  ed.rewriteInit(
    w.node,
    w.input,
    (t) => {
      checkWeight(t, l, what);
      return zeroTensorSlices(t, l.layout === 'in_out' ? 0 : 1, zero);
    },
    `${what} weight`,
  );
}

// ------------------------------------------------------------------------------ heads

function headColumns(heads: readonly number[], headSize: number, offset = 0): number[] {
  const cols: number[] = [];
  for (const h of heads) for (let j = 0; j < headSize; j++) cols.push(offset + h * headSize + j);
  return cols;
}

function checkIndices(list: readonly number[], size: number, what: string, layer: number): number[] {
  const sorted = [...new Set(list)].sort((a, b) => a - b);
  if (sorted.length !== list.length || sorted.some((i) => !Number.isInteger(i) || i < 0 || i >= size)) {
    throw new RangeError(`layer ${layer}: ${what} to remove must be distinct integers in [0, ${size}), got [${list.join(', ')}]`);
  }
  return sorted;
}

function rewriteFusedSplitter(ed: Editor, q: FusedQkv, kept: number): void {
  const parts = (['q', 'k', 'v'] as const).map((p) => ({ p, r: q.ranges[p] })).sort((a, c) => a.r[0] - c.r[0]);
  const newRange = new Map(parts.map(({ p }, i) => [p, [i * kept, (i + 1) * kept] as [number, number]]));
  const s = q.splitter;
  if (s.op === 'Split') {
    if (s.sizesFrom === 'equal') return;
    const sizes = s.sizes.map(() => kept);
    const node = ed.edit(s.node);
    if (s.sizesFrom === 'attribute') {
      node.attribute = (node.attribute ?? []).map((a) => (a.name === 'split' ? cloneMessage(a as onnx.AttributeProto, { ints: sizes }) : a));
    } else {
      node.input![1] = ed.addInit(`${node.name || 'Split'}.pruned_split`, int64Tensor('', sizes));
    }
    return;
  }
  for (const p of ['q', 'k', 'v'] as const) {
    const sl = s.slices[p];
    const [start, end] = newRange.get(p)!;
    const node = ed.edit(sl.node);
    if (sl.starts || sl.ends) {
      for (const [input, value, c] of [
        [1, start, sl.starts],
        [2, end, sl.ends],
      ] as const) {
        if (c && c.value.length !== 1) {
          throw new GraphError(`Slice ${sl.node} of the fused QKV slices several axes; ranerc cannot rewrite it`, {
            node: sl.node,
            hint: 'export the model with separate query/key/value projections',
          });
        }
        node.input![input] = ed.addInit(`${node.name || 'Slice'}.pruned_${input === 1 ? 'starts' : 'ends'}`, int64Tensor('', [value]));
      }
    } else {
      node.attribute = (node.attribute ?? []).map((a) =>
        a.name === 'starts' ? cloneMessage(a as onnx.AttributeProto, { ints: [start] }) : a.name === 'ends' ? cloneMessage(a as onnx.AttributeProto, { ints: [end] }) : a,
      );
    }
  }
}

function pruneHeads(ed: Editor, b: AttentionBlock, remove: number[]): void {
  const d = b.headSize;
  const keepHeads = Array.from({ length: b.numHeads }, (_, h) => h).filter((h) => !remove.includes(h));
  const cols = headColumns(keepHeads, d);
  const n = keepHeads.length;
  if (b.qkv.kind === 'separate') {
    keepOutputs(ed, b.qkv.q, cols, `layer ${b.layer} query projection`);
    keepOutputs(ed, b.qkv.k, cols, `layer ${b.layer} key projection`);
    keepOutputs(ed, b.qkv.v, cols, `layer ${b.layer} value projection`);
  } else {
    const f = b.qkv;
    const spans = (['q', 'k', 'v'] as const).map((p) => f.ranges[p]).sort((x, y) => x[0] - y[0]);
    const tiles = spans.every((r, i) => r[1] - r[0] === b.allHeadSize && r[0] === (i === 0 ? 0 : spans[i - 1][1])) && spans[2][1] === f.linear.outFeatures;
    if (!tiles) {
      throw new GraphError(`the fused QKV projection ${f.linear.node} is not three consecutive blocks of ${b.allHeadSize} columns`, {
        node: f.linear.node,
        hint: 'export the model with separate query/key/value projections',
      });
    }
    const fused = spans.flatMap((r) => headColumns(keepHeads, d, r[0]));
    keepOutputs(ed, f.linear, fused, `layer ${b.layer} fused QKV projection`);
    rewriteFusedSplitter(ed, f, n * d);
  }
  for (const br of [b.q, b.k, b.v]) ed.setElement(siteOf(br.split.node, br.split.shape, br.split.heads), n, 'head count');
  const m = b.merge.reshape;
  ed.setElement(siteOf(m.node, m.shape, m.allHeadSize), n * d, 'all-head size');
  keepInputs(ed, b.output, cols, `layer ${b.layer} attention output projection`);
}

/**
 * Replace the output of `lin` (a projection whose every input feature is removed) by its bias, a
 * constant [hidden] initializer that the following residual Add broadcasts: exactly what gating all
 * its inputs to zero computes, without the projection (or anything only it read).
 */
function replaceByBias(ed: Editor, lin: LinearRef, layer: number, what: string, tag: string): void {
  refuseQuantized(lin, `layer ${layer} ${what}`);
  const out = lin.output;
  if ((ed.graph.output ?? []).some((o) => o.name === out)) {
    throw new GraphError(`the ${what} output "${out}" of layer ${layer} is a graph output`, {
      node: lin.node,
      hint: 'keep at least one head / neuron in this layer (leave out --allow-empty-layers)',
    });
  }
  const hidden = lin.outFeatures;
  const w = ed.init(lin.weight, `${what} weight`, lin.node);
  let bias: onnx.TensorProto;
  if (lin.bias) {
    const t = ed.init(lin.bias.initializer, `${what} bias`, lin.bias.node);
    if (elementCount(dimsOf(t)) !== hidden) {
      throw new GraphError(`the ${what} bias of layer ${layer} has ${elementCount(dimsOf(t))} values, expected ${hidden}`, {
        node: lin.bias.node,
        hint: 'ranerc needs a per-feature output bias',
      });
    }
    bias = new onnx.TensorProto({ dataType: t.dataType, dims: [hidden], rawData: new Uint8Array(tensorRawBytes(t)) });
  } else {
    const es = rawElementSize(w, `${what} weight`);
    bias = new onnx.TensorProto({ dataType: w.dataType, dims: [hidden], rawData: new Uint8Array(hidden * es) });
  }
  const name = ed.addInit(`layer${layer}.${tag}.output`, bias);
  for (const node of [...ed.graph.node]) {
    const ins = node.input ?? [];
    if (!ins.includes(out)) continue;
    const e = ed.edit(node);
    e.input = (e.input ?? []).map((i) => (i === out ? name : i));
  }
}

/** Replace a layer's attention output by the output projection's bias (all heads removed). */
function removeAttention(ed: Editor, b: AttentionBlock): void {
  replaceByBias(ed, b.output, b.layer, 'attention output projection', 'attention_removed');
}

/** Replace a layer's FFN output by the output dense's bias (all neurons removed). */
function removeFfn(ed: Editor, b: AttentionBlock, ffn: NonNullable<AttentionBlock['ffn']>): void {
  replaceByBias(ed, ffn.output, b.layer, 'FFN output dense', 'ffn_removed');
}

// ------------------------------------------------------------------------------ entry points

function validatePlan(blocks: readonly AttentionBlock[], plan: PrunePlan, opts: SurgeryOptions): { heads: number[][]; neurons: number[][] } {
  if (plan.heads.length !== blocks.length) {
    throw new RangeError(`the plan lists ${plan.heads.length} layers, the model has ${blocks.length}`);
  }
  const heads = blocks.map((b, l) => checkIndices(plan.heads[l] ?? [], b.numHeads, 'heads', l));
  heads.forEach((h, l) => {
    if (h.length === blocks[l].numHeads && !opts.allowEmptyLayers) {
      throw new GraphError(`layer ${l}: removing all ${blocks[l].numHeads} heads would empty the layer`, {
        node: blocks[l].softmax.node,
        hint: 'keep at least one head per layer, or allow empty layers (--allow-empty-layers)',
      });
    }
  });
  const neurons = blocks.map((b, l) => {
    const list = plan.neurons?.[l] ?? [];
    if (list.length === 0) return [];
    if (!b.ffn) {
      throw new GraphError(`layer ${l} has no matched FFN, so no neurons can be removed`, {
        node: b.output.node,
        hint: 'run `ranerc inspect` to see why the FFN was not matched',
      });
    }
    const size = b.ffn.intermediate.outFeatures;
    const sorted = checkIndices(list, size, 'FFN neurons', l);
    if (sorted.length >= size && !opts.allowEmptyLayers) {
      throw new GraphError(`layer ${l}: removing all ${size} FFN neurons would empty the FFN`, {
        node: b.ffn.intermediate.node,
        hint: 'keep at least one neuron per layer (lower --ffn-ratio), or allow empty layers (--allow-empty-layers)',
      });
    }
    return sorted;
  });
  return { heads, neurons };
}

/**
 * Remove the heads and neurons in `plan` from `model` (see the module comment). `blocks` must be
 * `findAttentionBlocks(model).blocks` (every layer, in order). The input model is not modified.
 */
export function pruneModel(
  model: onnx.IModelProto,
  blocks: readonly AttentionBlock[],
  plan: PrunePlan,
  opts: SurgeryOptions = {},
): SurgeryResult {
  const { heads, neurons } = validatePlan(blocks, plan, opts);
  const ed = new Editor(model);
  const emptied: number[] = [];
  blocks.forEach((b, l) => {
    if (heads[l].length === 0) return;
    if (heads[l].length === b.numHeads) {
      removeAttention(ed, b);
      emptied.push(l);
    } else {
      pruneHeads(ed, b, heads[l]);
    }
  });
  const ffnRemoved: number[] = [];
  blocks.forEach((b, l) => {
    if (neurons[l].length === 0 || !b.ffn) return;
    const size = b.ffn.intermediate.outFeatures;
    if (neurons[l].length === size) {
      removeFfn(ed, b, b.ffn);
      ffnRemoved.push(l);
      return;
    }
    const keep = Array.from({ length: size }, (_, i) => i).filter((i) => !neurons[l].includes(i));
    keepOutputs(ed, b.ffn.intermediate, keep, `layer ${l} FFN intermediate dense`);
    keepInputs(ed, b.ffn.output, keep, `layer ${l} FFN output dense`);
  });
  const removed = ed.finish();
  return {
    model: ed.model,
    headsAfter: blocks.map((b, l) => b.numHeads - heads[l].length),
    ffnAfter: blocks.map((b, l) => (b.ffn ? b.ffn.intermediate.outFeatures - neurons[l].length : undefined)),
    emptiedLayers: emptied,
    ffnRemovedLayers: ffnRemoved,
    removedLayers: emptied.filter((l) => ffnRemoved.includes(l)),
    ...removed,
  };
}

/**
 * The gated model ξ = 0 as plain ONNX: a copy of `model` whose output-projection rows of the heads
 * (and FFN output rows of the neurons) in `plan` are zero, so those heads / neurons contribute
 * nothing while the graph keeps its shape. `pruneModel` must give the same logits.
 */
export function gatedModel(model: onnx.IModelProto, blocks: readonly AttentionBlock[], plan: PrunePlan): onnx.ModelProto {
  const { heads, neurons } = validatePlan(blocks, plan, { allowEmptyLayers: true });
  const ed = new Editor(model);
  blocks.forEach((b, l) => {
    if (heads[l].length > 0) zeroInputs(ed, b.output, headColumns(heads[l], b.headSize), `layer ${l} attention output projection`);
    if (neurons[l].length > 0 && b.ffn) zeroInputs(ed, b.ffn.output, neurons[l], `layer ${l} FFN output dense`);
  });
  return ed.model;
}

/** Float parameters of a set of initializers (element counts). */
function countOf(model: onnx.IModelProto, names: Iterable<string>): number {
  const byName = new Map((model.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
  let n = 0;
  for (const name of new Set(names)) {
    const t = byName.get(name);
    if (t) n += elementCount(dimsOf(t));
  }
  return n;
}

function linearNames(l: LinearRef): string[] {
  return [l.weight, ...(l.bias ? [l.bias.initializer] : [])];
}

/**
 * Parameters of the attention blocks (Q/K/V and output projections, weights and biases) and of
 * the FFNs (intermediate and output dense), counted from the initializers the blocks name.
 */
export function blockParameters(model: onnx.IModelProto, blocks: readonly AttentionBlock[]): { attention: number; ffn: number } {
  const att: string[] = [];
  const ffn: string[] = [];
  for (const b of blocks) {
    if (b.qkv.kind === 'separate') att.push(...linearNames(b.qkv.q), ...linearNames(b.qkv.k), ...linearNames(b.qkv.v));
    else att.push(...linearNames(b.qkv.linear));
    att.push(...linearNames(b.output));
    if (b.ffn) ffn.push(...linearNames(b.ffn.intermediate), ...linearNames(b.ffn.output));
  }
  return { attention: countOf(model, att), ffn: countOf(model, ffn) };
}
