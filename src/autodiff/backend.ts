/**
 * tfjs backend selection for the autodiff executor:
 * - `tensorflow`: @tensorflow/tfjs-node (an optional dependency; imported dynamically when present),
 * - `wasm`: @tensorflow/tfjs-backend-wasm with its .wasm files read from the package on disk,
 * - `cpu`: the pure-JS backend, only when asked for by name.
 * `auto` takes the first of tensorflow, wasm that works.
 *
 * The wasm backend has no `UnsortedSegmentSum` kernel, which the gradient of `tf.gather` (the
 * embedding lookup) needs; `initBackend` registers one (a JS loop over the wasm heap: see
 * `segmentSumKernel` and bench/autodiff-gather-grad.mjs for why this one).
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { UsageError } from '../errors.js';

export type BackendPreference = 'auto' | 'tensorflow' | 'wasm' | 'cpu';

export interface BackendInfo {
  /** The tfjs backend now active: 'tensorflow' | 'wasm' | 'cpu'. */
  name: string;
  /** Why the backend differs from the preference (e.g. tfjs-node missing). */
  reason?: string;
}

let wasmPathsSet = false;
let tfjsNodeTried: { ok: boolean; error?: string } | undefined;

/** Directory holding tfjs-backend-wasm's .wasm binaries (no network). */
export function wasmDistDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + '/';
}

async function tryTfjsNode(): Promise<{ ok: boolean; error?: string }> {
  if (tfjsNodeTried) return tfjsNodeTried;
  try {
    // A variable specifier keeps TypeScript and bundlers from resolving the optional package.
    const spec = '@tensorflow/tfjs-node';
    await import(spec);
    tfjsNodeTried = { ok: tf.findBackendFactory('tensorflow') != null };
    if (!tfjsNodeTried.ok) tfjsNodeTried.error = 'it loaded but registered no "tensorflow" backend';
  } catch (e) {
    tfjsNodeTried = { ok: false, error: e instanceof Error ? e.message.split('\n')[0] : String(e) };
  }
  return tfjsNodeTried;
}

async function useWasm(): Promise<boolean> {
  if (!wasmPathsSet) {
    // Imported on demand: loading the package registers a "wasm" backend that outranks cpu, and
    // tfjs refuses synchronous ops until a top-ranked backend is initialised.
    const { setWasmPaths } = await import('@tensorflow/tfjs-backend-wasm');
    setWasmPaths(wasmDistDir());
    wasmPathsSet = true;
  }
  const ok = await tf.setBackend('wasm');
  if (ok) {
    await tf.ready();
    registerWasmSegmentSum();
  }
  return ok;
}

/**
 * Make `pref` the active tfjs backend (idempotent) and say which one runs. Falls back from
 * tensorflow to wasm with a reason; never falls back to cpu unless asked for.
 */
export async function initBackend(pref: BackendPreference = 'auto'): Promise<BackendInfo> {
  const current = tf.getBackend();
  if (pref === 'cpu') {
    if (current !== 'cpu') await tf.setBackend('cpu');
    await tf.ready();
    return { name: tf.getBackend() };
  }
  let reason: string | undefined;
  if (pref === 'auto' || pref === 'tensorflow') {
    if (current === 'tensorflow') return { name: 'tensorflow' };
    const node = await tryTfjsNode();
    if (node.ok && (await tf.setBackend('tensorflow'))) {
      await tf.ready();
      return { name: tf.getBackend() };
    }
    reason = `@tensorflow/tfjs-node is not available (${node.error ?? 'setBackend failed'}); using wasm`;
  }
  if (current === 'wasm') {
    registerWasmSegmentSum();
    return reason ? { name: 'wasm', reason } : { name: 'wasm' };
  }
  if (await useWasm()) return reason ? { name: 'wasm', reason } : { name: 'wasm' };
  throw new UsageError('the tfjs wasm backend failed to initialise', {
    hint: `check that ${wasmDistDir()} holds tfjs-backend-wasm*.wasm, or choose the slow pure-JS backend explicitly with backend "cpu"`,
  });
}

// ------------------------------------------------------------------------------------ wasm UnsortedSegmentSum

interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  readSync(dataId: tf.DataId): ArrayLike<number>;
}

/**
 * UnsortedSegmentSum for the wasm backend: out[seg[i], :] += x[i, :], ids outside
 * [0, numSegments) dropped (TensorFlow semantics). A JS loop over the wasm heap: the output
 * (e.g. the 21128 × 768 embedding gradient) is written once, with no one-hot or dense temporaries.
 */
export function segmentSumKernel(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const x = args.inputs['x'] as tf.TensorInfo;
  const ids = args.inputs['segmentIds'] as tf.TensorInfo;
  const numSegments = Number((args.attrs ?? {})['numSegments']);
  const idRank = ids.shape.length;
  const rows = ids.shape.reduce((a, b) => a * b, 1);
  const inner = x.shape.slice(idRank).reduce((a, b) => a * b, 1);
  const out = backend.makeOutput([numSegments, ...x.shape.slice(idRank)], x.dtype);
  const segs = backend.readSync(ids.dataId);
  // Read views after makeOutput: allocating may grow (and detach) the wasm heap.
  const xs = backend.typedArrayFromHeap(x);
  const o = backend.typedArrayFromHeap(out);
  o.fill(0);
  for (let r = 0; r < rows; r++) {
    const s = segs[r];
    if (s < 0 || s >= numSegments) continue;
    const src = r * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) o[dst + j] += xs[src + j];
  }
  return out;
}

/** Register the wasm UnsortedSegmentSum kernel once (no-op when present). */
export function registerWasmSegmentSum(): void {
  if (tf.getKernel('UnsortedSegmentSum', 'wasm') !== undefined) return;
  tf.registerKernel({
    kernelName: 'UnsortedSegmentSum',
    backendName: 'wasm',
    kernelFunc: segmentSumKernel as unknown as tf.KernelFunc,
  });
}
