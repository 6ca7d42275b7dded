/**
 * A batched matrix product for the tfjs wasm backend, as a hand-assembled WebAssembly SIMD kernel
 * that reads and writes tensors in place on the wasm backend's heap (it imports the backend's own
 * `WebAssembly.Memory`).
 *
 * Why: tfjs-backend-wasm hands batched products (attention's [B, H, T, d] · [B, H, d, T]) to a plain
 * C++ loop that runs at ~1–2 GFLOP/s, while 2-D products go to XNNPACK (10–25 GFLOP/s). Splitting the
 * batch into 2-D XNNPACK products does not help: every fresh right-hand operand builds and packs a
 * new XNNPACK operator (bench/finetune.mjs --kernels measures all three).
 *
 * The kernel computes C[g] = A[g] · B[g] for row-major A [G, M, K], B [G, K, N], C [G, M, N] with a
 * 4-row × 8-column register block of f32x4 accumulators (8 accumulators, 2 B vectors, 1 broadcast A
 * value: 11 of the 16 xmm registers), single rows for M mod 4, lane stores for N mod 8. Each output
 * element is Σ_k a[i,k]·b[k,j] summed in k order in float32 (as a naive loop; XNNPACK and tfjs' loop
 * sum in other orders, so results differ from theirs by float32 rounding only).
 *
 * `simdMatMul` wraps it as a differentiable tfjs op: dA = dC · Bᵀ and dB = Aᵀ · dC, with explicit
 * transposes (a cheap copy) so the backward pass uses the same kernel.
 */
import * as tf from '@tensorflow/tfjs';

// ------------------------------------------------------------------------------------ a tiny assembler

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const I32 = 0x7f;
const V128 = 0x7b;
const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  if: [0x04, 0x40],
  end: [0x0b],
  br: (d: number) => [0x0c, ...uleb(d)],
  brIf: (d: number) => [0x0d, ...uleb(d)],
  get: (i: number) => [0x20, ...uleb(i)],
  set: (i: number) => [0x21, ...uleb(i)],
  i32: (v: number) => [0x41, ...sleb(v)],
  add: [0x6a],
  sub: [0x6b],
  mul: [0x6c],
  geS: [0x4e],
  ltS: [0x48],
  eqz: [0x45],
  and: [0x71],
  f32Load: (offset = 0) => [0x2a, 2, ...uleb(offset)],
  f32Store: (offset = 0) => [0x38, 2, ...uleb(offset)],
  v128Load: (offset = 0) => [0xfd, ...uleb(0x00), 2, ...uleb(offset)],
  v128Store: (offset = 0) => [0xfd, ...uleb(0x0b), 2, ...uleb(offset)],
  v128Zero: [0xfd, ...uleb(0x0c), ...new Array<number>(16).fill(0)],
  f32x4Splat: [0xfd, ...uleb(0x13)],
  f32x4Extract: (lane: number) => [0xfd, ...uleb(0x1f), lane],
  f32x4Add: [0xfd, ...uleb(0xe4)],
  f32x4Mul: [0xfd, ...uleb(0xe6)],
};

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function name(s: string): number[] {
  const b = [...Buffer.from(s, 'utf8')];
  return [...uleb(b.length), ...b];
}

// locals: parameters first
const P = { a: 0, b: 1, c: 2, G: 3, M: 4, K: 5, N: 6, sA: 7, sB: 8, sC: 9 };
const L = { g: 10, i: 11, j: 12, k: 13, pa0: 14, pa1: 15, pa2: 16, pa3: 17, pb: 18, pc: 19, rowA: 20, rowB: 21, ag: 22, bg: 23, cg: 24, m4: 25, w: 26 };
const ACC = 27; // 8 v128 accumulators: 27..34
const VB0 = 35;
const VB1 = 36;
const VA = 37;
const I32_LOCALS = 17;
const V128_LOCALS = 11;

/** `rows` (1 or 4) rows × 8 columns: zero, run over k, store (full or lane by lane). */
function block(rows: number): number[] {
  const c: number[] = [];
  for (let r = 0; r < 2 * rows; r++) c.push(...op.v128Zero, ...op.set(ACC + r));
  // pa_r = ag + (i + r)·rowA; pb = bg + 4j
  c.push(...op.get(L.ag), ...op.get(L.i), ...op.get(L.rowA), ...op.mul, ...op.add, ...op.set(L.pa0));
  for (let r = 1; r < rows; r++) c.push(...op.get(L.pa0 + r - 1), ...op.get(L.rowA), ...op.add, ...op.set(L.pa0 + r));
  c.push(...op.get(L.bg), ...op.get(L.j), ...op.i32(2), 0x74 /* i32.shl */, ...op.add, ...op.set(L.pb));
  c.push(...op.get(P.K), ...op.set(L.k));
  // k loop
  c.push(...op.block, ...op.loop);
  c.push(...op.get(L.k), ...op.eqz, ...op.brIf(1));
  c.push(...op.get(L.pb), ...op.v128Load(0), ...op.set(VB0));
  c.push(...op.get(L.pb), ...op.v128Load(16), ...op.set(VB1));
  for (let r = 0; r < rows; r++) {
    c.push(...op.get(L.pa0 + r), ...op.f32Load(0), ...op.f32x4Splat, ...op.set(VA));
    c.push(...op.get(ACC + 2 * r), ...op.get(VA), ...op.get(VB0), ...op.f32x4Mul, ...op.f32x4Add, ...op.set(ACC + 2 * r));
    c.push(...op.get(ACC + 2 * r + 1), ...op.get(VA), ...op.get(VB1), ...op.f32x4Mul, ...op.f32x4Add, ...op.set(ACC + 2 * r + 1));
    c.push(...op.get(L.pa0 + r), ...op.i32(4), ...op.add, ...op.set(L.pa0 + r));
  }
  c.push(...op.get(L.pb), ...op.get(L.rowB), ...op.add, ...op.set(L.pb));
  c.push(...op.get(L.k), ...op.i32(1), ...op.sub, ...op.set(L.k));
  c.push(...op.br(0), ...op.end, ...op.end);
  // pc = cg + (i·N + j)·4; w = N − j
  c.push(...op.get(L.cg), ...op.get(L.i), ...op.get(L.rowB), ...op.mul, ...op.add, ...op.get(L.j), ...op.i32(2), 0x74, ...op.add, ...op.set(L.pc));
  c.push(...op.get(P.N), ...op.get(L.j), ...op.sub, ...op.set(L.w));
  // if (w >= 8) full stores else lane stores
  c.push(...op.get(L.w), ...op.i32(8), ...op.geS, 0x04, 0x40);
  for (let r = 0; r < rows; r++) {
    c.push(...op.get(L.pc), ...op.get(ACC + 2 * r), ...op.v128Store(0));
    c.push(...op.get(L.pc), ...op.get(ACC + 2 * r + 1), ...op.v128Store(16));
    if (r < rows - 1) c.push(...op.get(L.pc), ...op.get(L.rowB), ...op.add, ...op.set(L.pc));
  }
  c.push(0x05 /* else */);
  for (let r = 0; r < rows; r++) {
    for (let l = 0; l < 8; l++) {
      // if (l < w) f32.store(pc + 4l, lane)
      c.push(...op.i32(l), ...op.get(L.w), ...op.ltS, ...op.if);
      c.push(...op.get(L.pc), ...op.get(ACC + 2 * r + (l >> 2)), ...op.f32x4Extract(l & 3), ...op.f32Store(4 * l));
      c.push(...op.end);
    }
    if (r < rows - 1) c.push(...op.get(L.pc), ...op.get(L.rowB), ...op.add, ...op.set(L.pc));
  }
  c.push(...op.end);
  return c;
}

/** Rows i from `start` while i + rows ≤ limit: j over column blocks of 8. */
function rowLoop(rows: number, limitLocal: number): number[] {
  const c: number[] = [];
  c.push(...op.block, ...op.loop);
  // if (i + rows > limit) break  ⇔  !(i + rows <= limit)
  c.push(...op.get(L.i), ...op.i32(rows), ...op.add, ...op.get(limitLocal), 0x4a /* i32.gt_s */, ...op.brIf(1));
  c.push(...op.i32(0), ...op.set(L.j));
  c.push(...op.block, ...op.loop);
  c.push(...op.get(L.j), ...op.get(P.N), ...op.geS, ...op.brIf(1));
  c.push(...block(rows));
  c.push(...op.get(L.j), ...op.i32(8), ...op.add, ...op.set(L.j));
  c.push(...op.br(0), ...op.end, ...op.end);
  c.push(...op.get(L.i), ...op.i32(rows), ...op.add, ...op.set(L.i));
  c.push(...op.br(0), ...op.end, ...op.end);
  return c;
}

/** The module's bytes: one function bmm(a, b, c, G, M, K, N, sA, sB, sC) (pointers and strides in bytes). */
export function batchMatMulModule(): Uint8Array<ArrayBuffer> {
  const body: number[] = [];
  body.push(...uleb(2), ...uleb(I32_LOCALS), I32, ...uleb(V128_LOCALS), V128);
  body.push(...op.get(P.K), ...op.i32(2), 0x74, ...op.set(L.rowA));
  body.push(...op.get(P.N), ...op.i32(2), 0x74, ...op.set(L.rowB));
  body.push(...op.get(P.M), ...op.i32(-4), ...op.and, ...op.set(L.m4));
  body.push(...op.i32(0), ...op.set(L.g));
  body.push(...op.block, ...op.loop);
  body.push(...op.get(L.g), ...op.get(P.G), ...op.geS, ...op.brIf(1));
  body.push(...op.get(P.a), ...op.get(L.g), ...op.get(P.sA), ...op.mul, ...op.add, ...op.set(L.ag));
  body.push(...op.get(P.b), ...op.get(L.g), ...op.get(P.sB), ...op.mul, ...op.add, ...op.set(L.bg));
  body.push(...op.get(P.c), ...op.get(L.g), ...op.get(P.sC), ...op.mul, ...op.add, ...op.set(L.cg));
  body.push(...op.i32(0), ...op.set(L.i));
  body.push(...rowLoop(4, L.m4));
  body.push(...rowLoop(1, P.M));
  body.push(...op.get(L.g), ...op.i32(1), ...op.add, ...op.set(L.g));
  body.push(...op.br(0), ...op.end, ...op.end);
  body.push(...op.end);

  const bytes = [
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, [1, 0x60, 10, ...new Array<number>(10).fill(I32), 0]),
    ...section(2, [1, ...name('env'), ...name('memory'), 0x02, 0x00, 0x00]),
    ...section(3, [1, 0]),
    ...section(7, [1, ...name('bmm'), 0x00, 0]),
    ...section(10, [1, ...uleb(body.length), ...body]),
  ];
  return new Uint8Array(bytes);
}

// ------------------------------------------------------------------------------------ the tfjs kernel

type BmmFn = (a: number, b: number, c: number, G: number, M: number, K: number, N: number, sA: number, sB: number, sC: number) => void;

interface WasmBackendLike {
  wasm: { asm?: { memory?: WebAssembly.Memory } };
  dataIdMap: { get(id: tf.DataId): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

const instances = new WeakMap<WebAssembly.Memory, BmmFn>();
let unavailable: string | undefined;
let enabled = true;

/**
 * Turn the SIMD kernel on or off (on by default); off, batched products use tf.matMul as before
 * (bench/finetune.mjs measures both). Returns the previous setting.
 */
export function setSimdMatMulEnabled(on: boolean): boolean {
  const was = enabled;
  enabled = on;
  return was;
}

function kernelFor(backend: WasmBackendLike): BmmFn | undefined {
  const memory = backend.wasm.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory)) {
    unavailable = 'the wasm backend does not expose its memory';
    return undefined;
  }
  let fn = instances.get(memory);
  if (!fn) {
    try {
      const mod = new WebAssembly.Module(batchMatMulModule());
      fn = new WebAssembly.Instance(mod, { env: { memory } }).exports.bmm as BmmFn;
      instances.set(memory, fn);
    } catch (e) {
      unavailable = e instanceof Error ? e.message : String(e);
      return undefined;
    }
  }
  return fn;
}

/** Why the SIMD kernel cannot run here (undefined when it can, or before the first try). */
export function simdMatMulUnavailable(): string | undefined {
  return unavailable;
}

/**
 * The kernel: inputs a [..., M, K] and b [..., K, N] float32 with equal leading (batch) dims; output
 * [..., M, N]. B is read up to 7 floats past a row's end (ignored lanes), so the kernel refuses a B
 * that ends within 32 bytes of the heap's end (the caller then uses tf.matMul).
 */
function bmmKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const a = args.inputs['a'] as tf.TensorInfo;
  const b = args.inputs['b'] as tf.TensorInfo;
  const fn = kernelFor(backend)!;
  const r = a.shape.length;
  const M = a.shape[r - 2];
  const K = a.shape[r - 1];
  const N = b.shape[r - 1];
  const G = a.shape.slice(0, -2).reduce((x, y) => x * y, 1);
  const out = backend.makeOutput([...a.shape.slice(0, -2), M, N], 'float32');
  // pointers after makeOutput (it may grow the heap; offsets stay valid)
  const pa = backend.dataIdMap.get(a.dataId)!.memoryOffset;
  const pb = backend.dataIdMap.get(b.dataId)!.memoryOffset;
  const pc = backend.dataIdMap.get(out.dataId)!.memoryOffset;
  fn(pa, pb, pc, G, M, K, N, M * K * 4, K * N * 4, M * N * 4);
  return out;
}

const KERNEL = 'RanercSimdBatchMatMul';

function registered(): boolean {
  if (tf.getKernel(KERNEL, 'wasm') === undefined) {
    tf.registerKernel({ kernelName: KERNEL, backendName: 'wasm', kernelFunc: bmmKernel as unknown as tf.KernelFunc });
  }
  return true;
}

/** Whether `simdMatMul` can run a product of these operands on the active backend now. */
export function simdMatMulUsable(a: tf.Tensor, b: tf.Tensor): boolean {
  if (!enabled || tf.getBackend() !== 'wasm' || unavailable !== undefined) return false;
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.rank < 3 || a.rank !== b.rank) return false;
  const r = a.rank;
  for (let i = 0; i < r - 2; i++) if (a.shape[i] !== b.shape[i]) return false;
  if (a.shape[r - 1] !== b.shape[r - 2]) return false;
  const backend = tf.backend() as unknown as WasmBackendLike;
  if (!kernelFor(backend)) return false;
  // the over-read of B's last row must stay inside the heap
  const info = backend.dataIdMap.get(b.dataId);
  const heap = backend.wasm.asm!.memory!.buffer.byteLength;
  return info !== undefined && info.memoryOffset + b.size * 4 + 32 <= heap;
}

function product(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (!simdMatMulUsable(a, b)) return tf.matMul(a, b);
  registered();
  return tf.engine().runKernel(KERNEL, { a, b }, {}) as tf.Tensor;
}

function swapLast(t: tf.Tensor): tf.Tensor {
  const perm = t.shape.map((_, i) => i);
  perm[t.rank - 1] = t.rank - 2;
  perm[t.rank - 2] = t.rank - 1;
  return tf.transpose(t, perm);
}

/**
 * A · B over equal batch dims ([..., M, K] · [..., K, N]) with the SIMD kernel on wasm (tf.matMul
 * elsewhere), differentiable: dA = dC · Bᵀ, dB = Aᵀ · dC through the same kernel.
 */
export const simdMatMul = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [a, b, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  save([a, b]);
  return {
    value: product(a, b),
    // tidy: custom gradients run outside any scope; free the transposed copies right away
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
      tf.tidy(() => {
        const [sa, sb] = saved;
        return [product(dy, swapLast(sb)), product(swapLast(sa), dy)];
      }),
  };
}) as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;
