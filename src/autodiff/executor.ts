/**
 * OnnxExecutor: compiles an ONNX graph into a differentiable TensorFlow.js function.
 *
 * - Float initializers become `tf.Variable`s (trainable per options), other initializers and
 *   Constant nodes stay host constants; constant-only subgraphs are folded at create time.
 * - Shape-only subgraphs (Shape→Gather→Unsqueeze→Concat→Reshape, ConstantOfShape, Range, ...) run
 *   in plain JS once per distinct feed shape and are cached, so the tfjs graph holds only tensor math.
 * - Every op is checked at create time: an unsupported op or attribute is a GraphError naming the
 *   node, before anything runs.
 * - `run` is wrapped in tf.tidy (no intermediate survives a call); call it inside
 *   `tf.variableGrads` / `optimizer.minimize` to train. Hooks insert extra computation (e.g. a
 *   per-head gate variable) without editing the ONNX.
 */
import * as tf from '@tensorflow/tfjs';
import type { onnx } from '../onnx/codec.js';
import { GraphError, isRanercError } from '../errors.js';
import { initBackend, type BackendInfo, type BackendPreference } from './backend.js';
import { host, isHost, type HostTensor } from './host.js';
import { NodeView } from './node.js';
import { decodeTensor, DT, float32Values, isFloatType, num } from './tensordata.js';
import './ops/index.js';
import { lookupOp, type OpContext, type OpExecutor, type Value } from './registry.js';
import { onnxTypeOfTf, tfDtypeOf } from './ops/util.js';

export interface ExecutorHooks {
  /**
   * Transform named tensors (node outputs, graph inputs or float initializers) before any consumer
   * sees them. The result must keep the shape.
   */
  tensors?: Record<string, (value: tf.Tensor) => tf.Tensor>;
  /**
   * Called for every tfjs tensor a node produces (after `tensors`); return the value downstream
   * nodes use (same shape), e.g. `ctx * gate.reshape([1, heads, 1, 1])`.
   */
  afterNode?: (nodeName: string, outputName: string, value: tf.Tensor) => tf.Tensor;
}

export interface ExecutorOptions {
  /** Which float initializers are trainable variables: all ('float', default), none, or a predicate. */
  trainable?: 'float' | 'none' | ((name: string) => boolean);
  /** tfjs backend to run on (default 'auto': tfjs-node when installed, else wasm). */
  backend?: BackendPreference;
}

export interface RunOptions {
  /** Graph values to return (default: the graph outputs). Any node output or input may be named. */
  outputs?: string[];
  hooks?: ExecutorHooks;
}

export interface GraphIO {
  name: string;
  /** ONNX element type. */
  elemType: number;
  /** Dims; a string for a symbolic dim, undefined for an unknown one. */
  dims: Array<number | string | undefined>;
}

interface Step {
  node: NodeView;
  exec: OpExecutor;
  opset: number;
  /** host: plain JS, cached per feed shape; device: tfjs. */
  mode: 'host' | 'device';
}

/** Shape-dependent host values, per feed-shape key. */
const SHAPE_CACHE_LIMIT = 64;

function opsetMap(model: onnx.IModelProto): Map<string, number> {
  const m = new Map<string, number>();
  for (const o of model.opsetImport ?? []) {
    const d = o.domain === 'ai.onnx' ? '' : (o.domain ?? '');
    m.set(d, num(o.version));
  }
  if (!m.has('')) m.set('', 1);
  return m;
}

function graphIO(v: onnx.IValueInfoProto): GraphIO {
  const tt = v.type?.tensorType;
  return {
    name: v.name ?? '',
    elemType: tt?.elemType ?? 0,
    dims: (tt?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : d.dimValue !== undefined && d.dimValue !== null ? num(d.dimValue) : undefined)),
  };
}

/** Kahn's algorithm over node inputs; throws GraphError naming a node whose input nothing produces. */
function topoSort(nodes: NodeView[], available: Set<string>): NodeView[] {
  const producer = new Map<string, NodeView>();
  for (const n of nodes) for (const o of n.outputs) if (o !== '') producer.set(o, n);
  const indeg = new Map<NodeView, number>();
  const users = new Map<NodeView, NodeView[]>();
  for (const n of nodes) {
    let d = 0;
    for (const i of new Set(n.inputs)) {
      if (i === '' || available.has(i)) continue;
      const p = producer.get(i);
      if (!p) {
        throw new GraphError(`${n.opType} node "${n.name}" reads "${i}", which no node, initializer or graph input provides`, {
          node: n.name,
          hint: 'the model is malformed or uses a subgraph value the executor cannot see; re-export it',
        });
      }
      d++;
      users.set(p, [...(users.get(p) ?? []), n]);
    }
    indeg.set(n, d);
  }
  const ready = nodes.filter((n) => indeg.get(n) === 0);
  const out: NodeView[] = [];
  while (ready.length > 0) {
    const n = ready.shift()!;
    out.push(n);
    for (const u of users.get(n) ?? []) {
      const d = indeg.get(u)! - 1;
      indeg.set(u, d);
      if (d === 0) ready.push(u);
    }
  }
  if (out.length !== nodes.length) {
    const stuck = nodes.find((n) => !out.includes(n))!;
    throw new GraphError(`the graph has a cycle through ${stuck.opType} node "${stuck.name}"`, {
      node: stuck.name,
      hint: 'ONNX graphs must be acyclic; re-export the model',
    });
  }
  return out;
}

function wrapError(node: NodeView, e: unknown): Error {
  if (isRanercError(e)) return e;
  const msg = e instanceof Error ? e.message : String(e);
  const oom = /Aborted\(\)|out of memory|Cannot enlarge memory|allocation failed/i.test(msg);
  return new GraphError(`${node.opType} node "${node.name}" failed: ${msg}`, {
    node: node.name,
    hint: oom
      ? 'the tfjs backend ran out of memory (the wasm heap is capped at 4 GB, and an aborted wasm backend stays unusable in this process); use smaller batches or shorter sequences'
      : 'check the feed shapes and dtypes against the model inputs',
    cause: e,
  });
}

/** A stand-in for a device tensor where only the shape is read (Shape, Size). */
function shapeStub(v: Value): HostTensor {
  return { kind: 'host', dtype: isHost(v) ? v.dtype : onnxTypeOfTf(v), shape: [...v.shape], data: new Float64Array(0) };
}

function hostToTensor(h: HostTensor): tf.Tensor {
  const dt = tfDtypeOf(h.dtype);
  if (dt === undefined) throw new Error(`host value of ONNX type ${h.dtype} has no tfjs dtype`);
  const shape = [...h.shape];
  if (dt === 'float32') return tf.tensor(Float32Array.from(h.data), shape, 'float32');
  if (dt === 'bool') return tf.tensor(Uint8Array.from(h.data, (v) => (v !== 0 ? 1 : 0)), shape, 'bool');
  return tf.tensor(Int32Array.from(h.data, (v) => Math.max(-2147483648, Math.min(2147483647, v))), shape, 'int32');
}

function tensorToHost(t: tf.Tensor): HostTensor {
  return host(onnxTypeOfTf(t), t.shape, Float64Array.from(t.dataSync()));
}

export class OnnxExecutor {
  /** Float initializers by name, as tfjs variables (trainable per the create options). */
  readonly variables: Map<string, tf.Variable>;
  /** The backend that runs this executor. */
  readonly backend: BackendInfo;
  readonly inputs: readonly GraphIO[];
  readonly outputs: readonly GraphIO[];
  /** ONNX element type of each variable's initializer (for writing values back). */
  readonly initializerTypes: ReadonlyMap<string, number>;

  private readonly steps: Step[];
  private readonly constants: Map<string, HostTensor>;
  private readonly constTensors = new Map<HostTensor, tf.Tensor>();
  private readonly constSet: Set<HostTensor>;
  private readonly producers = new Map<string, number>();
  private readonly shapeCache = new Map<string, Map<string, HostTensor>>();
  private readonly planCache = new Map<string, Step[]>();
  private readonly requiredInputs: string[];
  private disposed = false;

  private constructor(init: {
    steps: Step[];
    constants: Map<string, HostTensor>;
    variables: Map<string, tf.Variable>;
    backend: BackendInfo;
    inputs: GraphIO[];
    outputs: GraphIO[];
    initializerTypes: Map<string, number>;
    requiredInputs: string[];
  }) {
    this.steps = init.steps;
    this.constants = init.constants;
    this.constSet = new Set(init.constants.values());
    this.variables = init.variables;
    this.backend = init.backend;
    this.inputs = init.inputs;
    this.outputs = init.outputs;
    this.initializerTypes = init.initializerTypes;
    this.requiredInputs = init.requiredInputs;
    this.steps.forEach((s, i) => s.node.outputs.forEach((o) => o !== '' && this.producers.set(o, i)));
  }

  /**
   * Compile `model`. Throws GraphError (naming the node) for an unsupported op or attribute, a
   * malformed graph, or a failing constant subgraph — before any variable is created.
   */
  static async create(model: onnx.IModelProto, opts: ExecutorOptions = {}): Promise<OnnxExecutor> {
    const backend = await initBackend(opts.backend ?? 'auto');
    const graph = model.graph;
    if (!graph) throw new GraphError('the model has no graph', { hint: 'pass a complete ONNX ModelProto' });
    const opsets = opsetMap(model);

    const initializers = new Map<string, onnx.ITensorProto>();
    for (const t of graph.initializer ?? []) initializers.set(t.name ?? '', t);
    if ((graph.sparseInitializer ?? []).length > 0) {
      throw new GraphError('the graph has sparse initializers', { hint: 'densify them before compiling (onnx.numpy_helper)' });
    }
    const inputs = (graph.input ?? []).map(graphIO);
    const outputs = (graph.output ?? []).map(graphIO);
    const requiredInputs = inputs.filter((i) => !initializers.has(i.name)).map((i) => i.name);

    // 1. Sort and scan every node before creating anything.
    const views = (graph.node ?? []).map((n, i) => new NodeView(n, i));
    const available = new Set<string>([...initializers.keys(), ...inputs.map((i) => i.name)]);
    const nodes = topoSort(views, available);
    const unsupported: NodeView[] = [];
    const resolved: Array<{ node: NodeView; exec: OpExecutor; opset: number }> = [];
    for (const node of nodes) {
      const opset = opsets.get(node.domain);
      const exec = opset === undefined ? undefined : lookupOp(node.domain, node.opType, opset);
      if (!exec) unsupported.push(node);
      else resolved.push({ node, exec, opset: opset! });
    }
    if (unsupported.length > 0) {
      const first = unsupported[0];
      const list = [...new Set(unsupported.map((n) => `${n.domain ? n.domain + '.' : ''}${n.opType}`))];
      const dom = first.domain || 'ai.onnx';
      throw new GraphError(
        `unsupported op${list.length > 1 ? 's' : ''} ${list.join(', ')} (first: node "${first.name}", ${dom} opset ${opsets.get(first.domain) ?? 'not imported'}; ${unsupported.length} node${unsupported.length > 1 ? 's' : ''} in all)`,
        {
          node: first.name,
          hint: 'the tfjs executor covers the ops PyTorch exports of BERT-style token classifiers use (see src/autodiff/ops/); re-export with a supported opset (11-17) or simplify the graph',
        },
      );
    }
    for (const r of resolved) {
      try {
        r.exec.check?.(r.node, r.opset);
      } catch (e) {
        throw wrapError(r.node, e);
      }
    }

    // 2. Initializers: float → variables (created last), others → host constants.
    const constants = new Map<string, HostTensor>();
    const floatInits: onnx.ITensorProto[] = [];
    const initializerTypes = new Map<string, number>();
    for (const [name, t] of initializers) {
      const dt = t.dataType ?? 0;
      if (isFloatType(dt)) {
        floatInits.push(t);
        initializerTypes.set(name, dt);
      } else {
        if (tfDtypeOf(dt) === undefined) {
          throw new GraphError(`initializer "${name}" has a data type the executor cannot hold (${dt})`, {
            node: name,
            hint: 'tfjs has float32, int32 and bool tensors only',
          });
        }
        const d = decodeTensor(t, name);
        constants.set(name, host(dt, d.dims, d.data));
      }
    }

    // 3. Classify nodes: fold constant-only ones now, mark shape-only ones as host steps. An
    //    initializer that is also a graph input is only a default (a feed may replace it), so
    //    nothing downstream of it is folded or cached.
    const overridable = new Set(inputs.map((i) => i.name).filter((n) => initializers.has(n)));
    const hostValues = new Set<string>([...constants.keys()].filter((n) => !overridable.has(n)));
    const staticShapes = new Map<string, number[]>();
    for (const t of floatInits) staticShapes.set(t.name ?? '', (t.dims ?? []).map((d) => num(d)));
    const steps: Step[] = [];
    for (const { node, exec, opset } of resolved) {
      const present = node.inputs.filter((i) => i !== '');
      const allConst = present.every(
        (i) => !overridable.has(i) && (constants.has(i) || (exec.shapeOnly === true && staticShapes.has(i))),
      );
      if (exec.host && allConst) {
        try {
          const ins = node.inputs.map((i) => {
            if (i === '') return undefined;
            const c = constants.get(i);
            if (c) return c;
            return { kind: 'host', dtype: DT.FLOAT, shape: staticShapes.get(i)!, data: new Float64Array(0) } as HostTensor;
          });
          const outs = exec.host(node, ins, opset);
          node.outputs.forEach((o, k) => {
            if (o !== '' && outs[k]) {
              constants.set(o, outs[k]);
              hostValues.add(o);
            }
          });
          continue;
        } catch (e) {
          throw wrapError(node, e);
        }
      }
      const hostStep = exec.host !== undefined && (exec.shapeOnly === true || present.every((i) => hostValues.has(i)));
      if (hostStep) node.outputs.forEach((o) => o !== '' && hostValues.add(o));
      steps.push({ node, exec, opset, mode: hostStep ? 'host' : 'device' });
    }

    // 4. Variables.
    const trainable = opts.trainable ?? 'float';
    const isTrainable = (name: string): boolean =>
      trainable === 'float' ? true : trainable === 'none' ? false : trainable(name);
    const variables = new Map<string, tf.Variable>();
    for (const t of floatInits) {
      const name = t.name ?? '';
      const { dims, data } = float32Values(t);
      const init = tf.tensor(data, dims, 'float32');
      variables.set(name, tf.variable(init, isTrainable(name)));
      init.dispose(); // the variable holds its own reference to the data
    }
    return new OnnxExecutor({ steps, constants, variables, backend, inputs, outputs, initializerTypes, requiredInputs });
  }

  /** Variables that are trainable. */
  trainableVariables(): tf.Variable[] {
    return [...this.variables.values()].filter((v) => v.trainable);
  }

  /** Current values of the float initializers (copies), keyed by initializer name. */
  exportInitializers(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const [name, v] of this.variables) out.set(name, Float32Array.from(v.dataSync() as Float32Array));
    return out;
  }

  /**
   * Run the graph. Returns new tensors the caller owns (dispose them); intermediates are freed.
   * Inside `tf.variableGrads(() => ...)` the result is differentiable w.r.t. the variables and any
   * variable a hook uses.
   */
  run(feeds: Record<string, tf.Tensor>, opts: RunOptions = {}): Record<string, tf.Tensor> {
    if (this.disposed) throw new GraphError('this executor was disposed', { hint: 'create a new OnnxExecutor' });
    for (const name of this.requiredInputs) {
      if (!(name in feeds)) {
        throw new GraphError(`graph input "${name}" has no feed`, {
          node: name,
          hint: `feed every graph input: ${this.requiredInputs.join(', ')}`,
        });
      }
    }
    const inputNames = new Set(this.inputs.map((i) => i.name));
    for (const name of Object.keys(feeds)) {
      if (!inputNames.has(name)) {
        throw new GraphError(`"${name}" is not a graph input`, { node: name, hint: `the graph inputs are: ${[...inputNames].join(', ')}` });
      }
    }
    const wanted = opts.outputs ?? this.outputs.map((o) => o.name);
    const plan = this.plan(wanted, new Set(Object.keys(feeds)));
    const key = Object.keys(feeds)
      .sort()
      .map((k) => `${k}:${feeds[k].dtype}[${feeds[k].shape.join(',')}]`)
      .join('|');
    let cache = this.shapeCache.get(key);
    if (cache) {
      this.shapeCache.delete(key);
    } else {
      cache = new Map();
    }
    this.shapeCache.set(key, cache);
    while (this.shapeCache.size > SHAPE_CACHE_LIMIT) this.shapeCache.delete(this.shapeCache.keys().next().value as string);
    const entry = cache;
    const hooks = opts.hooks ?? {};

    return tf.tidy(() => {
      const env = new Map<string, Value>();
      const get = (name: string): Value | undefined =>
        env.get(name) ?? entry.get(name) ?? this.constants.get(name) ?? this.variables.get(name);
      for (const [name, t] of Object.entries(feeds)) env.set(name, t);
      for (const [name, fn] of Object.entries(hooks.tensors ?? {})) {
        const v = env.get(name) ?? this.variables.get(name);
        if (v !== undefined && !isHost(v)) env.set(name, checkedHook(name, v, fn(v)));
      }
      for (const step of plan) {
        const { node, exec } = step;
        if (step.mode === 'host') {
          if (node.outputs.every((o) => o === '' || entry.has(o))) continue;
          let outs: HostTensor[];
          try {
            const ins = node.inputs.map((i) => {
              if (i === '') return undefined;
              const v = get(i);
              if (v === undefined) throw new Error(`value "${i}" is not available`);
              return isHost(v) ? v : exec.shapeOnly ? shapeStub(v) : tensorToHost(v);
            });
            outs = exec.host!(node, ins, step.opset);
          } catch (e) {
            throw wrapError(node, e);
          }
          node.outputs.forEach((o, k) => {
            if (o !== '' && outs[k]) entry.set(o, outs[k]);
          });
          continue;
        }
        const ctx: OpContext = {
          opset: step.opset,
          tensor: (v) => this.toTensor(v),
          host: (v) => (isHost(v) ? v : tensorToHost(v)),
        };
        let outs: Value[];
        try {
          const ins = node.inputs.map((i) => {
            if (i === '') return undefined;
            const v = get(i);
            if (v === undefined) throw new Error(`value "${i}" is not available`);
            return v;
          });
          outs = exec.run(node, ins, ctx);
        } catch (e) {
          throw wrapError(node, e);
        }
        node.outputs.forEach((o, k) => {
          if (o === '') return;
          let v = outs[k];
          if (v === undefined) throw wrapError(node, new Error(`no value for output ${k} ("${o}")`));
          if (!isHost(v)) {
            const t = hooks.tensors?.[o];
            if (t) v = checkedHook(o, v, t(v));
            if (hooks.afterNode) v = checkedHook(o, v as tf.Tensor, hooks.afterNode(node.name, o, v as tf.Tensor));
          }
          env.set(o, v);
        });
      }
      const result: Record<string, tf.Tensor> = {};
      for (const name of wanted) {
        const v = get(name);
        if (v === undefined) {
          throw new GraphError(`"${name}" is not a value of this graph`, { node: name, hint: 'name a graph output, input or node output' });
        }
        result[name] = isHost(v) ? hostToTensor(v) : tf.clone(v);
      }
      return result;
    });
  }

  /** Free the variables and cached constants. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of this.variables.values()) v.dispose();
    for (const t of this.constTensors.values()) t.dispose();
    this.constTensors.clear();
    this.shapeCache.clear();
  }

  /**
   * What the compiled graph holds after constant folding: op-type histograms of host (plain-JS,
   * cached per feed shape) and tfjs steps, and the constant / variable counts.
   */
  stats(): { hostOps: Record<string, number>; deviceOps: Record<string, number>; constants: number; variables: number } {
    const hostOps: Record<string, number> = {};
    const deviceOps: Record<string, number> = {};
    for (const s of this.steps) {
      const h = s.mode === 'host' ? hostOps : deviceOps;
      h[s.node.opType] = (h[s.node.opType] ?? 0) + 1;
    }
    return { hostOps, deviceOps, constants: this.constants.size, variables: this.variables.size };
  }

  private toTensor(v: Value): tf.Tensor {
    if (!isHost(v)) return v;
    let t = this.constTensors.get(v);
    if (t) return t;
    t = hostToTensor(v);
    // Constants are converted once and kept for the executor's lifetime.
    if (this.constSet.has(v)) this.constTensors.set(v, tf.keep(t));
    return t;
  }

  /** Steps needed for `outputs`, in order (cached). */
  private plan(outputs: string[], fed: Set<string>): Step[] {
    const key = outputs.join('\u0000') + '\u0001' + [...fed].sort().join('\u0000');
    const hit = this.planCache.get(key);
    if (hit) return hit;
    const need = new Set<number>();
    const stack = outputs.filter((o) => !fed.has(o));
    const seen = new Set<string>();
    while (stack.length > 0) {
      const name = stack.pop()!;
      if (seen.has(name) || fed.has(name)) continue;
      seen.add(name);
      const p = this.producers.get(name);
      if (p === undefined || need.has(p)) continue;
      need.add(p);
      for (const i of this.steps[p].node.inputs) if (i !== '') stack.push(i);
    }
    const plan = this.steps.filter((_, i) => need.has(i));
    this.planCache.set(key, plan);
    return plan;
  }
}

function checkedHook(name: string, before: tf.Tensor, after: tf.Tensor): tf.Tensor {
  if (after.shape.length !== before.shape.length || after.shape.some((d, i) => d !== before.shape[i])) {
    throw new GraphError(`a hook changed the shape of "${name}" from [${before.shape}] to [${after.shape}]`, {
      node: name,
      hint: 'hooks must return a tensor of the same shape (shape arithmetic downstream is cached per input shape)',
    });
  }
  return after;
}
