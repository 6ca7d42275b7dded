/**
 * Planning: which nodes of a float graph are quantized (every MatMul/Gemm with float inputs, including the
 * activation × activation attention products, and the embedding Gathers), which candidates stay float and
 * why (`--exclude`, unsupported shapes or types), and which ops stay float by design (LayerNorm, Softmax,
 * GELU, Add, reshapes ... are not in the registry). Pure: the model is not modified.
 */
import { GraphError, UsageError } from '../errors.js';
import type { onnx } from '../onnx/codec.js';
import { attrInt, attrInts, constantNodeValue, GraphIndex, opsetVersion, topologicalSort } from '../onnx/graph.js';
import { DataType, readTensor, type TensorData } from '../onnx/tensor.js';
import { nodeLabel } from './ops/common.js';
import { NOT_CANDIDATE } from './ops/gather.js';
import { quantizableOpTypes, quantizerFor, type PlanContext } from './registry.js';
import type { FloatNode, NodePlan, QuantFormat, QuantMode, QuantPlan } from './types.js';

/** Ops that mark a model as already quantized. */
const QUANTIZED_OPS = new Set([
  'QuantizeLinear',
  'DequantizeLinear',
  'DynamicQuantizeLinear',
  'MatMulInteger',
  'QLinearMatMul',
  'ConvInteger',
  'QLinearConv',
  'QGemm',
  'QAttention',
  'DynamicQuantizeMatMul',
  'DynamicQuantizeLSTM',
  'MatMulIntegerToFloat',
]);

export interface PlanOptions {
  format: QuantFormat;
  mode: QuantMode;
  perChannel: boolean;
  /** Node names (or `<opType>#<index>` labels) and op types to keep in float. */
  exclude?: readonly string[];
}

/** The graph's nodes in the topological order the planner and the rewriter both use. */
export function sortedNodes(graph: onnx.IGraphProto): onnx.INodeProto[] {
  return topologicalSort(graph);
}

/** Output element types of a node from its op type and known input types (undefined when not known). */
function outputTypes(node: onnx.INodeProto, typeOf: (t: string) => number | undefined): Array<number | undefined> {
  const inputs = node.input ?? [];
  const n = (node.output ?? []).length;
  const first = (): number | undefined => {
    for (const i of inputs) {
      const t = i ? typeOf(i) : undefined;
      if (t !== undefined) return t;
    }
    return undefined;
  };
  const all = (t: number | undefined): Array<number | undefined> => new Array<number | undefined>(n).fill(t);
  const domain = node.domain ?? '';
  if (domain !== '' && domain !== 'ai.onnx') return all(undefined);
  switch (node.opType) {
    case 'Cast':
      return all(attrInt(node, 'to', DataType.UNDEFINED) || undefined);
    case 'CastLike':
      return all(inputs[1] ? typeOf(inputs[1]) : undefined);
    case 'Shape':
    case 'Size':
    case 'NonZero':
    case 'ArgMax':
    case 'ArgMin':
    case 'NonMaxSuppression':
      return all(DataType.INT64);
    case 'Equal':
    case 'Less':
    case 'Greater':
    case 'LessOrEqual':
    case 'GreaterOrEqual':
    case 'Not':
    case 'And':
    case 'Or':
    case 'Xor':
    case 'IsNaN':
    case 'IsInf':
      return all(DataType.BOOL);
    case 'Constant': {
      const v = constantNodeValue(node);
      return all(v?.dataType);
    }
    case 'ConstantOfShape': {
      const a = (node.attribute ?? []).find((x) => x.name === 'value');
      return all(a?.t?.dataType ?? DataType.FLOAT);
    }
    case 'Where':
      return all(inputs[1] ? typeOf(inputs[1]) : undefined);
    case 'QuantizeLinear':
      return all(inputs[2] ? (typeOf(inputs[2]) ?? DataType.UINT8) : DataType.UINT8);
    case 'DynamicQuantizeLinear':
      return [DataType.UINT8, DataType.FLOAT, DataType.UINT8];
    case 'DequantizeLinear':
      return all(DataType.FLOAT);
    case 'MatMulInteger':
    case 'ConvInteger':
      return all(DataType.INT32);
    case 'TopK':
      return [first(), DataType.INT64];
    case 'Dropout':
      return [first(), DataType.BOOL];
    case 'OneHot':
      return all(inputs[2] ? typeOf(inputs[2]) : undefined);
    case 'If':
    case 'Loop':
    case 'Scan':
    case 'SequenceAt':
    case 'RandomNormal':
    case 'RandomUniform':
    case 'EyeLike':
    case 'Multinomial':
      return all(undefined);
    default:
      return all(first());
  }
}

/** Element types of every tensor that can be told from declarations and op semantics. */
export function inferElemTypes(graph: onnx.IGraphProto, nodes: onnx.INodeProto[] = sortedNodes(graph)): Map<string, number> {
  const types = new Map<string, number>();
  for (const t of graph.initializer ?? []) if (t.name && t.dataType) types.set(t.name, t.dataType);
  for (const v of [...(graph.input ?? []), ...(graph.valueInfo ?? []), ...(graph.output ?? [])]) {
    const et = v.type?.tensorType?.elemType;
    if (v.name && et && !types.has(v.name)) types.set(v.name, et);
  }
  const typeOf = (t: string): number | undefined => types.get(t);
  for (const node of nodes) {
    const outs = outputTypes(node, typeOf);
    (node.output ?? []).forEach((o, i) => {
      const t = outs[i];
      if (o && t !== undefined && !types.has(o)) types.set(o, t);
    });
  }
  return types;
}

/** N-D transpose of row-major `data` with dims `dims` by `perm` (default: reversed axes). */
function transposeData(t: TensorData, perm: number[] | undefined): TensorData {
  const r = t.dims.length;
  const p = perm && perm.length === r ? perm : [...Array(r).keys()].reverse();
  const outDims = p.map((a) => t.dims[a]);
  const inStrides = new Array<number>(r).fill(1);
  for (let i = r - 2; i >= 0; i--) inStrides[i] = inStrides[i + 1] * t.dims[i + 1];
  const src = t.data as Float32Array;
  const out = new Float32Array(src.length);
  const idx = new Array<number>(r).fill(0);
  for (let o = 0; o < out.length; o++) {
    let off = 0;
    for (let i = 0; i < r; i++) off += idx[i] * inStrides[p[i]];
    out[o] = src[off];
    for (let i = r - 1; i >= 0; i--) {
      if (++idx[i] < outDims[i]) break;
      idx[i] = 0;
    }
  }
  return { dataType: t.dataType, dims: outDims, data: out };
}

const FOLDED = new WeakMap<GraphIndex, Map<string, TensorData | null>>();

/**
 * The value of a constant tensor: an initializer (a view of its data), a Constant node's output, or a
 * float Transpose/Identity of a constant (unfolded exports transpose weights at run time); undefined for
 * computed tensors.
 */
/**
 * The tensor behind a chain of Identity nodes (torch.onnx.export writes one initializer for a parameter
 * shared by several layers, and an Identity of it for every further use, as for ALBERT's shared layer group).
 */
export function identitySource(index: GraphIndex, tensor: string): string {
  let t = tensor;
  for (let i = 0; i < 16; i++) {
    const p = index.producer(t);
    if (!p || p.node.opType !== 'Identity' || (p.node.domain ?? '') !== '') return t;
    const src = (p.node.input ?? [])[0];
    if (!src) return t;
    t = src;
  }
  return t;
}

export function constantOf(index: GraphIndex, tensor: string): TensorData | undefined {
  const init = index.initializer(tensor);
  if (init) return readTensor(init, { view: true });
  const p = index.producer(tensor);
  if (!p || (p.node.domain ?? '') !== '' || p.outputIndex !== 0) return undefined;
  if (p.node.opType === 'Constant') return constantNodeValue(p.node);
  if (p.node.opType !== 'Transpose' && p.node.opType !== 'Identity') return undefined;
  let cache = FOLDED.get(index);
  if (!cache) FOLDED.set(index, (cache = new Map()));
  const hit = cache.get(tensor);
  if (hit !== undefined) return hit ?? undefined;
  const src = (p.node.input ?? [])[0];
  const v = src ? constantOf(index, src) : undefined;
  let out: TensorData | undefined;
  if (v && v.dataType === DataType.FLOAT) out = p.node.opType === 'Identity' ? v : transposeData(v, attrInts(p.node, 'perm'));
  cache.set(tensor, out ?? null);
  return out;
}

/** The default-domain opset of a model, with a GraphError when it has none. */
export function modelOpset(model: onnx.IModelProto): number {
  const v = opsetVersion(model, '');
  if (v === undefined) {
    throw new GraphError('the model imports no default-domain (ai.onnx) opset', {
      hint: 're-export the model with torch.onnx.export(opset_version=13 or later)',
    });
  }
  return v;
}

/**
 * Plan the quantization of `model`. Throws GraphError for models that are already quantized or whose
 * opset is too old, and UsageError for `exclude` entries that match no node and no op type.
 */
export function planQuantization(model: onnx.IModelProto, opts: PlanOptions): QuantPlan {
  const graph = model.graph;
  if (!graph) throw new GraphError('the model has no graph', { hint: 're-export the model' });
  const opset = modelOpset(model);
  const minOpset = opts.mode === 'dynamic' ? 11 : 10;
  if (opset < minOpset) {
    throw new GraphError(`opset ${opset} has no ${opts.mode === 'dynamic' ? 'DynamicQuantizeLinear (opset 11)' : 'QuantizeLinear (opset 10)'}`, {
      hint: `re-export the model with opset ${Math.max(13, minOpset)} or later (torch.onnx.export(opset_version=...))`,
    });
  }
  const nodes = sortedNodes(graph);
  const already = nodes.find((n) => QUANTIZED_OPS.has(n.opType ?? '') && ((n.domain ?? '') === '' || n.domain === 'com.microsoft'));
  if (already) {
    throw new GraphError(`the model is already quantized (it has a ${already.opType} node)`, {
      node: already.name || already.opType || undefined,
      hint: 'quantize the float model the quantized one was made from',
    });
  }
  const perChannel = opts.perChannel && opset >= 13;
  const index = new GraphIndex({ ...graph, node: nodes });
  const types = inferElemTypes(graph, nodes);
  const ctx: PlanContext = {
    index,
    opset,
    mode: opts.mode,
    format: opts.format,
    perChannel,
    elemType: (t) => types.get(t),
    constant: (t) => constantOf(index, t),
  };

  const exclude = new Set(opts.exclude ?? []);
  const labels = new Set<string>();
  const opTypes = new Set<string>();
  nodes.forEach((n, i) => {
    labels.add(nodeLabel(n, i));
    opTypes.add(n.opType ?? '');
  });
  const unknown = [...exclude].filter((e) => !labels.has(e) && !opTypes.has(e));
  if (unknown.length > 0) {
    throw new UsageError(`--exclude ${unknown.map((u) => `"${u}"`).join(', ')} matches no node name and no op type of the model`, {
      hint: `name nodes as \`ranerc inspect\` lists them, or op types such as ${quantizableOpTypes().join(', ')}`,
    });
  }

  const planned: NodePlan[] = [];
  const leftInFloat: FloatNode[] = [];
  const floatByDesign: Record<string, number> = {};
  const byDesign = (key: string): void => {
    floatByDesign[key] = (floatByDesign[key] ?? 0) + 1;
  };
  nodes.forEach((node, i) => {
    const opType = node.opType ?? '?';
    const label = nodeLabel(node, i);
    const q = quantizerFor(node);
    if (!q) {
      byDesign((node.domain ?? '') === '' ? opType : `${node.domain}.${opType}`);
      return;
    }
    const outcome = q.plan(node, ctx);
    if ('reason' in outcome) {
      if (outcome.reason.startsWith(NOT_CANDIDATE)) byDesign(`${opType} (index arithmetic)`);
      else leftInFloat.push({ node: label, opType, reason: outcome.reason });
      return;
    }
    if (exclude.has(label) || exclude.has(opType)) {
      leftInFloat.push({ node: label, opType, reason: `excluded by --exclude ${exclude.has(label) ? label : opType}` });
      return;
    }
    planned.push({ label, opType, index: i, inputs: outcome.inputs, calibrateOutputs: outcome.calibrateOutputs ?? [], output: outcome.output });
  });
  return { nodes: planned, leftInFloat, floatByDesign, perChannel, opset };
}

/** Activation tensors whose ranges a static plan needs (inputs of quantized nodes, plus QOperator outputs). */
export function tensorsToCalibrate(plan: QuantPlan): string[] {
  const out = new Set<string>();
  for (const n of plan.nodes) {
    for (const p of n.inputs) if (p.kind === 'activation') out.add(p.tensor);
    for (const t of n.calibrateOutputs) out.add(t);
  }
  return [...out];
}

/** A copy of `plan` with the nodes labelled in `labels` moved to `leftInFloat` with `reason`. */
export function withNodesInFloat(plan: QuantPlan, labels: ReadonlySet<string>, reason: (label: string) => string): QuantPlan {
  return {
    ...plan,
    nodes: plan.nodes.filter((n) => !labels.has(n.label)),
    leftInFloat: [
      ...plan.leftInFloat,
      ...plan.nodes.filter((n) => labels.has(n.label)).map((n) => ({ node: n.label, opType: n.opType, reason: reason(n.label) })),
    ],
  };
}

/**
 * The weights-only plan: each planned node keeps only its weight inputs (no activation Q/DQ, no
 * calibrated outputs), so the QDQ rewrite puts DequantizeLinear on the int8 weights and the node
 * computes in float. Nodes without a weight input (activation × activation products) stay float.
 */
export function weightsOnlyPlan(plan: QuantPlan): QuantPlan {
  const noWeight = new Set(plan.nodes.filter((n) => !n.inputs.some((p) => p.kind === 'weight')).map((n) => n.label));
  const kept = withNodesInFloat(plan, noWeight, () => 'weights-only: the node has no constant weight input');
  return { ...kept, nodes: kept.nodes.map((n) => ({ ...n, inputs: n.inputs.filter((p) => p.kind === 'weight'), calibrateOutputs: [] })) };
}
