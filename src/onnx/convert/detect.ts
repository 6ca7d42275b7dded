/**
 * Recognise, structurally, a linear-chain CRF decode traced into an ONNX graph (ModelScope RaNER /
 * TransformerCRF exports): an integer output produced by an unrolled Viterbi over a float emission tensor.
 *
 * What is found, and how (never by tensor names):
 * - transitions: the float constant of shape [L, L] (or [1, L, L]) that Add nodes of the decode add in every
 *   step (the one with the most such Adds); its orientation (from × to) is read from the reduction that
 *   follows the Add: a ReduceMax/ArgMax over axis 1 of [B, L, L] reduces over the previous label, so axis 0
 *   of the matrix is "from"; a reduction over axis 2 means the matrix is stored [to][from] and is transposed;
 * - emissions: the output of the classifier (MatMul by a constant [H, L], plus a constant [L] bias), the
 *   last such linear layer before the decode; everything after it (word compaction, decode) is cut away;
 * - start / end: the [L] constants added after the classifier: start is added before the first step (its
 *   Add reaches the transition Adds), end after the last one (its Add reaches no transition Add).
 * The number of unrolled steps gives the fixed length the export was traced at.
 */
import { InputError } from '../../errors.js';
import type { onnx } from '../codec.js';
import { attrInt, attrInts, GraphIndex } from '../graph.js';
import { tensorToFloat32, type TensorData } from '../tensor.js';

const INT_TYPES = new Set([6, 7]); // INT32, INT64
const FLOAT_TYPES = new Set([1, 10, 11, 16]);

export interface CrfDecodeFound {
  /** The integer output (e.g. "predictions"). */
  output: string;
  /** The float emission tensor [batch, positions, L] (the classifier's output). */
  emissions: string;
  /** The node producing `emissions`. */
  emissionsNode: string;
  labels: number;
  /** transitions[from][to]. */
  transitions: number[][];
  start: number[];
  end: number[];
  /** Where each parameter came from (initializer or Constant output names) and how orientation was read. */
  evidence: { transitions: string; start: string | null; end: string | null; transposed: boolean; reduceAxis: number; transitionAdds: number };
  /** Positions the decode is unrolled over (transition steps + 1). */
  fixedLength: number;
}

/** True when the graph's outputs look like a decode: an integer output and no float output. */
export function hasIntegerDecodeOutput(model: onnx.IModelProto): string | undefined {
  const outs = model.graph?.output ?? [];
  const floats = outs.filter((o) => FLOAT_TYPES.has(o.type?.tensorType?.elemType ?? -1));
  const ints = outs.filter((o) => INT_TYPES.has(o.type?.tensorType?.elemType ?? -1));
  return floats.length === 0 && ints.length > 0 ? (ints[0].name ?? undefined) : undefined;
}

function unsupported(message: string, node: string | undefined, file?: string): InputError {
  return new InputError(message, {
    node,
    file,
    hint:
      'ranerc reads integer-output graphs only when they are a linear-chain CRF Viterbi over a linear classifier (unrolled, as torch.onnx.export traces it); ' +
      'otherwise export the emissions instead (output "logits", float [batch, sequence, labels]) and write crf.json (format ranerc-crf/1)',
  });
}

/** Backward cone of `tensor`: node indices whose outputs it depends on. */
function cone(ix: GraphIndex, tensor: string): Set<number> {
  const seen = new Set<number>();
  const stack = [tensor];
  while (stack.length > 0) {
    const p = ix.producer(stack.pop()!);
    if (!p || seen.has(p.index)) continue;
    seen.add(p.index);
    for (const i of p.node.input ?? []) if (i) stack.push(i);
  }
  return seen;
}

/** Forward reach: node indices that (transitively) consume `tensor`. */
function reach(ix: GraphIndex, tensor: string): Set<number> {
  const seen = new Set<number>();
  const stack = [tensor];
  while (stack.length > 0) {
    for (const c of ix.consumers(stack.pop()!)) {
      if (seen.has(c.index)) continue;
      seen.add(c.index);
      for (const o of c.node.output ?? []) if (o) stack.push(o);
    }
  }
  return seen;
}

function squeezeLeadingOnes(t: TensorData): number[] {
  const d = [...t.dims];
  while (d.length > 1 && d[0] === 1) d.shift();
  return d;
}

function nodeLabel(n: onnx.INodeProto, i: number): string {
  return n.name || `${n.opType ?? '?'}#${i}`;
}

/** Find the CRF decode feeding integer output `output`; InputError (naming the node) when it is not one. */
export function findCrfDecode(model: onnx.IModelProto, output: string, file?: string): CrfDecodeFound {
  const graph = model.graph!;
  const ix = new GraphIndex(graph);
  const nodes = graph.node ?? [];
  const outProducer = ix.producer(output);
  if (!outProducer) throw unsupported(`integer output "${output}" is not produced by any node`, undefined, file);
  const outNode = nodeLabel(outProducer.node, outProducer.index);
  const inCone = cone(ix, output);
  for (const i of inCone) {
    const op = nodes[i].opType ?? '';
    if (op === 'Loop' || op === 'Scan' || op === 'If') {
      throw new InputError(`the decode of "${output}" runs inside a ${op} node, whose body ranerc cannot read as a CRF yet`, {
        node: nodeLabel(nodes[i], i),
        file,
        hint: 'export with the Viterbi traced (unrolled: torch.onnx.export without torch.jit.script on the decode), or export the emissions ("logits") and write crf.json',
      });
    }
  }

  // transitions: [L,L] constants added in the decode
  const constUse = new Map<string, { value: TensorData; adds: number[] }>();
  for (const i of inCone) {
    const n = nodes[i];
    if (n.opType !== 'Add') continue;
    for (const inp of n.input ?? []) {
      if (!inp) continue;
      let entry = constUse.get(inp);
      if (!entry) {
        const v = ix.constantValue(inp);
        if (!v || !FLOAT_TYPES.has(v.dataType)) continue;
        entry = { value: v, adds: [] };
        constUse.set(inp, entry);
      }
      entry.adds.push(i);
    }
  }
  let trans: { name: string; value: TensorData; adds: number[] } | undefined;
  for (const [name, e] of constUse) {
    const d = squeezeLeadingOnes(e.value);
    if (d.length === 2 && d[0] === d[1] && d[0] > 1 && (!trans || e.adds.length > trans.adds.length)) trans = { name, ...e };
  }
  if (!trans) {
    throw unsupported(`integer output "${output}" is not produced by a CRF decode ranerc recognises: no [L, L] transition matrix is added in its computation`, outNode, file);
  }
  const L = squeezeLeadingOnes(trans.value)[0];

  // orientation: the reduction after a transition Add
  const firstAdd = Math.min(...trans.adds);
  let reduceAxis: number | undefined;
  const stack = [...(nodes[firstAdd].output ?? [])];
  const visited = new Set<string>();
  while (stack.length > 0 && reduceAxis === undefined) {
    const t = stack.shift()!;
    if (visited.has(t)) continue;
    visited.add(t);
    for (const c of ix.consumers(t)) {
      const op = c.node.opType;
      if (op === 'ReduceMax' || op === 'ArgMax') {
        const axes = op === 'ArgMax' ? [attrInt(c.node, 'axis', 0)] : attrInts(c.node, 'axes');
        if (axes && axes.length === 1) reduceAxis = axes[0] < 0 ? axes[0] + 3 : axes[0];
      } else if (op === 'Add' || op === 'Sub' || op === 'Identity') {
        for (const o of c.node.output ?? []) if (o) stack.push(o);
      }
    }
  }
  if (reduceAxis !== 1 && reduceAxis !== 2) {
    throw unsupported(`cannot read the Viterbi step after node ${nodeLabel(nodes[firstAdd], firstAdd)}: no max over the previous label (ReduceMax/ArgMax over axis 1 or 2 of [batch, L, L]) follows the transition Add`, nodeLabel(nodes[firstAdd], firstAdd), file);
  }
  const flat = tensorToFloat32(trans.value);
  const transposed = reduceAxis === 2;
  const transitions = Array.from({ length: L }, (_, from) => Array.from({ length: L }, (_, to) => (transposed ? flat[to * L + from] : flat[from * L + to])));

  // emissions: the last linear layer to L classes in the cone
  let emission: { tensor: string; node: number; bias?: string } | undefined;
  for (const i of [...inCone].sort((a, b) => a - b)) {
    const n = nodes[i];
    if (n.opType !== 'MatMul' && n.opType !== 'Gemm') continue;
    const w = ix.constantValue(n.input?.[1] ?? '');
    if (!w || w.dims.length !== 2 || !FLOAT_TYPES.has(w.dataType)) continue;
    const outDim = n.opType === 'Gemm' && attrInt(n, 'transB', 0) === 1 ? w.dims[0] : w.dims[1];
    if (outDim !== L) continue;
    let tensor = n.output![0];
    let node = i;
    let bias: string | undefined;
    const adds = ix.consumers(tensor).filter((c) => c.node.opType === 'Add');
    if (n.opType === 'MatMul' && adds.length === 1) {
      const other = adds[0].node.input!.find((x) => x !== tensor) ?? '';
      const b = ix.constantValue(other);
      if (b && squeezeLeadingOnes(b).length === 1 && b.dims[b.dims.length - 1] === L) {
        tensor = adds[0].node.output![0];
        node = adds[0].index;
        bias = other;
      }
    }
    emission = { tensor, node, bias };
  }
  if (!emission) {
    throw unsupported(`no linear classifier to ${L} labels (MatMul by a constant [hidden, ${L}]) feeds the decode of "${output}"`, outNode, file);
  }
  const beforeEmission = cone(ix, emission.tensor);

  // start / end: [L] constants added after the classifier
  const transSet = new Set(trans.adds);
  let start: { name: string; v: TensorData } | undefined;
  let end: { name: string; v: TensorData } | undefined;
  for (const [name, e] of constUse) {
    if (name === emission.bias) continue;
    const d = squeezeLeadingOnes(e.value);
    if (d.length !== 1 || d[0] !== L) continue;
    for (const a of e.adds) {
      if (beforeEmission.has(a)) continue;
      const fwd = reach(ix, nodes[a].output![0]);
      const reachesTrans = [...transSet].some((t) => fwd.has(t));
      if (reachesTrans) {
        if (start && start.name !== name) throw unsupported(`two candidate start-transition vectors (${start.name}, ${name})`, nodeLabel(nodes[a], a), file);
        start = { name, v: e.value };
      } else {
        if (end && end.name !== name) throw unsupported(`two candidate end-transition vectors (${end.name}, ${name})`, nodeLabel(nodes[a], a), file);
        end = { name, v: e.value };
      }
    }
  }
  const vec = (x: { v: TensorData } | undefined): number[] => (x ? Array.from(tensorToFloat32(x.v)) : new Array<number>(L).fill(0));
  return {
    output,
    emissions: emission.tensor,
    emissionsNode: nodeLabel(nodes[emission.node], emission.node),
    labels: L,
    transitions,
    start: vec(start),
    end: vec(end),
    evidence: { transitions: trans.name, start: start?.name ?? null, end: end?.name ?? null, transposed, reduceAxis, transitionAdds: trans.adds.length },
    fixedLength: trans.adds.length + 1,
  };
}
