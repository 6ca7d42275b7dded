/**
 * Cross-layer weight sharing (ALBERT applies one layer group N times: torch.onnx.export writes one
 * initializer read by the N copies of the layer). Head and neuron pruning slices a layer's weights, so a
 * weight shared by several attention blocks cannot be pruned per layer; prune refuses such models.
 */
import { GraphError } from '../errors.js';
import type { AttentionBlock, LinearRef } from '../onnx/attention.js';

/** One initializer read by the prunable layers of more than one attention block. */
export interface SharedWeight {
  initializer: string;
  /** Block indices (graph order) that read it. */
  layers: number[];
}

function linears(b: AttentionBlock): LinearRef[] {
  const qkv = b.qkv.kind === 'separate' ? [b.qkv.q, b.qkv.k, b.qkv.v] : [b.qkv.linear];
  return [...qkv, b.output, ...(b.ffn ? [b.ffn.intermediate, b.ffn.output] : [])];
}

/** Weight and bias initializers of the blocks' linear layers that more than one block reads. Pure. */
export function sharedBlockWeights(blocks: readonly AttentionBlock[]): SharedWeight[] {
  const users = new Map<string, Set<number>>();
  blocks.forEach((b, i) => {
    for (const l of linears(b)) {
      for (const name of [l.weight, l.bias?.initializer]) {
        if (!name) continue;
        const s = users.get(name) ?? new Set<number>();
        s.add(i);
        users.set(name, s);
      }
    }
  });
  return [...users]
    .filter(([, s]) => s.size > 1)
    .map(([initializer, s]) => ({ initializer, layers: [...s].sort((a, b) => a - b) }));
}

/** GraphError (exit 2) when blocks share weights: pruning one layer would silently change the others. */
export function refuseSharedWeights(blocks: readonly AttentionBlock[], file?: string): void {
  const shared = sharedBlockWeights(blocks);
  if (shared.length === 0) return;
  const first = shared[0];
  throw new GraphError(
    `layers ${first.layers.join(', ')} share the weight initializer "${first.initializer}" (${shared.length} shared initializer${shared.length > 1 ? 's' : ''} in all: cross-layer parameter sharing, as ALBERT does); pruning one layer's heads would change every layer that reads it`,
    {
      node: first.initializer,
      file,
      hint: 'ranerc prune needs one set of weights per layer: quantize this model instead (`ranerc quantize`), or distill it into a smaller student (`ranerc distill --teacher`)',
    },
  );
}
