/** Shared helpers for the autodiff executor tests. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { decodeModel, onnx } from '../../src/onnx/codec.js';
import { makeTensor } from '../../src/onnx/tensor.js';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO = join(HERE, '..', '..');
export const FIXTURES = join(HERE, 'fixtures');
export const TINY = join(REPO, 'fixtures', 'tiny');

export function loadModel(path: string): { bytes: Uint8Array; model: onnx.ModelProto } {
  const bytes = readFileSync(path);
  return { bytes, model: decodeModel(bytes, path) };
}

/** The tiny fixture folders with an ONNX model (HF or Optimum layout). */
export function tinyModels(): Array<{ name: string; onnxPath: string; refPath: string }> {
  const names = ['bio-crf-op14', 'bioes-op17', 'bmes-op12-nobias', 'wordpiece-en-op11', 'optimum-layout', 'bare'];
  return names
    .map((name) => {
      const dir = join(TINY, name);
      const onnxPath = existsSync(join(dir, 'model.onnx')) ? join(dir, 'model.onnx') : join(dir, 'onnx', 'model.onnx');
      return { name, onnxPath, refPath: join(dir, 'reference.json') };
    })
    .filter((m) => existsSync(m.onnxPath) && existsSync(m.refPath));
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (Number.isNaN(d)) return Infinity;
    if (d > m) m = d;
  }
  return m;
}

/** Run onnxruntime-node on int64 id-like inputs (given as number arrays) and float inputs. */
export async function ortRun(
  bytes: Uint8Array,
  feeds: Record<string, { data: number[]; dims: number[]; type: 'int64' | 'float32' | 'int32' | 'bool' }>,
): Promise<Record<string, { data: Float32Array; dims: readonly number[] }>> {
  const session = await ort.InferenceSession.create(bytes);
  const inputs: Record<string, ort.Tensor> = {};
  for (const [k, v] of Object.entries(feeds)) {
    inputs[k] =
      v.type === 'int64'
        ? new ort.Tensor('int64', BigInt64Array.from(v.data.map((x) => BigInt(x))), v.dims)
        : v.type === 'int32'
          ? new ort.Tensor('int32', Int32Array.from(v.data), v.dims)
          : v.type === 'bool'
            ? new ort.Tensor('bool', Uint8Array.from(v.data), v.dims)
            : new ort.Tensor('float32', Float32Array.from(v.data), v.dims);
  }
  const out = await session.run(inputs);
  const res: Record<string, { data: Float32Array; dims: readonly number[] }> = {};
  for (const [k, t] of Object.entries(out)) {
    const d = t.data as ArrayLike<number | bigint>;
    res[k] = { data: Float32Array.from(Array.from(d, (x) => Number(x))), dims: t.dims };
  }
  await session.release();
  return res;
}

/** Deterministic pseudo-random ints in [lo, hi). */
export function lcgInts(n: number, lo: number, hi: number, seed: number): number[] {
  let s = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push(lo + (s % (hi - lo)));
  }
  return out;
}

export function lcgFloats(n: number, seed: number, scale = 1): number[] {
  return lcgInts(n, 0, 1 << 30, seed).map((v) => (v / (1 << 30) - 0.5) * 2 * scale);
}

export function intTensor(rows: number[][]): tf.Tensor {
  return tf.tensor(rows.flat(), [rows.length, rows[0].length], 'int32');
}

/** A one-node ONNX model built in code (for ops the backend test data lacks in float32). */
export function oneNodeModel(opts: {
  opType: string;
  opset: number;
  inputs: Array<{ name: string; elemType: number; dims: number[] }>;
  outputs: Array<{ name: string; elemType: number; dims?: number[] }>;
  attributes?: onnx.IAttributeProto[];
  initializers?: onnx.ITensorProto[];
  nodeInputs?: string[];
}): Uint8Array {
  const vi = (v: { name: string; elemType: number; dims?: number[] }): onnx.IValueInfoProto => ({
    name: v.name,
    type: { tensorType: { elemType: v.elemType, shape: v.dims ? { dim: v.dims.map((d) => ({ dimValue: d })) } : undefined } },
  });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: opts.opset }],
    graph: {
      name: 'g',
      node: [
        {
          name: 'the_node',
          opType: opts.opType,
          input: opts.nodeInputs ?? [...opts.inputs.map((i) => i.name), ...(opts.initializers ?? []).map((t) => t.name ?? '')],
          output: opts.outputs.map((o) => o.name),
          attribute: opts.attributes ?? [],
        },
      ],
      input: opts.inputs.map(vi),
      output: opts.outputs.map(vi),
      initializer: opts.initializers ?? [],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

export { makeTensor };
