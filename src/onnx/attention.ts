/**
 * Find the self-attention blocks (and the feed-forward block after each) of a BERT-style ONNX graph,
 * with everything head/neuron surgery needs: projection weights and biases, the head-split and
 * head-merge Reshapes with the constants that encode the head count / head size / all-head size,
 * the transposes, the 1/√d scale, the mask, Softmax, the context MatMul, the output projection, the
 * LayerNorms and the FFN (intermediate dense → activation → output dense).
 *
 * Matching is anchored on Softmax nodes whose input comes (through scale/mask/transposes) from a
 * MatMul of two activations, so exporters' different spellings are followed rather than pattern-matched
 * node by node. Whatever cannot be matched is reported in `problems` (with the node where matching
 * stopped in `failures`), never guessed.
 *
 * Pure analysis: nothing here modifies the model.
 */
import type { onnx } from 'onnx-proto';
import { GraphError } from '../errors.js';
import type Long from 'long';
import { dimsOf, elementCount, EXTERNAL, tensorToNumbers, toNumber } from './tensor.js';

// ----------------------------------------------------------------------------------------- types

/**
 * How a node is referred to: its `name`, or `#<index>:<opType>` (index in `graph.node`) when the
 * exporter left it unnamed or gave the name to several nodes. {@link findNode} resolves either form.
 */
export type NodeRef = string;

/** Where a small constant (a shape, a scale) lives: an initializer, or a Constant node's output. */
export interface ConstantRef {
  /** Tensor name (initializer name, or the Constant node's output). */
  tensor: string;
  source: 'initializer' | 'Constant';
  /** The Constant node, when source is 'Constant'. */
  node?: NodeRef;
  /** Its values (flattened). */
  value: number[];
  /** How many node inputs read this tensor (> 1: shared, e.g. exporters deduplicate equal constants across layers). */
  users: number;
}

/** Weight layout: `in_out` = stored [in, out] (MatMul); `out_in` = stored [out, in] (PyTorch / Gemm transB=1). */
export type WeightLayout = 'in_out' | 'out_in';

/**
 * A dense layer: MatMul (+ Add bias) or Gemm, possibly with a Reshape to 2-D before and back after;
 * or ONNX Runtime's dynamic quantization of one (DynamicQuantizeLinear → MatMulInteger → Cast → Mul).
 */
export interface LinearRef {
  node: NodeRef;
  op: 'MatMul' | 'Gemm' | 'MatMulInteger';
  /** Initializer holding the weight (for QDQ models: the quantized data initializer). */
  weight: string;
  /** Layout of the stored initializer, taking transB and any weight Transpose into account. */
  layout: WeightLayout;
  /** Transpose (perm [1,0]) between the weight initializer and the MatMul/Gemm (unfolded exports). */
  weightTranspose?: NodeRef;
  /** DequantizeLinear between the weight initializer and the MatMul/Gemm (QDQ models). */
  weightDequantize?: NodeRef;
  /** MatMulInteger only: the DynamicQuantizeLinear of the input and the Cast + Mul (by the scales) after. */
  dynamicQuant?: { quantize?: NodeRef; dequantize: NodeRef[] };
  inFeatures: number;
  outFeatures: number;
  /** The bias: an Add node with a 1-D initializer, or the Gemm's C input (then `node` is the Gemm). */
  bias?: { node: NodeRef; initializer: string };
  /** Reshapes around a Gemm/MatMul applied to a 2-D view of a 3-D input. */
  flatten?: { before?: NodeRef; after?: NodeRef; afterShape?: ShapeSpec };
  /** The tensor entering the layer (before any flatten Reshape). */
  input: string;
  /** The tensor leaving the layer (after bias and any un-flatten Reshape). */
  output: string;
}

/** A Reshape target shape: a constant, or a Concat of pieces (PyTorch's Shape→Gather→Unsqueeze→Concat). */
export type ShapeSpec =
  | { kind: 'constant'; constant: ConstantRef }
  | { kind: 'concat'; concat: NodeRef; parts: ShapePart[] };

/** One input of a shape Concat. */
export interface ShapePart {
  /** Input index on the Concat. */
  input: number;
  tensor: string;
  /** Number of elements it contributes, when known. */
  length?: number;
  /** The constant behind it (through `via`), when it is one. */
  constant?: ConstantRef;
  /** Shape-preserving nodes (Unsqueeze, Cast, ...) between the constant and the Concat input. */
  via: NodeRef[];
}

/** One element of a Reshape target shape and where to change it. */
export interface ShapeElementRef {
  /** The value written in the graph (0 = copy input dim, -1 = inferred). */
  value: number;
  /** The constant holding it, and the element index inside that constant. */
  constant: ConstantRef;
  index: number;
  /** For a Concat target: the Concat and its input index carrying this element. */
  concat?: NodeRef;
  concatInput?: number;
  via?: NodeRef[];
}

/** The Reshape [.., all] → [.., heads, headSize] of Q, K or V. */
export interface HeadSplit {
  node: NodeRef;
  shape: ShapeSpec;
  heads: ShapeElementRef;
  headSize: ShapeElementRef;
}

/** The Reshape [.., heads, headSize] → [.., all] after the context MatMul. */
export interface HeadMerge {
  node: NodeRef;
  shape: ShapeSpec;
  allHeadSize: ShapeElementRef;
}

export interface TransposeRef {
  node: NodeRef;
  perm: number[];
}

/** The path from a projection to the QKᵀ / context MatMul. */
export interface HeadBranch {
  split: HeadSplit;
  /** Transposes between the split Reshape and the MatMul, in graph order. */
  transposes: TransposeRef[];
  /** Their composition ([0,2,1,3] for Q and V, [0,2,3,1] for Kᵀ). */
  perm: number[];
  /** For fused QKV: the Split/Slice node and output index producing this part. */
  part?: { node: NodeRef; output: number };
}

/** One multiplication/division by a constant on the attention path. */
export interface ScaleOp {
  node: NodeRef;
  op: 'Div' | 'Mul';
  on: 'q' | 'k' | 'scores';
  /** 'projection' = before the head split, 'heads' = after it (Q/K only). */
  stage?: 'projection' | 'heads';
  /** The scale operand (the input that is not the attention data). */
  tensor: string;
  /** Set when the operand is a plain constant (initializer or Constant node). */
  constant?: ConstantRef;
  /**
   * Set when the operand is computed from constants and tensor shapes (torch's SDPA export:
   * Shape → Slice → Cast → Sqrt → Div → Sqrt): the nodes computing it.
   */
  computedBy?: NodeRef[];
  /** The operand's value (evaluated when computed). */
  value: number;
  /** What the op multiplies by (1/value for Div). */
  factor: number;
}

export type ScalePlacement = 'scores' | 'q' | 'k' | 'qk' | 'none' | 'mixed';

export interface ScaleInfo {
  placement: ScalePlacement;
  ops: ScaleOp[];
  /** Product of the factors: the total multiplier the scores get. */
  factor: number;
  /** factor equals 1/√headSize (relative tolerance 1e-4). */
  standard: boolean;
}

export interface MaskRef {
  node: NodeRef;
  op: 'Add' | 'Sub' | 'Where';
  /** The non-score input (the extended attention mask, or Where's condition). */
  input: string;
}

export interface LayerNormRef {
  kind: 'LayerNormalization' | 'decomposed';
  /** The LayerNormalization node, or the decomposed chain (ReduceMean, Sub, Pow, ..., Mul, Add). */
  nodes: NodeRef[];
  input: string;
  output: string;
  /** γ and β initializers. */
  scale: string;
  bias?: string;
  epsilon: number;
}

export type ActivationKind = 'gelu-erf' | 'gelu-tanh' | 'gelu' | 'gelu-fast' | 'quick-gelu' | 'silu' | 'relu' | 'unknown';

export interface FfnBlock {
  intermediate: LinearRef;
  activation: { kind: ActivationKind; nodes: NodeRef[]; output: string };
  output: LinearRef;
  residual?: { node: NodeRef; skip: string };
  layerNorm?: LayerNormRef;
}

export interface SeparateQkv {
  kind: 'separate';
  q: LinearRef;
  k: LinearRef;
  v: LinearRef;
}

export interface SliceRef {
  node: NodeRef;
  axis: number;
  start: number;
  end: number;
  /** Constants holding starts/ends (absent when given as attributes, opset < 10). */
  starts?: ConstantRef;
  ends?: ConstantRef;
}

/** One projection to 3×all split into Q, K, V by a Split or three Slices. */
export interface FusedQkv {
  kind: 'fused';
  linear: LinearRef;
  splitter:
    | {
        op: 'Split';
        node: NodeRef;
        axis: number;
        sizes: number[];
        sizesFrom: 'input' | 'attribute' | 'equal';
        sizesConstant?: ConstantRef;
      }
    | { op: 'Slice'; slices: { q: SliceRef; k: SliceRef; v: SliceRef } };
  /** Column range [start, end) of Q, K and V in the fused output. */
  ranges: { q: [number, number]; k: [number, number]; v: [number, number] };
}

export interface AttentionBlock {
  /** Index in graph order (of the attention Softmax nodes). */
  layer: number;
  numHeads: number;
  headSize: number;
  /** numHeads × headSize. */
  allHeadSize: number;
  /** Model width (input features of the Q projection). */
  hidden: number;
  /** Hidden states entering Q/K/V. */
  input: string;
  qkv: SeparateQkv | FusedQkv;
  q: HeadBranch;
  k: HeadBranch;
  v: HeadBranch;
  /** The QKᵀ MatMul. `swapped`: it computes K·Qᵀ and `transpose` turns the scores back. */
  scores: { matmul: NodeRef; swapped: boolean; transposes: NodeRef[] };
  scale: ScaleInfo;
  masks: MaskRef[];
  softmax: { node: NodeRef; axis: number };
  context: { matmul: NodeRef };
  merge: { transposes: TransposeRef[]; perm: number[]; reshape: HeadMerge };
  output: LinearRef;
  residual?: { node: NodeRef; skip: string };
  layerNorm?: LayerNormRef;
  ffn?: FfnBlock;
}

/** Where matching stopped, for one attention candidate (or the whole graph). */
export interface AttentionFailure {
  /** Layer index (graph order) when the failure is about one block. */
  layer?: number;
  /** The node where matching failed. */
  node: NodeRef;
  /** What could not be matched: a whole attention block, only its FFN (the block is still returned), or the graph. */
  part: 'attention' | 'ffn' | 'graph';
  message: string;
}

export interface AttentionReport {
  blocks: AttentionBlock[];
  /** One human line per failure. */
  problems: string[];
  /** The same, structured. */
  failures: AttentionFailure[];
}

// ------------------------------------------------------------------------------ graph helpers

type Node = onnx.INodeProto;
type Tensor = onnx.ITensorProto;
type LongLike = number | Long;

/** A protobuf int64 as a number; "to the end" sentinels such as INT64_MAX saturate. */
function num(v: LongLike | null | undefined): number {
  return v === null || v === undefined ? 0 : toNumber(v, { clamp: true });
}

/**
 * The values of a small numeric tensor, or undefined when it is external, not numeric, or has more
 * than `max` elements.
 */
function smallValues(t: Tensor, max: number): number[] | undefined {
  if (t.dataLocation === EXTERNAL) return undefined;
  let n: number;
  try {
    n = elementCount(dimsOf(t));
  } catch {
    return undefined;
  }
  if (n > max) return undefined;
  try {
    return tensorToNumbers(t, { clamp: true });
  } catch (e) {
    if (e instanceof GraphError) return undefined;
    throw e;
  }
}

function attr(node: Node, name: string): onnx.IAttributeProto | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}
function attrInt(node: Node, name: string, def: number): number {
  const a = attr(node, name);
  return a ? num(a.i) : def;
}
function attrInts(node: Node, name: string): number[] | undefined {
  const a = attr(node, name);
  return a ? (a.ints ?? []).map(num) : undefined;
}
function attrFloat(node: Node, name: string, def: number): number {
  const a = attr(node, name);
  return a ? (a.f ?? def) : def;
}

/** A small read-only index over a graph (producers, consumers, constants). */
class GraphView {
  readonly nodes: Node[];
  readonly initializers = new Map<string, Tensor>();
  private readonly producers = new Map<string, { node: Node; output: number }>();
  private readonly consumerMap = new Map<string, Array<{ node: Node; input: number }>>();
  private readonly index = new Map<Node, number>();
  private readonly nameCount = new Map<string, number>();

  constructor(graph: onnx.IGraphProto) {
    this.nodes = graph.node ?? [];
    for (const t of graph.initializer ?? []) if (t.name) this.initializers.set(t.name, t);
    this.nodes.forEach((n, i) => {
      this.index.set(n, i);
      if (n.name) this.nameCount.set(n.name, (this.nameCount.get(n.name) ?? 0) + 1);
      (n.output ?? []).forEach((o, k) => {
        if (o) this.producers.set(o, { node: n, output: k });
      });
      (n.input ?? []).forEach((t, k) => {
        if (!t) return;
        let list = this.consumerMap.get(t);
        if (!list) this.consumerMap.set(t, (list = []));
        list.push({ node: n, input: k });
      });
    });
  }

  /** The node's name when it has a unique one, else `#<index>:<opType>`. */
  ref(n: Node): NodeRef {
    return n.name && this.nameCount.get(n.name) === 1 ? n.name : `#${this.index.get(n) ?? -1}:${n.opType ?? '?'}`;
  }

  position(n: Node): number {
    return this.index.get(n) ?? -1;
  }

  producer(t: string | null | undefined): Node | undefined {
    return t ? this.producers.get(t)?.node : undefined;
  }

  producerOutput(t: string): number {
    return this.producers.get(t)?.output ?? -1;
  }

  consumers(t: string | null | undefined): Array<{ node: Node; input: number }> {
    return t ? (this.consumerMap.get(t) ?? []) : [];
  }

  /** Consumers other than Shape nodes (which only read the shape). */
  dataConsumers(t: string): Array<{ node: Node; input: number }> {
    return this.consumers(t).filter((c) => c.node.opType !== 'Shape');
  }

  /**
   * An initializer by name. One that is also listed as a graph input (IR < 4 exports with
   * keep_initializers_as_inputs) is only a default, but it is still the exported weight.
   */
  initializer(t: string | null | undefined): Tensor | undefined {
    return t ? this.initializers.get(t) : undefined;
  }

  /** The value of a small constant: an initializer or a Constant node output. */
  constant(t: string | null | undefined, max = 4096): ConstantRef | undefined {
    if (!t) return undefined;
    const init = this.initializer(t);
    if (init) {
      const value = smallValues(init, max);
      return value ? { tensor: t, source: 'initializer', value, users: this.consumers(t).length } : undefined;
    }
    const p = this.producer(t);
    if (!p || p.opType !== 'Constant' || ((p.domain ?? '') !== '' && p.domain !== 'ai.onnx')) return undefined;
    for (const a of p.attribute ?? []) {
      let value: number[] | undefined;
      if (a.name === 'value' && a.t) value = smallValues(a.t, max);
      else if (a.name === 'value_float') value = [a.f ?? 0];
      else if (a.name === 'value_floats') value = (a.floats ?? []).slice();
      else if (a.name === 'value_int') value = [num(a.i)];
      else if (a.name === 'value_ints') value = (a.ints ?? []).map(num);
      if (value) return { tensor: t, source: 'Constant', node: this.ref(p), value, users: this.consumers(t).length };
    }
    return undefined;
  }

  isConstant(t: string | null | undefined): boolean {
    if (!t) return false;
    if (this.initializer(t)) return true;
    return this.producer(t)?.opType === 'Constant';
  }
}

/** Resolve a {@link NodeRef} back to the node (by name, or `#index:op`). */
export function findNode(graph: onnx.IGraphProto, ref: NodeRef): Node | undefined {
  const nodes = graph.node ?? [];
  const m = /^#(\d+):(.*)$/.exec(ref);
  if (m) {
    const n = nodes[Number(m[1])];
    return n && n.opType === m[2] ? n : undefined;
  }
  return nodes.find((n) => n.name === ref);
}

/** A Mul/Div on the attention path whose operand is yet to be evaluated. */
interface PendingScale {
  node: Node;
  op: 'Mul' | 'Div';
  on: 'q' | 'k' | 'scores';
  stage?: 'projection' | 'heads';
  data: string;
  operand: string;
}

/** Ops a scale operand may be computed with (from constants and Shape). */
const SHAPE_EXPR_OPS = new Set([
  'Shape',
  'Cast',
  'Identity',
  'Unsqueeze',
  'Squeeze',
  'Reshape',
  'Flatten',
  'Sqrt',
  'Reciprocal',
  'Neg',
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Pow',
  'Slice',
  'Gather',
  'Concat',
  'Constant',
]);

class MatchError extends Error {
  constructor(
    readonly node: NodeRef,
    message: string,
  ) {
    super(message);
  }
}

/** Ops that leave an activation's values in place for matching purposes. */
const PASS_THROUGH = new Set(['Identity', 'Cast', 'Dropout']);
/** QDQ pairs on activations (statically quantized models) are passed through as well. */
const QDQ = new Set(['QuantizeLinear', 'DequantizeLinear']);
const FUSED_ATTENTION_OPS = new Set([
  'Attention',
  'MultiHeadAttention',
  'PackedAttention',
  'PackedMultiHeadAttention',
  'GroupQueryAttention',
]);

function samePerm(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Composition of transposes applied in order (result[i] = source axis of output axis i). */
function composePerms(perms: number[][], rank = 4): number[] {
  let cur = Array.from({ length: rank }, (_, i) => i);
  for (const p of perms) cur = p.map((i) => cur[i]);
  return cur;
}

function isLastTwoSwap(perm: number[]): boolean {
  const r = perm.length;
  if (r < 2) return false;
  return perm.every((v, i) => (i < r - 2 ? v === i : i === r - 2 ? v === r - 1 : v === r - 2));
}

// ---------------------------------------------------------------------------------- matcher

class Matcher {
  constructor(
    readonly g: GraphView,
    readonly opset: number,
  ) {}

  fail(node: Node | NodeRef, message: string): never {
    throw new MatchError(typeof node === 'string' ? node : this.g.ref(node), message);
  }

  /** A scalar-like constant (all elements equal, at most 1 element or a broadcast of one value). */
  scalar(t: string): ConstantRef | undefined {
    const c = this.g.constant(t, 64);
    if (!c || c.value.length === 0) return undefined;
    return c.value.every((v) => v === c.value[0]) ? c : undefined;
  }

  /** Identity/Cast/Dropout, or a Quantize/DequantizeLinear of an activation (not of a weight). */
  isPass(n: Node | undefined): boolean {
    if (!n) return false;
    const op = n.opType ?? '';
    if (PASS_THROUGH.has(op)) return true;
    return QDQ.has(op) && !this.g.isConstant(n.input?.[0]);
  }

  /** Is `t` computed from constants and tensor shapes only (no activation values)? */
  isShapeOnly(t: string, depth = 16): boolean {
    if (!t) return false;
    if (this.g.isConstant(t)) return true;
    if (depth <= 0) return false;
    const p = this.g.producer(t);
    if (!p || !SHAPE_EXPR_OPS.has(p.opType ?? '')) return false;
    if (p.opType === 'Shape') return true;
    return (p.input ?? []).every((x) => !x || this.isShapeOnly(x, depth - 1));
  }

  /** For a Mul/Div on the attention path: which input is the data and which the scale operand. */
  scaleOperand(p: Node): { data: string; operand: string } | undefined {
    const ins = p.input ?? [];
    if (ins.length !== 2) return undefined;
    if (p.opType === 'Div') {
      return this.isShapeOnly(ins[1]) && !this.isShapeOnly(ins[0]) ? { data: ins[0], operand: ins[1] } : undefined;
    }
    if (this.isShapeOnly(ins[1]) && !this.isShapeOnly(ins[0])) return { data: ins[0], operand: ins[1] };
    if (this.isShapeOnly(ins[0]) && !this.isShapeOnly(ins[1])) return { data: ins[1], operand: ins[0] };
    return undefined;
  }

  /**
   * Evaluate a small constant expression (constants, Shape of tensors whose shape is in `shapes`,
   * Slice/Gather/Concat/Cast/arithmetic). Unknown elements are `undefined`; `nodes` collects the nodes.
   */
  evalValues(t: string, shapes: Map<string, Array<number | undefined>>, nodes: Node[], depth = 0): Array<number | undefined> | undefined {
    const c = this.g.constant(t, 64);
    if (c) return c.value;
    const p = this.g.producer(t);
    if (!p || depth > 24) return undefined;
    nodes.push(p);
    const ins = p.input ?? [];
    const ev = (x: string | undefined): Array<number | undefined> | undefined =>
      x ? this.evalValues(x, shapes, nodes, depth + 1) : undefined;
    const op = p.opType ?? '';
    switch (op) {
      case 'Shape': {
        const s = shapes.get(ins[0]);
        if (!s) return undefined;
        const r = s.length;
        const norm = (x: number): number => Math.max(0, Math.min(r, x < 0 ? x + r : x));
        return s.slice(norm(attrInt(p, 'start', 0)), norm(attrInt(p, 'end', r)));
      }
      case 'Cast':
      case 'Identity':
      case 'Unsqueeze':
      case 'Squeeze':
      case 'Reshape':
      case 'Flatten':
        return ev(ins[0]);
      case 'Sqrt':
      case 'Reciprocal':
      case 'Neg': {
        const a = ev(ins[0]);
        const f = op === 'Sqrt' ? Math.sqrt : op === 'Reciprocal' ? (x: number) => 1 / x : (x: number) => -x;
        return a?.map((x) => (x === undefined ? undefined : f(x)));
      }
      case 'Add':
      case 'Sub':
      case 'Mul':
      case 'Div':
      case 'Pow': {
        const a = ev(ins[0]);
        const b = ev(ins[1]);
        if (!a || !b || (a.length !== b.length && a.length !== 1 && b.length !== 1)) return undefined;
        const n = Math.max(a.length, b.length);
        const f = (x: number, y: number): number =>
          op === 'Add' ? x + y : op === 'Sub' ? x - y : op === 'Mul' ? x * y : op === 'Div' ? x / y : x ** y;
        return Array.from({ length: n }, (_, i) => {
          const x = a[a.length === 1 ? 0 : i];
          const y = b[b.length === 1 ? 0 : i];
          return x === undefined || y === undefined ? undefined : f(x, y);
        });
      }
      case 'Slice': {
        const data = ev(ins[0]);
        const starts = ins.length >= 3 ? ev(ins[1]) : attrInts(p, 'starts');
        const ends = ins.length >= 3 ? ev(ins[2]) : attrInts(p, 'ends');
        const steps = ins[4] ? ev(ins[4]) : [1];
        if (!data || !starts || !ends || starts.length !== 1 || ends.length !== 1 || steps?.[0] !== 1) return undefined;
        const [s0, e0] = [starts[0], ends[0]];
        if (s0 === undefined || e0 === undefined) return undefined;
        const r = data.length;
        const norm = (x: number): number => Math.max(0, Math.min(r, x < 0 ? x + r : x));
        return data.slice(norm(s0), norm(e0));
      }
      case 'Gather': {
        const data = ev(ins[0]);
        const idx = ev(ins[1]);
        if (!data || !idx || attrInt(p, 'axis', 0) !== 0) return undefined;
        return idx.map((i) => (i === undefined ? undefined : data[i < 0 ? i + data.length : i]));
      }
      case 'Concat': {
        const parts = ins.map((x) => ev(x));
        return parts.every((x) => x) ? parts.flatMap((x) => x ?? []) : undefined;
      }
      default:
        return undefined;
    }
  }

  resolveScale(ps: PendingScale, shapes: Map<string, Array<number | undefined>>): ScaleOp {
    const constant = this.scalar(ps.operand);
    let value: number | undefined;
    const nodes: Node[] = [];
    if (constant) value = constant.value[0];
    else {
      const vals = this.evalValues(ps.operand, shapes, nodes);
      if (vals && vals.length > 0 && vals.every((x) => x !== undefined && x === vals[0])) value = vals[0];
    }
    if (value === undefined || !Number.isFinite(value) || value === 0) {
      this.fail(ps.node, `cannot evaluate the scale operand "${ps.operand}" of ${ps.op} ${this.g.ref(ps.node)}`);
    }
    const op: ScaleOp = {
      node: this.g.ref(ps.node),
      op: ps.op,
      on: ps.on,
      ...(ps.stage ? { stage: ps.stage } : {}),
      tensor: ps.operand,
      value,
      factor: ps.op === 'Div' ? 1 / value : value,
    };
    if (constant) op.constant = constant;
    else op.computedBy = [...new Set(nodes)].sort((a, b) => this.g.position(a) - this.g.position(b)).map((n) => this.g.ref(n));
    return op;
  }

  /** Does `t` come (through score-side ops) from a MatMul of two non-constant tensors? */
  reachesScores(t: string, depth = 12): boolean {
    if (depth <= 0) return false;
    const p = this.g.producer(t);
    if (!p) return false;
    const op = p.opType ?? '';
    if (op === 'MatMul' || op === 'Einsum') {
      const ins = (p.input ?? []).filter((x) => x);
      return ins.length === 2 && ins.every((x) => !this.g.isConstant(x) && !this.weightLike(x));
    }
    if (this.isPass(p) || op === 'Transpose') return this.reachesScores(p.input?.[0] ?? '', depth - 1);
    if (['Add', 'Sub', 'Mul', 'Div', 'Where'].includes(op)) {
      return (p.input ?? []).some((x) => x && !this.g.isConstant(x) && this.reachesScores(x, depth - 1));
    }
    return false;
  }

  /** A tensor that is a weight (initializer behind Transpose/DequantizeLinear). */
  weightLike(t: string): boolean {
    if (this.g.initializer(t)) return true;
    const p = this.g.producer(t);
    if (p && (p.opType === 'Transpose' || p.opType === 'DequantizeLinear')) return !!this.g.initializer(p.input?.[0]);
    return false;
  }

  // ---- linear layers

  resolveWeight(node: Node, t: string): { name: string; dims: number[]; transpose?: Node; dequantize?: Node } {
    const init = this.g.initializer(t);
    if (init) return { name: t, dims: dimsOf(init) };
    let p = this.g.producer(t);
    let transpose: Node | undefined;
    let dequantize: Node | undefined;
    if (p?.opType === 'Transpose') {
      const perm = attrInts(p, 'perm') ?? [1, 0];
      if (!samePerm(perm, [1, 0])) this.fail(p, `weight Transpose of ${this.g.ref(node)} has perm [${perm}], expected [1,0]`);
      transpose = p;
      p = this.g.producer(p.input?.[0]);
      const w = this.g.initializer(transpose.input?.[0]);
      if (w) return { name: transpose.input?.[0] ?? '', dims: dimsOf(w), transpose };
    }
    if (p?.opType === 'DequantizeLinear') {
      dequantize = p;
      const w = this.g.initializer(p.input?.[0]);
      if (w) return { name: p.input?.[0] ?? '', dims: dimsOf(w), transpose, dequantize };
    }
    this.fail(node, `the weight input "${t}" of ${node.opType} ${this.g.ref(node)} is not an initializer`);
  }

  /** Is this node a dense layer (MatMul/Gemm whose B is a weight)? */
  isLinearNode(n: Node): boolean {
    if (n.opType === 'MatMulInteger') return !!this.g.initializer(n.input?.[1]);
    if (n.opType !== 'MatMul' && n.opType !== 'Gemm') return false;
    const b = n.input?.[1];
    return !!b && this.weightLike(b);
  }

  shapeRank(spec: ShapeSpec): number | undefined {
    if (spec.kind === 'constant') return spec.constant.value.length;
    let r = 0;
    for (const p of spec.parts) {
      if (p.length === undefined) return undefined;
      r += p.length;
    }
    return r;
  }

  describeLinear(node: Node): LinearRef {
    const op = node.opType as 'MatMul' | 'Gemm' | 'MatMulInteger';
    const w = this.resolveWeight(node, node.input?.[1] ?? '');
    if (w.dims.length !== 2) this.fail(node, `weight ${w.name} of ${this.g.ref(node)} has rank ${w.dims.length}, expected 2`);
    let stored: WeightLayout = 'in_out';
    if (op === 'Gemm') {
      if (attrInt(node, 'transA', 0) !== 0) this.fail(node, `Gemm ${this.g.ref(node)} has transA=1`);
      stored = attrInt(node, 'transB', 0) ? 'out_in' : 'in_out';
    }
    // A weight Transpose flips what the stored initializer means.
    const layout: WeightLayout = w.transpose ? (stored === 'in_out' ? 'out_in' : 'in_out') : stored;
    const [inFeatures, outFeatures] = layout === 'in_out' ? [w.dims[0], w.dims[1]] : [w.dims[1], w.dims[0]];
    const ref: LinearRef = {
      node: this.g.ref(node),
      op,
      weight: w.name,
      layout,
      inFeatures,
      outFeatures,
      input: node.input?.[0] ?? '',
      output: node.output?.[0] ?? '',
    };
    if (w.transpose) ref.weightTranspose = this.g.ref(w.transpose);
    if (w.dequantize) ref.weightDequantize = this.g.ref(w.dequantize);
    if (op === 'Gemm' && node.input?.[2]) {
      const c = node.input[2];
      if (!this.g.initializer(c)) this.fail(node, `bias input "${c}" of Gemm ${this.g.ref(node)} is not an initializer`);
      ref.bias = { node: ref.node, initializer: c };
    }
    if (op === 'MatMulInteger') {
      // ONNX Runtime's quantize_dynamic: y = Cast(MatMulInteger(DQL(x).y, W, DQL(x).zp, W_zp)) * (x_scale * W_scale)
      const q = this.g.producer(ref.input);
      const dq: Node[] = [];
      const cast = this.g.dataConsumers(ref.output);
      if (cast.length === 1 && cast[0].node.opType === 'Cast') {
        dq.push(cast[0].node);
        const mul = this.g.dataConsumers(cast[0].node.output?.[0] ?? '');
        if (mul.length === 1 && mul[0].node.opType === 'Mul') dq.push(mul[0].node);
      }
      if (dq.length !== 2) this.fail(node, `MatMulInteger ${this.g.ref(node)} is not followed by Cast and Mul (dequantization)`);
      ref.dynamicQuant = { dequantize: dq.map((n) => this.g.ref(n)) };
      if (q?.opType === 'DynamicQuantizeLinear') {
        ref.dynamicQuant.quantize = this.g.ref(q);
        ref.input = q.input?.[0] ?? '';
      }
      ref.output = dq[1].output?.[0] ?? '';
    }
    // Flatten to 2-D before (Reshape [-1, in]).
    const before = this.g.producer(ref.input);
    let flattened = false;
    if (before?.opType === 'Reshape') {
      const spec = this.shapeSpec(before);
      const rank = spec ? this.shapeRank(spec) : undefined;
      if (op === 'Gemm' || rank === 2) {
        ref.flatten = { before: this.g.ref(before) };
        ref.input = before.input?.[0] ?? '';
        flattened = true;
      }
    }
    if (op === 'Gemm') flattened = true;
    // Bias Add and un-flatten Reshape after, in either order.
    let out = ref.output;
    for (let step = 0; step < 3; step++) {
      // Look through single-consumer pass-through nodes (QDQ pairs) for the bias Add.
      let end = out;
      for (let k = 0; k < 3; k++) {
        const only = this.g.dataConsumers(end);
        if (only.length !== 1 || !this.isPass(only[0].node)) break;
        end = only[0].node.output?.[0] ?? '';
      }
      const cs = this.g.dataConsumers(end);
      if (cs.length !== 1) break;
      const c = cs[0].node;
      const other = c.input?.[0] === end ? c.input?.[1] : c.input?.[0];
      const b = c.opType === 'Add' && !ref.bias ? this.g.initializer(other) : undefined;
      const biasAdd = !!b && dimsOf(b).length === 1 && dimsOf(b)[0] === outFeatures;
      if (biasAdd) {
        ref.bias = { node: this.g.ref(c), initializer: other ?? '' };
        out = c.output?.[0] ?? '';
      } else if (end !== out) {
        break;
      } else if (c.opType === 'Reshape' && flattened && !ref.flatten?.after && c.input?.[0] === out) {
        const spec = this.shapeSpec(c);
        const rank = spec ? this.shapeRank(spec) : undefined;
        if (rank === 4) break; // that is a head split straight from 2-D, not an un-flatten
        ref.flatten = { ...ref.flatten, after: this.g.ref(c), ...(spec ? { afterShape: spec } : {}) };
        out = c.output?.[0] ?? '';
      } else break;
    }
    ref.output = out;
    return ref;
  }

  /** The dense layer whose output (after bias / un-flatten) is `t`. */
  linearEndingAt(t: string, role: string): LinearRef {
    let cur = t;
    for (let step = 0; step < 4; step++) {
      const p = this.g.producer(cur);
      if (!p) this.fail(`tensor:${t}`, `${role}: "${cur}" is not produced by a node (expected a MatMul/Gemm projection)`);
      if (this.isLinearNode(p)) {
        const lin = this.describeLinear(p);
        if (lin.output !== t) {
          this.fail(p, `${role}: unexpected nodes between projection ${lin.node} (output "${lin.output}") and "${t}"`);
        }
        return lin;
      }
      if (p.opType === 'Mul') {
        // The dequantizing Mul after Cast(MatMulInteger) (dynamic quantization).
        const viaCast = (p.input ?? []).find((x) => {
          const c = this.g.producer(x);
          const mi = c?.opType === 'Cast' ? this.g.producer(c.input?.[0]) : undefined;
          return mi?.opType === 'MatMulInteger' && this.isLinearNode(mi);
        });
        if (viaCast) {
          cur = viaCast;
          continue;
        }
      }
      if (p.opType === 'Add' || p.opType === 'Reshape' || this.isPass(p)) {
        const ins = (p.input ?? []).filter((x) => x);
        const data = p.opType === 'Add' ? ins.filter((x) => !this.g.isConstant(x)) : [ins[0]];
        if (data.length !== 1) this.fail(p, `${role}: expected a bias Add with one constant input at ${this.g.ref(p)}`);
        cur = data[0];
        continue;
      }
      this.fail(p, `${role}: expected a MatMul/Gemm projection but found ${p.opType} ${this.g.ref(p)}`);
    }
    this.fail(`tensor:${t}`, `${role}: no MatMul/Gemm projection found within 4 nodes of "${t}"`);
  }

  /** The dense layer fed (possibly through a flatten Reshape) by `t`. */
  linearFrom(t: string, role: string, exclude: Set<Node> = new Set()): LinearRef {
    const found: Node[] = [];
    const collect = (x: string, depth: number): void => {
      for (const { node: c, input } of this.g.dataConsumers(x)) {
        if (exclude.has(c) || input !== 0) continue;
        if (this.isLinearNode(c)) found.push(c);
        else if (depth < 3 && (c.opType === 'Reshape' || c.opType === 'DynamicQuantizeLinear' || this.isPass(c))) {
          collect(c.output?.[0] ?? '', depth + 1);
        }
      }
    };
    collect(t, 0);
    const uniq = [...new Set(found)];
    if (uniq.length === 0) {
      const p = this.g.producer(t);
      this.fail(p ?? `tensor:${t}`, `${role}: no MatMul/Gemm with a weight initializer consumes "${t}"`);
    }
    if (uniq.length > 1) {
      this.fail(uniq[1], `${role}: several projections consume "${t}" (${uniq.map((n) => this.g.ref(n)).join(', ')})`);
    }
    return this.describeLinear(uniq[0]);
  }

  // ---- shapes

  /** Follow Unsqueeze/Cast/Identity/Squeeze/Reshape back to a constant. */
  constantThrough(t: string): { constant: ConstantRef; via: NodeRef[] } | undefined {
    const via: NodeRef[] = [];
    let cur = t;
    for (let i = 0; i < 4; i++) {
      const c = this.g.constant(cur, 64);
      if (c) return { constant: c, via: via.reverse() };
      const p = this.g.producer(cur);
      if (!p || !['Unsqueeze', 'Squeeze', 'Cast', 'Identity', 'Reshape'].includes(p.opType ?? '')) return undefined;
      via.push(this.g.ref(p));
      cur = p.input?.[0] ?? '';
    }
    return undefined;
  }

  shapeSpec(reshape: Node): ShapeSpec | undefined {
    const t = reshape.input?.[1];
    if (!t) return undefined;
    const c = this.g.constant(t, 64);
    if (c) return { kind: 'constant', constant: c };
    const p = this.g.producer(t);
    if (!p || p.opType !== 'Concat') return undefined;
    const parts: ShapePart[] = (p.input ?? []).map((x, i) => {
      const part: ShapePart = { input: i, tensor: x, via: [] };
      const ct = this.constantThrough(x);
      if (ct) {
        part.constant = ct.constant;
        part.via = ct.via;
        part.length = ct.constant.value.length;
      } else {
        const q = this.g.producer(x);
        if (q?.opType === 'Unsqueeze') {
          const axes = attrInts(q, 'axes') ?? this.g.constant(q.input?.[1], 8)?.value;
          if (axes && axes.length === 1) part.length = 1; // Unsqueeze of a scalar (Gather of a Shape)
        }
      }
      return part;
    });
    return { kind: 'concat', concat: this.g.ref(p), parts };
  }

  /** The element `k` places from the end of a target shape (k = 1: last). */
  elementFromEnd(reshape: Node, spec: ShapeSpec, k: number, what: string): ShapeElementRef {
    if (spec.kind === 'constant') {
      const v = spec.constant.value;
      if (v.length < k) this.fail(reshape, `target shape of ${this.g.ref(reshape)} has ${v.length} elements; no ${what}`);
      return { value: v[v.length - k], constant: spec.constant, index: v.length - k };
    }
    let remaining = k;
    for (let i = spec.parts.length - 1; i >= 0; i--) {
      const part = spec.parts[i];
      if (part.length === undefined) {
        this.fail(spec.concat, `cannot locate the ${what} in Concat ${spec.concat}: input ${i} ("${part.tensor}") has unknown length`);
      }
      if (remaining <= part.length) {
        if (!part.constant) {
          this.fail(spec.concat, `the ${what} in Concat ${spec.concat} (input ${i}, "${part.tensor}") is not a constant`);
        }
        return {
          value: part.constant.value[part.length - remaining],
          constant: part.constant,
          index: part.length - remaining,
          concat: spec.concat,
          concatInput: i,
          via: part.via,
        };
      }
      remaining -= part.length;
    }
    this.fail(spec.concat, `Concat ${spec.concat} has fewer than ${k} elements; no ${what}`);
  }

  requireShape(reshape: Node, rank: number, what: string): ShapeSpec {
    const spec = this.shapeSpec(reshape);
    if (!spec) {
      const p = this.g.producer(reshape.input?.[1]);
      this.fail(
        p ?? reshape,
        `target shape of ${what} Reshape ${this.g.ref(reshape)} is ${p ? `computed by ${p.opType} ${this.g.ref(p)}` : 'not constant'}; expected a constant or a Concat`,
      );
    }
    const r = this.shapeRank(spec);
    if (r !== undefined && r !== rank) {
      this.fail(reshape, `${what} Reshape ${this.g.ref(reshape)} has a rank-${r} target, expected rank ${rank}`);
    }
    return spec;
  }

  // ---- the attention path

  traceScores(t: string): {
    matmul: Node;
    swapped: boolean;
    transposes: Node[];
    scale: PendingScale[];
    masks: MaskRef[];
  } {
    let cur = t;
    let swapped = false;
    const transposes: Node[] = [];
    const scale: PendingScale[] = [];
    const masks: MaskRef[] = [];
    for (let step = 0; step < 16; step++) {
      const p = this.g.producer(cur);
      if (!p) this.fail(`tensor:${cur}`, `attention scores "${cur}" are not produced by a node`);
      const op = p.opType ?? '';
      const ins = p.input ?? [];
      if (this.isPass(p)) {
        cur = ins[0];
      } else if (op === 'MatMul') {
        return { matmul: p, swapped, transposes: transposes.reverse(), scale: scale.reverse(), masks: masks.reverse() };
      } else if (op === 'Einsum') {
        this.fail(p, `attention scores come from Einsum ${this.g.ref(p)}; only MatMul attention is supported`);
      } else if (op === 'Transpose') {
        const perm = attrInts(p, 'perm') ?? [];
        if (!isLastTwoSwap(perm)) this.fail(p, `Transpose ${this.g.ref(p)} on the scores has perm [${perm}]`);
        swapped = !swapped;
        transposes.push(p);
        cur = ins[0];
      } else if (op === 'Mul' || op === 'Div') {
        const so = this.scaleOperand(p);
        if (!so) this.fail(p, `${op} ${this.g.ref(p)} on the scores is not by a constant`);
        scale.push({ node: p, op, on: 'scores', ...so });
        cur = so.data;
      } else if (op === 'Add' || op === 'Sub' || op === 'Where') {
        const cands = op === 'Where' ? [1, 2] : [0, 1];
        const hits = cands.filter((i) => ins[i] && this.reachesScores(ins[i]));
        if (hits.length !== 1) {
          this.fail(p, `cannot tell the scores from the mask at ${op} ${this.g.ref(p)}`);
        }
        if (op === 'Sub' && hits[0] !== 0) this.fail(p, `Sub ${this.g.ref(p)} subtracts the scores`);
        const maskInput = op === 'Where' ? ins[0] : ins[hits[0] === 0 ? 1 : 0];
        masks.push({ node: this.g.ref(p), op, input: maskInput });
        cur = ins[hits[0]];
      } else {
        this.fail(p, `unexpected ${op} ${this.g.ref(p)} between the QKᵀ MatMul and Softmax`);
      }
    }
    this.fail(`tensor:${t}`, 'no QKᵀ MatMul within 16 nodes of the Softmax');
  }

  /** From the QKᵀ / context MatMul input back to the projection. */
  traceBranch(
    t: string,
    role: 'q' | 'k' | 'v',
  ): {
    branch: HeadBranch;
    splitNode: Node;
    /** Nodes from the split Reshape (excluded) to the MatMul, in graph order. */
    chain: Node[];
    scale: PendingScale[];
    source: { kind: 'linear'; linear: LinearRef } | { kind: 'part'; node: Node; output: number };
  } {
    const name = role.toUpperCase();
    const transposes: Node[] = [];
    const scale: PendingScale[] = [];
    const chain: Node[] = [];
    let cur = t;
    let split: Node | undefined;
    const scaleAt = (p: Node, stage: 'projection' | 'heads'): string => {
      const op = p.opType as 'Mul' | 'Div';
      const so = this.scaleOperand(p);
      if (!so || role === 'v') this.fail(p, `${name}: ${op} ${this.g.ref(p)} is not a scale by a constant`);
      scale.push({ node: p, op, on: role, stage, ...so });
      return so.data;
    };
    for (let step = 0; step < 12 && !split; step++) {
      const p = this.g.producer(cur);
      if (!p) this.fail(`tensor:${cur}`, `${name}: "${cur}" is not produced by a node`);
      const op = p.opType ?? '';
      if (op !== 'Reshape') chain.push(p);
      if (this.isPass(p)) cur = p.input?.[0] ?? '';
      else if (op === 'Transpose') {
        transposes.push(p);
        cur = p.input?.[0] ?? '';
      } else if (op === 'Mul' || op === 'Div') cur = scaleAt(p, 'heads');
      else if (op === 'Reshape') split = p;
      else this.fail(p, `${name}: expected the head-split Reshape but found ${op} ${this.g.ref(p)}`);
    }
    if (!split) this.fail(`tensor:${t}`, `${name}: no head-split Reshape found`);
    transposes.reverse();
    chain.reverse();
    const perms = transposes.map((n) => attrInts(n, 'perm') ?? []);
    const spec = this.requireShape(split, 4, `${name} head-split`);
    const branch: HeadBranch = {
      split: {
        node: this.g.ref(split),
        shape: spec,
        heads: this.elementFromEnd(split, spec, 2, `${name} head count`),
        headSize: this.elementFromEnd(split, spec, 1, `${name} head size`),
      },
      transposes: transposes.map((n, i) => ({ node: this.g.ref(n), perm: perms[i] })),
      perm: composePerms(perms),
    };
    if (perms.some((p) => p.length !== 4)) this.fail(transposes[0], `${name}: transposes are not rank 4`);
    // Before the split: scale, fused Split/Slice, or the projection.
    cur = split.input?.[0] ?? '';
    for (let step = 0; step < 8; step++) {
      const p = this.g.producer(cur);
      const op = p?.opType ?? '';
      if (p && this.isPass(p)) cur = p.input?.[0] ?? '';
      else if (p && (op === 'Mul' || op === 'Div') && this.scaleOperand(p)) {
        cur = scaleAt(p, 'projection');
      } else if (p && (op === 'Split' || op === 'Slice')) {
        branch.part = { node: this.g.ref(p), output: this.g.producerOutput(cur) };
        return { branch, splitNode: split, chain, scale, source: { kind: 'part', node: p, output: this.g.producerOutput(cur) } };
      } else break;
    }
    return { branch, splitNode: split, chain, scale, source: { kind: 'linear', linear: this.linearEndingAt(cur, name) } };
  }

  fusedQkv(parts: { q: Node; k: Node; v: Node }, outputs: { q: number; k: number; v: number }): FusedQkv {
    const { q, k, v } = parts;
    if (q.opType === 'Split') {
      if (k !== q || v !== q) this.fail(q, 'Q, K and V come from different Split nodes');
      const linear = this.linearEndingAt(q.input?.[0] ?? '', 'fused QKV');
      const axis = attrInt(q, 'axis', 0);
      const nOut = (q.output ?? []).length;
      let sizes: number[];
      let sizesFrom: 'input' | 'attribute' | 'equal';
      let sizesConstant: ConstantRef | undefined;
      if (q.input?.[1]) {
        sizesConstant = this.g.constant(q.input[1], 64);
        if (!sizesConstant) this.fail(q, `split sizes of ${this.g.ref(q)} are not constant`);
        sizes = sizesConstant.value;
        sizesFrom = 'input';
      } else if (attrInts(q, 'split')) {
        sizes = attrInts(q, 'split') ?? [];
        sizesFrom = 'attribute';
      } else {
        sizes = Array.from({ length: nOut }, () => linear.outFeatures / nOut);
        sizesFrom = 'equal';
      }
      const starts = sizes.map((_, i) => sizes.slice(0, i).reduce((a, b) => a + b, 0));
      const range = (o: number): [number, number] => [starts[o], starts[o] + sizes[o]];
      return {
        kind: 'fused',
        linear,
        splitter: { op: 'Split', node: this.g.ref(q), axis, sizes, sizesFrom, ...(sizesConstant ? { sizesConstant } : {}) },
        ranges: { q: range(outputs.q), k: range(outputs.k), v: range(outputs.v) },
      };
    }
    // Three Slices of one tensor.
    const src = q.input?.[0];
    for (const s of [k, v]) {
      if (s.opType !== 'Slice' || s.input?.[0] !== src) this.fail(s, 'Q, K and V are not slices of one fused projection');
    }
    const linear = this.linearEndingAt(src ?? '', 'fused QKV');
    const slice = (s: Node): SliceRef => {
      const ins = s.input ?? [];
      let starts: ConstantRef | undefined;
      let ends: ConstantRef | undefined;
      let st: number[] | undefined;
      let en: number[] | undefined;
      let ax: number[] | undefined;
      if (ins.length >= 3) {
        starts = this.g.constant(ins[1], 8);
        ends = this.g.constant(ins[2], 8);
        st = starts?.value;
        en = ends?.value;
        ax = ins[3] ? this.g.constant(ins[3], 8)?.value : st?.map((_, i) => i);
        const steps = ins[4] ? this.g.constant(ins[4], 8)?.value : undefined;
        if (steps && steps.some((x) => x !== 1)) this.fail(s, `Slice ${this.g.ref(s)} has steps ≠ 1`);
      } else {
        st = attrInts(s, 'starts');
        en = attrInts(s, 'ends');
        ax = attrInts(s, 'axes') ?? st?.map((_, i) => i);
      }
      if (!st || !en || !ax || st.length !== 1 || en.length !== 1 || ax.length !== 1) {
        this.fail(s, `Slice ${this.g.ref(s)} is not a constant single-axis slice`);
      }
      const n = linear.outFeatures;
      const clamp = (x: number): number => Math.max(0, Math.min(n, x < 0 ? x + n : x));
      return {
        node: this.g.ref(s),
        axis: ax[0],
        start: clamp(st[0]),
        end: clamp(en[0]),
        ...(starts ? { starts } : {}),
        ...(ends ? { ends } : {}),
      };
    };
    const slices = { q: slice(q), k: slice(k), v: slice(v) };
    return {
      kind: 'fused',
      linear,
      splitter: { op: 'Slice', slices },
      ranges: {
        q: [slices.q.start, slices.q.end],
        k: [slices.k.start, slices.k.end],
        v: [slices.v.start, slices.v.end],
      },
    };
  }

  // ---- layer norm, residual, FFN

  residualAfter(t: string): { node: Node; skip: string } | undefined {
    let cur = t;
    for (let step = 0; step < 4; step++) {
      const cs = this.g.dataConsumers(cur);
      for (const { node } of cs.filter((c) => c.node.opType === 'Add')) {
        const ins = node.input ?? [];
        if (ins.length === 2 && ins.every((x) => x && !this.g.isConstant(x))) {
          return { node, skip: ins[0] === cur ? ins[1] : ins[0] };
        }
      }
      if (cs.length !== 1 || !this.isPass(cs[0].node)) return undefined;
      cur = cs[0].node.output?.[0] ?? '';
    }
    return undefined;
  }

  layerNormAt(x: string): LayerNormRef | undefined {
    const cs = this.g.dataConsumers(x);
    const ln = cs.find((c) => c.node.opType === 'LayerNormalization' && c.input === 0)?.node;
    if (ln) {
      const ins = ln.input ?? [];
      return {
        kind: 'LayerNormalization',
        nodes: [this.g.ref(ln)],
        input: x,
        output: ln.output?.[0] ?? '',
        scale: ins[1] ?? '',
        ...(ins[2] ? { bias: ins[2] } : {}),
        epsilon: attrFloat(ln, 'epsilon', 1e-5),
      };
    }
    // Decomposed: mean = ReduceMean(x); d = Sub(x, mean); var = ReduceMean(Pow(d, 2)); y = d / Sqrt(var + eps) * γ + β
    const rm = cs.find((c) => c.node.opType === 'ReduceMean')?.node;
    if (!rm) return undefined;
    const sub = cs.find((c) => c.node.opType === 'Sub' && c.input === 0 && c.node.input?.[1] === rm.output?.[0])?.node;
    if (!sub) return undefined;
    const d = sub.output?.[0] ?? '';
    const dcs = this.g.dataConsumers(d).map((c) => c.node);
    const sq = dcs.find(
      (n) => (n.opType === 'Pow' && this.scalar(n.input?.[1] ?? '')?.value[0] === 2) || (n.opType === 'Mul' && n.input?.[0] === d && n.input?.[1] === d),
    );
    const div = dcs.find((n) => n.opType === 'Div' && n.input?.[0] === d);
    if (!sq || !div) return undefined;
    const one = (t: string, op: string): Node | undefined => {
      const list = this.g.dataConsumers(t).filter((c) => c.node.opType === op);
      return list.length === 1 ? list[0].node : undefined;
    };
    const rm2 = one(sq.output?.[0] ?? '', 'ReduceMean');
    const addEps = rm2 && one(rm2.output?.[0] ?? '', 'Add');
    const sqrt = addEps && one(addEps.output?.[0] ?? '', 'Sqrt');
    if (!rm2 || !addEps || !sqrt || div.input?.[1] !== sqrt.output?.[0]) return undefined;
    const epsT = addEps.input?.[0] === rm2.output?.[0] ? addEps.input?.[1] : addEps.input?.[0];
    const eps = this.scalar(epsT ?? '');
    const mul = one(div.output?.[0] ?? '', 'Mul');
    if (!mul) return undefined;
    const gamma = mul.input?.[0] === div.output?.[0] ? mul.input?.[1] : mul.input?.[0];
    if (!gamma || !this.g.initializer(gamma)) return undefined;
    const nodes = [rm, sub, sq, rm2, addEps, sqrt, div, mul];
    let output = mul.output?.[0] ?? '';
    let beta: string | undefined;
    const add = one(output, 'Add');
    if (add) {
      const b = add.input?.[0] === output ? add.input?.[1] : add.input?.[0];
      if (b && this.g.initializer(b)) {
        beta = b;
        nodes.push(add);
        output = add.output?.[0] ?? '';
      }
    }
    return {
      kind: 'decomposed',
      nodes: nodes.map((n) => this.g.ref(n)),
      input: x,
      output,
      scale: gamma,
      ...(beta ? { bias: beta } : {}),
      epsilon: eps ? eps.value[0] : NaN,
    };
  }

  activationKind(nodes: Node[]): ActivationKind {
    const ops = new Set(nodes.map((n) => n.opType ?? ''));
    if (ops.has('Gelu')) {
      const g = nodes.find((n) => n.opType === 'Gelu');
      const approx = g ? attr(g, 'approximate') : undefined;
      const s = approx?.s ? new TextDecoder().decode(approx.s) : 'none';
      return s === 'tanh' ? 'gelu-tanh' : 'gelu';
    }
    if (ops.has('FastGelu') || ops.has('BiasGelu')) return 'gelu-fast';
    if (ops.has('Erf')) return 'gelu-erf';
    if (ops.has('Tanh')) return 'gelu-tanh';
    if (ops.has('Sigmoid')) {
      const quick = nodes.some((n) => n.opType === 'Mul' && (n.input ?? []).some((x) => Math.abs((this.scalar(x ?? '')?.value[0] ?? 0) - 1.702) < 1e-3));
      return quick ? 'quick-gelu' : 'silu';
    }
    if (ops.has('Relu')) return 'relu';
    return 'unknown';
  }

  ffnFrom(start: string, hidden: number, exclude: Set<Node>): FfnBlock {
    const intermediate = this.linearFrom(start, 'FFN intermediate dense', exclude);
    if (intermediate.inFeatures !== hidden) {
      this.fail(intermediate.node, `FFN intermediate dense ${intermediate.node} has ${intermediate.inFeatures} inputs, expected ${hidden}`);
    }
    // Walk the activation forward until the next dense layer.
    const actNodes: Node[] = [];
    const seen = new Set<Node>();
    const frontier = [intermediate.output];
    const outs = new Set<Node>();
    while (frontier.length > 0) {
      const t = frontier.pop() ?? '';
      for (const { node: c, input } of this.g.dataConsumers(t)) {
        if (seen.has(c)) continue;
        seen.add(c);
        if (input === 0 && this.isLinearNode(c)) {
          outs.add(c);
          continue;
        }
        if ((c.opType === 'Reshape' || c.opType === 'DynamicQuantizeLinear') && input === 0) {
          const next = this.g.dataConsumers(c.output?.[0] ?? '').filter((x) => x.input === 0 && this.isLinearNode(x.node));
          if (next.length === 1) {
            outs.add(next[0].node);
            continue;
          }
        }
        if (['Softmax', 'ReduceMean', 'LayerNormalization', 'MatMul', 'Gemm'].includes(c.opType ?? '')) {
          this.fail(c, `FFN activation after ${intermediate.node} reaches ${c.opType} ${this.g.ref(c)}`);
        }
        actNodes.push(c);
        if (actNodes.length > 32) this.fail(c, `FFN activation after ${intermediate.node} is longer than 32 nodes`);
        for (const o of c.output ?? []) if (o) frontier.push(o);
      }
    }
    if (outs.size !== 1) {
      this.fail(intermediate.node, `FFN after ${intermediate.node}: expected one output dense, found ${outs.size}`);
    }
    const output = this.describeLinear([...outs][0]);
    if (output.inFeatures !== intermediate.outFeatures) {
      this.fail(output.node, `FFN output dense ${output.node} has ${output.inFeatures} inputs, intermediate has ${intermediate.outFeatures} outputs`);
    }
    actNodes.sort((a, b) => this.g.position(a) - this.g.position(b));
    const ffn: FfnBlock = {
      intermediate,
      activation: { kind: this.activationKind(actNodes), nodes: actNodes.map((n) => this.g.ref(n)), output: output.input },
      output,
    };
    const res = this.residualAfter(output.output);
    if (res) {
      ffn.residual = { node: this.g.ref(res.node), skip: res.skip };
      const ln = this.layerNormAt(res.node.output?.[0] ?? '');
      if (ln) ffn.layerNorm = ln;
    }
    return ffn;
  }

  // ---- one block

  block(softmax: Node, layer: number): AttentionBlock {
    const g = this.g;
    const sc = this.traceScores(softmax.input?.[0] ?? '');
    const [a, b] = [sc.matmul.input?.[0] ?? '', sc.matmul.input?.[1] ?? ''];
    const qT = this.traceBranch(sc.swapped ? b : a, 'q');
    const kT = this.traceBranch(sc.swapped ? a : b, 'k');
    const wantQ = sc.swapped ? [0, 2, 3, 1] : [0, 2, 1, 3];
    const wantK = sc.swapped ? [0, 2, 1, 3] : [0, 2, 3, 1];
    if (!samePerm(qT.branch.perm, wantQ)) {
      this.fail(qT.splitNode, `Q transposes compose to [${qT.branch.perm}], expected [${wantQ}]`);
    }
    if (!samePerm(kT.branch.perm, wantK)) {
      this.fail(kT.splitNode, `K transposes compose to [${kT.branch.perm}], expected [${wantK}]`);
    }

    // Context MatMul: probs · V.
    let probs = softmax.output?.[0] ?? '';
    let ctx: Node | undefined;
    for (let step = 0; step < 4 && !ctx; step++) {
      const cs = g.dataConsumers(probs);
      const mm = cs.find((c) => c.node.opType === 'MatMul' && c.input === 0);
      if (mm) ctx = mm.node;
      else {
        const pass = cs.find((c) => this.isPass(c.node));
        if (!pass) break;
        probs = pass.node.output?.[0] ?? '';
      }
    }
    if (!ctx) this.fail(softmax, `no context MatMul consumes the output of Softmax ${g.ref(softmax)}`);
    const vT = this.traceBranch(ctx.input?.[1] ?? '', 'v');
    if (!samePerm(vT.branch.perm, [0, 2, 1, 3])) {
      this.fail(vT.splitNode, `V transposes compose to [${vT.branch.perm}], expected [0,2,1,3]`);
    }

    // Projections.
    let qkv: SeparateQkv | FusedQkv;
    if (qT.source.kind === 'linear' && kT.source.kind === 'linear' && vT.source.kind === 'linear') {
      qkv = { kind: 'separate', q: qT.source.linear, k: kT.source.linear, v: vT.source.linear };
    } else if (qT.source.kind === 'part' && kT.source.kind === 'part' && vT.source.kind === 'part') {
      qkv = this.fusedQkv(
        { q: qT.source.node, k: kT.source.node, v: vT.source.node },
        { q: qT.source.output, k: kT.source.output, v: vT.source.output },
      );
    } else {
      this.fail(qT.splitNode, 'Q, K and V are neither three projections nor one fused projection');
    }
    const qLin = qkv.kind === 'separate' ? qkv.q : qkv.linear;
    const allOf = (role: 'q' | 'k' | 'v'): number =>
      qkv.kind === 'separate' ? qkv[role].outFeatures : qkv.ranges[role][1] - qkv.ranges[role][0];

    // Heads.
    const heads = (br: HeadBranch, all: number, name: string): [number, number] => {
      let h = br.split.heads.value;
      let d = br.split.headSize.value;
      if (h <= 0 && d > 0 && all % d === 0) h = all / d;
      if (d <= 0 && h > 0 && all % h === 0) d = all / h;
      if (h <= 0 || d <= 0) this.fail(br.split.node, `${name} head split ${br.split.node} gives neither head count nor head size`);
      if (h * d !== all) {
        this.fail(br.split.node, `${name} head split ${br.split.node} is ${h} heads × ${d}, but the projection has ${all} outputs`);
      }
      return [h, d];
    };
    const [hq, dq] = heads(qT.branch, allOf('q'), 'Q');
    const [hk, dk] = heads(kT.branch, allOf('k'), 'K');
    const [hv, dv] = heads(vT.branch, allOf('v'), 'V');
    if (hq !== hk || hq !== hv || dq !== dk || dq !== dv) {
      this.fail(qT.splitNode, `Q/K/V disagree on heads: Q ${hq}×${dq}, K ${hk}×${dk}, V ${hv}×${dv}`);
    }

    // Merge: Transpose(s) + Reshape after the context MatMul.
    let cur = ctx.output?.[0] ?? '';
    const mergeT: Node[] = [];
    let mergeR: Node | undefined;
    for (let step = 0; step < 6 && !mergeR; step++) {
      const cs = g.dataConsumers(cur);
      if (cs.length !== 1) this.fail(ctx, `context MatMul output "${cur}" has ${cs.length} consumers, expected 1`);
      const c = cs[0].node;
      if (c.opType === 'Transpose') mergeT.push(c);
      else if (c.opType === 'Reshape') mergeR = c;
      else if (!this.isPass(c)) this.fail(c, `expected the head-merge Transpose/Reshape, found ${c.opType} ${g.ref(c)}`);
      cur = c.output?.[0] ?? '';
    }
    if (!mergeR) this.fail(ctx, 'no head-merge Reshape after the context MatMul');
    const mergePerms = mergeT.map((n) => attrInts(n, 'perm') ?? []);
    const mergePerm = composePerms(mergePerms);
    if (!samePerm(mergePerm, [0, 2, 1, 3])) {
      this.fail(mergeT[0] ?? mergeR, `head-merge transposes compose to [${mergePerm}], expected [0,2,1,3]`);
    }
    const mergeSpec = this.shapeSpec(mergeR);
    if (!mergeSpec) this.fail(mergeR, `target shape of head-merge Reshape ${g.ref(mergeR)} is neither constant nor a Concat`);
    const mergeRank = this.shapeRank(mergeSpec);
    if (mergeRank !== undefined && mergeRank !== 3 && mergeRank !== 2) {
      this.fail(mergeR, `head-merge Reshape ${g.ref(mergeR)} has a rank-${mergeRank} target`);
    }
    const allHead = this.elementFromEnd(mergeR, mergeSpec, 1, 'all-head size');
    const all = hq * dq;
    if (allHead.value > 0 && allHead.value !== all) {
      this.fail(mergeR, `head-merge Reshape ${g.ref(mergeR)} writes ${allHead.value}, expected ${all}`);
    }

    const output = this.linearFrom(mergeR.output?.[0] ?? '', 'attention output dense');
    if (output.inFeatures !== all) {
      this.fail(output.node, `attention output dense ${output.node} has ${output.inFeatures} inputs, expected ${all}`);
    }

    // Scale: evaluate operands, knowing the shapes of the head tensors ([.., heads, headSize] after each split).
    const shapes = new Map<string, Array<number | undefined>>();
    for (const [br, tr, n] of [
      [qT.branch, qT, allOf('q')],
      [kT.branch, kT, allOf('k')],
      [vT.branch, vT, allOf('v')],
    ] as const) {
      const sp = br.split.shape.kind === 'constant' ? br.split.shape.constant.value : [];
      const known = (i: number): number | undefined => (sp.length === 4 && sp[i] > 0 ? sp[i] : undefined);
      shapes.set(tr.splitNode.input?.[0] ?? '', [known(0), known(1), n]);
      let shape: Array<number | undefined> = [known(0), known(1), hq, dq];
      shapes.set(tr.splitNode.output?.[0] ?? '', shape);
      for (const node of tr.chain) {
        if (node.opType === 'Transpose') {
          const perm = attrInts(node, 'perm') ?? [];
          const prev = shape;
          shape = perm.map((i) => prev[i]);
        }
        shapes.set(node.output?.[0] ?? '', shape);
      }
    }
    const ops = [...qT.scale, ...kT.scale, ...sc.scale].map((ps) => this.resolveScale(ps, shapes));
    const on = new Set(ops.map((o) => o.on));
    const placement: ScalePlacement =
      ops.length === 0
        ? 'none'
        : on.size === 1 && on.has('scores')
          ? 'scores'
          : on.size === 1 && on.has('q')
            ? 'q'
            : on.size === 1 && on.has('k')
              ? 'k'
              : on.size === 2 && on.has('q') && on.has('k')
                ? 'qk'
                : 'mixed';
    const factor = ops.reduce((p, o) => p * o.factor, 1);
    const scale: ScaleInfo = {
      placement,
      ops,
      factor,
      standard: Math.abs(factor * Math.sqrt(dq) - 1) < 1e-4,
    };

    const input = qLin.input;
    const block: AttentionBlock = {
      layer,
      numHeads: hq,
      headSize: dq,
      allHeadSize: all,
      hidden: qLin.inFeatures,
      input,
      qkv,
      q: qT.branch,
      k: kT.branch,
      v: vT.branch,
      scores: { matmul: g.ref(sc.matmul), swapped: sc.swapped, transposes: sc.transposes.map((n) => g.ref(n)) },
      scale,
      masks: sc.masks,
      softmax: { node: g.ref(softmax), axis: attrInt(softmax, 'axis', this.opset >= 13 ? -1 : 1) },
      context: { matmul: g.ref(ctx) },
      merge: {
        transposes: mergeT.map((n, i) => ({ node: g.ref(n), perm: mergePerms[i] })),
        perm: mergePerm,
        reshape: { node: g.ref(mergeR), shape: mergeSpec, allHeadSize: allHead },
      },
      output,
    };
    const res = this.residualAfter(output.output);
    let after = output.output;
    if (res) {
      block.residual = { node: g.ref(res.node), skip: res.skip };
      after = res.node.output?.[0] ?? '';
      const ln = this.layerNormAt(after);
      if (ln) {
        block.layerNorm = ln;
        after = ln.output;
      }
    }
    // FFN: best effort; a block without one is still a usable attention block.
    try {
      const exclude = new Set<Node>();
      block.ffn = this.ffnFrom(after, block.hidden, exclude);
    } catch (e) {
      if (!(e instanceof MatchError)) throw e;
      this.ffnFailure = { node: e.node, message: e.message };
    }
    return block;
  }

  ffnFailure: { node: NodeRef; message: string } | undefined;

  takeFfnFailure(): { node: NodeRef; message: string } | undefined {
    const f = this.ffnFailure;
    this.ffnFailure = undefined;
    return f;
  }

  isAttentionSoftmax(n: Node): boolean {
    return n.opType === 'Softmax' && ((n.domain ?? '') === '' || n.domain === 'ai.onnx') && this.reachesScores(n.input?.[0] ?? '');
  }
}

/** The default-domain opset of a model (0 when absent). */
export function defaultOpset(model: onnx.IModelProto): number {
  const imp = (model.opsetImport ?? []).find((o) => (o.domain ?? '') === '' || o.domain === 'ai.onnx');
  return imp ? num(imp.version) : 0;
}

/**
 * Find every self-attention block of `model` (see {@link AttentionBlock}). Blocks are numbered by
 * their Softmax's position in graph order; a candidate that cannot be matched keeps its number and
 * is reported in `problems`/`failures` instead.
 */
export function findAttentionBlocks(model: onnx.IModelProto): AttentionReport {
  const failures: AttentionFailure[] = [];
  const blocks: AttentionBlock[] = [];
  const graph = model.graph;
  if (!graph) {
    failures.push({ node: '(model)', part: 'graph', message: 'the model has no graph' });
    return { blocks, failures, problems: failures.map(formatFailure) };
  }
  const g = new GraphView(graph);
  const m = new Matcher(g, defaultOpset(model));
  for (const n of g.nodes) {
    if (FUSED_ATTENTION_OPS.has(n.opType ?? '') && (n.domain ?? '') !== '') {
      failures.push({
        node: g.ref(n),
        part: 'graph',
        message: `fused ${n.domain}.${n.opType} node: attention already fused by an optimizer is not supported (export the unfused model)`,
      });
    }
  }
  const candidates = g.nodes.filter((n) => m.isAttentionSoftmax(n));
  candidates.forEach((sm, layer) => {
    try {
      m.ffnFailure = undefined;
      blocks.push(m.block(sm, layer));
      const ffnFailure = m.takeFfnFailure();
      if (ffnFailure) failures.push({ layer, node: ffnFailure.node, part: 'ffn', message: `FFN not matched: ${ffnFailure.message}` });
    } catch (e) {
      if (!(e instanceof MatchError)) throw e;
      failures.push({ layer, node: e.node, part: 'attention', message: e.message });
    }
  });
  if (candidates.length === 0 && failures.length === 0) {
    failures.push({
      node: '(graph)',
      part: 'graph',
      message: 'no attention found: no Softmax over a MatMul of two activations',
    });
  }
  return { blocks, failures, problems: failures.map(formatFailure) };
}

/** Every LayerNorm in the graph (LayerNormalization nodes and PyTorch's decomposed form), in graph order. */
export function findLayerNorms(model: onnx.IModelProto): LayerNormRef[] {
  if (!model.graph) return [];
  const g = new GraphView(model.graph);
  const m = new Matcher(g, defaultOpset(model));
  const seen = new Set<string>();
  const out: LayerNormRef[] = [];
  for (const n of g.nodes) {
    if (n.opType !== 'LayerNormalization' && n.opType !== 'ReduceMean') continue;
    const x = n.input?.[0];
    if (!x || seen.has(x)) continue;
    seen.add(x);
    const ln = m.layerNormAt(x);
    if (ln) out.push(ln);
  }
  return out;
}

function formatFailure(f: AttentionFailure): string {
  return `${f.layer !== undefined ? `layer ${f.layer}: ` : ''}node ${f.node}: ${f.message}`;
}

/**
 * For commands that rewrite attention (prune): the blocks, or a GraphError naming the node where
 * matching failed. `needFfn` also requires every block's FFN.
 */
export function requireAttentionBlocks(report: AttentionReport, opts: { needFfn?: boolean; file?: string } = {}): AttentionBlock[] {
  const relevant = report.failures.filter((f) => opts.needFfn || f.part !== 'ffn');
  const first = relevant[0];
  if (first) {
    throw new GraphError(`cannot match the attention blocks: ${formatFailure(first)}`, {
      node: first.node,
      file: opts.file,
      hint:
        relevant.length > 1
          ? `${relevant.length} problems in all (run \`ranerc inspect\` to list them); export the model from PyTorch without ONNX Runtime graph fusion`
          : 'export the model from PyTorch (torch.onnx.export) without ONNX Runtime graph fusion, or run `ranerc inspect` to see what was found',
    });
  }
  if (report.blocks.length === 0) {
    throw new GraphError('the model has no attention blocks', {
      file: opts.file,
      hint: 'ranerc prunes BERT-style encoders; check that this is the exported transformer',
    });
  }
  return report.blocks;
}
