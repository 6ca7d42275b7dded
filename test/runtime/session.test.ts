import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GraphError, InputError } from '../../src/errors.js';
import { NerSession, resolveOnnxPath } from '../../src/runtime/session.js';
import { buildToyModel, type ToyModelSpec } from './helpers/toy-model.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ranerc-session-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function save(name: string, spec: ToyModelSpec) {
  const toy = buildToyModel(spec);
  const path = join(dir, `${name}.onnx`);
  await writeFile(path, toy.bytes);
  return { toy, path };
}

function toNested(flat: Float32Array, dims: [number, number, number]): number[][][] {
  const [B, S, L] = dims;
  return Array.from({ length: B }, (_, b) =>
    Array.from({ length: S }, (_, s) => Array.from(flat.subarray((b * S + s) * L, (b * S + s + 1) * L))),
  );
}

const ids = [
  [2, 5, 7, 3, 0],
  [2, 9, 3, 0, 0],
];
const mask = [
  [1, 1, 1, 1, 0],
  [1, 1, 1, 0, 0],
];
const types = [
  [0, 0, 1, 1, 0],
  [0, 1, 1, 0, 0],
];

describe('NerSession', () => {
  it('feeds int64 input_ids/attention_mask/token_type_ids and returns the logits the graph defines', async () => {
    const { toy, path } = await save('full64', { vocab: 12, labels: 5 });
    const s = await NerSession.open(path);
    try {
      expect(s.inputs.map((i) => [i.name, i.type])).toEqual([
        ['input_ids', 'int64'],
        ['attention_mask', 'int64'],
        ['token_type_ids', 'int64'],
      ]);
      expect(s.logitsName).toBe('logits');
      expect(s.numLabels).toBe(5);
      expect(s.loadMs).toBeGreaterThan(0);
      const out = await s.run({ ids, mask, typeIds: types, seqLen: 5, batch: 2 });
      expect(out.dims).toEqual([2, 5, 5]);
      expect(toNested(out.logits, out.dims)).toEqual(toy.expected(ids, mask, types));
      // token_type_ids default to zeros
      const out0 = await s.run({ ids, mask, seqLen: 5, batch: 2 });
      expect(toNested(out0.logits, out0.dims)).toEqual(toy.expected(ids, mask));
    } finally {
      await s.close();
      await s.close(); // idempotent
    }
  });

  it('feeds int32 inputs and works without token_type_ids and attention_mask', async () => {
    const { toy, path } = await save('ids32', { vocab: 12, labels: 3, idType: 'int32', mask: false, types: false });
    const s = await NerSession.open(path, { threads: 1, graphOptimizationLevel: 'basic' });
    try {
      expect(s.inputs).toEqual([{ name: 'input_ids', role: 'input_ids', type: 'int32' }]);
      expect(s.has('attention_mask')).toBe(false);
      const out = await s.run({ ids, mask, seqLen: 5, batch: 2 });
      expect(toNested(out.logits, out.dims)).toEqual(toy.expected(ids));
    } finally {
      await s.close();
    }
  });

  it('reuses its buffers correctly across batch shapes (flat path) and fills position_ids 0..seq-1', async () => {
    const { toy, path } = await save('pos', { vocab: 12, labels: 4, positions: 8 });
    const s = await NerSession.open(path);
    try {
      const big = await s.runFlat({ ids: ids.flat(), mask: mask.flat(), typeIds: types.flat(), seqLen: 5, batch: 2 });
      expect(toNested(big.logits, big.dims)).toEqual(toy.expected(ids, mask, types));
      const small = await s.runFlat({ ids: [2, 4, 3], mask: [1, 1, 1], seqLen: 3, batch: 1 });
      expect(toNested(small.logits, small.dims)).toEqual(toy.expected([[2, 4, 3]], [[1, 1, 1]]));
      const again = await s.runFlat({ ids: ids.flat(), mask: mask.flat(), typeIds: types.flat(), seqLen: 5, batch: 2 });
      expect(Array.from(again.logits)).toEqual(Array.from(big.logits));
    } finally {
      await s.close();
    }
  });

  it('finds a logits output not named "logits" when it is the only 3-D float output', async () => {
    const { path } = await save('renamed', { vocab: 6, labels: 3, outputName: 'scores', staticLabels: false });
    const s = await NerSession.open(path);
    try {
      expect(s.logitsName).toBe('scores');
      const out = await s.runFlat({ ids: [1, 2], mask: [1, 1], seqLen: 2, batch: 1 });
      expect(out.dims).toEqual([1, 2, 3]);
    } finally {
      await s.close();
    }
  });

  it('rejects graph inputs it cannot feed with a GraphError naming them', async () => {
    const { path } = await save('extra', { vocab: 6, labels: 3, extraInputs: ['pixel_values'] });
    const err = await NerSession.open(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GraphError);
    expect((err as GraphError).where.node).toBe('pixel_values');
    expect((err as GraphError).message).toContain('"pixel_values"');
    expect((err as GraphError).hint).toBeTruthy();
  });

  it('rejects a float attention_mask input with a GraphError naming it', async () => {
    const { path } = await save('floatmask', { vocab: 6, labels: 3, maskType: 'float' });
    const err = await NerSession.open(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GraphError);
    expect((err as GraphError).where.node).toBe('attention_mask');
  });

  it('reports missing and corrupt model files as InputError naming the file', async () => {
    const missing = await NerSession.open(join(dir, 'nope.onnx')).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(InputError);
    expect((missing as InputError).where.file).toContain('nope.onnx');

    const corrupt = join(dir, 'corrupt.onnx');
    const good = buildToyModel({ vocab: 6, labels: 3 }).bytes;
    await writeFile(corrupt, good.subarray(0, Math.floor(good.length / 2)));
    const bad = await NerSession.open(corrupt).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(InputError);
    expect((bad as InputError).where.file).toBe(corrupt);
    expect((bad as InputError).hint).toBeTruthy();
  });

  it('resolves HF and Optimum folder layouts', async () => {
    const hf = join(dir, 'hf');
    const opt = join(dir, 'optimum');
    await mkdir(hf, { recursive: true });
    await mkdir(join(opt, 'onnx'), { recursive: true });
    const bytes = buildToyModel({ vocab: 6, labels: 3 }).bytes;
    await writeFile(join(hf, 'model.onnx'), bytes);
    await writeFile(join(opt, 'onnx', 'model.onnx'), bytes);
    expect(await resolveOnnxPath(hf)).toBe(join(hf, 'model.onnx'));
    expect(await resolveOnnxPath(opt)).toBe(join(opt, 'onnx', 'model.onnx'));
    const empty = join(dir, 'empty');
    await mkdir(empty);
    await expect(resolveOnnxPath(empty)).rejects.toBeInstanceOf(InputError);
    const single = join(dir, 'single');
    await mkdir(single);
    await writeFile(join(single, 'ner.onnx'), bytes);
    expect(await resolveOnnxPath(single)).toBe(join(single, 'ner.onnx'));
    await writeFile(join(single, 'other.onnx'), bytes);
    await expect(resolveOnnxPath(single)).rejects.toThrow(/several .onnx files/);
  });
});
