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
 *
 * Layout (one concern per file): types.ts (what is reported), graph.ts (GraphView, helpers, MatcherBase),
 * shapes.ts (Reshape targets, constant expressions), linear.ts (dense layers), ffn.ts (residual,
 * LayerNorm, FFN), path.ts (the attention path of one block), index.ts (this entry point).
 */
import type { onnx } from 'onnx-proto';
import { GraphError } from '../../errors.js';
import { GraphView, MatchError, num } from './graph.js';
import { Matcher } from './path.js';
import type { AttentionBlock, AttentionFailure, AttentionReport, LayerNormRef } from './types.js';

export * from './types.js';
export { findNode, GraphView } from './graph.js';

const FUSED_ATTENTION_OPS = new Set([
  'Attention',
  'MultiHeadAttention',
  'PackedAttention',
  'PackedMultiHeadAttention',
  'GroupQueryAttention',
]);

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
