import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, copyFileSync, readdirSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GraphError, InputError } from '../../src/errors.js';
import { decodeModel, encodeModel, onnx } from '../../src/onnx/codec.js';
import { EXTERNAL_ALIGNMENT, loadModel, saveModel } from '../../src/onnx/external.js';
import { readTensor, EXTERNAL } from '../../src/onnx/tensor.js';
import { fixture, graphOf, maxAbsDiff, ort, reference, runBert, session } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'ranerc-external-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => {
  const d = join(tmp, `case${n++}`);
  mkdirSync(d);
  return d;
};

const original = decodeModel(readFileSync(fixture('tiny_bert/model.onnx')), 'tiny_bert/model.onnx');
const values = (m: onnx.IModelProto): Record<string, unknown[]> =>
  Object.fromEntries(graphOf(m).initializer.map((t) => [t.name, Array.from(readTensor(t).data as ArrayLike<unknown>)]));

async function expectInputError(p: Promise<unknown>, file: string, message?: RegExp): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(InputError);
  expect((e as InputError).where.file).toBe(file);
  expect((e as InputError).hint).toBeTruthy();
  if (message) expect((e as InputError).message).toMatch(message);
}

describe('loadModel', () => {
  it('resolves external data written by the onnx package', async () => {
    const path = fixture('external/model.onnx');
    const loaded = await loadModel(path);
    expect(loaded.path).toBe(path);
    expect(loaded.fileBytes).toBe(statSync(path).size);
    expect(loaded.externalBytes).toBe(statSync(fixture('external/model.onnx.data')).size);
    expect(loaded.externalFiles).toEqual([fixture('external/model.onnx.data')]);
    expect(loaded.external.map((e) => e.tensor).sort()).toEqual(reference.external.externalTensors);
    for (const t of graphOf(loaded.model).initializer) {
      expect(t.dataLocation ?? 0).not.toBe(EXTERNAL);
      expect(t.externalData ?? []).toHaveLength(0);
    }
    expect(values(loaded.model)).toEqual(values(original));
    // the resolved model is an ordinary model: onnxruntime runs it from memory
    const logits = await runBert(encodeModel(loaded.model));
    expect(maxAbsDiff(logits.data as Float32Array, reference.bert.logits)).toBeLessThan(1e-4);
  });

  it('gives the file size and no external bytes for an ordinary model', async () => {
    const loaded = await loadModel(fixture('tiny_bert/model.onnx'));
    expect([loaded.fileBytes, loaded.externalBytes, loaded.external.length]).toEqual([statSync(fixture('tiny_bert/model.onnx')).size, 0, 0]);
  });

  /** A copy of the onnx-written external model with one tensor's entries rewritten. */
  function tampered(edit: (kv: Map<string, string>) => void, withData = true): string {
    const d = fresh();
    const m = decodeModel(readFileSync(fixture('external/model.onnx')));
    const t = graphOf(m).initializer.find((x) => x.dataLocation === EXTERNAL)!;
    const kv = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
    edit(kv);
    t.externalData = [...kv].map(([key, value]) => ({ key, value }));
    writeFileSync(join(d, 'model.onnx'), encodeModel(m));
    if (withData) copyFileSync(fixture('external/model.onnx.data'), join(d, 'model.onnx.data'));
    return join(d, 'model.onnx');
  }

  it('rejects locations outside the model folder', async () => {
    for (const loc of ['../model.onnx.data', 'sub/../../x.data', '/etc/passwd', 'C:\\data\\w.bin', '..']) {
      const p = tampered((kv) => kv.set('location', loc));
      await expectInputError(loadModel(p), p, /absolute path|outside the model folder/);
    }
  });

  it('rejects a missing data file, out-of-range offsets and lengths that do not fit the shape', async () => {
    const missing = tampered(() => {}, false);
    await expectInputError(loadModel(missing), missing, /cannot be opened/);
    const beyond = tampered((kv) => kv.set('offset', String(10 ** 7)));
    await expectInputError(loadModel(beyond), beyond, /beyond the end/);
    const short = tampered((kv) => kv.set('length', String(Number(kv.get('length')) - 4)));
    await expectInputError(loadModel(short), short, /shape needs/);
    const junk = tampered((kv) => kv.set('offset', '12abc'));
    await expectInputError(loadModel(junk), junk, /not a non-negative integer/);
  });

  it('names the file for missing and corrupt models', async () => {
    const d = fresh();
    await expectInputError(loadModel(join(d, 'nope.onnx')), join(d, 'nope.onnx'), /not found/);
    writeFileSync(join(d, 'bad.onnx'), readFileSync(fixture('tiny_bert/model.onnx')).subarray(0, 5000));
    await expectInputError(loadModel(join(d, 'bad.onnx')), join(d, 'bad.onnx'));
  });
});

describe('saveModel', () => {
  it("'always' writes <name>.data with 4096-aligned offsets; onnxruntime and loadModel agree", async () => {
    const d = fresh();
    const before = Buffer.from(encodeModel(original));
    const res = await saveModel(original, join(d, 'model.onnx'), { externalData: 'always' });
    expect(Buffer.from(encodeModel(original)).equals(before)).toBe(true); // input not mutated
    expect(res.files).toEqual([join(d, 'model.onnx'), join(d, 'model.onnx.data')]);
    expect(res.fileBytes).toBe(statSync(join(d, 'model.onnx')).size);
    expect(res.externalBytes).toBe(statSync(join(d, 'model.onnx.data')).size);
    expect(readdirSync(d).sort()).toEqual(['model.onnx', 'model.onnx.data']); // no temp files left

    const raw = decodeModel(readFileSync(join(d, 'model.onnx')));
    let external = 0;
    for (const t of graphOf(raw).initializer) {
      const size = readTensor(graphOf(original).initializer.find((x) => x.name === t.name)!).data.length * 4;
      if (t.dataLocation === EXTERNAL) {
        external++;
        const kv = new Map((t.externalData ?? []).map((e) => [e.key, e.value]));
        expect(kv.get('location')).toBe('model.onnx.data');
        expect(Number(kv.get('offset')) % EXTERNAL_ALIGNMENT).toBe(0);
        expect(Number(kv.get('length'))).toBe(size);
        expect(t.rawData?.length ?? 0).toBe(0);
        expect(size).toBeGreaterThanOrEqual(1024);
      } else {
        expect(size).toBeLessThan(1024);
      }
    }
    expect(external).toBeGreaterThan(5);

    const [a, b] = [await runBert(fixture('tiny_bert/model.onnx')), await runBert(join(d, 'model.onnx'))];
    expect(Array.from(b.data as Float32Array)).toEqual(Array.from(a.data as Float32Array));
    const loaded = await loadModel(join(d, 'model.onnx'));
    expect(values(loaded.model)).toEqual(values(original));
    expect(loaded.external).toHaveLength(external);
  });

  it("'never' and small 'auto' write one file; 'auto' above the limit externalizes", async () => {
    const d = fresh();
    for (const mode of ['never', 'auto'] as const) {
      const res = await saveModel(original, join(d, `${mode}.onnx`), { externalData: mode });
      expect(res.files).toEqual([join(d, `${mode}.onnx`)]);
      expect(res.externalBytes).toBe(0);
      expect(values(decodeModel(readFileSync(join(d, `${mode}.onnx`))))).toEqual(values(original));
    }
    const res = await saveModel(original, join(d, 'big.onnx'), { externalData: 'auto', autoLimitBytes: 40_000 });
    expect(res.files).toEqual([join(d, 'big.onnx'), join(d, 'big.onnx.data')]);
    expect(res.fileBytes).toBeLessThan(60_000);
    const logits = await runBert(join(d, 'big.onnx'));
    expect(maxAbsDiff(logits.data as Float32Array, reference.bert.logits)).toBeLessThan(1e-4);
  });

  it('converts typed-field tensors and externalizes subgraph initializers', async () => {
    const d = fresh();
    const dt = decodeModel(readFileSync(fixture('dtypes.onnx')));
    await saveModel(dt, join(d, 'dtypes.onnx'), { externalData: 'always', minExternalBytes: 1 });
    const s1 = await session(readFileSync(fixture('dtypes.onnx')));
    const s2 = await session(join(d, 'dtypes.onnx'));
    const [o1, o2] = [await s1.run({}), await s2.run({})];
    for (const k of Object.keys(o1)) expect(Array.from(o2[k].data as ArrayLike<unknown>), k).toEqual(Array.from(o1[k].data as ArrayLike<unknown>));
    expect(values((await loadModel(join(d, 'dtypes.onnx'))).model)).toEqual(values(dt));

    // a subgraph with its own initializer
    const sg = decodeModel(readFileSync(fixture('subgraph.onnx')));
    const ifNode = graphOf(sg).node[0];
    const thenGraph = ifNode.attribute!.find((a) => a.name === 'then_branch')!.g!;
    thenGraph.initializer = [onnx.TensorProto.create({ name: 'W_local', dataType: 1, dims: [3], floatData: [5, 6, 7] })];
    thenGraph.node![0].input = ['xr', 'W_local'];
    await saveModel(sg, join(d, 'sg.onnx'), { externalData: 'always', minExternalBytes: 1 });
    const saved = decodeModel(readFileSync(join(d, 'sg.onnx')));
    const savedThen = graphOf(saved).node[0].attribute!.find((a) => a.name === 'then_branch')!.g!;
    expect(savedThen.initializer![0].dataLocation).toBe(EXTERNAL);
    expect(thenGraph.initializer[0].dataLocation ?? 0).toBe(0); // the input model is untouched
    const s = await session(join(d, 'sg.onnx'));
    const y = (await s.run({ x: new ort.Tensor('float32', Float32Array.from(reference.subgraph.x), [3]), cond: new ort.Tensor('bool', [true], []) })).y;
    expect(Array.from(y.data as Float32Array)).toEqual(reference.subgraph.x.map((v, i) => Math.max(v, 0) + [5, 6, 7][i]));
  });

  it('refuses to save tensors that still point at unloaded external data', async () => {
    const m = decodeModel(readFileSync(fixture('external/model.onnx')));
    await expect(saveModel(m, join(fresh(), 'x.onnx'))).rejects.toThrow(GraphError);
  });
});
