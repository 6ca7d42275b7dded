/**
 * Physical head / neuron removal on every PyTorch-exported fixture (opsets 11-17; scale on Q, K,
 * scores or both; with and without biases; Gemm linears; fused QKV by Split or Slice; constant
 * and dynamic reshapes; shared shape constants; without token_type_ids):
 * - the pruned graph's logits equal the gated model's (removed heads' output-projection rows and
 *   removed neurons' output rows zeroed) in onnxruntime within 1e-4, at several batch sizes and
 *   sequence lengths, and differ from the unpruned model's;
 * - the same against the tfjs executor with gates ξ = 0 hooked onto the head contexts;
 * - attention / FFN parameters before equal PyTorch's numel facts (models.json) and after equal the
 *   counts the kept heads imply; the input model is not modified.
 */
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { OnnxExecutor } from '../../src/autodiff/executor.js';
import { GraphError } from '../../src/errors.js';
import { findAttentionBlocks, requireAttentionBlocks, type AttentionBlock } from '../../src/onnx/attention.js';
import { encodeModel, onnx } from '../../src/onnx/codec.js';
import { DataType, makeTensor, tensorToFloat32, dimsOf } from '../../src/onnx/tensor.js';
import { headGates, neuronGates } from '../../src/prune/importance.js';
import { blockParameters, gatedModel, pruneModel, sliceTensor, zeroTensorSlices, type PrunePlan } from '../../src/prune/surgery.js';
import { attentionFacts, fixtureModels, load, maxAbsDiff, ortLogits, ortSession, randomBatch, vocabSize } from './helpers.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** An uneven plan: layer 0 loses its last head, layer 1 its first two (one if it has only 2), later layers none; some neurons. */
function planFor(blocks: readonly AttentionBlock[]): PrunePlan {
  return {
    heads: blocks.map((b, l) => (l === 0 ? [b.numHeads - 1] : l === 1 ? (b.numHeads > 2 ? [0, 1] : [0]) : [])),
    neurons: blocks.map((b, l) => {
      const n = b.ffn?.intermediate.outFeatures ?? 0;
      return Array.from({ length: n }, (_, i) => i).filter((i) => (i + l) % 3 === 0);
    }),
  };
}

/** Parameters of the attention a layer with `kept` heads has (Q/K/V/output weights and biases). */
function attentionCount(b: AttentionBlock, kept: number): number {
  const a = kept * b.headSize;
  const qkvBias = b.qkv.kind === 'separate' ? (b.qkv.q.bias ? 3 * a : 0) : b.qkv.linear.bias ? 3 * a : 0;
  return 3 * b.hidden * a + qkvBias + a * b.hidden + (b.output.bias ? b.hidden : 0);
}

function ffnCount(b: AttentionBlock, kept: number): number {
  const f = b.ffn!;
  return f.intermediate.inFeatures * kept + (f.intermediate.bias ? kept : 0) + kept * f.output.outFeatures + (f.output.bias ? f.output.outFeatures : 0);
}

describe('sliceTensor / zeroTensorSlices', () => {
  const t = makeTensor('w', DataType.FLOAT, [2, 3], [1, 2, 3, 4, 5, 6]);
  it('keeps rows or columns in order', () => {
    expect(Array.from(tensorToFloat32(sliceTensor(t, 0, [1])))).toEqual([4, 5, 6]);
    expect(Array.from(tensorToFloat32(sliceTensor(t, 1, [0, 2])))).toEqual([1, 3, 4, 6]);
    expect(dimsOf(sliceTensor(t, 1, [0, 2]))).toEqual([2, 2]);
    const v = makeTensor('b', DataType.FLOAT16, [4], [1, 2, 3, 4]);
    expect(Array.from(tensorToFloat32(sliceTensor(v, 0, [3, 0])))).toEqual([4, 1]);
  });
  it('zeroes without touching the source bytes', () => {
    const before = Array.from(tensorToFloat32(t));
    expect(Array.from(tensorToFloat32(zeroTensorSlices(t, 1, [1])))).toEqual([1, 0, 3, 4, 0, 6]);
    expect(Array.from(tensorToFloat32(zeroTensorSlices(t, 0, [0])))).toEqual([0, 0, 0, 4, 5, 6]);
    expect(Array.from(tensorToFloat32(t))).toEqual(before);
  });
});

describe.each(fixtureModels())('surgery: $name', ({ name, path, fixed }) => {
  const model = load(path);
  const blocks = requireAttentionBlocks(findAttentionBlocks(model), { needFfn: true });
  const plan = planFor(blocks);
  const vocab = vocabSize(model);
  const shapes: Array<[number, number]> = fixed ? [fixed] : [
    [1, 5],
    [2, 11],
    [3, 24],
  ];

  it('pruned logits equal the gated model’s within 1e-4 at several shapes, and differ from the original', async () => {
    const before = sha(encodeModel(model));
    const pruned = pruneModel(model, blocks, plan);
    const gated = gatedModel(model, blocks, plan);
    expect(sha(encodeModel(model))).toBe(before); // the input model is untouched
    const sessions = await Promise.all([pruned.model, gated, model].map((m) => ortSession(m)));
    try {
      for (const [B, T] of shapes) {
        const batch = randomBatch(B, T, vocab, B * 100 + T);
        const [p, g, o] = await Promise.all(sessions.map((s) => s.logits(batch)));
        expect(p.length).toBe(o.length);
        expect(maxAbsDiff(p, g), `${B}×${T}`).toBeLessThan(1e-4);
        expect(maxAbsDiff(p, o), `${B}×${T} vs unpruned`).toBeGreaterThan(1e-3);
      }
    } finally {
      await Promise.all(sessions.map((s) => s.release()));
    }
  });

  it('has the kept heads per layer, and the parameter counts they imply', () => {
    const pruned = pruneModel(model, blocks, plan);
    const after = requireAttentionBlocks(findAttentionBlocks(pruned.model), { needFfn: true });
    const kept = blocks.map((b, l) => b.numHeads - plan.heads[l].length);
    expect(after.map((b) => b.numHeads)).toEqual(kept);
    expect(pruned.headsAfter).toEqual(kept);
    expect(after.map((b) => b.headSize)).toEqual(blocks.map((b) => b.headSize));
    const keptNeurons = blocks.map((b, l) => b.ffn!.intermediate.outFeatures - plan.neurons![l].length);
    expect(after.map((b) => b.ffn?.intermediate.outFeatures)).toEqual(keptNeurons);
    const p0 = blockParameters(model, blocks);
    const p1 = blockParameters(pruned.model, after);
    expect(p0.attention).toBe(blocks.reduce((n, b) => n + attentionCount(b, b.numHeads), 0));
    expect(p1.attention).toBe(blocks.reduce((n, b, l) => n + attentionCount(b, kept[l]), 0));
    expect(p1.ffn).toBe(blocks.reduce((n, b, l) => n + ffnCount(b, keptNeurons[l]), 0));
    const fact = attentionFacts()[name.replace('attention/', '')];
    if (fact) {
      // PyTorch's numel per parameter group (make_models.py)
      expect(p0.attention).toBe(fact.parameterGroups.attention);
      expect(p0.ffn).toBe(fact.parameterGroups.ffn);
    }
  });
});

describe('shared shape constants', () => {
  it('kqt_nofold_op14 shares its head-count constant across layers, and uneven pruning still runs', async () => {
    const m = fixtureModels().find((x) => x.name === 'attention/kqt_nofold_op14')!;
    const model = load(m.path);
    const blocks = findAttentionBlocks(model).blocks;
    expect(blocks[0].q.split.heads.constant.users).toBeGreaterThan(1);
    expect(blocks[0].q.split.heads.constant.tensor).toBe(blocks[1].q.split.heads.constant.tensor);
    const plan: PrunePlan = { heads: [[3], [0, 1]] };
    const pruned = pruneModel(model, blocks, plan);
    expect(findAttentionBlocks(pruned.model).blocks.map((b) => b.numHeads)).toEqual([3, 2]);
    const batch = randomBatch(2, 9, vocabSize(model), 7);
    expect(maxAbsDiff(await ortLogits(pruned.model, batch), await ortLogits(gatedModel(model, blocks, plan), batch))).toBeLessThan(1e-4);
  });
});

describe('against the tfjs executor with gates ξ = 0', () => {
  const names = ['tiny/bio-crf-op14', 'tiny/bioes-op17', 'tiny/bmes-op12-nobias', 'attention/gemm_op14', 'attention/fused_split_op13'];
  it.each(names)('%s', async (name) => {
    const m = fixtureModels().find((x) => x.name === name)!;
    const model = load(m.path);
    const blocks = findAttentionBlocks(model).blocks;
    const plan = planFor(blocks);
    const pruned = pruneModel(model, blocks, plan);
    const ex = await OnnxExecutor.create(model, { trainable: 'none', backend: 'cpu' });
    try {
      const gates = [...headGates(model, blocks), ...neuronGates(blocks)];
      for (const [B, T] of [
        [1, 6],
        [3, 13],
      ]) {
        const batch = randomBatch(B, T, vocabSize(model), 31 * B + T);
        const tensors: Record<string, (v: tf.Tensor) => tf.Tensor> = {};
        for (const g of gates) {
          const off = g.kind === 'head' ? plan.heads[g.layer] : plan.neurons![g.layer];
          const xi = Array.from({ length: g.units }, (_, u) => (off.includes(u) ? 0 : 1));
          const shape = new Array<number>(g.rank).fill(1);
          shape[g.unitAxis] = g.units;
          tensors[g.tensor] = (v) => tf.mul(v, tf.tensor(xi, shape));
        }
        const feeds: Record<string, tf.Tensor> = {};
        for (const io of ex.inputs) {
          const src = io.name === 'input_ids' ? batch.ids : io.name === 'attention_mask' ? batch.mask : new Int32Array(B * T);
          feeds[io.name] = tf.tensor(src, [B, T], 'int32');
        }
        const out = ex.run(feeds, { hooks: { tensors } });
        const gatedTf = Float32Array.from(Object.values(out)[0].dataSync());
        tf.dispose([...Object.values(out), ...Object.values(feeds)]);
        expect(maxAbsDiff(await ortLogits(pruned.model, batch), gatedTf), `${B}×${T}`).toBeLessThan(1e-4);
      }
    } finally {
      ex.dispose();
    }
  });
});

describe('emptying a layer', () => {
  const m = fixtureModels().find((x) => x.name === 'tiny/bio-crf-op14')!;
  const model = load(m.path);
  const blocks = findAttentionBlocks(model).blocks;
  const plan: PrunePlan = { heads: [[0, 1, 2, 3], [2]] };

  it('is refused unless allowed, naming the layer’s Softmax', () => {
    expect(() => pruneModel(model, blocks, plan)).toThrow(GraphError);
    try {
      pruneModel(model, blocks, plan);
    } catch (e) {
      expect((e as GraphError).where.node).toBe(blocks[0].softmax.node);
      expect((e as GraphError).hint).toMatch(/allow-empty-layers/);
    }
  });

  it('with allowEmptyLayers the layer’s attention is gone and its output is the output bias', async () => {
    const pruned = pruneModel(model, blocks, plan, { allowEmptyLayers: true });
    expect(pruned.emptiedLayers).toEqual([0]);
    const after = findAttentionBlocks(pruned.model).blocks;
    expect(after.map((b) => b.numHeads)).toEqual([3]);
    // the first layer's Q/K/V/output weights are gone from the graph
    const names = new Set((pruned.model.graph?.initializer ?? []).map((t) => t.name));
    for (const l of [blocks[0].output.weight, (blocks[0].qkv as { q: { weight: string } }).q.weight]) expect(names.has(l)).toBe(false);
    for (const [B, T] of [
      [1, 7],
      [2, 30],
    ]) {
      const batch = randomBatch(B, T, vocabSize(model), B + T);
      expect(maxAbsDiff(await ortLogits(pruned.model, batch), await ortLogits(gatedModel(model, blocks, plan), batch))).toBeLessThan(1e-4);
    }
  });
});

describe('refusals', () => {
  it('a quantized (QDQ) projection is refused, naming the node', () => {
    const m = fixtureModels().find((x) => x.name === 'attention/hf_scores_op14')!;
    const model = load(m.path);
    const b0 = findAttentionBlocks(model).blocks[0];
    const q = (b0.qkv as { q: { weight: string; node: string } }).q;
    // DequantizeLinear(int8 weight, scale, zero point) in front of the query MatMul
    const g = model.graph as onnx.GraphProto;
    const w = g.initializer.find((t) => t.name === q.weight)!;
    const vals = tensorToFloat32(w);
    const scale = Math.max(...Array.from(vals, Math.abs)) / 127;
    g.initializer.push(
      makeTensor(`${q.weight}_q`, DataType.INT8, dimsOf(w), Array.from(vals, (v) => Math.round(v / scale))),
      makeTensor(`${q.weight}_scale`, DataType.FLOAT, [], [scale]),
      makeTensor(`${q.weight}_zp`, DataType.INT8, [], [0]),
    );
    const mm = g.node.find((n) => n.name === q.node) as onnx.NodeProto;
    const deq = new onnx.NodeProto({ name: `${q.weight}_dq`, opType: 'DequantizeLinear', input: [`${q.weight}_q`, `${q.weight}_scale`, `${q.weight}_zp`], output: [`${q.weight}_deq`] });
    g.node.splice(g.node.indexOf(mm), 0, deq);
    mm.input = mm.input.map((i) => (i === q.weight ? `${q.weight}_deq` : i));
    g.initializer = g.initializer.filter((t) => t.name !== q.weight);
    const blocks = findAttentionBlocks(model).blocks;
    expect(blocks[0].qkv.kind === 'separate' && blocks[0].qkv.q.weightDequantize).toBeTruthy();
    let err: unknown;
    try {
      pruneModel(model, blocks, { heads: [[0], []] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GraphError);
    expect((err as GraphError).where.node).toBe(q.node);
    expect((err as GraphError).hint).toMatch(/prune the float model first/);
  });

  it('a plan with heads out of range is a RangeError', () => {
    const model = load(fixtureModels()[0].path);
    const blocks = findAttentionBlocks(model).blocks;
    expect(() => pruneModel(model, blocks, { heads: [[9], []] })).toThrow(RangeError);
    expect(() => pruneModel(model, blocks, { heads: [[]] })).toThrow(RangeError);
  });
});
