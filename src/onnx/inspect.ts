/**
 * `inspectModel`: what is in an ONNX model — IR/opset, inputs/outputs, operator histogram,
 * parameters (total and by group), initializer bytes by data type, size on disk, and the attention
 * blocks {@link findAttentionBlocks} finds. A pure function of the decoded model (plus sizes the
 * caller measured); printing it is the CLI's job.
 */
import type { onnx } from 'onnx-proto';
import type Long from 'long';
import {
  findAttentionBlocks,
  findLayerNorms,
  type ActivationKind,
  type AttentionReport,
  type LinearRef,
  type ScalePlacement,
} from './attention.js';
import { parameterInitializers } from './graph.js';
import { dimsOf, elementCount, elementSize, EXTERNAL, toNumber } from './tensor.js';

function num(v: number | Long | null | undefined): number {
  return v === null || v === undefined ? 0 : toNumber(v, { clamp: true });
}

function elements(t: onnx.ITensorProto): number {
  return elementCount(dimsOf(t));
}

export type ParamGroup = 'embeddings' | 'attention' | 'ffn' | 'layernorm' | 'classifier' | 'crf' | 'other';
export const PARAM_GROUPS: readonly ParamGroup[] = ['embeddings', 'attention', 'ffn', 'layernorm', 'classifier', 'crf', 'other'];

export interface ValueInfoSummary {
  name: string;
  /** Element type name ('float32', 'int64', ...), or 'sequence'/'map'/'optional'/'unknown' for non-tensors. */
  elemType: string;
  /** Dims: a number, a symbolic name, or null when unknown; null when the rank is unknown. */
  shape: Array<number | string | null> | null;
}

export interface OpCount {
  op: string;
  /** '' for the default ONNX domain. */
  domain: string;
  count: number;
}

export interface DtypeBytes {
  dtype: string;
  tensors: number;
  elements: number;
  bytes: number;
}

export interface AttentionLayerSummary {
  layer: number;
  heads: number;
  headSize: number;
  hidden: number;
  /** FFN width, when the FFN was matched. */
  intermediate: number | null;
  qkv: 'separate' | 'fused';
  scale: ScalePlacement;
  activation: ActivationKind | null;
  layerNorm: 'LayerNormalization' | 'decomposed' | null;
}

export interface AttentionSummary {
  /** Number of attention blocks found. */
  layers: number;
  /** Heads of each found block, in layer order. */
  headsPerLayer: number[];
  /** Shared value when every block agrees, else null. */
  heads: number | null;
  headSize: number | null;
  hidden: number | null;
  /** "layers × heads" ("4 × 12"), or per-layer heads when they differ ("3 × [12,8,12]"); "none" when none. */
  shape: string;
  perLayer: AttentionLayerSummary[];
  /** From {@link findAttentionBlocks}: what could not be matched. */
  problems: string[];
}

export interface InspectResult {
  path?: string;
  irVersion: number;
  producer: { name: string; version: string };
  domain: string;
  modelVersion: number;
  graphName: string;
  /** Operator sets imported, default domain written as 'ai.onnx'. */
  opsets: Array<{ domain: string; version: number }>;
  metadata: Record<string, string>;
  inputs: ValueInfoSummary[];
  outputs: ValueInfoSummary[];
  /** Top-level graph nodes. */
  nodes: number;
  /** Op types by count (descending), then name. */
  ops: OpCount[];
  /**
   * Parameters: floating-point initializers with more than one element, plus integer initializers
   * holding quantized weights (inputs of DequantizeLinear / MatMulInteger / QLinearMatMul / ...).
   * Shape constants, int64 index buffers and single-element constants are `constants`.
   */
  parameters: { total: number; tensors: number; groups: Record<ParamGroup, number> };
  constants: { tensors: number; elements: number };
  initializers: { count: number; bytes: number; byDtype: DtypeBytes[]; external: number };
  /** Size on disk, as measured by the caller (file, external data, both). */
  size: { fileBytes?: number; externalBytes?: number; totalBytes?: number };
  attention: AttentionSummary;
}

const DTYPE_NAMES: Record<number, string> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  8: 'string',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  12: 'uint32',
  13: 'uint64',
  14: 'complex64',
  15: 'complex128',
  16: 'bfloat16',
  17: 'float8e4m3fn',
  18: 'float8e4m3fnuz',
  19: 'float8e5m2',
  20: 'float8e5m2fnuz',
  21: 'uint4',
  22: 'int4',
  23: 'float4e2m1',
};

/** ONNX element type name ('float32', ...) for a TensorProto.DataType value. */
export function dtypeName(dt: number): string {
  return DTYPE_NAMES[dt] ?? `dtype(${dt})`;
}

/** Bytes a tensor's data takes (raw_data, typed fields, or external data length). */
export function tensorBytes(t: onnx.ITensorProto): number {
  const dt = t.dataType ?? 0;
  if (t.dataLocation === EXTERNAL) {
    const len = (t.externalData ?? []).find((e) => e.key === 'length')?.value;
    if (len !== undefined && len !== null && /^\d+$/.test(len)) return Number(len);
  } else if (t.rawData && t.rawData.length > 0) {
    return t.rawData.length;
  }
  if (dt === 8) return (t.stringData ?? []).reduce((a, s) => a + s.length, 0);
  return Math.ceil(elements(t) * (elementSize(dt) ?? 0));
}

function valueInfo(v: onnx.IValueInfoProto): ValueInfoSummary {
  const type = v.type;
  const tt = type?.tensorType ?? type?.sparseTensorType;
  if (!tt) {
    const kind = type?.sequenceType ? 'sequence' : type?.mapType ? 'map' : type?.optionalType ? 'optional' : 'unknown';
    return { name: v.name ?? '', elemType: kind, shape: null };
  }
  const shape = tt.shape
    ? (tt.shape.dim ?? []).map((d): number | string | null => {
        if (d.dimParam) return d.dimParam;
        if (d.dimValue !== null && d.dimValue !== undefined) return num(d.dimValue);
        return null;
      })
    : null;
  return { name: v.name ?? '', elemType: dtypeName(tt.elemType ?? 0), shape };
}

const NAME_RULES: Array<[RegExp, ParamGroup]> = [
  [/layer_?norm|(^|[._/])ln(_?\d+|_f)?([._/]|$)|norm[._/](weight|bias|gamma|beta)/i, 'layernorm'],
  [/(^|[._/])crf([._/]|$)|transitions/i, 'crf'],
  [/embed/i, 'embeddings'],
  [/(^|[._/])(classifier|cls|head|heads|qa_outputs|score|logits|output_layer)([._/]|$)/i, 'classifier'],
  [/attention|attn|(^|[._/])(query|key|value|q_proj|k_proj|v_proj|o_proj|qkv|out_proj)([._/]|$)/i, 'attention'],
  [/intermediate|ffn|mlp|feed_?forward|(^|[._/])fc\d?([._/]|$)|output[._/]dense/i, 'ffn'],
];

/** Group of a parameter by its (Hugging Face style) name alone, or undefined. */
export function groupByName(name: string): ParamGroup | undefined {
  for (const [re, g] of NAME_RULES) if (re.test(name)) return g;
  return undefined;
}

function linearParams(l: LinearRef): string[] {
  return l.bias ? [l.weight, l.bias.initializer] : [l.weight];
}

/** Summarize a finder report per layer. */
export function summarizeAttention(report: AttentionReport): AttentionSummary {
  const perLayer: AttentionLayerSummary[] = report.blocks.map((b) => ({
    layer: b.layer,
    heads: b.numHeads,
    headSize: b.headSize,
    hidden: b.hidden,
    intermediate: b.ffn ? b.ffn.intermediate.outFeatures : null,
    qkv: b.qkv.kind,
    scale: b.scale.placement,
    activation: b.ffn ? b.ffn.activation.kind : null,
    layerNorm: b.layerNorm ? b.layerNorm.kind : null,
  }));
  const uniform = <T>(xs: T[]): T | null => (xs.length > 0 && xs.every((x) => x === xs[0]) ? xs[0] : null);
  const headsPerLayer = perLayer.map((l) => l.heads);
  const heads = uniform(headsPerLayer);
  return {
    layers: perLayer.length,
    headsPerLayer,
    heads,
    headSize: uniform(perLayer.map((l) => l.headSize)),
    hidden: uniform(perLayer.map((l) => l.hidden)),
    shape:
      perLayer.length === 0 ? 'none' : heads !== null ? `${perLayer.length} × ${heads}` : `${perLayer.length} × [${headsPerLayer.join(',')}]`,
    perLayer,
    problems: report.problems,
  };
}

/**
 * Describe `model`. `opts.fileBytes` / `opts.externalBytes` are the sizes of the .onnx file and its
 * external data as measured on disk (the caller reads the files; this function does no I/O).
 * Pass `opts.attention` to reuse a report already computed for this model.
 */
export function inspectModel(
  model: onnx.IModelProto,
  opts: { onnxPath?: string; fileBytes?: number; externalBytes?: number; attention?: AttentionReport } = {},
): InspectResult {
  const graph: onnx.IGraphProto = model.graph ?? {};
  const nodes = graph.node ?? [];
  const inits = graph.initializer ?? [];

  // Operator histogram.
  const hist = new Map<string, OpCount>();
  for (const n of nodes) {
    const domain = n.domain === 'ai.onnx' ? '' : (n.domain ?? '');
    const key = `${domain}\u0000${n.opType ?? ''}`;
    const e = hist.get(key);
    if (e) e.count++;
    else hist.set(key, { op: n.opType ?? '', domain, count: 1 });
  }
  const ops = [...hist.values()].sort((a, b) => b.count - a.count || a.op.localeCompare(b.op) || a.domain.localeCompare(b.domain));

  // Who writes each tensor.
  const producer = new Map<string, onnx.INodeProto>();
  for (const n of nodes) for (const o of n.output ?? []) if (o) producer.set(o, n);

  // Parameters vs constants (the rule every report uses); bytes by dtype.
  const paramNames = parameterInitializers(graph);
  const isParam = new Map<string, boolean>();
  const byDtype = new Map<string, DtypeBytes>();
  let bytes = 0;
  let external = 0;
  let constTensors = 0;
  let constElements = 0;
  for (const t of inits) {
    const name = t.name ?? '';
    const dt = t.dataType ?? 0;
    const n = elements(t);
    const b = tensorBytes(t);
    bytes += b;
    if (t.dataLocation === EXTERNAL) external++;
    const dn = dtypeName(dt);
    const e = byDtype.get(dn) ?? { dtype: dn, tensors: 0, elements: 0, bytes: 0 };
    e.tensors++;
    e.elements += n;
    e.bytes += b;
    byDtype.set(dn, e);
    const param = paramNames.has(name);
    isParam.set(name, param);
    if (!param) {
      constTensors++;
      constElements += n;
    }
  }

  // Attention (and FFN/LayerNorm) structure.
  const report = opts.attention ?? findAttentionBlocks(model);
  const group = new Map<string, ParamGroup>();
  const assign = (names: Iterable<string>, g: ParamGroup): void => {
    for (const nm of names) if (isParam.get(nm) && !group.has(nm)) group.set(nm, g);
  };
  for (const b of report.blocks) {
    const qkv = b.qkv.kind === 'separate' ? [b.qkv.q, b.qkv.k, b.qkv.v] : [b.qkv.linear];
    assign([...qkv, b.output].flatMap(linearParams), 'attention');
    if (b.layerNorm) assign([b.layerNorm.scale, ...(b.layerNorm.bias ? [b.layerNorm.bias] : [])], 'layernorm');
    if (b.ffn) {
      assign([b.ffn.intermediate, b.ffn.output].flatMap(linearParams), 'ffn');
      const ln = b.ffn.layerNorm;
      if (ln) assign([ln.scale, ...(ln.bias ? [ln.bias] : [])], 'layernorm');
    }
  }
  for (const ln of findLayerNorms(model)) assign([ln.scale, ...(ln.bias ? [ln.bias] : [])], 'layernorm');
  // Embedding tables: the data input of a Gather (directly or through DequantizeLinear).
  for (const n of nodes) {
    if (n.opType !== 'Gather' && n.opType !== 'GatherBlockQuantized') continue;
    const data = n.input?.[0] ?? '';
    const dq = producer.get(data);
    assign(dq?.opType === 'DequantizeLinear' ? [dq.input?.[0] ?? ''] : [data], 'embeddings');
  }
  // The head: dense layers on the way back from each graph output (before reaching a LayerNorm or block).
  const headParams: string[] = [];
  const visited = new Set<onnx.INodeProto>();
  const stack: Array<{ t: string; depth: number }> = (graph.output ?? []).map((o) => ({ t: o.name ?? '', depth: 0 }));
  const stopAt = new Set(['Shape', 'ReduceMean', 'LayerNormalization', 'Softmax', 'Sqrt', 'Erf', 'Tanh']);
  while (stack.length > 0) {
    const { t, depth } = stack.pop() ?? { t: '', depth: 0 };
    const n = producer.get(t);
    if (!n || visited.has(n) || depth > 8) continue;
    visited.add(n);
    const op = n.opType ?? '';
    if (stopAt.has(op)) continue;
    for (const x of n.input ?? []) {
      if (!x) continue;
      if (isParam.has(x)) headParams.push(x);
      else {
        const p = producer.get(x);
        if (p && (p.opType === 'Transpose' || p.opType === 'DequantizeLinear') && isParam.has(p.input?.[0] ?? '')) {
          headParams.push(p.input?.[0] ?? '');
        } else if (op !== 'MatMul' && op !== 'Gemm' && op !== 'MatMulInteger') {
          stack.push({ t: x, depth: depth + 1 });
        }
        // A dense layer's data input belongs to the encoder: stop there.
      }
    }
  }
  assign(
    headParams.filter((nm) => !group.has(nm) && (groupByName(nm) ?? 'classifier') === 'classifier'),
    'classifier',
  );
  // Names (Hugging Face style) for the rest, then 'other'.
  for (const t of inits) {
    const nm = t.name ?? '';
    if (!isParam.get(nm) || group.has(nm)) continue;
    group.set(nm, groupByName(nm) ?? 'other');
  }
  const groups = Object.fromEntries(PARAM_GROUPS.map((g) => [g, 0])) as Record<ParamGroup, number>;
  let total = 0;
  let tensors = 0;
  for (const t of inits) {
    const nm = t.name ?? '';
    if (!isParam.get(nm)) continue;
    const n = elements(t);
    total += n;
    tensors++;
    groups[group.get(nm) ?? 'other'] += n;
  }

  const size: InspectResult['size'] = {};
  if (opts.fileBytes !== undefined) size.fileBytes = opts.fileBytes;
  if (opts.externalBytes !== undefined) size.externalBytes = opts.externalBytes;
  if (opts.fileBytes !== undefined || opts.externalBytes !== undefined) {
    size.totalBytes = (opts.fileBytes ?? 0) + (opts.externalBytes ?? 0);
  }
  const initNames = new Set(inits.map((t) => t.name ?? ''));
  const metadata: Record<string, string> = {};
  for (const p of model.metadataProps ?? []) if (p.key) metadata[p.key] = p.value ?? '';

  return {
    ...(opts.onnxPath !== undefined ? { path: opts.onnxPath } : {}),
    irVersion: num(model.irVersion),
    producer: { name: model.producerName ?? '', version: model.producerVersion ?? '' },
    domain: model.domain ?? '',
    modelVersion: num(model.modelVersion),
    graphName: graph.name ?? '',
    opsets: (model.opsetImport ?? [])
      .map((o) => ({ domain: o.domain ? o.domain : 'ai.onnx', version: num(o.version) }))
      .sort((a, b) => a.domain.localeCompare(b.domain)),
    metadata,
    inputs: (graph.input ?? []).filter((v) => !initNames.has(v.name ?? '')).map(valueInfo),
    outputs: (graph.output ?? []).map(valueInfo),
    nodes: nodes.length,
    ops,
    parameters: { total, tensors, groups },
    constants: { tensors: constTensors, elements: constElements },
    initializers: {
      count: inits.length,
      bytes,
      byDtype: [...byDtype.values()].sort((a, b) => b.bytes - a.bytes || a.dtype.localeCompare(b.dtype)),
      external,
    },
    size,
    attention: summarizeAttention(report),
  };
}
