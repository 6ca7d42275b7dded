/**
 * Student models: tfjs forward functions whose parameters are named after the ONNX initializers they
 * are exported to, and the ONNX export of each (opset 14). A registry maps `--student` names to small
 * factory functions, as TextBrewer's presets map names to losses and schedulers.
 *
 * - `bilstm-crf`: embeddings over the teacher's vocabulary → `layers` bidirectional LSTMs (the fused
 *   op of bilstm.ts) → linear emissions, plus CRF transitions (exported to crf.json).
 * - `bilstm`: the same without a CRF (argmax decoding; hard loss = token cross-entropy).
 * - `transformer`: a tiny post-LayerNorm encoder (learned positions, ReLU FFN), with a CRF.
 *
 * Export: inputs `input_ids` / `attention_mask` (int64, dynamic batch and sequence), output `logits`
 * [batch, sequence, labels]. LSTM students: Gather → Transpose → the ONNX `LSTM` op
 * (bidirectional, `sequence_lens` = Cast(ReduceSum(attention_mask)) so padding never enters the reverse
 * direction) → Transpose/Reshape → MatMul + Add.
 */
import * as tf from '@tensorflow/tfjs';
import type { onnx } from '../onnx/codec.js';
import type { CrfParams } from '../ner/types.js';
import { ranercVersion } from '../report/environment.js';
import { biLstm, lengthsFromMask } from './bilstm.js';
import type { CrfTensors } from './loss.js';
import { GraphBuilder } from './onnx-builder.js';
import { dense, dropout } from './ops.js';

export type StudentKind = 'bilstm-crf' | 'bilstm' | 'transformer';

/** Sizes of a student. */
export interface StudentSpec {
  kind: StudentKind;
  vocabSize: number;
  numLabels: number;
  /** Token embedding size (LSTM students). */
  embeddingDim: number;
  /** LSTM units per direction, or the transformer's model width. */
  hidden: number;
  layers: number;
  /** Transformer: attention heads and FFN width. */
  heads: number;
  ffn: number;
  /** Transformer: learned positions (the teacher's maximum input length). */
  maxPositions: number;
  dropout: number;
  /** Whether the student has CRF transitions. */
  crf: boolean;
}

/** A padded batch: row r is [CLS] tokens [SEP] then padding; `ids` and `mask` are [rows, seq]. */
export interface StudentInput {
  rows: number;
  seq: number;
  ids: Int32Array;
  mask: Int32Array;
}

/** One trainable parameter. `decay`: whether AdamW's weight decay applies (not to biases/norms/CRF). */
export interface StudentParam {
  name: string;
  variable: tf.Variable;
  decay: boolean;
}

export interface Student {
  readonly spec: StudentSpec;
  readonly params: StudentParam[];
  readonly crf?: CrfTensors;
  /** Logits [rows, seq, labels]. With `rand`, dropout is applied (training). */
  forward(input: StudentInput, rand?: () => number): tf.Tensor3D;
  /** The ONNX model computing the same logits. */
  toOnnx(): onnx.ModelProto;
  /** The CRF parameters (labels filled in by the caller), when the student has a CRF. */
  crfParams(labels: string[]): CrfParams | undefined;
  /** Number of float parameters (ONNX initializers plus CRF). */
  parameterCount(): number;
  dispose(): void;
}

/** Seeded normal and uniform draws (Box–Muller over the given uniform source). */
export function gaussian(rand: () => number): () => number {
  return () => {
    let u = 0;
    while (u <= 1e-12) u = rand();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  };
}

function uniform(n: number, bound: number, rand: () => number): Float32Array {
  return Float32Array.from({ length: n }, () => (2 * rand() - 1) * bound);
}

function normal(n: number, std: number, rand: () => number): Float32Array {
  const g = gaussian(rand);
  return Float32Array.from({ length: n }, () => g() * std);
}

let variableCounter = 0;

class ParamSet {
  readonly list: StudentParam[] = [];
  add(name: string, shape: number[], values: Float32Array, decay: boolean): tf.Variable {
    // tfjs variable names are global: suffix a counter so several students can coexist
    const init = tf.tensor(values, shape);
    const v = tf.variable(init, true, `ranerc_student_${variableCounter++}_${name}`);
    init.dispose(); // the variable keeps its own reference to the data
    this.list.push({ name, variable: v, decay });
    return v;
  }
  values(name: string): Float32Array {
    const p = this.list.find((x) => x.name === name);
    if (!p) throw new Error(`no parameter ${name}`);
    return p.variable.dataSync() as Float32Array;
  }
}

/** Initial CRF: the teacher's transitions when given (same labels), else U(−0.1, 0.1) as bert_ner.py. */
function makeCrf(params: ParamSet, L: number, rand: () => number, init?: CrfParams): CrfTensors {
  const trans = init ? Float32Array.from(init.transitions.flat()) : uniform(L * L, 0.1, rand);
  const start = init ? Float32Array.from(init.start) : uniform(L, 0.1, rand);
  const end = init ? Float32Array.from(init.end) : uniform(L, 0.1, rand);
  return {
    transitions: params.add('crf.transitions', [L, L], trans, false),
    start: params.add('crf.start_transitions', [L], start, false),
    end: params.add('crf.end_transitions', [L], end, false),
  };
}

function crfParamsOf(crf: CrfTensors | undefined, labels: string[]): CrfParams | undefined {
  if (!crf) return undefined;
  const L = labels.length;
  const t = crf.transitions.dataSync();
  return {
    labels: [...labels],
    transitions: Array.from({ length: L }, (_, i) => Array.from(t.subarray(i * L, (i + 1) * L))),
    start: Array.from(crf.start.dataSync()),
    end: Array.from(crf.end.dataSync()),
  };
}

function countOf(params: StudentParam[]): number {
  return params.reduce((n, p) => n + p.variable.size, 0);
}

// ------------------------------------------------------------------------------------ BiLSTM

function embeddingInit(V: number, E: number, rand: () => number, init?: StudentInit): Float32Array {
  if (init?.embeddings) {
    if (init.embeddings.length !== V * E) throw new RangeError(`initial embeddings have ${init.embeddings.length} values, ${V * E} expected`);
    return Float32Array.from(init.embeddings);
  }
  return normal(V * E, 0.3, rand);
}

function lstmStudent(spec: StudentSpec, rand: () => number, init?: StudentInit): Student {
  const { vocabSize: V, embeddingDim: E, hidden: H, layers, numLabels: L } = spec;
  const crfInit = init?.crf;
  const ps = new ParamSet();
  const emb = ps.add('embeddings.weight', [V, E], embeddingInit(V, E, rand, init), true);
  const layerW: Array<{ w: tf.Variable; r: tf.Variable; b: tf.Variable }> = [];
  const k = 1 / Math.sqrt(H);
  for (let l = 0; l < layers; l++) {
    const inSize = l === 0 ? E : 2 * H;
    const b = uniform(8 * H, k, rand);
    for (let d = 0; d < 2; d++) for (let j = 0; j < H; j++) b[d * 4 * H + 2 * H + j] = 1; // forget-gate bias 1
    layerW.push({
      w: ps.add(`lstm.${l}.w`, [inSize, 8 * H], uniform(inSize * 8 * H, k, rand), true),
      r: ps.add(`lstm.${l}.r`, [2, H, 4 * H], uniform(2 * H * 4 * H, k, rand), true),
      b: ps.add(`lstm.${l}.b`, [8 * H], b, false),
    });
  }
  const kc = 1 / Math.sqrt(2 * H);
  const cw = ps.add('classifier.weight', [2 * H, L], uniform(2 * H * L, kc, rand), true);
  const cb = ps.add('classifier.bias', [L], new Float32Array(L), false);
  const crf = spec.crf ? makeCrf(ps, L, rand, crfInit) : undefined;

  return {
    spec,
    params: ps.list,
    crf,
    forward(input, drop) {
      const { rows: B, seq: S } = input;
      const lens = lengthsFromMask(input.mask, B, S);
      return tf.tidy(() => {
        const ids = tf.tensor2d(input.ids, [B, S], 'int32');
        let x: tf.Tensor = dropout(tf.gather(emb, ids), spec.dropout, drop);
        for (const lw of layerW) x = dropout(biLstm(x, lw, lens), spec.dropout, drop);
        const logits = dense(tf.reshape(x, [B * S, 2 * H]), cw, cb);
        return tf.reshape(logits, [B, S, L]) as tf.Tensor3D;
      });
    },
    toOnnx() {
      const g = new GraphBuilder();
      g.float('embeddings.weight', [V, E], ps.values('embeddings.weight'));
      const e = g.node('Gather', ['embeddings.weight', 'input_ids']);
      let x = g.node('Transpose', [e], { perm: [1, 0, 2] }); // [S, B, E]
      g.int64('axes_1', [1]);
      const sum = g.node('ReduceSum', ['attention_mask', 'axes_1'], { keepdims: 0 });
      const lens = g.node('Cast', [sum], { to: 6 /* INT32 */ }, ['sequence_lens']);
      g.int64('shape_0_0_m1', [0, 0, -1]);
      for (let l = 0; l < layers; l++) {
        const inSize = l === 0 ? E : 2 * H;
        const { W, R, Bias } = lstmToOnnxWeights(ps.values(`lstm.${l}.w`), ps.values(`lstm.${l}.r`), ps.values(`lstm.${l}.b`), inSize, H);
        g.float(`lstm.${l}.W`, [2, 4 * H, inSize], W);
        g.float(`lstm.${l}.R`, [2, 4 * H, H], R);
        g.float(`lstm.${l}.B`, [2, 8 * H], Bias);
        const y = g.node('LSTM', [x, `lstm.${l}.W`, `lstm.${l}.R`, `lstm.${l}.B`, lens], { direction: 'bidirectional', hidden_size: H }, [`lstm_${l}_Y`]);
        const yt = g.node('Transpose', [y], { perm: [0, 2, 1, 3] }); // [S, B, 2, H]
        x = g.node('Reshape', [yt, 'shape_0_0_m1']); // [S, B, 2H]
      }
      const hb = g.node('Transpose', [x], { perm: [1, 0, 2] }); // [B, S, 2H]
      g.float('classifier.weight', [2 * H, L], ps.values('classifier.weight'));
      g.float('classifier.bias', [L], ps.values('classifier.bias'));
      const mm = g.node('MatMul', [hb, 'classifier.weight']);
      g.node('Add', [mm, 'classifier.bias'], {}, ['logits']);
      return g.model('logits', L, ranercVersion());
    },
    crfParams: (labels) => crfParamsOf(crf, labels),
    parameterCount: () => countOf(ps.list),
    dispose: () => ps.list.forEach((p) => p.variable.dispose()),
  };
}

/**
 * tfjs LSTM weights (bilstm.ts layout: w [I, 8H], r [2, H, 4H], b [8H]) → ONNX LSTM inputs
 * W [2, 4H, I], R [2, 4H, H], B [2, 8H] (= [Wb, Rb] with Rb = 0). Gate order i, o, f, c in both.
 */
export function lstmToOnnxWeights(
  w: ArrayLike<number>,
  r: ArrayLike<number>,
  b: ArrayLike<number>,
  inSize: number,
  H: number,
): { W: Float32Array; R: Float32Array; Bias: Float32Array } {
  const G = 4 * H;
  const W = new Float32Array(2 * G * inSize);
  const R = new Float32Array(2 * G * H);
  const Bias = new Float32Array(2 * 2 * G);
  for (let d = 0; d < 2; d++) {
    for (let g = 0; g < G; g++) {
      for (let i = 0; i < inSize; i++) W[(d * G + g) * inSize + i] = w[i * 2 * G + d * G + g];
      for (let i = 0; i < H; i++) R[(d * G + g) * H + i] = r[(d * H + i) * G + g];
      Bias[d * 2 * G + g] = b[d * G + g];
    }
  }
  return { W, R, Bias };
}

// ------------------------------------------------------------------------------------ transformer

const LN_EPS = 1e-5;

function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor {
  const mean = tf.mean(x, -1, true);
  const d = tf.sub(x, mean);
  const v = tf.mean(tf.mul(d, d), -1, true);
  return tf.add(tf.mul(tf.div(d, tf.sqrt(tf.add(v, LN_EPS))), gamma), beta);
}

function transformerStudent(spec: StudentSpec, rand: () => number, init?: StudentInit): Student {
  const { vocabSize: V, hidden: D, layers, heads: NH, ffn: F, maxPositions: P, numLabels: L } = spec;
  const crfInit = init?.crf;
  if (D % NH !== 0) throw new RangeError(`transformer width ${D} is not a multiple of ${NH} heads`);
  const dh = D / NH;
  const ps = new ParamSet();
  const std = 0.02 * 5; // small model: a larger init than BERT's 0.02 trains faster from scratch
  const word = ps.add('embeddings.word', [V, D], init?.embeddings ? embeddingInit(V, D, rand, init) : normal(V * D, std, rand), true);
  const pos = ps.add('embeddings.position', [P, D], normal(P * D, std, rand), true);
  const lnE = [ps.add('embeddings.ln.gamma', [D], new Float32Array(D).fill(1), false), ps.add('embeddings.ln.beta', [D], new Float32Array(D), false)];
  const kD = 1 / Math.sqrt(D);
  const kF = 1 / Math.sqrt(F);
  const layerP = Array.from({ length: layers }, (_, l) => {
    const lin = (name: string, i: number, o: number, k: number) => ({
      w: ps.add(`layer.${l}.${name}.weight`, [i, o], uniform(i * o, k, rand), true),
      b: ps.add(`layer.${l}.${name}.bias`, [o], new Float32Array(o), false),
    });
    return {
      q: lin('query', D, D, kD),
      k: lin('key', D, D, kD),
      v: lin('value', D, D, kD),
      o: lin('attention_output', D, D, kD),
      ln1: [ps.add(`layer.${l}.ln1.gamma`, [D], new Float32Array(D).fill(1), false), ps.add(`layer.${l}.ln1.beta`, [D], new Float32Array(D), false)],
      f1: lin('ffn_in', D, F, kD),
      f2: lin('ffn_out', F, D, kF),
      ln2: [ps.add(`layer.${l}.ln2.gamma`, [D], new Float32Array(D).fill(1), false), ps.add(`layer.${l}.ln2.beta`, [D], new Float32Array(D), false)],
    };
  });
  const cw = ps.add('classifier.weight', [D, L], uniform(D * L, kD, rand), true);
  const cb = ps.add('classifier.bias', [L], new Float32Array(L), false);
  const crf = spec.crf ? makeCrf(ps, L, rand, crfInit) : undefined;

  return {
    spec,
    params: ps.list,
    crf,
    forward(input, drop) {
      const { rows: B, seq: S } = input;
      if (S > P) throw new RangeError(`sequence of ${S} tokens exceeds the transformer's ${P} positions`);
      return tf.tidy(() => {
        const ids = tf.tensor2d(input.ids, [B, S], 'int32');
        const maskBias = tf.reshape(tf.mul(tf.sub(1, tf.tensor2d(input.mask, [B, S], 'float32')), -10000), [B, 1, 1, S]);
        let x = tf.add(tf.gather(word, ids), tf.slice(pos, [0, 0], [S, D]));
        x = dropout(layerNorm(x, lnE[0], lnE[1]), spec.dropout, drop);
        let x2 = tf.reshape(x, [B * S, D]);
        for (const lp of layerP) {
          const split = (t: tf.Tensor, perm: number[]) => tf.transpose(tf.reshape(t, [B, S, NH, dh]), perm);
          const q = split(dense(x2, lp.q.w, lp.q.b), [0, 2, 1, 3]);
          const k = split(dense(x2, lp.k.w, lp.k.b), [0, 2, 3, 1]);
          const v = split(dense(x2, lp.v.w, lp.v.b), [0, 2, 1, 3]);
          const scores = tf.add(tf.mul(tf.matMul(q, k), 1 / Math.sqrt(dh)), maskBias);
          const ctx = tf.reshape(tf.transpose(tf.matMul(tf.softmax(scores), v), [0, 2, 1, 3]), [B * S, D]);
          const att = dropout(dense(ctx, lp.o.w, lp.o.b), spec.dropout, drop);
          x2 = layerNorm(tf.add(x2, att), lp.ln1[0], lp.ln1[1]);
          const ff = dropout(dense(tf.relu(dense(x2, lp.f1.w, lp.f1.b)), lp.f2.w, lp.f2.b), spec.dropout, drop);
          x2 = layerNorm(tf.add(x2, ff), lp.ln2[0], lp.ln2[1]);
        }
        return tf.reshape(dense(x2, cw, cb), [B, S, L]) as tf.Tensor3D;
      });
    },
    toOnnx() {
      const g = new GraphBuilder();
      const put = (name: string) => g.float(name, [...(ps.list.find((p) => p.name === name)!.variable.shape as number[])], ps.values(name));
      for (const p of ps.list) if (!p.name.startsWith('crf.')) put(p.name);
      g.int64('zero', [0]);
      g.int64('one', [1]);
      g.int64('two', [2]);
      g.int64('shape_heads', [0, 0, NH, dh]);
      g.int64('shape_model', [0, 0, D]);
      g.int64('axes_1_2', [1, 2]);
      g.float('scale', [], [1 / Math.sqrt(dh)]);
      g.float('one_f', [], [1]);
      g.float('neg_big', [], [-10000]);
      g.float('eps', [], [LN_EPS]);
      const ln = (x: string, gamma: string, beta: string) => {
        const mean = g.node('ReduceMean', [x], { axes: [-1], keepdims: 1 });
        const d = g.node('Sub', [x, mean]);
        const v = g.node('ReduceMean', [g.node('Mul', [d, d])], { axes: [-1], keepdims: 1 });
        const n = g.node('Div', [d, g.node('Sqrt', [g.node('Add', [v, 'eps'])])]);
        return g.node('Add', [g.node('Mul', [n, gamma]), beta]);
      };
      const linear = (x: string, name: string) => g.node('Add', [g.node('MatMul', [x, `${name}.weight`]), `${name}.bias`]);
      const seqLen = g.node('Slice', [g.node('Shape', ['input_ids']), 'one', 'two', 'zero']);
      const posE = g.node('Slice', ['embeddings.position', 'zero', seqLen, 'zero']);
      let x = g.node('Add', [g.node('Gather', ['embeddings.word', 'input_ids']), posE]);
      x = ln(x, 'embeddings.ln.gamma', 'embeddings.ln.beta');
      const maskF = g.node('Cast', ['attention_mask'], { to: 1 /* FLOAT */ });
      const bias = g.node('Unsqueeze', [g.node('Mul', [g.node('Sub', ['one_f', maskF]), 'neg_big']), 'axes_1_2']);
      for (let l = 0; l < layers; l++) {
        const p = `layer.${l}`;
        const heads = (t: string, perm: number[]) => g.node('Transpose', [g.node('Reshape', [t, 'shape_heads'])], { perm });
        const q = heads(linear(x, `${p}.query`), [0, 2, 1, 3]);
        const k = heads(linear(x, `${p}.key`), [0, 2, 3, 1]);
        const v = heads(linear(x, `${p}.value`), [0, 2, 1, 3]);
        const scores = g.node('Add', [g.node('Mul', [g.node('MatMul', [q, k]), 'scale']), bias]);
        const probs = g.node('Softmax', [scores], { axis: -1 });
        const ctx = g.node('Reshape', [g.node('Transpose', [g.node('MatMul', [probs, v])], { perm: [0, 2, 1, 3] }), 'shape_model']);
        x = ln(g.node('Add', [x, linear(ctx, `${p}.attention_output`)]), `${p}.ln1.gamma`, `${p}.ln1.beta`);
        const ff = linear(g.node('Relu', [linear(x, `${p}.ffn_in`)]), `${p}.ffn_out`);
        x = ln(g.node('Add', [x, ff]), `${p}.ln2.gamma`, `${p}.ln2.beta`);
      }
      g.node('Add', [g.node('MatMul', [x, 'classifier.weight']), 'classifier.bias'], {}, ['logits']);
      return g.model('logits', L, ranercVersion());
    },
    crfParams: (labels) => crfParamsOf(crf, labels),
    parameterCount: () => countOf(ps.list),
    dispose: () => ps.list.forEach((p) => p.variable.dispose()),
  };
}

// ------------------------------------------------------------------------------------ registry

/**
 * Default sizes per student kind. BiLSTM 64/96/1 layer: measured on the MSRA fixture teacher (3 × 256
 * BERT, 14 MB) it keeps ≥ 95 % of the teacher's F1 within the 14-minute default budget, runs ~10× faster
 * at batch 1 / sequence 64 (128 units: ~6.5×) and its folder is ~11 % of the teacher's.
 */
export const STUDENT_DEFAULTS: Record<StudentKind, Pick<StudentSpec, 'embeddingDim' | 'hidden' | 'layers' | 'heads' | 'ffn' | 'dropout' | 'crf'>> = {
  'bilstm-crf': { embeddingDim: 64, hidden: 96, layers: 1, heads: 0, ffn: 0, dropout: 0.1, crf: true },
  bilstm: { embeddingDim: 64, hidden: 96, layers: 1, heads: 0, ffn: 0, dropout: 0.1, crf: false },
  transformer: { embeddingDim: 128, hidden: 128, layers: 2, heads: 4, ffn: 256, dropout: 0.1, crf: true },
};

/** Optional starting values taken from the teacher. */
export interface StudentInit {
  /** CRF transitions (same labels). */
  crf?: CrfParams;
  /** Token embeddings [vocabSize, embedding width] (LSTM: embeddingDim; transformer: hidden). */
  embeddings?: Float32Array;
}

export type StudentFactory = (spec: StudentSpec, rand: () => number, init?: StudentInit) => Student;

/** `--student` names → factories. */
export const STUDENTS: Record<StudentKind, StudentFactory> = {
  'bilstm-crf': lstmStudent,
  bilstm: lstmStudent,
  transformer: transformerStudent,
};

/** Create a student; its CRF / embeddings start from `init` (the teacher's) where given. */
export function createStudent(spec: StudentSpec, rand: () => number, init?: StudentInit): Student {
  const make = STUDENTS[spec.kind];
  if (!make) throw new RangeError(`unknown student "${spec.kind}"`);
  return make(spec, rand, { embeddings: init?.embeddings, crf: spec.crf ? init?.crf : undefined });
}
