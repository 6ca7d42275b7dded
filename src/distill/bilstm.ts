/**
 * A bidirectional LSTM layer as one tfjs op with a hand-written gradient (`tf.customGrad`).
 *
 * Semantics are the ONNX `LSTM` operator's (direction "bidirectional", no peepholes, no clip, default
 * activations f = Sigmoid, g = h = Tanh, gate order i, o, f, c) with `sequence_lens`: for row b only
 * the first lens[b] steps are real; padded steps keep the state and output zeros, and the reverse
 * direction starts at step lens[b] − 1. So the exported ONNX `LSTM` node computes the same function
 * (see export.ts for the weight conversion; tests compare with onnxruntime).
 *
 * Why not tfjs autodiff over per-step ops (hand-written, or the ONNX `LSTM` op through OnnxExecutor):
 * on the wasm backend that is ~15 kernels per step forward and more backward (split/slice/unstack
 * gradients, transposed matMuls on the slow path). bench/distill.mjs measured, batch 16 × 50 tokens,
 * E 64 / H 96, on the shared 2-core machine: OnnxExecutor 1.6k, per-step autodiff 1.6k, this op 8.6k
 * tokens/s (batch 64, H 128: 1.2k, 1.3k, 7.4k). Here each time step is one batched `matMul` for both
 * plain 2-D `matMul` per direction ([B, H] × [H, 4H]) plus the gate arithmetic in plain JS on
 * Float32Arrays; the backward pass is one matMul per step and direction (dG·Rᵀ), and the weight
 * gradients are large matMuls over all steps at once (dW = Xᵀ·dG, dR = H₋₁ᵀ·dG, dX = dG·Wᵀ).
 * Every matMul is 2-D without transpose flags (transposes are explicit): the wasm backend sends only
 * those to XNNPACK and runs anything else (batched or transposed operands, which is what tfjs's own
 * matMul gradient produces) through a naive loop that was ~10× slower here.
 *
 * Parameter layout (tfjs side):
 * - `w` [E, 8H]: input weights, columns d·4H + g·H + j for direction d (0 forward, 1 reverse), gate g
 *   (0 i, 1 o, 2 f, 3 c), unit j — ONNX W[d] is the transpose of columns d·4H … d·4H + 4H − 1;
 * - `r` [2, H, 4H]: recurrent weights, ONNX R[d] = r[d]ᵀ;
 * - `b` [8H]: one bias per gate (ONNX B[d] = [b[d·4H…], zeros(4H)], i.e. Wb = b, Rb = 0).
 */
import * as tf from '@tensorflow/tfjs';

/** Weights of one bidirectional layer (see the module comment for the layout). */
export interface BiLstmWeights {
  w: tf.Tensor;
  r: tf.Tensor;
  b: tf.Tensor;
}

/**
 * Read a tensor computed by `fn` into a Float32Array, disposing every tensor `fn` made. (Returning the
 * array from `tf.tidy` itself would make tidy walk every element looking for tensors: seconds per call.)
 */
export function readTidy(fn: () => tf.Tensor): Float32Array {
  let out: Float32Array | undefined;
  tf.tidy(() => {
    out = fn().dataSync() as Float32Array;
  });
  return out as Float32Array;
}

/** r [2, H, 4H] as two [H, 4H] tensors (caller disposes). */
function directionSlices(r: tf.Tensor, H: number): tf.Tensor2D[] {
  return [0, 1].map((d) => tf.reshape(tf.slice(r, [d, 0, 0], [1, H, 4 * H]), [H, 4 * H]) as tf.Tensor2D);
}

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

function tanh(x: number): number {
  // 1 − 2/(e^{2x} + 1): exact limits ±1 without overflow trouble
  return 1 - 2 / (Math.exp(2 * x) + 1);
}

/** Sequence lengths from a 0/1 attention mask [B, S] (left-aligned rows). */
export function lengthsFromMask(mask: ArrayLike<number>, batch: number, seq: number): Int32Array {
  const lens = new Int32Array(batch);
  for (let b = 0; b < batch; b++) {
    let n = 0;
    for (let t = 0; t < seq; t++) n += mask[b * seq + t] !== 0 ? 1 : 0;
    lens[b] = n;
  }
  return lens;
}

/**
 * Run a bidirectional LSTM over `x` [B, S, E] (batch first) with per-row lengths `lens`; returns
 * [B, S, 2H] (forward units then reverse units per step, zeros at padded steps), differentiable
 * w.r.t. x, w, r and b.
 */
export function biLstm(x: tf.Tensor, weights: BiLstmWeights, lens: Int32Array): tf.Tensor {
  const [B, S, E] = x.shape as [number, number, number];
  const H = weights.r.shape[1] as number;
  if (weights.w.shape[0] !== E || weights.w.shape[1] !== 8 * H) {
    throw new RangeError(`biLstm: w is [${weights.w.shape}] but [${E}, ${8 * H}] is needed`);
  }
  if (weights.r.shape[0] !== 2 || weights.r.shape[2] !== 4 * H) throw new RangeError(`biLstm: r is [${weights.r.shape}], [2, ${H}, ${4 * H}] needed`);
  if (weights.b.shape[0] !== 8 * H) throw new RangeError(`biLstm: b is [${weights.b.shape}], [${8 * H}] needed`);
  if (lens.length !== B) throw new RangeError(`biLstm: ${lens.length} lengths for a batch of ${B}`);
  for (let b = 0; b < B; b++) {
    if (lens[b] < 0 || lens[b] > S) throw new RangeError(`biLstm: length ${lens[b]} of row ${b} is outside [0, ${S}]`);
  }
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [xIn, wIn, rIn, bIn] = args as tf.Tensor[];
    const save = args[4] as tf.GradSaveFunc;
    save([xIn, wIn, rIn]);
    const G4 = 4 * H;
    const G8 = 8 * H;
    const BS = B * S;
    // Input projections of every step, both directions: [B·S, 8H], row b·S + t.
    const xp = readTidy(() => tf.add(tf.matMul(tf.reshape(xIn, [BS, E]), wIn), bIn));
    const h = new Float32Array(2 * B * H);
    const c = new Float32Array(2 * B * H);
    const acts = new Float32Array(S * 2 * B * G4); // per step k: i, o, f, g (activated)
    const cPrev = new Float32Array(S * 2 * B * H);
    const tcs = new Float32Array(S * 2 * B * H); // tanh(c_new)
    const hPrev = new Float32Array(2 * BS * H); // [d][b·S + t][j]: h entering time t
    const y = new Float32Array(BS * 2 * H);
    const rDir = directionSlices(rIn, H);
    try {
      for (let k = 0; k < S; k++) {
        for (let d = 0; d < 2; d++) {
          const t = d === 0 ? k : S - 1 - k;
          // h·R for this direction ([B, H] × [H, 4H]; plain 2-D so XNNPACK's fast path runs)
          const rec = k === 0 ? undefined : readTidy(() => tf.matMul(tf.tensor2d(h.subarray(d * B * H, (d + 1) * B * H), [B, H]), rDir[d]));
          for (let b = 0; b < B; b++) {
            if (t >= lens[b]) continue; // padded: state kept, output 0
            const row = b * S + t;
            const xo = row * G8 + d * G4;
            const so = (d * B + b) * H;
            const ro = b * G4;
            const ao = ((k * 2 + d) * B + b) * G4;
            const co = ((k * 2 + d) * B + b) * H;
            const po = (d * BS + row) * H;
            const yo = row * 2 * H + d * H;
            for (let j = 0; j < H; j++) {
              let a0 = xp[xo + j];
              let a1 = xp[xo + H + j];
              let a2 = xp[xo + 2 * H + j];
              let a3 = xp[xo + 3 * H + j];
              if (rec !== undefined) {
                a0 += rec[ro + j];
                a1 += rec[ro + H + j];
                a2 += rec[ro + 2 * H + j];
                a3 += rec[ro + 3 * H + j];
              }
              const gi = sigmoid(a0);
              const go = sigmoid(a1);
              const gf = sigmoid(a2);
              const gc = tanh(a3);
              const cp = c[so + j];
              const cn = gf * cp + gi * gc;
              const tc = tanh(cn);
              const hn = go * tc;
              acts[ao + j] = gi;
              acts[ao + H + j] = go;
              acts[ao + 2 * H + j] = gf;
              acts[ao + 3 * H + j] = gc;
              cPrev[co + j] = cp;
              tcs[co + j] = tc;
              hPrev[po + j] = h[so + j];
              c[so + j] = cn;
              h[so + j] = hn;
              y[yo + j] = hn;
            }
          }
        }
      }
    } finally {
      tf.dispose(rDir);
    }
    const value = tf.tensor3d(y, [B, S, 2 * H]);

    const gradFunc = (dyT: tf.Tensor3D, saved: tf.Tensor[]): tf.Tensor[] => {
      const [xS, wS, rS] = saved;
      const dy = dyT.dataSync() as Float32Array;
      const dG = [new Float32Array(BS * G4), new Float32Array(BS * G4)]; // per direction, row b·S + t
      const dGstep = new Float32Array(B * G4);
      const dh = new Float32Array(2 * B * H);
      const dc = new Float32Array(2 * B * H);
      const rT = tf.tidy(() => directionSlices(rS, H).map((r) => tf.transpose(r)));
      try {
        for (let k = S - 1; k >= 0; k--) {
          for (let d = 0; d < 2; d++) {
            const t = d === 0 ? k : S - 1 - k;
            let any = false;
            dGstep.fill(0);
            const dGd = dG[d];
            for (let b = 0; b < B; b++) {
              if (t >= lens[b]) continue; // padded: gradients pass through the kept state
              any = true;
              const row = b * S + t;
              const so = (d * B + b) * H;
              const ao = ((k * 2 + d) * B + b) * G4;
              const co = ((k * 2 + d) * B + b) * H;
              const yo = row * 2 * H + d * H;
              const go4 = row * G4;
              const gs = b * G4;
              for (let j = 0; j < H; j++) {
                const gi = acts[ao + j];
                const go = acts[ao + H + j];
                const gf = acts[ao + 2 * H + j];
                const gc = acts[ao + 3 * H + j];
                const tc = tcs[co + j];
                const dhj = dh[so + j] + dy[yo + j];
                const dct = dhj * go * (1 - tc * tc) + dc[so + j];
                const dI = dct * gc * gi * (1 - gi);
                const dO = dhj * tc * go * (1 - go);
                const dF = dct * cPrev[co + j] * gf * (1 - gf);
                const dC = dct * gi * (1 - gc * gc);
                dGd[go4 + j] = dI;
                dGd[go4 + H + j] = dO;
                dGd[go4 + 2 * H + j] = dF;
                dGd[go4 + 3 * H + j] = dC;
                dGstep[gs + j] = dI;
                dGstep[gs + H + j] = dO;
                dGstep[gs + 2 * H + j] = dF;
                dGstep[gs + 3 * H + j] = dC;
                dc[so + j] = dct * gf;
                dh[so + j] = 0; // consumed; the recurrent term below refills it
              }
            }
            if (k > 0 && any) {
              const dhPrev = readTidy(() => tf.matMul(tf.tensor2d(dGstep, [B, G4]), rT[d]));
              const off = d * B * H;
              for (let i = 0; i < B * H; i++) dh[off + i] += dhPrev[i];
            }
          }
        }
      } finally {
        tf.dispose(rT);
      }
      return tf.tidy(() => {
        const xT = tf.transpose(tf.reshape(xS, [BS, E]));
        const parts = [0, 1].map((d) => {
          const g = tf.tensor2d(dG[d], [BS, G4]);
          const wT = tf.transpose(tf.slice(wS, [0, d * G4], [E, G4]));
          const hpT = tf.transpose(tf.tensor2d(hPrev.subarray(d * BS * H, (d + 1) * BS * H), [BS, H]));
          return { dx: tf.matMul(g, wT), dw: tf.matMul(xT, g), db: tf.sum(g, 0), dr: tf.matMul(hpT, g) };
        });
        const dx = tf.reshape(tf.add(parts[0].dx, parts[1].dx), [B, S, E]);
        const dw = tf.concat([parts[0].dw, parts[1].dw], 1);
        const db = tf.concat([parts[0].db, parts[1].db], 0);
        const dr = tf.stack([parts[0].dr, parts[1].dr]);
        return [dx, dw, dr, db];
      });
    };
    return { value, gradFunc };
  });
  return op(x, weights.w, weights.r, weights.b);
}
