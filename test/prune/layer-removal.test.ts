/**
 * Layer removal (surgery.ts): a layer whose heads and FFN neurons are all removed keeps only its
 * constant biases and LayerNorms, and gives the same logits in onnxruntime as the gated model (every
 * head's output-projection rows and every FFN output row zero) within 1e-4, on the tiny fixtures and
 * the fixture teacher; a layer with no heads but its FFN keeps only the FFN.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findAttentionBlocks, type AttentionBlock } from '../../src/onnx/attention.js';
import { gatedModel, pruneModel, type PrunePlan } from '../../src/prune/surgery.js';
import { fixtureModels, load, maxAbsDiff, ortLogits, randomBatch, vocabSize } from './helpers.js';

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const TEACHER = join(import.meta.dirname, '..', '..', 'fixtures', 'teacher', 'model', 'model.onnx');
const models = [
  ...fixtureModels().filter((m) => m.name.startsWith('tiny/')),
  { name: 'teacher/model', path: TEACHER, fixed: undefined as [number, number] | undefined },
];

/** Remove layer `l` entirely, and (when there is another) all heads but the FFN of layer `k`. */
function wholeLayerPlan(blocks: readonly AttentionBlock[], l: number, k?: number): PrunePlan {
  return {
    heads: blocks.map((b, i) => (i === l || i === k ? range(b.numHeads) : [])),
    neurons: blocks.map((b, i) => (i === l ? range(b.ffn!.intermediate.outFeatures) : [])),
  };
}

describe('whole-layer removal equals gating the layer to zero', () => {
  for (const m of models) {
    it(m.name, async () => {
      const model = load(m.path);
      const blocks = findAttentionBlocks(model).blocks;
      expect(blocks.every((b) => b.ffn !== undefined)).toBe(true);
      const k = blocks.length > 1 ? 1 : undefined;
      const plan = wholeLayerPlan(blocks, 0, k);
      const pruned = pruneModel(model, blocks, plan, { allowEmptyLayers: true });
      expect(pruned.removedLayers).toEqual([0]);
      expect(pruned.ffnRemovedLayers).toEqual([0]);
      expect(pruned.emptiedLayers).toEqual(k === undefined ? [0] : [0, k]);
      // layer 0's projections (attention and FFN) are gone from the graph
      const names = new Set((pruned.model.graph?.initializer ?? []).map((t) => t.name));
      for (const w of [blocks[0].output.weight, blocks[0].ffn!.intermediate.weight, blocks[0].ffn!.output.weight]) expect(names.has(w)).toBe(false);
      if (k !== undefined) expect(names.has(blocks[k].ffn!.intermediate.weight)).toBe(true);
      const gated = gatedModel(model, blocks, plan);
      const shapes: Array<[number, number]> = m.fixed ? [m.fixed] : [
        [1, 9],
        [2, 24],
      ];
      for (const [B, T] of shapes) {
        const batch = randomBatch(B, T, vocabSize(model), 7 * B + T);
        const p = await ortLogits(pruned.model, batch);
        const g = await ortLogits(gated, batch);
        const o = await ortLogits(model, batch);
        expect(maxAbsDiff(p, g), `${B}×${T}`).toBeLessThan(1e-4);
        expect(maxAbsDiff(p, o), `${B}×${T} vs unpruned`).toBeGreaterThan(1e-3);
      }
    });
  }
});
