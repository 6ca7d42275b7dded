/**
 * Cut a CRF-in-graph export down to a standard emissions graph: the classifier's output becomes the graph
 * output `logits` (float [batch, sequence, labels], per sub-token: the word compaction and the decode that
 * followed it are removed), nodes and initializers only the decode used are dropped, and graph inputs no
 * remaining node reads (label_mask, offset_mapping) are removed and listed.
 */
import { GraphError } from '../../errors.js';
import { decodeModel, encodeModel, type onnx } from '../codec.js';
import { implicitInputs, removeUnused } from '../graph.js';
import type { CrfDecodeFound } from './detect.js';

export interface CutResult {
  model: onnx.ModelProto;
  /** Graph inputs removed because only the decode read them (or nothing did). */
  droppedInputs: string[];
  keptInputs: string[];
  removedNodes: number;
  removedInitializers: number;
}

export function cutToEmissions(source: onnx.IModelProto, found: CrfDecodeFound): CutResult {
  const model = decodeModel(encodeModel(source), 'converted model');
  const graph = model.graph!;
  const nodes = graph.node ?? [];
  const taken = new Set<string>();
  for (const n of nodes) for (const o of n.output ?? []) taken.add(o);
  for (const t of graph.initializer ?? []) if (t.name) taken.add(t.name);
  for (const v of graph.input ?? []) if (v.name) taken.add(v.name);
  if (found.emissions !== 'logits' && taken.has('logits')) {
    throw new GraphError('the graph already has a tensor named "logits" that is not the classifier output', {
      node: found.emissionsNode,
      hint: 'rename that tensor in the export; ranerc names the emissions output "logits"',
    });
  }
  if (found.emissions !== 'logits') {
    nodes.push({ opType: 'Identity', name: 'ranerc_logits', input: [found.emissions], output: ['logits'], domain: '' });
  }
  const ids = (graph.input ?? []).find((v) => v.name === 'input_ids') ?? (graph.input ?? [])[0];
  const idDims = ids?.type?.tensorType?.shape?.dim ?? [];
  const dim = (k: number, fallback: string): onnx.TensorShapeProto.IDimension =>
    idDims[k] ? { ...(idDims[k].dimParam ? { dimParam: idDims[k].dimParam } : { dimValue: idDims[k].dimValue }) } : { dimParam: fallback };
  const elemType = 1;
  graph.output = [
    {
      name: 'logits',
      type: { tensorType: { elemType, shape: { dim: [dim(0, 'batch'), dim(1, 'sequence'), { dimValue: found.labels }] } } },
    },
  ];
  const removed = removeUnused(graph);
  const read = new Set<string>();
  for (const n of graph.node ?? []) {
    for (const i of n.input ?? []) if (i) read.add(i);
    for (const i of implicitInputs(n)) read.add(i);
  }
  for (const o of graph.output) if (o.name) read.add(o.name);
  const droppedInputs: string[] = [];
  const keptInputs: string[] = [];
  graph.input = (graph.input ?? []).filter((v) => {
    const keep = read.has(v.name ?? '');
    (keep ? keptInputs : droppedInputs).push(v.name ?? '');
    return keep;
  });
  return { model, droppedInputs, keptInputs, removedNodes: removed.nodes, removedInitializers: removed.initializers };
}
