/**
 * The graph rewrite: turn a float model plus a {@link QuantPlan} (and, for static mode, calibrated
 * activation ranges) into a quantized model, through each op family's quantizer (registry.ts). Shared
 * pieces are made once: one Q/DQ pair (or QuantizeLinear / DynamicQuantizeLinear) per activation tensor,
 * one int8 initializer (+ DequantizeLinear in QDQ) per weight. Float initializers no longer read are
 * dropped. The input model is not modified.
 */
import { GraphError } from '../errors.js';
import type { onnx } from '../onnx/codec.js';
import { GraphIndex, removeUnused } from '../onnx/graph.js';
import { DataType, makeTensor } from '../onnx/tensor.js';
import {
  dequantizedName,
  dequantizeNodeName,
  quantizedName,
  quantizeNodeName,
  scaleName,
  zeroPointName,
} from './naming.js';
import { intAttr, makeNode } from './ops/common.js';
import { constantOf, identitySource, sortedNodes } from './plan.js';
import { activationQParams, dequantizeLinear, quantizeLinear, sqnr, weightParams, type QParams, type Range } from './qparams.js';
import { quantizerFor, type Emitter, type QuantizedRef, type WeightRef } from './registry.js';
import type { FloatNode, NodePlan, QuantPlan, RewriteOptions, RewriteResult } from './types.js';

interface WeightKey {
  axis: number | undefined;
  transpose: boolean;
}

function transpose2d(v: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(v.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = v[r * cols + c];
  return out;
}

/**
 * Nodes the rewrite cannot honour: activations without a calibrated range (static mode), and weights
 * another planned node needs in a different layout (per-channel axis or transposition).
 */
function unrewritable(plan: QuantPlan, ranges: ReadonlyMap<string, Range>, opts: RewriteOptions, index: GraphIndex): Map<string, string> {
  const out = new Map<string, string>();
  const weights = new Map<string, { key: WeightKey; by: string }>();
  for (const n of plan.nodes) {
    if (opts.mode === 'static') {
      const missing = [...n.inputs.filter((p) => p.kind === 'activation').map((p) => p.tensor), ...n.calibrateOutputs].find(
        (t) => !ranges.has(t),
      );
      if (missing) {
        out.set(n.label, `no calibration range for "${missing}" (the calibration runs never computed it)`);
        continue;
      }
    }
    for (const p of n.inputs) {
      if (p.kind !== 'weight') continue;
      const transpose = n.opType === 'Gemm' && !(opts.format === 'qdq' && opts.mode === 'static') && p.index === 1;
      const key: WeightKey = { axis: p.channelAxis, transpose };
      const source = identitySource(index, p.tensor);
      const prev = weights.get(source);
      if (!prev) weights.set(source, { key, by: n.label });
      else if (prev.key.axis !== key.axis || prev.key.transpose !== key.transpose) {
        out.set(n.label, `weight "${p.tensor}" is shared with ${prev.by}, which quantizes it in another layout`);
      }
    }
  }
  return out;
}

class GraphEmitter implements Emitter {
  readonly format;
  readonly mode;
  readonly opset: number;
  readonly params = new Map<string, QParams>();
  readonly weightSqnrDb = new Map<string, number>();
  readonly added: onnx.ITensorProto[] = [];
  private out: onnx.INodeProto[] = [];
  private readonly initNames = new Set<string>();
  private readonly qdq = new Map<string, string>();
  private readonly quantized = new Map<string, QuantizedRef>();
  private readonly dynamic = new Map<string, QuantizedRef>();
  private readonly weights = new Map<string, WeightRef>();
  private readonly weightDq = new Map<string, string>();
  /** Operator-set domains the rewrite needs imported (e.g. com.microsoft), with their versions. */
  readonly domains = new Map<string, number>();
  private readonly calibrated = new Map<string, { scale: string; zeroPoint: string; params: QParams }>();

  constructor(
    private readonly index: GraphIndex,
    private readonly ranges: ReadonlyMap<string, Range>,
    opts: RewriteOptions,
    opset: number,
  ) {
    this.format = opts.format;
    this.mode = opts.mode;
    this.opset = opset;
  }

  /** Send emitted nodes to `out`. */
  target(out: onnx.INodeProto[]): void {
    this.out = out;
  }

  /** Reserve a new name; a clash with a name the float graph already uses is a GraphError. */
  private claim(name: string): string {
    if (this.index.uniqueName(name) !== name) {
      throw new GraphError(`the model already has a tensor or node named "${name}"`, {
        node: name,
        hint: 'ranerc names quantized tensors <tensor>_quantized/_scale/_zero_point; rename the clashing tensor in the float model',
      });
    }
    return name;
  }

  node(node: onnx.INodeProto): void {
    if (node.name && node.name !== '' && !this.isOriginalName(node)) this.claim(node.name);
    for (const o of node.output ?? []) if (o && !this.index.producer(o) && !this.index.isGraphInput(o)) this.claim(o);
    this.out.push(node);
  }

  /** Rewritten nodes keep their original name (and outputs). */
  private isOriginalName(node: onnx.INodeProto): boolean {
    return this.index.nodeByName(node.name ?? '') !== undefined;
  }

  initializer(t: onnx.ITensorProto): string {
    const name = t.name ?? '';
    if (this.initNames.has(name)) return name;
    this.claim(name);
    this.initNames.add(name);
    this.added.push(t);
    return name;
  }

  activationParams(tensor: string): QParams | undefined {
    if (this.mode !== 'static') return undefined;
    const cached = this.params.get(tensor);
    if (cached) return cached;
    const r = this.ranges.get(tensor);
    if (!r) return undefined;
    const p = activationQParams(r);
    this.params.set(tensor, p);
    return p;
  }

  private staticRef(tensor: string): { scale: string; zeroPoint: string; params: QParams } {
    const done = this.calibrated.get(tensor);
    if (done) return done;
    const p = this.activationParams(tensor);
    if (!p) {
      throw new GraphError(`no calibrated range for "${tensor}"`, { node: tensor, hint: 'this is a ranerc bug; please report it' });
    }
    const ref = {
      scale: this.initializer(makeTensor(scaleName(tensor), DataType.FLOAT, [], p.scale)),
      zeroPoint: this.initializer(makeTensor(zeroPointName(tensor), DataType.UINT8, [], Uint8Array.of(p.zeroPoint[0]))),
      params: p,
    };
    this.calibrated.set(tensor, ref);
    return ref;
  }

  calibratedParams(tensor: string): { scale: string; zeroPoint: string; params: QParams } {
    return this.staticRef(tensor);
  }

  quantizeActivation(tensor: string): QuantizedRef {
    const done = this.quantized.get(tensor);
    if (done) return done;
    const { scale, zeroPoint } = this.staticRef(tensor);
    const q = quantizedName(tensor);
    this.node(makeNode('QuantizeLinear', quantizeNodeName(tensor), [tensor, scale, zeroPoint], [q]));
    const ref = { q, scale, zeroPoint };
    this.quantized.set(tensor, ref);
    return ref;
  }

  qdqActivation(tensor: string): string {
    const done = this.qdq.get(tensor);
    if (done) return done;
    const { q, scale, zeroPoint } = this.quantizeActivation(tensor);
    const dq = dequantizedName(tensor);
    this.node(makeNode('DequantizeLinear', dequantizeNodeName(tensor), [q, scale, zeroPoint], [dq]));
    this.qdq.set(tensor, dq);
    return dq;
  }

  dynamicQuantize(tensor: string): QuantizedRef {
    const done = this.dynamic.get(tensor);
    if (done) return done;
    const ref = { q: quantizedName(tensor), scale: scaleName(tensor), zeroPoint: zeroPointName(tensor) };
    this.node(makeNode('DynamicQuantizeLinear', quantizeNodeName(tensor), [tensor], [ref.q, ref.scale, ref.zeroPoint]));
    this.dynamic.set(tensor, ref);
    return ref;
  }

  floatConstant(tensor: string): Float32Array | undefined {
    const c = constantOf(this.index, tensor);
    return c && c.dataType === DataType.FLOAT ? (c.data as Float32Array) : undefined;
  }

  floatConstantDims(tensor: string): number[] | undefined {
    return constantOf(this.index, tensor)?.dims;
  }

  weight(name: string, axis: number | undefined, opts: { transpose2d?: boolean } = {}): WeightRef {
    const tensor = identitySource(this.index, name); // a shared weight is quantized once
    const done = this.weights.get(tensor);
    if (done) return done;
    const c = constantOf(this.index, tensor);
    if (!c || c.dataType !== DataType.FLOAT) {
      throw new GraphError(`"${tensor}" is not a float32 constant`, { node: tensor, hint: 'this is a ranerc bug; please report it' });
    }
    let values = c.data as Float32Array;
    let dims = c.dims;
    if (opts.transpose2d) {
      if (dims.length !== 2) throw new GraphError(`weight "${tensor}" is not 2-D`, { node: tensor, hint: 'this is a ranerc bug; please report it' });
      values = transpose2d(values, dims[0], dims[1]);
      dims = [dims[1], dims[0]];
    }
    const params = weightParams(values, dims, axis);
    const q = quantizeLinear(values, params, dims) as Int8Array;
    const pdims = axis === undefined ? [] : [params.scale.length];
    const ref: WeightRef = {
      q: this.initializer(makeTensor(quantizedName(tensor), DataType.INT8, dims, q)),
      scale: this.initializer(makeTensor(scaleName(tensor), DataType.FLOAT, pdims, params.scale)),
      zeroPoint: this.initializer(makeTensor(zeroPointName(tensor), DataType.INT8, pdims, new Int8Array(params.scale.length))),
      params,
      dims,
    };
    this.params.set(tensor, params);
    this.weightSqnrDb.set(tensor, sqnr(values, dequantizeLinear(q, params, dims)));
    this.weights.set(tensor, ref);
    return ref;
  }

  lstmWeight(name: string, perChannel: boolean): QuantizedRef {
    const tensor = identitySource(this.index, name);
    const done = this.weights.get(tensor);
    if (done) return done;
    const c = constantOf(this.index, tensor);
    if (!c || c.dataType !== DataType.FLOAT || c.dims.length !== 3) {
      throw new GraphError(`"${tensor}" is not a 3-D float32 constant`, { node: tensor, hint: 'this is a ranerc bug; please report it' });
    }
    const [dirs, rows, k] = c.dims;
    const values = c.data as Float32Array;
    // per direction: axis 0 of [dirs, rows, k]; per channel: axis 0 of [dirs·rows, k] (onnxruntime's reshape)
    const pd = perChannel ? [dirs * rows, k] : c.dims;
    const params = weightParams(values, pd, 0);
    const q = quantizeLinear(values, params, pd) as Int8Array;
    const qt = new Int8Array(q.length);
    for (let d = 0; d < dirs; d++) {
      const base = d * rows * k;
      for (let i = 0; i < rows; i++) for (let j = 0; j < k; j++) qt[base + j * rows + i] = q[base + i * k + j];
    }
    const sdims = perChannel ? [dirs, rows] : [dirs];
    const ref: WeightRef = {
      q: this.initializer(makeTensor(quantizedName(tensor), DataType.INT8, [dirs, k, rows], qt)),
      scale: this.initializer(makeTensor(scaleName(tensor), DataType.FLOAT, sdims, params.scale)),
      zeroPoint: this.initializer(makeTensor(zeroPointName(tensor), DataType.INT8, sdims, new Int8Array(params.scale.length))),
      params,
      dims: [dirs, k, rows],
    };
    this.params.set(tensor, params);
    this.weightSqnrDb.set(tensor, sqnr(values, dequantizeLinear(q, params, pd)));
    this.weights.set(tensor, ref);
    return ref;
  }

  domain(domain: string, version: number): void {
    if (!this.domains.has(domain)) this.domains.set(domain, version);
  }

  qdqWeight(name: string, axis: number | undefined): string {
    const tensor = identitySource(this.index, name);
    const done = this.weightDq.get(tensor);
    if (done) return done;
    const w = this.weight(tensor, axis);
    const dq = dequantizedName(tensor);
    this.node(makeNode('DequantizeLinear', dequantizeNodeName(tensor), [w.q, w.scale, w.zeroPoint], [dq], axis === undefined ? [] : [intAttr('axis', axis)]));
    this.weightDq.set(tensor, dq);
    return dq;
  }
}

/**
 * Quantize `model` as `plan` says. Static mode needs a range for every activation the plan quantizes
 * (`tensorsToCalibrate(plan)`); nodes without one stay float (listed in `leftInFloat`).
 */
export function rewriteModel(
  model: onnx.IModelProto,
  plan: QuantPlan,
  ranges: ReadonlyMap<string, Range>,
  opts: RewriteOptions,
): RewriteResult {
  const graph = model.graph;
  if (!graph) throw new GraphError('the model has no graph', { hint: 're-export the model' });
  const nodes = sortedNodes(graph);
  const index = new GraphIndex({ ...graph, node: nodes });
  const skip = unrewritable(plan, ranges, { ...opts, perChannel: plan.perChannel }, index);
  const byIndex = new Map<number, NodePlan>();
  for (const n of plan.nodes) if (!skip.has(n.label)) byIndex.set(n.index, n);
  const leftInFloat: FloatNode[] = plan.nodes.filter((n) => skip.has(n.label)).map((n) => ({ node: n.label, opType: n.opType, reason: skip.get(n.label) ?? '' }));

  const em = new GraphEmitter(index, ranges, opts, plan.opset);
  const out: onnx.INodeProto[] = [];
  em.target(out);
  const quantized: string[] = [];
  nodes.forEach((node, i) => {
    const p = byIndex.get(i);
    const q = p ? quantizerFor(node) : undefined;
    if (!p || !q) {
      out.push(node);
      return;
    }
    q.rewrite(node, p, em);
    quantized.push(p.label);
  });
  const newGraph: onnx.IGraphProto = { ...graph, node: out, initializer: [...(graph.initializer ?? []), ...em.added] };
  removeUnused(newGraph);
  const imports = [...(model.opsetImport ?? [])];
  for (const [domain, version] of em.domains) {
    if (!imports.some((o) => (o.domain ?? '') === domain)) imports.push({ domain, version });
  }
  const result = { ...model, graph: newGraph, opsetImport: imports } as onnx.ModelProto;
  return { model: result, params: em.params, leftInFloat, quantized, weightSqnrDb: em.weightSqnrDb };
}
