/**
 * A compiled view of one ONNX node: name, op type, inputs/outputs and typed attribute getters.
 */
import type { onnx } from '../onnx/codec.js';
import { GraphError } from '../errors.js';
import { num } from './tensordata.js';

export type AttrValue =
  | { type: 'float'; value: number }
  | { type: 'int'; value: number }
  | { type: 'string'; value: string }
  | { type: 'tensor'; value: onnx.ITensorProto }
  | { type: 'sparse'; value: onnx.ISparseTensorProto }
  | { type: 'floats'; value: number[] }
  | { type: 'ints'; value: number[] }
  | { type: 'strings'; value: string[] }
  | { type: 'graph' | 'graphs' | 'tensors' | 'other'; value: unknown };

const decoder = new TextDecoder();

function parseAttr(a: onnx.IAttributeProto): AttrValue {
  // AttributeProto.AttributeType: FLOAT=1 INT=2 STRING=3 TENSOR=4 GRAPH=5 FLOATS=6 INTS=7 STRINGS=8
  // TENSORS=9 GRAPHS=10 SPARSE_TENSOR=11 SPARSE_TENSORS=12. Old exporters leave `type` unset.
  let type = a.type ?? 0;
  if (type === 0) {
    if (a.floats && a.floats.length) type = 6;
    else if (a.ints && a.ints.length) type = 7;
    else if (a.strings && a.strings.length) type = 8;
    else if (a.t) type = 4;
    else if (a.g) type = 5;
    else if (a.sparseTensor) type = 11;
    else if (a.s && a.s.length) type = 3;
    else if (a.i !== undefined && a.i !== null && num(a.i) !== 0) type = 2;
    else type = 1;
  }
  switch (type) {
    case 1: return { type: 'float', value: a.f ?? 0 };
    case 2: return { type: 'int', value: num(a.i) };
    case 3: return { type: 'string', value: decoder.decode(a.s ?? new Uint8Array()) };
    case 4: return { type: 'tensor', value: a.t ?? {} };
    case 6: return { type: 'floats', value: [...(a.floats ?? [])] };
    case 7: return { type: 'ints', value: (a.ints ?? []).map((v) => num(v)) };
    case 8: return { type: 'strings', value: (a.strings ?? []).map((s) => decoder.decode(s)) };
    case 11: return { type: 'sparse', value: a.sparseTensor ?? {} };
    case 5: return { type: 'graph', value: a.g };
    case 10: return { type: 'graphs', value: a.graphs };
    case 9: return { type: 'tensors', value: a.tensors };
    default: return { type: 'other', value: undefined };
  }
}

export class NodeView {
  readonly name: string;
  readonly opType: string;
  readonly domain: string;
  /** Input names; '' marks an omitted optional input. */
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attrs: ReadonlyMap<string, AttrValue>;
  /** Position in the graph's node list. */
  readonly index: number;

  constructor(node: onnx.INodeProto, index: number) {
    this.opType = node.opType ?? '';
    this.domain = node.domain === 'ai.onnx' ? '' : (node.domain ?? '');
    this.index = index;
    this.name = node.name && node.name.length > 0 ? node.name : `${this.opType}#${index}`;
    this.inputs = [...(node.input ?? [])];
    this.outputs = [...(node.output ?? [])];
    const m = new Map<string, AttrValue>();
    for (const a of node.attribute ?? []) m.set(a.name ?? '', parseAttr(a));
    this.attrs = m;
  }

  /** A GraphError about this node (unsupported attribute value, bad input...). */
  error(message: string, hint: string): GraphError {
    return new GraphError(`${this.opType} node "${this.name}": ${message}`, { node: this.name, hint });
  }

  has(name: string): boolean {
    return this.attrs.has(name);
  }

  /** Whether optional input `i` is present. */
  hasInput(i: number): boolean {
    return i < this.inputs.length && this.inputs[i] !== '';
  }

  int(name: string, dflt: number): number;
  int(name: string): number | undefined;
  int(name: string, dflt?: number): number | undefined {
    const a = this.attrs.get(name);
    if (!a) return dflt;
    if (a.type === 'int') return a.value;
    if (a.type === 'float') return a.value;
    throw this.error(`attribute ${name} should be an int, is ${a.type}`, 'the model is malformed; re-export it');
  }

  float(name: string, dflt: number): number;
  float(name: string): number | undefined;
  float(name: string, dflt?: number): number | undefined {
    const a = this.attrs.get(name);
    if (!a) return dflt;
    if (a.type === 'float' || a.type === 'int') return a.value;
    throw this.error(`attribute ${name} should be a float, is ${a.type}`, 'the model is malformed; re-export it');
  }

  ints(name: string): number[] | undefined {
    const a = this.attrs.get(name);
    if (!a) return undefined;
    if (a.type === 'ints') return a.value;
    if (a.type === 'int') return [a.value];
    if (a.type === 'floats' && a.value.length === 0) return [];
    throw this.error(`attribute ${name} should be ints, is ${a.type}`, 'the model is malformed; re-export it');
  }

  floats(name: string): number[] | undefined {
    const a = this.attrs.get(name);
    if (!a) return undefined;
    if (a.type === 'floats') return a.value;
    if (a.type === 'float') return [a.value];
    if (a.type === 'ints') return a.value;
    throw this.error(`attribute ${name} should be floats, is ${a.type}`, 'the model is malformed; re-export it');
  }

  string(name: string, dflt: string): string;
  string(name: string): string | undefined;
  string(name: string, dflt?: string): string | undefined {
    const a = this.attrs.get(name);
    if (!a) return dflt;
    if (a.type === 'string') return a.value;
    throw this.error(`attribute ${name} should be a string, is ${a.type}`, 'the model is malformed; re-export it');
  }

  strings(name: string): string[] | undefined {
    const a = this.attrs.get(name);
    if (!a) return undefined;
    if (a.type === 'strings') return a.value;
    throw this.error(`attribute ${name} should be strings, is ${a.type}`, 'the model is malformed; re-export it');
  }

  tensor(name: string): onnx.ITensorProto | undefined {
    const a = this.attrs.get(name);
    if (!a) return undefined;
    if (a.type === 'tensor') return a.value;
    throw this.error(`attribute ${name} should be a tensor, is ${a.type}`, 'the model is malformed; re-export it');
  }
}
