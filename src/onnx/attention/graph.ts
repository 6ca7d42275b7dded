/**
 * A small read-only view of an ONNX graph (producers, consumers, small constants) and the helpers
 * every matcher uses: attribute readers, the MatchError that stops a match, pass-through op sets.
 * Surgery (src/prune/surgery.ts) and analysis share this view.
 */
import type { onnx } from 'onnx-proto';
import type Long from 'long';
import { GraphError } from '../../errors.js';
import { dimsOf, elementCount, EXTERNAL, tensorToNumbers, toNumber } from '../tensor.js';
import type { ConstantRef, NodeRef } from './types.js';


export type Node = onnx.INodeProto;
export type Tensor = onnx.ITensorProto;
export type LongLike = number | Long;

/** A protobuf int64 as a number; "to the end" sentinels such as INT64_MAX saturate. */
export function num(v: LongLike | null | undefined): number {
  return v === null || v === undefined ? 0 : toNumber(v, { clamp: true });
}

/**
 * The values of a small numeric tensor, or undefined when it is external, not numeric, or has more
 * than `max` elements.
 */
export function smallValues(t: Tensor, max: number): number[] | undefined {
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

export function attr(node: Node, name: string): onnx.IAttributeProto | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}
export function attrInt(node: Node, name: string, def: number): number {
  const a = attr(node, name);
  return a ? num(a.i) : def;
}
export function attrInts(node: Node, name: string): number[] | undefined {
  const a = attr(node, name);
  return a ? (a.ints ?? []).map(num) : undefined;
}
export function attrFloat(node: Node, name: string, def: number): number {
  const a = attr(node, name);
  return a ? (a.f ?? def) : def;
}

/** A small read-only index over a graph (producers, consumers, constants). */
export class GraphView {
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

export class MatchError extends Error {
  constructor(
    readonly node: NodeRef,
    message: string,
  ) {
    super(message);
  }
}

/** Ops that leave an activation's values in place for matching purposes. */
export const PASS_THROUGH = new Set(['Identity', 'Cast', 'Dropout']);
/** QDQ pairs on activations (statically quantized models) are passed through as well. */
export const QDQ = new Set(['QuantizeLinear', 'DequantizeLinear']);
export function samePerm(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Composition of transposes applied in order (result[i] = source axis of output axis i). */
export function composePerms(perms: number[][], rank = 4): number[] {
  let cur = Array.from({ length: rank }, (_, i) => i);
  for (const p of perms) cur = p.map((i) => cur[i]);
  return cur;
}

export function isLastTwoSwap(perm: number[]): boolean {
  const r = perm.length;
  if (r < 2) return false;
  return perm.every((v, i) => (i < r - 2 ? v === i : i === r - 2 ? v === r - 1 : v === r - 2));
}


// ---------------------------------------------------------------------------------- matcher base

/**
 * The root of the matcher chain (MatcherBase → ShapeMatcher → LinearMatcher → FfnMatcher → Matcher):
 * the graph view, the opset, and the primitives every pattern uses.
 */
export class MatcherBase {
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

}
